"""What a function running in an endpoint's container may touch on the host, played as the
attacker: a key holder of one endpoint whose pools run in a rootful podman container (the daemon
runs as root, so the function is root inside, and root on every path mounted into it).

Before: the host's Python (``sys.prefix``) and the faas source tree were mounted read-write, so
the function planted files there (a ``.pth`` or ``sitecustomize.py`` that root's next Python on
the host runs); the endpoint's own folder was read-write too (its ``config.yaml``, whose
``endpoint_setup`` the daemon runs on the host at its next start); and all of
``$FAAS_HOME/endpoints`` was mounted, so it read another endpoint's ``signing.key``. Now the
software and the endpoint's folder are read-only, only the block's own folder and the tasks'
working folder are writable, and no other endpoint's folder is there."""
from __future__ import annotations

import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from helpers import running_endpoint  # noqa: E402
from test_containers import FAAS_DIR, podman_rootfs  # noqa: E402,F401 - fixture: podman's rootfs

import faas  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.containers]


def attack(targets: dict) -> dict:
    """From inside the container: try each write and read; say what happened to each."""
    import os

    def attempt(what, path):
        try:
            if what == "read":
                with open(path, "rb") as f:
                    return "read " + f.read().decode(errors="replace")
            with open(path, "a") as f:
                f.write("# written from inside the container\n")
            return "written"
        except OSError as e:
            return f"refused: {os.strerror(e.errno)}"
    return {name: attempt(what, path) for name, (what, path) in targets.items()}


@pytest.fixture
def rootful():
    if os.geteuid() != 0:
        pytest.skip("the attack needs a rootful container: run as root (as CI does)")


def test_a_function_in_the_container_cannot_touch_the_host(rootful, podman_rootfs, tmp_path,
                                                            monkeypatch):
    home = tmp_path / "h"
    other = home / "endpoints" / "other"
    other.mkdir(parents=True)
    secret = uuid.uuid4().hex
    (other / "signing.key").write_text(secret)      # another endpoint of the same site
    os.chmod(other / "signing.key", 0o600)
    probe = f"faas-container-probe-{uuid.uuid4().hex}"
    planted = {"python prefix": os.path.join(sys.prefix, probe),
               "faas tree": os.path.join(FAAS_DIR, probe)}
    config = home / "endpoints" / "local" / "config.yaml"
    targets = {**{k: ("write", p) for k, p in planted.items()},
               "own config.yaml": ("write", str(config)),
               "other endpoint's signing.key": ("read", str(other / "signing.key"))}
    options = "-e PYTHONPATH" if os.environ.get("PYTHONPATH") else ""   # a checkout's faas
    engine = {"container_type": "podman", "container_uri": f"{podman_rootfs}:O",
              "container_cmd_options": options}
    try:
        with running_endpoint(home, engine=engine):
            before = config.read_text()
            with faas.Executor() as ex:
                seen = ex.submit(attack, targets).result(timeout=120)
            after = config.read_text()
    finally:
        landed = [name for name, path in planted.items() if os.path.exists(path)]
        for name in landed:
            os.unlink(planted[name])
    print(seen)
    assert not landed, f"the function wrote into the host's {landed}"
    assert all(v.startswith("refused") for v in seen.values()), f"from the container: {seen}"
    assert after == before
    assert not any(secret in v for v in seen.values())
