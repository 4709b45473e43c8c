"""Token files: the console's own manage token, for ``faas console`` started without a token,
and the files a user gives with ``--token-file`` (``faas console``, ``faas actions serve``).

It lives in ``$FAAS_HOME/console.token`` (``~/.faas/console.token``), made once with a random
token and mode 600, and reused by every later start, so a bookmarked login URL keeps working.
Before either is used it must be a regular file (not a link, a FIFO or a folder), owned by the
account that runs the console, with no permission bits for group or others: anything else stops
the console with a message that says what to fix. Loopback is every local account's, so this
file's mode is what keeps another user on a shared login node out of the console.

A token is never taken from the command line: a process's arguments are every local account's
to read (``ps``, ``/proc/PID/cmdline``). It comes from a file (mode 600) or the environment
(``/proc/PID/environ`` is the owner's alone).
"""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from .. import private_files
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
            f"give your own with --token-file FILE (mode 600) or FAAS_CONSOLE_TOKEN")


def read_token(path: Path) -> str:
    """The token in ``path``, once the file is proven private (faas.private_files); ConfigError
    otherwise."""
    text = private_files.read(path, "console token", fix=_fix(path))
    token = text.strip()
    if len(text.encode()) > _MAX_SIZE or not token or \
            any(c.isspace() or not c.isprintable() or not c.isascii() for c in token):
        raise ConfigError(f"{path}: the console token file does not hold one token (printable, no "
                          f"spaces); {_fix(path)}")
    return token


def load_or_create(home: str | os.PathLike | None = None) -> tuple[str, Path, bool]:
    """``(token, path, made)``: the manage token in ``$FAAS_HOME/console.token``, made (mode 600)
    when the file does not exist yet. A file that exists but is not private stops with ConfigError."""
    path = token_path(home)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    if private_files.create(path, token + "\n"):
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
    assert last is not None   # the loop ran and each pass either returned or set it
    raise last


def read_token_lines(path: str | os.PathLike) -> list[str]:
    """The tokens in a file given with ``--token-file``: one a line (``TOKEN`` or ``ROLE:TOKEN``;
    blank lines and ``#`` comments skipped), once the file is proven private
    (:func:`faas.private_files.read`: a regular file of yours, mode 600); ConfigError otherwise."""
    path = Path(path)
    text = private_files.read(path, "token")
    lines = [ln.strip() for ln in text.splitlines()]
    tokens = [ln for ln in lines if ln and not ln.startswith("#")]
    if not tokens or any(any(c.isspace() or not c.isprintable() for c in t) for t in tokens):
        raise ConfigError(f"{path}: the token file must hold one token a line (TOKEN or ROLE:TOKEN, "
                          f"printable, no spaces)")
    return tokens
