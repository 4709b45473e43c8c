"""Files that hold secrets (signing keys, the result key, tokens) and the folders that hold them.

A secret file is made atomically with mode 600 and is checked before every use: a regular file
(never a symbolic link a stranger planted), owned by whoever reads it (or by root, for files an
administrator hands to root), with no permission bits for group or others. Anything else stops
the program with a message that says what to fix: a secret others could read or swap is no secret.
"""
from __future__ import annotations

import errno
import grp
import logging
import os
import pwd
import stat
from pathlib import Path

from . import accounts
from .exceptions import ConfigError

log = logging.getLogger(__name__)

#: the most read from a secret file (keys and tokens are lines, not megabytes)
MAX_BYTES = 64 << 10


def _refuse(path: Path, st: os.stat_result, what: str, owners: tuple[int, ...], fix: str | None) -> None:
    """ConfigError unless ``st`` (of the open file) is a private regular file of ``owners``."""
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{path}: the {what} file is not a regular file; refusing to use it"
                          f"{': ' + fix if fix else ''}")
    if st.st_uid not in owners:
        raise ConfigError(f"{path}: the {what} file is owned by uid {st.st_uid}, not by "
                          f"{' or '.join(f'uid {u}' for u in owners)}; refusing to use a secret "
                          f"another account controls: {fix or 'chown it, or make a new one'}")
    if st.st_mode & 0o077:
        raise ConfigError(f"{path}: the {what} file has mode {stat.S_IMODE(st.st_mode):03o}; it holds "
                          f"a secret, so it must be mode 600 (no access for group or others): "
                          f"{fix or f'chmod 600 {path}'}")


def read(path: Path | str, what: str, owners: tuple[int, ...] | None = None, fix: str | None = None) -> str:
    """The text of a secret file, once proven private: opened without following a link or
    blocking on a FIFO, and checked on the open file (what is checked is what is read).
    ``owners``: the uids allowed to own it (default: this process's effective uid); ``fix``:
    what to tell the user to do instead of the default advice."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"{path}: the {what} file does not exist") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ConfigError(f"{path}: the {what} file is a symbolic link; refusing to use it (a link "
                              f"can point anywhere): {fix or 'replace it with the file itself, mode 600'}"
                              ) from None
        raise ConfigError(f"{path}: cannot read the {what} file: {e.strerror}") from None
    try:
        _refuse(path, os.fstat(fd), what, (os.geteuid(),) if owners is None else owners, fix)
        data = os.read(fd, MAX_BYTES)
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace")


def create(path: Path | str, text: str) -> bool:
    """Write ``text`` to a new secret file (mode 600, synced); False if the file already exists
    (another process made it first: use theirs). Never writes through a link."""
    path = Path(path)
    try:
        ensure_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return False
    except OSError as e:
        raise ConfigError(f"{path}: cannot create the file: {e.strerror}") from None
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    except OSError as e:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise ConfigError(f"{path}: cannot write the file: {e.strerror}") from None
    finally:
        os.close(fd)
    return True


def ensure_dir(path: Path | str) -> Path:
    """Make ``path`` (and missing parents) mode 700: only its owner lists or enters it."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


# -- FAAS_HOME: the user's own private folder ------------------------------------------------------
_homes_checked: set[tuple[int, str]] = set()
_MAX_LINKS = 20


