"""Who a uid or gid is, as messages and listings name them: its name where the system has one."""
from __future__ import annotations

import grp
import pwd


def user(uid: int) -> str:
    """``name (uid N)``, or ``uid N`` for an account with no name (for error messages)."""
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def user_name(uid: int) -> str:
    """The account's name, else its number (as ``ls -l`` shows an owner)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    """The group's name, else its number."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
