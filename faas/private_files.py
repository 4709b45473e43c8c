"""Files that hold secrets (signing keys, the result key, tokens) and the folders that hold them.

A secret file is made atomically with mode 600 and is checked before every use: a regular file
(never a symbolic link a stranger planted), owned by whoever reads it (or by root, for files an
administrator hands to root), with no permission bits for group or others. Anything else stops
the program with a message that says what to fix: a secret others could read or swap is no secret.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .exceptions import ConfigError

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
