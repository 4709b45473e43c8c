"""Identity -> local account, with Globus identity mapping documents (``identity_mapping.json``).

The file is a JSON list of mapping documents tried in order, first match wins:
``expression_identity_mapping#1.0.0`` (``{"DATA_TYPE": ..., "mappings": [{"source": "{username}",
"match": "(.*)@example.org", "output": "{0}"}]}``, anchored, the package's own small match language)
and ``external_identity_mapping#1.0.0`` (``{"DATA_TYPE": ..., "command": ["/path", "arg"]}``: an
``identity_mapping_input#1.0.0`` document on stdin, ``identity_mapping_output#1.0.0`` on stdout).
The ``globus-identity-mapping`` package, as Globus Compute uses it, does the matching.

An identity is what the transport proved (``local:alice``: the owner of the task's file; an
identity an administrator registered a signing key for). ``identity_document`` turns it into
the identity resource Globus's rules read (``{username}``, ``{email}``, ``{id}``, ...): the
properties the transport can vouch for, and None (as Globus Auth sends ``null``) for the others.
A mapping that names a property the identity does not have does not match (it is skipped and the
reason is given); a name that is no identity property at all is refused when the file is read.

The result must be an existing local account that is not root and that the endpoint's
``allowed_users`` / ``denied_users`` admit.
"""
from __future__ import annotations

import difflib
import fnmatch
import json
import logging
import os
import pwd
import re
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from globus_identity_mapping.loader import load_mappers

from ...config import read_json
from ...exceptions import ConfigError

log = logging.getLogger("faas.multiuser.mapping")

#: what the default file maps: ``local:NAME`` (the Unix account that wrote the message) to NAME
DEFAULT_MAPPING = [{"DATA_TYPE": "expression_identity_mapping#1.0.0",
                    "mappings": [{"source": "{username}", "match": "local:(.*)", "output": "{0}"}]}]

#: the properties of a Globus Auth identity resource (Globus Compute's multi-user docs and
#: ``identity_mapper.py``), with what faas puts there
IDENTITY_PROPERTIES = {
    "id": "a UUID derived from the identity (uuid5 of the URL namespace and the identity)",
    "sub": "the same as id (as in Globus Auth)",
    "username": "the identity: local:NAME, or the identity a signing key is registered for",
    "name": "a local account's full name (the first GECOS field); None if empty or not local",
    "email": "the registered identity when it is an e-mail address; None otherwise",
    "organization": "None: no transport knows one",
    "identity_provider": "a fixed UUID per transport (LOCAL_ACCOUNTS_PROVIDER, SIGNING_KEYS_PROVIDER)",
    "identity_provider_display_name": "which transport vouched for the identity, in words",
    "identity_type": "login",
    "status": "used",
    "last_authentication": "None: no transport records one",
}
#: the providers ``{identity_provider}`` names (fixed: an administrator may match on them)
LOCAL_ACCOUNTS_PROVIDER = str(uuid.uuid5(uuid.NAMESPACE_URL, "faas:identity-provider:local-accounts"))
SIGNING_KEYS_PROVIDER = str(uuid.uuid5(uuid.NAMESPACE_URL, "faas:identity-provider:user-signing-keys"))

#: what Globus Compute passes to an external mapping program as ``-c`` (the POSIX connector)
POSIX_CONNECTOR_ID = "145812c8-decc-41f1-83cf-bb2a85a2a70b"
_KINDS = ("expression_identity_mapping#1.0.0", "external_identity_mapping#1.0.0")
#: ``{name}`` in a source or output (the package's own pattern); ``{0}`` is a match group
_INTERPOLATION = re.compile(r"(?<!\\)(\\\\)*({([^}]*)})")
_EMAIL = re.compile(r"^[^@\s:/]+@[^@\s:/]+\.[^@\s:/]+$")


