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
- the paths of :func:`required_mounts`, at the same paths: read-write only where the pool
  writes (the store, the queues, its block's folder, the tasks' working folder), read-only
  elsewhere (the Python, faas, the endpoint's folder). A rootful runtime (podman or docker run
  by root) makes the task root inside, and root on whatever is mounted: a writable Python or
  faas tree would let a task plant code that root runs later on the host, a writable
  ``config.yaml`` an ``endpoint_setup`` the daemon runs there. No other endpoint's folder is
  mounted (its ``signing.key``);
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
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import unquote, urlsplit

from ..exceptions import ConfigError
from .launchers import RANK_VARIABLES

if TYPE_CHECKING:   # the endpoint's config models: an upper layer, for annotations only
    from ..endpoint.config import EndpointConfig, EngineConfig, UserEndpointConfig

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


class Mounts(NamedTuple):
    """What :func:`required_mounts` binds: ``writable`` where the pool writes, ``read_only``
    what it only reads or runs."""
    writable: list[str]
    read_only: list[str]


def wrap(engine_cfg: EngineConfig, command: str, *, mounts: Iterable[str],
         read_only: Iterable[str] = ()) -> str:
    """The shell command that runs ``command`` (the pool command, a simple command) inside the
    container ``engine_cfg`` names, with each of ``mounts`` bound read-write and each of
    ``read_only`` read-only, at the same path (:func:`binds`: parents first, without paths under
    another of the same kind); ``command`` itself for ``container_type: none``.

    podman / docker::

        podman run --rm --network=host -v M:M -v R:R:ro ... -e FAAS_HOME -e AWS_... {options} IMAGE command
        podman run ... {options} --rootfs DIR command      # container_uri is a folder (podman)

    apptainer / singularity::

        apptainer exec --bind M --bind R:R:ro ... {options} URI command
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
    bound = binds(mounts, read_only)
    for m, _ in bound:
        if ":" in m or (kind in _APPTAINER and "," in m):
            raise ConfigError(f"cannot bind {m!r} into a {kind} container: {kind} reads ':' "
                              f"{'and , ' if kind in _APPTAINER else ''}in a mount as separators; "
                              f"move it to a path without them")

    if kind in _APPTAINER:
        words = [kind, "exec"]
        for m, writable in bound:
            words += ["--bind", q(m if writable else f"{m}:{m}:ro")]
        return " ".join(words + ([options] if options else []) + [q(uri), command])

    words = [kind, "run", "--rm", "--network=host"]
    for m, writable in bound:
        words += ["-v", q(f"{m}:{m}" if writable else f"{m}:{m}:ro")]
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


def required_mounts(cfg: UserEndpointConfig, home: Path | str, name: str, block_id: str, *,
                    create: bool = True) -> Mounts:
    """The host paths the pool of block ``block_id`` of endpoint ``name`` needs inside its
    container, at the same paths, each kind sorted without duplicates or paths under another.

    Writable: a ``file://`` store's folder, the local queue's folder, the block's own folder
    (``home/endpoints/NAME/blocks/BLOCK``: its logs and status) and the tasks' working folder
    (``engine.working_dir``). Read-only: the endpoint's folder (config, keys, ``blocks.json``),
    the Python (``sys.prefix`` and ``sys.base_prefix``: the venv and the interpreter it was made
    from), the folder holding the ``faas`` package (an editable install's source tree), and the
    ``signing_keys_file`` (where it is not in the endpoint's folder). No other endpoint's
    folder: a task must not read its keys.
    A Python or faas under the system's own trees (:data:`SYSTEM_TREES`: ``/usr/bin/python3``,
    ``/usr/lib/python3/dist-packages``) is left out: mounted over the image it would replace the
    image's system; the image must then bring its own Python and faas.

    With ``create`` the writable folders and the endpoint's folder are made if missing: podman
    refuses to bind a path that does not exist, and the daemon may submit a block before the
    store has its first object.
    """
    home = Path(home)
    endpoint = home / "endpoints" / name
    read_only = [str(endpoint)]
    keys = getattr(cfg, "signing_keys_file", None)
    if keys:   # relative to the endpoint's folder, as the pool reads it; may lie outside it
        read_only.append(os.path.normpath(endpoint / keys))
    import faas
    software = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
                str(Path(faas.__file__).parent.parent)]
    read_only += [p for p in map(os.path.abspath, software) if not _under_system(p)]
    work = _working_dir(cfg.engine.working_dir, endpoint, [str(home), *read_only])
    writable = _data_folders(cfg, home) + [str(endpoint / "blocks" / block_id), work]
    if create:
        for p in [*writable, str(endpoint)]:
            os.makedirs(p, exist_ok=True)
    return Mounts(minimal(writable), minimal(read_only))


def _working_dir(working_dir: str, endpoint: Path, kept_from_tasks: list[str]) -> str:
    """The tasks' working folder, mounted writable: ConfigError where it would hold (be, or lie
    above) FAAS_HOME or something mounted read-only (``.`` is the endpoint's folder, whose
    config.yaml's endpoint_setup the daemon runs on the host; ``/`` the whole host)."""
    work = os.path.normpath(endpoint / working_dir)
    for kept in map(os.path.abspath, kept_from_tasks):
        if kept == work or kept.startswith(work.rstrip("/") + "/"):
            raise ConfigError(
                f"engine.working_dir {working_dir!r} is {work}, which holds {kept}: a task in the "
                f"container could write there (it is mounted writable); use a folder of its own, "
                f"such as the default 'tasks_working_dir' (in the endpoint's folder)")
    return work


def _data_folders(cfg: EndpointConfig, home: Path) -> list[str]:
    """The folders of a ``file://`` store and of a local queue: tasks' data, written by the pool."""
    folders: list[str] = []
    store = _file_path(cfg.store)
    if store:
        folders.append(store)
    queue = cfg.queue
    if queue == "local":
        folders.append(str(home / "queues"))
    elif queue.startswith("local:"):
        path = _file_path(queue)
        if path:
            folders.append(os.path.dirname(path))
    return folders


def binds(writable: Iterable[str], read_only: Iterable[str]) -> list[tuple[str, bool]]:
    """``(path, writable)`` for each mount, parents first (runtimes mount in that order, so a
    child mount lies over its parent's). A path under a mount of the same kind is left out; one
    under a mount of the other kind is kept (the block's writable folder in the read-only
    endpoint folder, that folder read-only in a writable store). A path in both is writable."""
    rw = {os.path.abspath(p) for p in writable if p}
    ro = {os.path.abspath(p) for p in read_only if p} - rw
    wanted = sorted([(p, True) for p in rw] + [(p, False) for p in ro])   # a parent sorts first
    kept: list[tuple[str, bool]] = []
    for path, mode in wanted:
        around = [k for k in kept if path.startswith(k[0].rstrip("/") + "/")]
        if not around or around[-1][1] != mode:   # the nearest mount around it differs
            kept.append((path, mode))
    return kept


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
