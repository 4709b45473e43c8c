"""Identity -> local account, with Globus identity mapping documents (``identity_mapping.json``).

The file is a JSON list of mapping documents tried in order, first match wins:
``expression_identity_mapping#1.0.0`` (``{"DATA_TYPE": ..., "mappings": [{"source": "{username}",
"match": "(.*)@example.org", "output": "{0}"}]}``, anchored, the package's own small match language)
and ``external_identity_mapping#1.0.0`` (``{"DATA_TYPE": ..., "command": ["/path", "arg"]}``: the
identities as JSON on stdin, the mapped names as JSON on stdout). An identity is a string
(``local:alice``, an IAM ARN); mappers see it as ``{username}``, and as ``{id}`` a UUID derived
from it (``uuid5(NAMESPACE_URL, identity)``: the Globus format wants UUIDs there).

The result must be an existing local account that is not root and that the endpoint's
``allowed_users`` / ``denied_users`` admit.
"""
from __future__ import annotations

import fnmatch
import json
import logging
import os
import pwd
import uuid
from dataclasses import dataclass
from pathlib import Path

from globus_identity_mapping.loader import load_mappers

from ...config import read_json
from ...exceptions import ConfigError

log = logging.getLogger("faas.multiuser.mapping")

#: what the default file maps: ``local:NAME`` (the Unix account that wrote the message) to NAME
DEFAULT_MAPPING = [{"DATA_TYPE": "expression_identity_mapping#1.0.0",
                    "mappings": [{"source": "{username}", "match": "local:(.*)", "output": "{0}"}]}]

# The package insists on these for the external program (it passes them as -c and -s).
_CONNECTOR = "faas"
_GATEWAY = "faas-multi-user"


@dataclass
class Mapped:
    identity: str
    user: str | None          # the local account, when allowed
    uid: int | None = None
    gid: int | None = None
    home: str | None = None
    why: str = ""             # how it mapped, or why it was refused


def load_rules(path: Path) -> list:
    """Parse and compile a mapping file; a ConfigError naming the file and the rule otherwise."""
    docs = read_json(path, "identity mapping")
    if not isinstance(docs, list) or not docs:
        raise ConfigError(f"{path}: expected a non-empty JSON list of mapping documents, e.g. "
                          f"{json.dumps(DEFAULT_MAPPING)}")
    for i, d in enumerate(docs):
        kind = d.get("DATA_TYPE") if isinstance(d, dict) else None
        if kind not in ("expression_identity_mapping#1.0.0", "external_identity_mapping#1.0.0"):
            raise ConfigError(f"{path}: rule [{i}]: DATA_TYPE must be expression_identity_mapping#1.0.0 "
                              f"or external_identity_mapping#1.0.0, got {kind!r}")
        if kind.startswith("expression") and not (isinstance(d.get("mappings"), list) and all(
                isinstance(m, dict) and {"source", "match", "output"} <= set(m) for m in d["mappings"])):
            raise ConfigError(f"{path}: rule [{i}]: 'mappings' must be a list of objects with "
                              f"source, match and output")
        if kind.startswith("external") and not (isinstance(d.get("command"), list) and d["command"]
                                                 and all(isinstance(c, str) for c in d["command"])):
            raise ConfigError(f"{path}: rule [{i}]: 'command' must be a non-empty list of strings")
    try:
        return load_mappers(docs, connector=_CONNECTOR, storage_gateway=_GATEWAY)
    except Exception as e:  # noqa: BLE001 - the package's InvalidMappingError and friends
        raise ConfigError(f"{path}: invalid identity mapping: {e}") from None


def _matches(patterns: list[str], identity: str, user: str) -> str | None:
    for p in patterns:
        if fnmatch.fnmatchcase(user, p) or fnmatch.fnmatchcase(identity, p):
            return p
    return None


class IdentityMapper:
    """The rules of one file, re-read when the file changes; an invalid new file is refused
    (logged) and the rules in force stay."""

    def __init__(self, path: Path, allowed_users: list[str] | None = None,
                 denied_users: list[str] | None = None):
        self.path = Path(path)
        self.allowed, self.denied = allowed_users, list(denied_users or [])
        self._stamp = None
        self.rules = load_rules(self.path)
        self._stamp = self._file_stamp()

    def _file_stamp(self):
        try:
            st = self.path.stat()
            return (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            return None

    def reload_if_changed(self) -> bool:
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self.rules = load_rules(self.path)
        except ConfigError as e:
            log.error("identity mapping NOT reloaded, the previous rules stay in force: %s", e)
            return False
        log.info("identity mapping reloaded from %s", self.path)
        return True

    def map(self, identity: str) -> Mapped:
        """Who ``identity`` runs as, or why it does not run (``user`` None)."""
        data = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, identity)), "username": identity, "status": "used"}
        name, how = None, None
        for i, rule in enumerate(self.rules):
            try:
                name = rule.map_identity(data)
            except Exception as e:  # noqa: BLE001 - a failing external command: no match, say why
                log.error("identity mapping rule [%d] failed for %s: %s", i, identity, e)
                name = None
            if name:
                how = f"rule [{i}] ({rule.DATA_TYPE})"
                break
        if not name:
            return Mapped(identity, None, why=f"no identity mapping rule in {self.path} matches {identity!r}")
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            return Mapped(identity, None, why=f"{identity!r} maps to {name!r} by {how}, which is not a "
                                             f"local account")
        if pw.pw_uid == 0:
            return Mapped(identity, None, why=f"{identity!r} maps to {name!r} by {how}: root never runs tasks")
        denied = _matches(self.denied, identity, name)
        if denied:
            return Mapped(identity, None, why=f"{identity!r} maps to {name!r}, which denied_users "
                                             f"refuses ({denied!r})")
        if self.allowed is not None and not _matches(self.allowed, identity, name):
            return Mapped(identity, None, why=f"{identity!r} maps to {name!r}, which allowed_users does "
                                             f"not list")
        return Mapped(identity, name, pw.pw_uid, pw.pw_gid, pw.pw_dir, why=f"maps to {name!r} by {how}")


def identity_of_uid(uid: int) -> str:
    """The identity of a local writer: ``local:NAME``, or ``local-uid:N`` for an account with no name."""
    try:
        return f"local:{pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f"local-uid:{uid}"


def check_owner_safe(path: str) -> None:
    """Raise if a file the root endpoint reads could be changed by someone other than root."""
    st = os.stat(path)
    if st.st_uid != 0 or st.st_mode & 0o022:
        raise ConfigError(f"{path}: must be owned by root and not writable by group or others "
                          f"(it decides who runs as whom)")
