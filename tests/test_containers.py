"""Worker pools in containers (``engine.container_type``): the exact commands ``wrap`` builds for
podman, docker, apptainer and singularity, the mounts a pool needs, and, where podman and the
root filesystem of ``.ci/podman.sh`` are here, real containers: the host's Python inside one,
then a whole endpoint whose tasks run in the container while the client runs outside.

Apptainer and singularity are not in Debian 12 nor on PyPI: only their command lines are tested.
"""
from __future__ import annotations

import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import running_endpoint

import faas
from faas.endpoint.config import EngineConfig, UserEndpointConfig
from faas.exceptions import ConfigError
from faas.providers.containers import PASS_ENV, binds, minimal, required_mounts, wrap

POOL = "/py/bin/python -m faas.endpoint.pool --endpoint-dir /h/endpoints/e --block-id block-1"
FAAS_DIR = str(Path(faas.__file__).parent.parent)
ENV_ARGS = [w for name in PASS_ENV for w in ("-e", name)]
CI_CACHE = "/var/cache/faas-ci"
#: run from a checkout (PYTHONPATH names its faas, which required_mounts mounts): pass it in
CHECKOUT_ENV = "-e PYTHONPATH" if os.environ.get("PYTHONPATH") else ""


def engine(kind="podman", uri="localhost/faas-py:latest", options=""):
    return EngineConfig(container_type=kind, container_uri=uri, container_cmd_options=options)


# -- wrap: the command lines ------------------------------------------------------------------
def test_none_returns_the_command_unchanged():
    assert wrap(EngineConfig(), POOL, mounts=["/h", "/py"]) == POOL


def test_podman_image():
    cmd = wrap(engine(options="--memory 4g --cpus 2"), POOL, mounts=["/py", "/h/queues", "/h/endpoints"])
    assert shlex.split(cmd) == [
        "podman", "run", "--rm", "--network=host",
        "-v", "/h/endpoints:/h/endpoints", "-v", "/h/queues:/h/queues", "-v", "/py:/py",
        *ENV_ARGS, "--memory", "4g", "--cpus", "2",
        "localhost/faas-py:latest", *shlex.split(POOL)]


def test_pass_env_covers_what_the_pool_needs():
    for name in ("FAAS_HOME", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_PROFILE", "CUDA_VISIBLE_DEVICES",
                 "SLURM_PROCID"):
        assert name in PASS_ENV
    # names only: podman passes a variable if it is set where the block runs, and no value
    # (no secret) is written into the submit script
    assert all("=" not in w for w in ENV_ARGS)


def test_podman_rootfs_folder_comes_last_before_the_command(tmp_path):
    rootfs = tmp_path / "root fs"          # a space: quoted
    rootfs.mkdir()
    cmd = wrap(engine(uri=str(rootfs), options="--init -v '/scratch dir:/scratch dir'"), POOL,
               mounts=["/py"])
    argv = shlex.split(cmd)
    assert argv == ["podman", "run", "--rm", "--network=host", "-v", "/py:/py", *ENV_ARGS,
                    "--init", "-v", "/scratch dir:/scratch dir",
                    "--rootfs", str(rootfs), *shlex.split(POOL)]


def test_podman_rootfs_forms(tmp_path, monkeypatch):
    # an absolute path is a folder even if it exists only on the compute nodes
    argv = shlex.split(wrap(engine(uri="/shared/rootfs"), POOL, mounts=[]))
    assert argv[argv.index("--rootfs") + 1] == "/shared/rootfs"
    # podman's overlay suffix is kept
    argv = shlex.split(wrap(engine(uri=f"{tmp_path}/rfs:O"), POOL, mounts=[]))
    assert argv[argv.index("--rootfs") + 1] == f"{tmp_path}/rfs:O"
    # a relative name is an image reference, even where a folder of that name is in the current
    # folder (another account may have made it: tests/security/test_container_uri_attacks.py)
    for name in ("rfs", "localhost/faas-py", "python:3.12"):
        (tmp_path / name.partition(":")[0]).mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(tmp_path)
    for uri in ("rfs:O", "rfs", "localhost/faas-py", "python:3.12"):
        argv = shlex.split(wrap(engine(uri=uri), POOL, mounts=[]))
        assert "--rootfs" not in argv and argv[-len(shlex.split(POOL)) - 1] == uri, argv
    # anything else is an image reference
    argv = shlex.split(wrap(engine(uri="docker.io/library/python:3.11-slim"), POOL, mounts=[]))
    assert "--rootfs" not in argv and argv[-len(shlex.split(POOL)) - 1] == "docker.io/library/python:3.11-slim"


