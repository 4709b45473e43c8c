"""``engine.container_uri`` where another account can write the daemon's current folder,
played with a real Unix account (tests/multiuser/conftest.py ``mu_users``: root only).

Before: a container_uri that is not absolute (``localhost/faas-py``, ``python:3.12``) became
podman's ``--rootfs`` if a folder of that name existed in the current folder. Bob made
``localhost/faas-py/`` (with an ``/etc/ld.so.preload``) in a shared 1777 folder the endpoint's
daemon was started from, and his library ran as the endpoint's user (root), which read
signing.key. Now only an absolute path is a root filesystem folder: everything else is an image
reference, handed to podman as one."""
from __future__ import annotations

import os
import shlex
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from helpers import python_as  # noqa: E402
from multiuser.conftest import mu_shared, mu_users  # noqa: E402,F401 - fixtures: real accounts

from faas.endpoint.config import EngineConfig
from faas.providers.containers import wrap

POOL = "/py/bin/python -m faas.endpoint.pool --endpoint-dir /h/endpoints/e --block-id block-1"


@pytest.mark.parametrize("uri", ["localhost/faas-py", "localhost/faas-py:O", "python:3.12"])
def test_a_folder_another_account_made_in_the_current_folder_is_no_rootfs(mu_users, mu_shared,
                                                                          monkeypatch, uri):
    _, bob, _ = mu_users
    shared = mu_shared / f"work-{uri.replace('/', '-').replace(':', '-')}"
    shared.mkdir()
    os.chmod(shared, 0o1777)   # a shared project folder
    made = python_as(bob, "-c", "import os, sys; os.makedirs(os.path.join(sys.argv[1], 'etc')); "
                     "open(os.path.join(sys.argv[1], 'etc', 'ld.so.preload'), 'w').write('/evil.so')",
                     str(shared / uri.removesuffix(":O")))
    assert made.returncode == 0, made.stderr
    monkeypatch.chdir(shared)
    argv = shlex.split(wrap(EngineConfig(container_type="podman", container_uri=uri), POOL,
                            mounts=["/h"]))
    assert "--rootfs" not in argv, f"Bob's folder became the container's root: {argv}"
    assert argv[-len(shlex.split(POOL)) - 1] == uri, argv   # an image reference, as given
