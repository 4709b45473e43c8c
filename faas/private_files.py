"""Files that hold secrets (signing keys, the result key, tokens) and the folders that hold them.

A secret file is made atomically with mode 600 and is checked before every use: a regular file
(never a symbolic link a stranger planted), owned by whoever reads it (or by root, for files an
administrator hands to root), with no permission bits for group or others. Anything else stops
the program with a message that says what to fix: a secret others could read or swap is no secret.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from .exceptions import ConfigError


def check(path: Path | str, what: str, owners: tuple[int, ...] | None = None) -> os.stat_result:
    """The file's stat, once it is proven private; else :class:`ConfigError`.

    ``owners``: the uids allowed to own it (default: this process's effective uid)."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: the {what} file does not exist") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot check the {what} file: {e.strerror}") from None
    owners = (os.geteuid(),) if owners is None else owners
    if stat.S_ISLNK(st.st_mode):
        raise ConfigError(f"{path}: the {what} file is a symbolic link; refusing to use it (a link "
                          f"can point anywhere): replace it with the file itself, mode 600")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{path}: the {what} file is not a regular file")
    if st.st_uid not in owners:
        raise ConfigError(f"{path}: the {what} file is owned by uid {st.st_uid}, not by "
                          f"{' or '.join(f'uid {u}' for u in owners)}; refusing to use a secret "
                          f"another account controls (chown it, or make a new one)")
    if st.st_mode & 0o077:
        raise ConfigError(f"{path}: the {what} file has mode {stat.S_IMODE(st.st_mode):03o}; it holds "
                          f"a secret, so group and others must have no access: chmod 600 {path}")
    return st


def read(path: Path | str, what: str, owners: tuple[int, ...] | None = None) -> str:
    """The text of a secret file, checked first (and read without following a link)."""
    check(path, what, owners)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd) as f:
        return f.read()


def create(path: Path | str, text: str) -> bool:
    """Write ``text`` to a new secret file (mode 600); False if the file already exists (another
    process made it first: use theirs)."""
    path = Path(path)
    ensure_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return True


def ensure_dir(path: Path | str) -> Path:
    """Make ``path`` (and missing parents) mode 700: only its owner lists or enters it."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