def test_docker_image_and_no_rootfs(tmp_path):
    argv = shlex.split(wrap(engine("docker", "python:3.11"), POOL, mounts=["/h"]))
    assert argv == ["docker", "run", "--rm", "--network=host", "-v", "/h:/h", *ENV_ARGS,
                    "python:3.11", *shlex.split(POOL)]
    with pytest.raises(ConfigError, match="docker runs images only"):
        wrap(engine("docker", str(tmp_path)), POOL, mounts=[])


@pytest.mark.parametrize("kind", ["apptainer", "singularity"])
def test_apptainer_and_singularity(kind):
    cmd = wrap(engine(kind, "/images/faas py.sif", "--nv --cleanenv"), POOL,
               mounts=["/h/store", "/py", "/h/store/sub"])
    assert shlex.split(cmd) == [kind, "exec", "--bind", "/h/store", "--bind", "/py",
                                "--nv", "--cleanenv", "/images/faas py.sif", *shlex.split(POOL)]
    cmd = wrap(engine(kind, "/images/faas.sif"), POOL, mounts=["/h/e/blocks/b"],
               read_only=["/h/e", "/py"])
    assert shlex.split(cmd) == [kind, "exec", "--bind", "/h/e:/h/e:ro", "--bind", "/h/e/blocks/b",
                                "--bind", "/py:/py:ro", "/images/faas.sif", *shlex.split(POOL)]


def test_read_only_mounts_and_nesting():
    argv = shlex.split(wrap(engine(), POOL, mounts=["/h/store", "/h/e/blocks/b"],
                            read_only=["/py", "/h/e", "/py/lib", "/h/store"]))
    assert [argv[i + 1] for i, w in enumerate(argv) if w == "-v"] == [
        "/h/e:/h/e:ro", "/h/e/blocks/b:/h/e/blocks/b", "/h/store:/h/store", "/py:/py:ro"]


def test_binds():
    # a path under a mount of the same kind is covered by it; under the other kind it is kept,
    # parents first (the runtime mounts it over its parent); one in both is writable
    assert binds(["/h", "/h/e/blocks/b", "/h/e/blocks/b/x", "/s"], ["/h/e", "/h/e/k", "/py", "/s"]) == [
        ("/h", True), ("/h/e", False), ("/h/e/blocks/b", True), ("/py", False), ("/s", True)]
    assert binds(["/a/b"], ["/a", "/a/b/c"]) == [("/a", False), ("/a/b", True), ("/a/b/c", False)]


def test_mounts_are_quoted_and_deduplicated():
    argv = shlex.split(wrap(engine(), POOL, mounts=["/a b/c", "/a b/c/d", "/a b/c/", "/x/../y"]))
    assert [argv[i + 1] for i, w in enumerate(argv) if w == "-v"] == ["/a b/c:/a b/c", "/y:/y"]


def test_options_stay_a_shell_fragment():
    # like worker_init: variables expand where the block runs, not when the daemon writes it
    cmd = wrap(engine(options="-v $SCRATCH:$SCRATCH"), POOL, mounts=[])
    assert " -v $SCRATCH:$SCRATCH localhost/faas-py:latest " in cmd


def test_bad_input_is_a_config_error():
    with pytest.raises(ConfigError, match="container_cmd_options"):
        wrap(engine(options="--label 'unclosed"), POOL, mounts=[])
    with pytest.raises(ConfigError, match="':'"):
        wrap(engine(), POOL, mounts=["/data:x"])
    with pytest.raises(ConfigError, match="':' and ,"):
        wrap(engine("apptainer", "x.sif"), POOL, mounts=["/a,b"])
    with pytest.raises(ValueError, match="needs container_uri"):    # validated with the config
        EngineConfig(container_type="podman")
    with pytest.raises(ConfigError, match="needs engine.container_uri"):   # and by wrap
        wrap(EngineConfig.model_construct(container_type="podman", container_uri=None,
                                          container_cmd_options=""), POOL, mounts=[])


# -- required_mounts --------------------------------------------------------------------------
SOFTWARE = minimal([sys.prefix, sys.base_prefix, FAAS_DIR])


def test_required_mounts_file_store_and_local_queue(tmp_path):
    home = tmp_path / "home"
    cfg = UserEndpointConfig(store=(tmp_path / "store").as_uri())
    ep = home / "endpoints" / "e"
    mounts = required_mounts(cfg, home, "e", "block-1")
    assert mounts.writable == minimal([str(tmp_path / "store"), str(home / "queues"),
                                       str(ep / "blocks" / "block-1"), str(ep / "tasks_working_dir")])
    # the Python and faas read-only; the endpoint's own folder only, read-only
    assert mounts.read_only == minimal([str(ep), *SOFTWARE])
    for p in (tmp_path / "store", home / "queues", ep / "blocks" / "block-1", ep / "tasks_working_dir"):
        assert p.is_dir()                 # podman refuses to bind a missing path


