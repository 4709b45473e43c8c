"""The console's own manage token, for ``faas console`` started without ``--token``.

It lives in ``$FAAS_HOME/console.token`` (``~/.faas/console.token``), made once with a random
token and mode 600, and reused by every later start, so a bookmarked login URL keeps working.
Before it is used it must be a regular file (not a link, a FIFO or a folder), owned by the
account that runs the console, with no permission bits for group or others: anything else stops
the console with a message that says what to fix. Loopback is every local account's, so this
file's mode is what keeps another user on a shared login node out of the console.
"""
from __future__ import annotations

import errno
import os
import secrets
import stat
import time
from pathlib import Path

from ..config import faas_home
from ..exceptions import ConfigError

NAME = "console.token"
#: bytes of randomness in a made token (43 URL-safe characters)
TOKEN_BYTES = 32
_MAX_SIZE = 4096


def token_path(home: str | os.PathLike | None = None) -> Path:
    """``$FAAS_HOME/console.token`` (``home`` if given)."""
    return faas_home(home) / NAME


def _fix(path: Path) -> str:
    return (f"remove it (rm {path}) and start `faas console` again to make a new token, or give "
            f"one with --token")


def _refuse(path: Path, st: os.stat_result) -> None:
    """A ConfigError when ``st`` (of the open file) is not a private regular file of ours."""
    me = os.geteuid()
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{path}: the console token file is not a regular file; refusing to use it: "
                          f"{_fix(path)}")
    if st.st_uid != me:
        raise ConfigError(f"{path}: the console token file is owned by uid {st.st_uid}, not by you "
                          f"(uid {me}): another account may know or change its token; refusing to use "
                          f"it: {_fix(path)}")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise ConfigError(f"{path}: the console token file has mode {mode:03o}, so other accounts may "
                          f"have read it; it must be 600 (or stricter). Refusing to start: {_fix(path)} "
                          f"(a chmod 600 keeps a token others may already have read)")


def read_token(path: Path) -> str:
    """The token in ``path``, once the file is proven private (checked on the open file, so what
    is checked is what is read); ConfigError otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ConfigError(f"{path}: the console token file is a symbolic link (it could point "
                              f"anywhere); refusing to use it: {_fix(path)}") from None
        raise ConfigError(f"{path}: cannot read the console token file: {e.strerror}") from None
    try:
        _refuse(path, os.fstat(fd))
        data = os.read(fd, _MAX_SIZE + 1)
    finally:
        os.close(fd)
    try:
        token = data.decode("ascii").strip()
    except UnicodeDecodeError:
        token = ""
    if len(data) > _MAX_SIZE or not token or any(c.isspace() or not c.isprintable() for c in token):
        raise ConfigError(f"{path}: the console token file does not hold one token (printable, no "
                          f"spaces); {_fix(path)}")
    return token


def _create(path: Path) -> str | None:
    """Make ``path`` with a new token (mode 600, never over an existing file or link); None when
    the file is already there."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return None
    except OSError as e:
        raise ConfigError(f"{path}: cannot create the console token file: {e.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (token + "\n").encode())
        os.fsync(fd)
    except OSError as e:
        os.close(fd)
        try:
            os.unlink(path)
        except OSError:
            pass
        raise ConfigError(f"{path}: cannot write the console token file: {e.strerror}") from None
    os.close(fd)
    return token


def load_or_create(home: str | os.PathLike | None = None) -> tuple[str, Path, bool]:
    """``(token, path, made)``: the manage token in ``$FAAS_HOME/console.token``, made (mode 600)
    when the file does not exist yet. A file that exists but is not private stops with ConfigError."""
    path = token_path(home)
    if not path.parent.is_dir():
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"{path.parent}: cannot create the folder for the console token: "
                              f"{e.strerror}") from None
    token = _create(path)
    if token is not None:
        return token, path, True
    # Made already (by an earlier start, or by one starting now: give its write a moment).
    last = None
    for _ in range(20):
        try:
            return read_token(path), path, False
        except ConfigError as e:
            if "does not hold one token" not in str(e):
                raise
            last = e
        time.sleep(0.05)
    raise last  # type: ignore[misc]
