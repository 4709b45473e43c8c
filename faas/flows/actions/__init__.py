"""Actions: what a flow's Action states do, behind one interface shaped like the Globus Action
Provider API (``run`` with a request id, ``status``, ``cancel``, ``release``).

``resolve(ActionUrl)`` gives the provider:

* ``faas://compute`` - run registered functions on faas endpoints (:mod:`.compute`); aliases
  Globus's compute URLs (``https://compute.actions.globus.org/fxap``, ``.../v2``, ``.../v3``...).
* ``faas://transfer`` - copy between fsspec URLs (:mod:`.transfer`); aliases
  ``https://actions.automate.globus.org/transfer/transfer`` and
  ``https://transfer.actions.globus.org/transfer``.
* ``faas://transfer/delete`` - delete files or folders; aliases Globus's delete action URLs.
* ``faas://transfer/{ls,stat,mkdir,rename,set_permission}`` - Globus's file operations
  (:mod:`.transfer_ops`); alias ``https://transfer.actions.globus.org/{ls,stat,mkdir,rename,
  manage_permission,set_permission}`` and the same names under ``actions.globus.org/transfer/``
  and ``actions.automate.globus.org/transfer/``.
* ``faas://approval`` - wait for a person (:mod:`.approval`).
* ``faas://notify`` - e-mail through the site's SMTP server (:mod:`.notify`); aliases
  ``https://actions.globus.org/notification/notify``.
* ``faas://hello_world`` - Globus's tutorial provider (:mod:`.hello`); aliases
  ``https://actions.globus.org/hello_world``.
* other URLs on Globus's action hosts (Search ingest/delete, Wait For User Selection, DataCite,
  Expression Evaluation, ...) - refused at run with ActionUnableToRun naming the hosted service
  they need (:data:`.http.GLOBUS_HOSTED`), unless a provider is registered for them or the site
  lists them under ``http:`` (with the Globus Auth token they take).
* any other ``http(s)://`` URL - a Globus Action Provider over HTTP (:mod:`.http`).

:func:`register` adds in-process providers (tests, site plugins) under any URL.
"""
from __future__ import annotations

import threading
from urllib.parse import urlsplit

from ...registry import Registry
from .base import (
    ACTIVE,
    DONE,
    FAILED,
    INACTIVE,
    SUCCEEDED,
    ActionConflict,
    ActionContext,
    ActionError,
    ActionNotFound,
    ActionProvider,
    ActionUnableToRun,
)

COMPUTE, TRANSFER, DELETE, APPROVAL = ("faas://compute", "faas://transfer", "faas://transfer/delete",
                                       "faas://approval")

#: Globus's ActionUrls (and short faas spellings) -> the faas provider that stands in for them
ALIASES = {
    "https://compute.actions.globus.org": COMPUTE,
    "https://compute.actions.globus.org/fxap": COMPUTE,
    "https://compute.actions.globus.org/v2": COMPUTE,
    "https://compute.actions.globus.org/v3": COMPUTE,
    "https://automate.funcx.org": COMPUTE,
    "https://actions.automate.globus.org/transfer/transfer": TRANSFER,
    "https://transfer.actions.globus.org/transfer": TRANSFER,
    "https://actions.automate.globus.org/transfer/delete": DELETE,
    "https://transfer.actions.globus.org/delete": DELETE,
    "faas://delete": DELETE,
    # Globus's transfer family (both hosts; actions.globus.org/transfer/* is the older one)
    "https://actions.globus.org/transfer/transfer": TRANSFER,
    "https://actions.globus.org/transfer/delete": DELETE,
    **{f"{host}{op}": f"faas://transfer/{ops_url}"
       for host in ("https://actions.automate.globus.org/transfer/",
                    "https://actions.globus.org/transfer/", "https://transfer.actions.globus.org/")
       for op, ops_url in (("ls", "ls"), ("mkdir", "mkdir"), ("stat", "stat"),
                           ("rename", "rename"), ("set_permission", "set_permission"),
                           ("manage_permission", "set_permission"))},
    "https://actions.globus.org/notification/notify": "faas://notify",
    "https://actions.globus.org/hello_world": "faas://hello_world",
}
#: faas's own URLs of Globus's file operations -> their providers in :mod:`.transfer_ops`
TRANSFER_OPS = {"faas://transfer/ls": "LsProvider", "faas://transfer/mkdir": "MkdirProvider",
                "faas://transfer/stat": "StatProvider", "faas://transfer/rename": "RenameProvider",
                "faas://transfer/set_permission": "PermissionProvider"}