def identity_document(identity: str) -> dict:
    """The Globus identity resource of a transport identity: every property of
    IDENTITY_PROPERTIES, None where the transport cannot vouch for it."""
    ident_id = str(uuid.uuid5(uuid.NAMESPACE_URL, identity))
    doc = dict.fromkeys(IDENTITY_PROPERTIES)
    doc.update(id=ident_id, sub=ident_id, username=identity, identity_type="login", status="used")
    if identity.startswith(("local:", "local-uid:")):   # the spool: the owner of the task's file
        doc.update(identity_provider=LOCAL_ACCOUNTS_PROVIDER,
                   identity_provider_display_name=f"local accounts of {socket.gethostname()}")
        if identity.startswith("local:"):
            try:
                doc["name"] = pwd.getpwnam(identity[6:]).pw_gecos.split(",")[0].strip() or None
            except KeyError:
                pass
    else:                                               # a key registered in user_signing_keys.json
        doc.update(identity_provider=SIGNING_KEYS_PROVIDER,
                   identity_provider_display_name="per-user signing keys (user_signing_keys.json)")
        if _EMAIL.match(identity):
            doc["email"] = identity
    return doc


def _properties(text: str) -> list[str]:
    """The identity properties ``text`` interpolates (``{email}``; not match groups ``{0}``)."""
    return [m.group(3) for m in _INTERPOLATION.finditer(text) if not m.group(3).isdigit()]


@dataclass
class Rule:
    """One mapping document: its mappers (an expression document: one per mapping, in order, so
    a mapping that cannot apply skips only itself) and the properties each one reads."""
    index: int
    data_type: str
    mappers: list
    uses: list[list[str]] = field(default_factory=list)


def _check_properties(path: Path, i: int, j: int, m: dict) -> list[str]:
    uses = []
    for part in ("source", "output"):
        for name in _properties(str(m[part])):
            if name not in IDENTITY_PROPERTIES:
                near = difflib.get_close_matches(name, IDENTITY_PROPERTIES, n=1)
                raise ConfigError(f"{path}: rule [{i}] mapping [{j}]: {part} {m[part]!r} uses {{{name}}}, which is "
                                  f"not a property of an identity ({', '.join(IDENTITY_PROPERTIES)})"
                                  + (f"; did you mean {{{near[0]}}}?" if near else ""))
            if name in ("organization", "last_authentication"):
                log.warning("%s: rule [%d] mapping [%d] uses {%s}, which no faas transport knows: it never "
                            "matches here", path, i, j, name)
            uses.append(name)
    return uses


def load_rules(path: Path, endpoint_id: str = "faas-multi-user") -> list[Rule]:
    """Parse and compile a mapping file; a ConfigError naming the file and the rule otherwise.
    ``endpoint_id`` is what an external program gets as ``-s`` (Globus: the endpoint's id)."""
    check_owner_safe(path)
    docs = read_json(path, "identity mapping")
    if not isinstance(docs, list) or not docs:
        raise ConfigError(f"{path}: expected a non-empty JSON list of mapping documents, e.g. "
                          f"{json.dumps(DEFAULT_MAPPING)}")
    rules = []
    for i, d in enumerate(docs):
        kind = d.get("DATA_TYPE") if isinstance(d, dict) else None
        if kind not in _KINDS:
            raise ConfigError(f"{path}: rule [{i}]: DATA_TYPE must be {' or '.join(_KINDS)}, got {kind!r}")
        if kind.startswith("expression"):
            if not (isinstance(d.get("mappings"), list) and all(
                    isinstance(m, dict) and {"source", "match", "output"} <= set(m) for m in d["mappings"])):
                raise ConfigError(f"{path}: rule [{i}]: 'mappings' must be a list of objects with "
                                  f"source, match and output")
            parts = [{**d, "mappings": [m]} for m in d["mappings"]]
            uses = [_check_properties(path, i, j, m) for j, m in enumerate(d["mappings"])]
        else:
            if not (isinstance(d.get("command"), list) and d["command"]
                    and all(isinstance(c, str) for c in d["command"])):
                raise ConfigError(f"{path}: rule [{i}]: 'command' must be a non-empty list of strings")
            parts, uses = [d], [[]]
        try:
            mappers = load_mappers(parts, connector=POSIX_CONNECTOR_ID, storage_gateway=endpoint_id)
        except Exception as e:  # noqa: BLE001 - the package's InvalidMappingError and friends
            raise ConfigError(f"{path}: rule [{i}]: invalid identity mapping: {e}") from None
        rules.append(Rule(i, kind, mappers, uses))
    return rules


