"""Worker pools inside a container: ``engine.container_type`` (``none``, ``podman``, ``docker``,
``apptainer``, ``singularity``), ``container_uri`` and ``container_cmd_options``.

:func:`wrap` turns the pool command into the command that runs it inside the container; the
provider's launcher then starts that once per node (``srun ... podman run ... python -m
faas.endpoint.pool ...``), so each node's pool and its workers live in one container.

The container runs the *host's* Python and faas, mounted at the same paths
(:func:`required_mounts`): the image only needs a compatible glibc and the shared libraries
CPython links against, and the user's environment is the same inside and out. What a pool needs:

- the host network (podman/docker ``--network=host``; apptainer shares it anyway): the local
  queue's doorbell is an abstract unix socket, which exists per network namespace, and a store
  or queue on ``127.0.0.1`` (MinIO, moto) must be the host's loopback;
- its own PID namespace (podman/docker default; no ``--pid=host``): nothing in faas compares
  process ids across blocks (temporary names are random, locks are ``fcntl`` locks, doorbells
  are named by random tokens), the provider watches the ``podman run`` process, whose signal
  proxy hands the pool its SIGTERM; and when the pool ends, the kernel ends every process its
  tasks left behind. The pool is then PID 1: it handles SIGTERM/SIGINT itself, but does not
  reap orphaned grandchildren; add ``--init`` to ``container_cmd_options`` if tasks leave
  daemons behind;
- the paths of :func:`required_mounts`, read-write at the same paths;
- the environment variables of :data:`PASS_ENV`, each passed only if set where the block runs
  (``-e NAME`` without a value; apptainer passes the whole environment by default).

Runtime settings of a site (podman's ``runtime``, ``default_ulimits``, ...) belong in its
``containers.conf`` (``CONTAINERS_CONF``), not here. ``container_cmd_options`` is inserted as a
shell fragment, as ``worker_init`` is, so ``-v $SCRATCH:$SCRATCH`` expands where the block runs.
"""
from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from ..exceptions import ConfigError
from .launchers import RANK_VARIABLES

if TYPE_CHECKING:   # the endpoint's config models: an upper layer, for annotations only
    from ..endpoint.config import EndpointConfig, EngineConfig

#: environment variables handed to the pool inside a podman/docker container when set
PASS_ENV = ("FAAS_HOME", "FAAS_SIGNING_KEYS",
            "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
            "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE", "AWS_CA_BUNDLE",
            "CUDA_VISIBLE_DEVICES",
            *RANK_VARIABLES)    # multi-node blocks: each pool names its folder by its rank

#: the operating system's software trees: a Python (or faas) installed under one of them is not
#: mounted over the image, whose own Python (and faas) must then run the pool
SYSTEM_TREES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")

_OCI = ("podman", "docker")
_APPTAINER = ("apptainer", "singularity")


def wrap(engine_cfg: EngineConfig, command: str, *, mounts: list[str]) -> str:
    """The shell command that runs ``command`` (the pool command, a simple command) inside the
    container ``engine_cfg`` names, with each of ``mounts`` bound at the same path (sorted,
    without paths under another); ``command`` itself for ``container_type: none``.

    podman / docker::

        podman run --rm --network=host -v M:M ... -e FAAS_HOME -e AWS_... {options} IMAGE command
        podman run ... {options} --rootfs DIR command      # container_uri is a folder (podman)

    apptainer / singularity::

        apptainer exec --bind M ... {options} URI command
    """
    kind = getattr(engine_cfg, "container_type", "none") or "none"
    if kind == "none":
        return command
    if kind not in _OCI + _APPTAINER:
        raise ConfigError(f"engine.container_type: unknown container type {kind!r}; expected one "
                          f"of none, podman, docker, apptainer, singularity")
    uri = engine_cfg.container_uri
    if not uri:
        raise ConfigError(f"engine.container_type {kind!r} needs engine.container_uri "
                          f"(an image, or a root filesystem folder for podman)")
    options = (engine_cfg.container_cmd_options or "").strip()
    try:
        shlex.split(options)
    except ValueError as e:
        raise ConfigError(f"engine.container_cmd_options {options!r}: not valid shell words: {e}") from None
    q = shlex.quote
    mounts = minimal(mounts)
    for m in mounts:
        if ":" in m or (kind in _APPTAINER and "," in m):
            raise ConfigError(f"cannot bind {m!r} into a {kind} container: {kind} reads ':' "
                              f"{'and , ' if kind in _APPTAINER else ''}in a mount as separators; "
                              f"move it to a path without them")

    if kind in _APPTAINER:
        words = [kind, "exec"]
        for m in mounts:
            words += ["--bind", q(m)]
        return " ".join(words + ([options] if options else []) + [q(uri), command])

    words = [kind, "run", "--rm", "--network=host"]
    for m in mounts:
        words += ["-v", q(f"{m}:{m}")]
    for name in PASS_ENV:
        words += ["-e", name]
    if options:
        words.append(options)
    rootfs = _rootfs(uri)
    if rootfs is not None:
        if kind == "docker":
            raise ConfigError(f"engine.container_uri {uri!r} is a folder: docker runs images "
                              f"only; use container_type: podman for a root filesystem folder")
        words += ["--rootfs", q(rootfs)]   # must come last: what follows is the command
    else:
        words.append(q(uri))
    words.append(command)
    return " ".join(words)