_COMPUTE_HOSTS = ("compute.actions.globus.org",)   # later versions: any path on this host

_registered: dict[str, ActionProvider] = {}
_builtin: dict[str, ActionProvider] = {}
_lock = threading.Lock()


def _norm(url: str) -> str:
    p = urlsplit(url.strip())
    return f"{p.scheme.lower()}://{p.netloc.lower()}{p.path.rstrip('/')}"


def canonical(action_url: str) -> str:
    """The faas URL an ActionUrl stands for (itself when it is no alias)."""
    n = _norm(action_url)
    if n in ALIASES:
        return ALIASES[n]
    if urlsplit(n).netloc in _COMPUTE_HOSTS:
        return COMPUTE
    return n


#: faas's own action URLs -> "module:Class" of their providers (made once, without arguments)
BUILTINS = Registry("action", {
    COMPUTE: "faas.flows.actions.compute:ComputeProvider",
    TRANSFER: "faas.flows.actions.transfer:TransferProvider",
    DELETE: "faas.flows.actions.transfer:DeleteProvider",
    **{url: f"faas.flows.actions.transfer_ops:{cls}" for url, cls in TRANSFER_OPS.items()},
    APPROVAL: "faas.flows.actions.approval:ApprovalProvider",
    "faas://notify": "faas.flows.actions.notify:NotifyProvider",
    "faas://hello_world": "faas.flows.actions.hello:HelloWorldProvider",
})


def _make_builtin(url: str) -> ActionProvider | None:
    return BUILTINS.get(url)() if url in BUILTINS else None


def register(action_url: str, provider: ActionProvider) -> None:
    """Serve ``action_url`` (exactly, after normalizing) with ``provider`` in this process."""
    with _lock:
        _registered[_norm(action_url)] = provider


def unregister(action_url: str) -> None:
    with _lock:
        _registered.pop(_norm(action_url), None)


def resolve(action_url: str) -> ActionProvider:
    """The provider for ``action_url``; :class:`ActionUnableToRun` if none serves it."""
    if not isinstance(action_url, str) or "://" not in action_url:
        raise ActionUnableToRun(f"ActionUrl {action_url!r}: expected a URL such as faas://compute, "
                                f"faas://transfer or https://...")
    n = _norm(action_url)
    with _lock:
        if n in _registered:
            return _registered[n]
        url = canonical(n)
        if url in _registered:
            return _registered[url]
        p = _builtin.get(url)
        if p is None:
            p = _make_builtin(url)
            if p is not None:
                _builtin[url] = p
    if p is not None:
        return p
    scheme = urlsplit(url).scheme
    if scheme in ("http", "https"):
        from .http import HttpProvider
        return HttpProvider(action_url.strip())
    raise ActionUnableToRun(f"ActionUrl {action_url!r}: no such action; faas serves "
                            f"{COMPUTE}, {TRANSFER}, {DELETE}, {APPROVAL}, faas://notify, "
                            f"faas://hello_world, the transfer "
                            f"family (faas://transfer/ls, mkdir, stat, rename, set_permission), "
                            f"Globus's own action URLs "
                            f"and any http(s):// Action Provider")


__all__ = ["ActionContext", "ActionProvider", "ActionUnableToRun", "ActionError", "ActionNotFound",
           "ActionConflict", "resolve", "register", "unregister", "canonical", "ALIASES",
           "COMPUTE", "TRANSFER", "DELETE", "APPROVAL",
           "ACTIVE", "INACTIVE", "SUCCEEDED", "FAILED", "DONE"]