@dataclass
class Mapped:
    identity: str
    user: str | None          # the local account, when allowed
    uid: int | None = None
    gid: int | None = None
    home: str | None = None
    why: str = ""             # how it mapped, or why it was refused
    id: str | None = None     # the id of the identity document that matched (Globus: matched_identity)


def _matches(patterns: list[str], identity: str, user: str) -> str | None:
    for p in patterns:
        if fnmatch.fnmatchcase(user, p) or fnmatch.fnmatchcase(identity, p):
            return p
    return None


def _apply(rules: list[Rule], doc: dict) -> tuple[str | None, str, list[str]]:
    """(account name, how, why mappings were skipped): the first output of the first mapping
    that matches, in file order (Globus: the first mapper's first mapping wins)."""
    skipped = []
    for rule in rules:
        for j, (mapper, uses) in enumerate(zip(rule.mappers, rule.uses, strict=False)):
            where = f"rule [{rule.index}]" + (f" mapping [{j}]" if rule.data_type.startswith("expression") else "")
            missing = [p for p in uses if doc.get(p) is None]
            if missing:
                skipped.append(f"{where} uses {{{missing[0]}}}, which {doc['username']!r} does not have")
                continue
            try:
                found = mapper.map_identities([doc])
            except Exception as e:  # noqa: BLE001 - a failing external program: no match, say why
                log.error("identity mapping %s failed for %s: %s", where, doc["username"], e)
                skipped.append(f"{where} failed: {type(e).__name__}")
                continue
            names = [n for result in found for n in result.get(doc["id"], []) if n]
            if names:
                return names[0], f"{where} ({rule.data_type})", skipped
    return None, "", skipped


class IdentityMapper:
    """The rules of one file, re-read when the file changes; an invalid new file is refused
    (logged) and the rules in force stay."""

    def __init__(self, path: Path, allowed_users: list[str] | None = None,
                 denied_users: list[str] | None = None, endpoint_id: str = "faas-multi-user"):
        self.path = Path(path)
        self.allowed, self.denied = allowed_users, list(denied_users or [])
        self.endpoint_id = endpoint_id
        self._stamp = None
        self.rules = load_rules(self.path, endpoint_id)
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
            self.rules = load_rules(self.path, self.endpoint_id)
        except ConfigError as e:
            log.error("identity mapping NOT reloaded, the previous rules stay in force: %s", e)
            return False
        log.info("identity mapping reloaded from %s", self.path)
        return True

    def map(self, identity: str) -> Mapped:
        """Who ``identity`` runs as, or why it does not run (``user`` None)."""
        doc = identity_document(identity)
        name, how, skipped = _apply(self.rules, doc)
        if not name:
            return Mapped(identity, None, why=f"no identity mapping rule in {self.path} matches {identity!r}"
                          + (f" ({'; '.join(skipped)})" if skipped else ""))
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
        return Mapped(identity, name, pw.pw_uid, pw.pw_gid, pw.pw_dir, why=f"maps to {name!r} by {how}",
                      id=doc["id"])


def identity_of_uid(uid: int) -> str:
    """The identity of a local writer: ``local:NAME``, or ``local-uid:N`` for an account with no name."""
    try:
        return f"local:{pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f"local-uid:{uid}"


def check_owner_safe(path: str | os.PathLike) -> None:
    """ConfigError if a file the root endpoint reads to decide who runs as whom, and with what
    (the mapping, the template, its schema, the users' environment), could be changed by anyone
    but root (or the account the endpoint runs as)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:   # its reader says so
        return
    if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
        raise ConfigError(f"{path}: must be owned by root and not writable by group or others (it "
                          f"decides who runs as whom): `chown root {path}; chmod go-w {path}`")