def test_required_mounts_remote_store_and_queue(tmp_path):
    cfg = UserEndpointConfig(store="s3://bucket/prefix", queue="sqs")
    ep = tmp_path / "endpoints" / "e"
    mounts = required_mounts(cfg, tmp_path, "e", "b", create=False)
    assert mounts.writable == minimal([str(ep / "blocks" / "b"), str(ep / "tasks_working_dir")])
    assert mounts.read_only == minimal([str(ep), *SOFTWARE])
    assert not (tmp_path / "endpoints").exists()


def test_required_mounts_queue_url_keys_file_working_dir_and_nesting(tmp_path, monkeypatch):
    home = tmp_path / "home"
    cfg = UserEndpointConfig(store=str(home / "store"), queue=f"local://{tmp_path}/q%20dir/myqueue",
                             engine={"working_dir": str(tmp_path / "scratch")})
    if "signing_keys_file" in UserEndpointConfig.model_fields:
        cfg = cfg.model_copy(update={"signing_keys_file": "/etc/faas/keys"})
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    monkeypatch.setattr(sys, "exec_prefix", str(tmp_path / "venv"))
    monkeypatch.setattr(sys, "base_prefix", "/usr")          # a system Python: the image's own
    monkeypatch.setattr(sys, "base_exec_prefix", "/usr")
    ep = home / "endpoints" / "e"
    mounts = required_mounts(cfg, home, "e", "b")
    # an absolute working_dir is where the tasks run (the pool joins it to the endpoint's folder)
    assert mounts.writable == minimal([str(home / "store"), str(tmp_path / "q dir"),
                                       str(ep / "blocks" / "b"), str(tmp_path / "scratch")])
    expected = [str(ep), str(tmp_path / "venv"), FAAS_DIR]
    if "signing_keys_file" in UserEndpointConfig.model_fields:
        expected.append("/etc/faas/keys")
    assert mounts.read_only == minimal(expected)
    assert "/usr" not in mounts.read_only
    # a keys file beside the endpoint's folder (shared by a site's endpoints) is mounted too
    cfg = cfg.model_copy(update={"signing_keys_file": "../shared/signing.key"})
    assert str(home / "endpoints" / "shared" / "signing.key") in required_mounts(cfg, home, "e", "b").read_only
    # everything under one folder: that folder only, of each kind
    monkeypatch.setattr(sys, "prefix", str(home / "venv"))
    monkeypatch.setattr(sys, "exec_prefix", str(home / "venv"))
    cfg = UserEndpointConfig(store=str(home / "store"))
    mounts = required_mounts(cfg, home, "e", "b")
    assert minimal([*mounts.read_only, str(home)]) == minimal([str(home), FAAS_DIR])


def test_minimal():
    assert minimal(["/a/b", "/a", "/ab", "/a/", "/c/./d", "/c/d/e", ""]) == ["/a", "/ab", "/c/d"]


# -- real containers (podman) -----------------------------------------------------------------
@pytest.fixture
def podman_rootfs(monkeypatch):
    """The root filesystem of .ci/podman.sh. Skips when podman or the rootfs is missing, unless
    FAAS_TEST_ROOTFS is set (CI sets it from .ci/podman.sh): then a missing piece fails."""
    rootfs = os.environ.get("FAAS_TEST_ROOTFS") or f"{CI_CACHE}/rootfs"
    missing = []
    if not shutil.which("podman"):
        missing.append("podman is not installed")
    if not os.path.exists(os.path.join(rootfs, "bin", "sh")):
        missing.append(f"no root filesystem at {rootfs}")
    if missing:
        why = "; ".join(missing) + ' (as root: eval "$(bash .ci/podman.sh)")'
        if os.environ.get("FAAS_TEST_ROOTFS"):
            pytest.fail(f"FAAS_TEST_ROOTFS is set but {why}")
        pytest.skip(why)
    if "CONTAINERS_CONF" not in os.environ and os.path.exists(f"{CI_CACHE}/containers.conf"):
        monkeypatch.setenv("CONTAINERS_CONF", f"{CI_CACHE}/containers.conf")   # runc, ulimits
    return rootfs