def _rootfs(uri: str) -> str | None:
    """The root filesystem folder ``uri`` names, or None for an image reference. A folder is an
    absolute path (no image reference starts with '/'), also as podman's ``DIR:O`` (an overlay
    that leaves DIR untouched). Never a relative one: ``localhost/faas-py`` or ``python:3.12``
    is an image even where a folder of that name exists in the current folder (another account
    could have made it there, and podman would run its programs as the endpoint's user)."""
    path, suffix = (uri[:-2], ":O") if uri.endswith(":O") else (uri, "")
    if path.startswith("/"):
        return os.path.normpath(path) + suffix
    return None


def required_mounts(cfg: EndpointConfig, home: Path | str, *, name: str | None = None,
                    create: bool = True) -> list[str]:
    """The host paths a pool needs inside its container, at the same paths: a ``file://`` store's
    folder, the local queue's folder, the endpoint's folder (``home/endpoints/NAME``, or all of
    ``home/endpoints`` without ``name``), the Python (``sys.prefix`` and ``sys.base_prefix``:
    the venv and the interpreter it was made from), the folder holding the ``faas`` package
    (an editable install's source tree), and an absolute ``signing_keys_file``. Sorted, without
    duplicates or paths under another.
    A Python or faas under the system's own trees (:data:`SYSTEM_TREES`: ``/usr/bin/python3``,
    ``/usr/lib/python3/dist-packages``) is left out: mounted over the image it would replace the
    image's system; the image must then bring its own Python and faas.

    With ``create`` the folders faas owns (store, queue, endpoint) are made if missing: podman
    refuses to bind a path that does not exist, and the daemon may submit a block before the
    store has its first object.
    """
    home = Path(home)
    owned: list[str] = []
    store = _file_path(cfg.store)
    if store:
        owned.append(store)
    queue = cfg.queue
    if queue == "local":
        owned.append(str(home / "queues"))
    elif queue.startswith("local:"):
        path = _file_path(queue)
        if path:
            owned.append(os.path.dirname(path))
    endpoints = home / "endpoints" / name if name else home / "endpoints"
    owned.append(str(endpoints))
    if create:
        for p in owned:
            os.makedirs(p, exist_ok=True)
    keys = getattr(cfg, "signing_keys_file", None)
    if keys and os.path.isabs(keys):   # a relative one is in the endpoint's folder
        owned.append(keys)

    import faas
    software = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
                str(Path(faas.__file__).parent.parent)]
    software = [p for p in map(os.path.abspath, software) if not _under_system(p)]
    return minimal(owned + software)


def minimal(paths: Iterable[str]) -> list[str]:
    """``paths`` as absolute paths, sorted, without duplicates or paths under another of them."""
    kept: list[str] = []
    for p in sorted({os.path.abspath(p) for p in paths if p}):   # a parent sorts before its children
        if not any(p.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(p)
    return kept


def _under_system(path: str) -> bool:
    return path == "/" or any(path == d or path.startswith(d + "/") for d in SYSTEM_TREES)


def _file_path(url: str) -> str | None:
    """The local path of a ``file://`` / ``local://`` URL or a plain absolute path; None for
    anything remote (s3://, sqs://, memory://)."""
    parts = urlsplit(url)
    if parts.scheme in ("file", "local") and parts.netloc in ("", "localhost"):
        return os.path.normpath(unquote(parts.path)) if parts.path else None
    if not parts.scheme and url.startswith("/"):
        return os.path.normpath(url)
    return None