def ensure_home(path: Path | str) -> Path:
    """``path`` (a FAAS_HOME) as this account's private folder, made mode 700 if absent.

    It holds the endpoints' configs (whose ``endpoint_setup`` runs as the user), keys, logs of
    what functions print, and the embedded store and queues: so it must be the user's own, and
    every folder (and link) on the way to it must be root's or the user's, and not open to others
    to rename in (group-writable only for the user's own private group; world-writable only when
    sticky, as /tmp). A folder of the user's that others may list is closed (chmod 700, logged).
    Anything else is a :class:`ConfigError` that names the folder, its owner and what to do."""
    path = Path(os.path.abspath(Path(path).expanduser()))
    key = (os.geteuid(), str(path))
    if key in _homes_checked:
        return path
    _check_reach(path, str(path), 0, tail=True)
    try:
        _make_private(path)
        st = os.stat(path)
    except OSError as e:
        raise ConfigError(f"FAAS_HOME {path}: cannot make or read the folder: {e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"FAAS_HOME {path} is not a folder; set FAAS_HOME to a folder of your own")
    if st.st_uid != os.geteuid():
        raise ConfigError(f"FAAS_HOME {path} belongs to {accounts.user(st.st_uid)}, not to you: whoever owns "
                          f"it may rewrite your endpoints' configs (run as you) and read your keys; set "
                          f"FAAS_HOME to a folder of your own (default ~/.faas)")
    if st.st_mode & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError as e:
            raise ConfigError(f"FAAS_HOME {path} has mode {stat.S_IMODE(st.st_mode):03o} and cannot be "
                              f"closed ({e.strerror}): it holds keys and configs; `chmod 700 {path}` "
                              f"or set FAAS_HOME to a folder of your own") from None
        log.warning("FAAS_HOME %s had mode %03o: made it 700 (it holds keys, configs and what your "
                    "functions print)", path, stat.S_IMODE(st.st_mode))
    _homes_checked.add(key)
    return path


def _make_private(path: Path) -> None:
    """``path`` and the folders missing above it, each mode 700 (``os.makedirs`` gives the parents
    the umask's mode: with umask 002 the next process would refuse them as group-writable)."""
    missing = []
    while not os.path.lexists(path):
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass


def _only_mine(gid: int) -> bool:
    """Whether a group is this account's private group (its name, no other members)."""
    try:
        me, g = pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(gid)
    except KeyError:
        return False
    return g.gr_name == me and set(g.gr_mem) <= {me}


def _check_reach(path: Path, home: str, links: int, tail: bool) -> None:
    """ConfigError unless every existing folder and link on the way to ``path`` (its last part
    included: the home when ``tail``, else a folder on the way to it) is root's or ours and not
    open to others to rename in; what does not exist yet is made by us."""
    uid, cur = os.geteuid(), Path("/")
    for i, part in enumerate(path.parts[1:], 1):
        nxt = cur / part
        try:
            st = os.lstat(nxt)
        except FileNotFoundError:
            return
        except OSError as e:
            raise ConfigError(f"FAAS_HOME {home}: cannot look at {nxt}: {e.strerror}") from None
        last = tail and i == len(path.parts) - 1
        if st.st_uid not in (0, uid):
            raise ConfigError(f"FAAS_HOME {home}: {nxt} belongs to {accounts.user(st.st_uid)}, who could "
                              f"replace what is in it (your endpoints' configs, run as you): set "
                              f"FAAS_HOME to a folder reached only through your own and root's "
                              f"folders (default ~/.faas)")
        if stat.S_ISLNK(st.st_mode):
            if links >= _MAX_LINKS:
                raise ConfigError(f"FAAS_HOME {home}: too many symbolic links on the way")
            _check_reach(Path(os.path.abspath(cur / os.readlink(nxt))), home, links + 1, last)
            cur = Path(os.path.realpath(nxt))
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"FAAS_HOME {home}: {nxt} is not a folder")
        if not last or st.st_uid != uid:   # the home itself, if ours, is closed by ensure_home
            if st.st_mode & 0o002 and not st.st_mode & stat.S_ISVTX:
                raise ConfigError(f"FAAS_HOME {home}: any account may rename or replace what is in "
                                  f"{nxt} (mode {stat.S_IMODE(st.st_mode):04o}, not sticky): set FAAS_HOME "
                                  f"elsewhere, or `chmod o-w {nxt}`")
            if st.st_mode & 0o020 and not st.st_mode & stat.S_ISVTX and not _only_mine(st.st_gid):
                raise ConfigError(f"FAAS_HOME {home}: the members of group {accounts.group_name(st.st_gid)} may "
                                  f"rename or replace what is in {nxt} (mode {stat.S_IMODE(st.st_mode):04o}): "
                                  f"set FAAS_HOME elsewhere, or `chmod g-w {nxt}`")
        cur = nxt