def where():
    """Where a task runs: in a podman container, in the pool's own PID namespace?"""
    import os
    with open("/proc/1/cmdline", "rb") as f:
        pid1 = f.read().split(b"\0")
    return {"containerenv": os.path.exists("/run/.containerenv"),
            "pid1_is_pool": b"faas.endpoint.pool" in pid1, "pid": os.getpid()}


@pytest.mark.slow
@pytest.mark.containers
def test_podman_runs_the_host_python(podman_rootfs):
    code = ("import faas, os, sys; print(os.path.exists('/run/.containerenv'), "
            "open('/proc/1/cmdline').read().split(chr(0))[0], faas.__file__, sys.version.split()[0])")
    cmd = wrap(engine(uri=podman_rootfs, options=CHECKOUT_ENV),
               f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}",
               mounts=[], read_only=[sys.prefix, sys.base_prefix, FAAS_DIR])
    t = time.monotonic()
    out = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    took = time.monotonic() - t
    assert out.returncode == 0, f"{cmd}\n{out.stderr}"
    # in a container, as PID 1 of its own namespace, with the host's faas and Python
    assert out.stdout.split() == ["True", sys.executable, faas.__file__, sys.version.split()[0]]
    print(f"podman run of the host python: {took:.2f} s")


@pytest.mark.slow
@pytest.mark.containers
def test_endpoint_runs_tasks_in_podman(podman_rootfs, tmp_path):
    """The daemon wraps each block's pool command (``Daemon._pool_command``): the tasks run in
    the container, the client outside, over the local queue (its doorbell crosses into the
    container because the container shares the host network) and a file:// store."""
    home = tmp_path / "h"
    outside = where()
    assert not outside["pid1_is_pool"]
    # DIR:O: podman lays an overlay over the folder, which stays untouched (plain --rootfs DIR
    # would leave an empty mount point in it for each of this test's temporary folders)
    uri = f"{podman_rootfs}:O"
    with running_endpoint(home, engine={"container_type": "podman", "container_uri": uri,
                                        "container_cmd_options": CHECKOUT_ENV}):
        with faas.Executor() as ex:
            t = time.monotonic()
            inside = ex.submit(where).result(timeout=120)
            first = time.monotonic() - t
            assert inside["containerenv"] and inside["pid1_is_pool"], inside
            assert list(ex.map(pow, range(50), [2] * 50, chunksize=5)) == [i * i for i in range(50)]
            warm = []
            for _ in range(20):
                t = time.monotonic()
                ex.submit(pow, 3, 2).result(timeout=30)
                warm.append(time.monotonic() - t)
        script = next((home / "endpoints" / "local" / "submit_scripts").glob("block-*.sh")).read_text()
        assert f"--rootfs {uri} " in script and "--network=host" in script
    # the daemon stopped its block, and --rm removed the container
    ps = subprocess.run(["podman", "ps", "-a", "--format", "{{.ID}} {{.Command}}"],
                        capture_output=True, text=True, timeout=60).stdout
    assert str(home) not in ps
    assert not os.path.exists(f"{podman_rootfs}{tmp_path}")
    p50 = statistics.median(warm)
    print(f"first result {first:.2f} s (container start included); warm round trip p50 "
          f"{p50 * 1000:.1f} ms, max {max(warm) * 1000:.1f} ms")
    # a woken pool, not one that waits out its long poll: the doorbell reached the container
    assert p50 < 0.25, warm


@pytest.mark.parametrize("working_dir", [".", "..", "/", "{home}", "{home}/..", "blocks/.."])
def test_a_working_dir_that_holds_what_is_read_only_is_refused(tmp_path, working_dir):
    """The tasks' working folder is mounted writable: one that is (or holds) the endpoint's
    folder, FAAS_HOME or the Python would let a task in a rootful container write config.yaml
    (its endpoint_setup runs on the host), other endpoints' keys, or root's Python."""
    home = tmp_path / "home"
    cfg = UserEndpointConfig(store=str(home / "store"),
                             engine={"working_dir": working_dir.format(home=home)})
    with pytest.raises(ConfigError, match="engine.working_dir .* which holds"):
        required_mounts(cfg, home, "e", "b", create=False)


def test_a_working_dir_of_its_own_is_mounted_writable(tmp_path):
    home = tmp_path / "home"
    for working_dir, where in (("tasks_working_dir", home / "endpoints" / "e" / "tasks_working_dir"),
                               (str(tmp_path / "scratch"), tmp_path / "scratch")):
        cfg = UserEndpointConfig(store=str(home / "store"), engine={"working_dir": working_dir})
        assert str(where) in required_mounts(cfg, home, "e", "b", create=False).writable
