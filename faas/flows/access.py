"""Who may do what to a flow or a run (Globus Flows' roles).

A flow has an ``owner`` (who deployed it) and lists of ``administrators`` (update, delete, and
manage every run), ``starters`` (start runs) and ``viewers`` (see the flow). A run has its
``user`` (who started it), ``managers`` (cancel, resume, approve, reject) and ``monitors``
(see its status and log). Each role implies the weaker ones: administrator > starter > viewer,
manager > monitor.

Principals are identity strings ``<kind>:<name>``: ``local:alice`` is the Unix user alice
(a bare ``alice`` means the same); the multi-user identities (``globus:...``, ``aws:...``) are
compared as written. ``public`` and ``all_authenticated_users`` are Globus's wildcards.

On a ``file://`` store the caller is the Unix user running the process, and the runner checks a
command's claim against the owner of the file that carries it, so a user cannot act as another
(:func:`read_owned` reads a file together with its owner, so neither can be swapped). On other
stores the claim is trusted as far as the store's own access control goes (IAM on S3);
the multi-user issue's signed identities plug in at :func:`current_identity` and the runner's
``command_identity``.
"""
from __future__ import annotations

import errno
import getpass
import os
import pwd
import stat
from collections.abc import Iterable

from faas import safe_open
from faas.exceptions import FaasError
from faas.store import KeyNotFound, Store
from faas.store.file import FileStore

PUBLIC, AUTHENTICATED = "public", "all_authenticated_users"


class AccessDenied(FaasError, PermissionError):
    code = "AccessDenied"


def normalize(principal: str) -> str:
    """``alice`` -> ``local:alice``; identity strings and the wildcards are kept."""
    p = str(principal).strip()
    if p in (PUBLIC, AUTHENTICATED) or ":" in p:
        return p
    return f"local:{p}"


def current_identity() -> str:
    """The caller: ``$FAAS_IDENTITY`` (set by the multi-user router for the user it serves),
    else the local user."""
    explicit = os.environ.get("FAAS_IDENTITY")
    if explicit:
        return normalize(explicit)
    try:
        return normalize(getpass.getuser())
    except (KeyError, OSError):  # pragma: no cover - no passwd entry (KeyError <3.13, OSError after)
        return f"local:uid{os.getuid()}"


def username(identity: str) -> str:
    """The name part of an identity (``local:alice`` -> ``alice``), for ``$._context.username``."""
    return identity.split(":", 1)[1] if identity.startswith("local:") else identity


def _in(who: str, principals: Iterable[str] | None) -> bool:
    ps = {normalize(p) for p in principals or ()}
    return normalize(who) in ps or PUBLIC in ps or AUTHENTICATED in ps


def is_among(who: str, principals: Iterable[str]) -> bool:
    """Whether ``who`` is one of ``principals`` (user names or identities; the wildcards
    ``public`` and ``all_authenticated_users`` match everyone)."""
    return _in(who, principals)


def identity_of_uid(uid: int) -> str:
    """The identity of a local account: ``local:<name>``, or ``local:uid<N>`` if it has none."""
    try:
        return normalize(pwd.getpwuid(uid).pw_name)
    except KeyError:
        return f"local:uid{uid}"


class UntrustedFile(OSError):
    """A file whose writer cannot be told: a link, not a regular file, writable by others."""


def read_owned(root: str, key: str, limit: int) -> tuple[bytes, int]:
    """``(bytes, owner uid)`` of the file ``root/key``, both from one open descriptor: only the
    kernel sets a file's owner (its creator; on Linux only root may give a file away), so the
    owner is who wrote these bytes. Refused with :class:`UntrustedFile`: a symbolic link
    anywhere below ``root`` (it would lend someone else's file), anything but a regular file (a
    FIFO would block), a file others may write into (group or world writable: anyone could have
    written the bytes), one over ``limit`` bytes. A missing file raises FileNotFoundError."""
    *folders, name = key.split("/")
    try:   # folders of other users are expected here (approvers write decisions): no owner check
        dfd = safe_open.open_dir(root, folders, trust_uid=None)
        try:
            fd, st = safe_open.open_regular(dfd, name)
        finally:
            os.close(dfd)
    except safe_open.NotRegular as e:
        raise UntrustedFile(e.errno, e.strerror, key) from None
    try:
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise UntrustedFile(errno.EPERM, "writable by others than its owner", key)
        if st.st_size > limit:
            raise UntrustedFile(errno.EFBIG, f"over {limit} bytes", key)
        data = safe_open.read_fd(fd, st.st_size, limit + 1)
        if len(data) > limit:
            raise UntrustedFile(errno.EFBIG, f"over {limit} bytes", key)
        return data, st.st_uid
    finally:
        os.close(fd)



def read_with_writer(store: Store, key: str, limit: int) -> tuple[bytes, int | None]:
    """``(bytes, the uid that wrote them)`` of ``key``: on a ``file://`` store the file's owner,
    read with its bytes from one descriptor (:func:`read_owned`); other stores cannot tell (None:
    there the bucket's IAM decides who may write). KeyNotFound if absent; :class:`UntrustedFile`
    as :func:`read_owned` says, and for more than ``limit`` bytes on any store."""
    if not isinstance(store, FileStore):
        data = store.get(key)
        if len(data) > limit:
            raise UntrustedFile(errno.EFBIG, f"over {limit} bytes", key)
        return data, None
    try:
        return read_owned(store.root, key, limit)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise KeyNotFound(key) from None


def written_by_runner_or(uid: int | None, identity: str | None = None) -> bool:
    """Whether a record written by ``uid`` (None: the store cannot tell) counts: this process's
    account wrote it, or ``identity`` (the user the record names, who may write there too)."""
    if uid is None or uid == os.geteuid():
        return True
    return identity is not None and identity_of_uid(uid) == normalize(identity)


def flow_role(flow: dict, who: str) -> int:
    """0 none, 1 viewer, 2 starter, 3 administrator (owner counts as administrator)."""
    if normalize(who) == normalize(flow.get("owner", "")) or _in(who, flow.get("administrators")):
        return 3
    if _in(who, flow.get("starters")):
        return 2
    if _in(who, flow.get("viewers")):
        return 1
    return 0


def can_view_flow(flow: dict, who: str) -> bool:
    return flow_role(flow, who) >= 1


def can_start(flow: dict, who: str) -> bool:
    return flow_role(flow, who) >= 2


def can_admin(flow: dict, who: str) -> bool:
    return flow_role(flow, who) >= 3


def run_role(run: dict, who: str, flow: dict | None = None) -> int:
    """0 none, 1 monitor, 2 manager (the run's user and the flow's administrators manage)."""
    if normalize(who) == normalize(run.get("user", "")) or _in(who, run.get("managers")):
        return 2
    if flow is not None and can_admin(flow, who):
        return 2
    if _in(who, run.get("monitors")):
        return 1
    return 0


def can_monitor(run: dict, who: str, flow: dict | None = None) -> bool:
    return run_role(run, who, flow) >= 1


def can_manage(run: dict, who: str, flow: dict | None = None) -> bool:
    return run_role(run, who, flow) >= 2


def require(ok: bool, who: str, what: str) -> None:
    if not ok:
        raise AccessDenied(f"{who} may not {what}")
