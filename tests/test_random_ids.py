"""faas.random_ids: ids from os.urandom served from a buffer, never the same bytes twice, not
even across a fork (a forked child that handed out its parent's buffered bytes would give two
tasks one id)."""
from __future__ import annotations

import os
import uuid

from faas import random_ids


def test_uuid4_is_a_version_4_uuid_and_never_repeats():
    ids = [random_ids.uuid4() for _ in range(3000)]   # crosses several 4 KiB refills
    assert len(set(ids)) == len(ids)
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in ids)
    assert len(random_ids.token_hex(8)) == 16 and len(random_ids.random_bytes(5000)) == 5000


def test_a_forked_child_does_not_reuse_its_parents_bytes():
    random_ids.random_bytes(16)   # the buffer is filled: a child would inherit the rest of it
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:   # pragma: no cover - the child
        os.close(r)
        os.write(w, b"".join(random_ids.uuid4().bytes for _ in range(8)))
        os._exit(0)
    os.close(w)
    child = b""
    while chunk := os.read(r, 4096):
        child += chunk
    os.close(r)
    os.waitpid(pid, 0)
    parent = b"".join(random_ids.uuid4().bytes for _ in range(8))
    assert len(child) == 128 and child != parent
    assert not {child[i:i + 16] for i in range(0, 128, 16)} & {parent[i:i + 16] for i in range(0, 128, 16)}
