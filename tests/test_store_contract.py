"""One contract for every store backend (file, memory, s3 on a moto server, generic fsspec),
then what only one backend can show: the file store's atomicity, full disks and speed; S3's
errors and retries."""
from __future__ import annotations

import ctypes
import errno
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from faas.exceptions import ConfigError, CredentialsError, StoreError
from faas.store import KeyNotFound, open_store
from faas.store.file import TMP_PREFIX, FileStore
from faas.store.fsspec_store import FsspecStore
from faas.store.memory import MemoryStore

BACKENDS = ["file", "memory", "s3", "fsspec"]


def _make_store(kind: str, request, tmp_path):
    if kind == "file":
        return open_store(f"file://{tmp_path}/store")
    if kind == "memory":
        return open_store(f"memory://contract-{uuid.uuid4().hex}")
    if kind == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        return open_store(f"s3://{bucket}/some/prefix")
    if kind == "fsspec":
        return FsspecStore(f"memory://fsspec-{uuid.uuid4().hex}")
    raise AssertionError(kind)


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    s = _make_store(request.param, request, tmp_path)
    yield s
    s.close()


# ------------------------------------------------------------------------------------------------
# The contract


def test_opened_by_the_registry_as_the_right_class(store, request):
    kind = request.node.callspec.params["store"]
    expected = {"file": "FileStore", "memory": "MemoryStore", "s3": "S3Store",
                "fsspec": "FsspecStore"}[kind]
    assert type(store).__name__ == expected
    assert store.url and store.url in repr(store)


@pytest.mark.parametrize("data", [b"hello", b"", bytes(range(256)) * 4, os.urandom(5 * 2**20)],
                         ids=["small", "empty", "binary", "5MB"])
def test_put_get_round_trip(store, data):
    store.put("results/abc", data)
    got = store.get("results/abc")
    assert type(got) is bytes
    assert got == data
    assert store.exists("results/abc")


def test_put_accepts_bytes_like(store):
    store.put("a", bytearray(b"from a bytearray"))
    assert store.get("a") == b"from a bytearray"
    store.put("b", memoryview(b"from a memoryview"))
    assert store.get("b") == b"from a memoryview"


def test_overwrite_replaces(store):
    store.put("k", b"first value, longer than the second")
    store.put("k", b"second")
    assert store.get("k") == b"second"
    store.put("k", b"")
    assert store.get("k") == b""
    store.put("k", b"third")
    assert store.get("k") == b"third"
    assert sorted(store.list()) == ["k"]


def test_get_missing_raises_key_not_found(store):
    with pytest.raises(KeyNotFound):
        store.get("nothing/here")
    with pytest.raises(KeyError):  # KeyNotFound is a KeyError
        store.get("nothing")


def test_get_head_returns_the_first_bytes(store):
    store.put("results/h", b"0123456789")
    assert store.get_head("results/h", 4) == b"0123"
    assert store.get_head("results/h", 10) == b"0123456789"
    assert store.get_head("results/h", 1000) == b"0123456789"   # shorter than asked: all of it
    assert store.get_head("results/h", 0) == b""
    store.put("results/empty", b"")
    assert store.get_head("results/empty", 16) == b""
    with pytest.raises(KeyNotFound):
        store.get_head("results/none", 16)


def test_get_head_of_a_huge_object_reads_only_what_was_asked(store):
    """Anyone with bucket write can plant a huge object where a reader looks (issue 19): a bounded
    read must cost the reader the bytes it asked for, not the object's size. tracemalloc sees every
    buffer this process makes for the read (boto's socket reads, fsspec's slices, os.read)."""
    import tracemalloc

    big = 48 << 20
    store.put("cancels/big", bytes(big))
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        head = store.get_head("cancels/big", 256)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert head == bytes(256)
    assert peak < 4 << 20, f"get_head of 256 bytes allocated {peak} bytes on {store!r}"


def test_exists(store):
    assert not store.exists("x/y")
    store.put("x/y", b"1")
    assert store.exists("x/y")
    assert not store.exists("x")  # a folder of keys is not an object
    assert not store.exists("x/y/z")
    assert not store.exists("x/yy")


def test_delete(store):
    store.put("d/one", b"1")
    store.put("d/two", b"2")
    store.delete("d/one")
    assert not store.exists("d/one")
    with pytest.raises(KeyNotFound):
        store.get("d/one")
    assert store.get("d/two") == b"2"
    store.delete("d/one")  # deleting a missing key is fine
    store.delete("never/existed")
    store.delete("d")  # not an object either
    assert sorted(store.list()) == ["d/two"]


def test_list_with_prefix(store):
    keys = ["results/a", "results/b/c", "results/b/d/e", "results2/x", "fn/abc", "fn/abd", "top"]
    for k in keys:
        store.put(k, k.encode())
    assert sorted(store.list()) == sorted(keys)
    assert sorted(store.list("")) == sorted(keys)
    assert sorted(store.list("results/")) == ["results/a", "results/b/c", "results/b/d/e"]
    assert sorted(store.list("results")) == ["results/a", "results/b/c", "results/b/d/e",
                                             "results2/x"]
    assert sorted(store.list("results/b")) == ["results/b/c", "results/b/d/e"]
    assert sorted(store.list("results/b/")) == ["results/b/c", "results/b/d/e"]
    assert sorted(store.list("fn/ab")) == ["fn/abc", "fn/abd"]
    assert sorted(store.list("fn/abc")) == ["fn/abc"]
    assert sorted(store.list("t")) == ["top"]
    assert list(store.list("nope/")) == []
    assert list(store.list("nope")) == []
    assert list(store.list("results/zz")) == []
    for k in store.list():
        assert store.get(k) == k.encode()  # listed keys are usable keys


UNUSUAL_KEYS = [
    "with space/file name.txt",
    "unicodé/数据/ключ 🙂",
    "part=2024-01-01/k=v,x+y",
    "punct/a@b~c(1)&d$e!f'g;h",
    "percent/100%25 done#frag?q",
    "dots/a..b/...c/.hidden",
]


def test_unusual_but_legal_keys(store):
    for k in UNUSUAL_KEYS:
        store.put(k, k.encode())
    for k in UNUSUAL_KEYS:
        assert store.exists(k), k
        assert store.get(k) == k.encode(), k
    assert sorted(store.list()) == sorted(UNUSUAL_KEYS)
    assert list(store.list("unicodé/数据/")) == ["unicodé/数据/ключ 🙂"]
    assert list(store.list("part=2024")) == ["part=2024-01-01/k=v,x+y"]
    for k in UNUSUAL_KEYS:
        store.delete(k)
    assert list(store.list()) == []


BAD_KEYS = ["", "/abs", "/", "..", "../x", "a/../b", "a/..", ".", "./a", "a/./b", "a//b", "a/",
            "nul\x00byte", "tab\there", "new\nline", "del\x7f", TMP_PREFIX + "x", "a/" + TMP_PREFIX + "1"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_rejected(store, key):
    with pytest.raises(ValueError):
        store.put(key, b"x")
    with pytest.raises(ValueError):
        store.get(key)
    with pytest.raises(ValueError):
        store.exists(key)
    with pytest.raises(ValueError):
        store.delete(key)
    assert list(store.list()) == []


@pytest.mark.parametrize("prefix", ["/", "/abs", "../", "..", "a/../", "a//", "./"])
def test_bad_prefixes_are_rejected(store, prefix):
    with pytest.raises(ValueError):
        list(store.list(prefix))


def test_non_str_keys_are_rejected(store):
    with pytest.raises(TypeError):
        store.put(b"bytes-key", b"x")
    with pytest.raises(TypeError):
        store.get(None)


def test_concurrent_puts_of_one_key_leave_one_complete_value(store, request):
    n_threads, rounds = 8, (4 if request.node.callspec.params["store"] == "s3" else 25)
    size = 256 * 1024
    values = [bytes([i]) * (size + i) for i in range(n_threads)]  # lengths differ too
    store.put("same", values[0])
    seen_bad: list[bytes] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader():
        while not stop.is_set():
            v = store.get("same")
            if v not in values:
                seen_bad.append(v[:16])

    def writer(i):
        try:
            for _ in range(rounds):
                store.put("same", values[i])
        except BaseException as exc:  # noqa: BLE001 - a thread's error, reported below  # pragma: no cover
            errors.append(exc)

    r = threading.Thread(target=reader)
    r.start()
    ws = [threading.Thread(target=writer, args=(i,)) for i in range(n_threads)]
    for w in ws:
        w.start()
    for w in ws:
        w.join()
    stop.set()
    r.join()
    assert not errors, errors
    assert not seen_bad
    assert store.get("same") in values
    assert list(store.list()) == ["same"]  # and no temporary leftovers


# ------------------------------------------------------------------------------------------------
# FileStore


@pytest.fixture
def fstore(tmp_path):
    return FileStore(f"file://{tmp_path}/store")


def test_file_url_forms(tmp_path):
    root = str(tmp_path / "s")
    for url in (f"file://{root}", root, f"file://localhost{root}", f"file://{root}/"):
        s = FileStore(url)
        assert s.root == root and s.url == f"file://{root}"
    s = FileStore(f"file://{root}")
    s.put("k", b"v")
    assert FileStore(root).get("k") == b"v"  # same folder, same objects
    with pytest.raises(ConfigError):
        FileStore("relative/path")
    with pytest.raises(ConfigError):
        FileStore("file://otherhost/abs/path")
    (tmp_path / "afile").write_bytes(b"")
    with pytest.raises(ConfigError):
        FileStore(str(tmp_path / "afile"))
    assert pickle.loads(pickle.dumps(s)).get("k") == b"v"


def test_file_objects_are_plain_files(fstore):
    fstore.put("results/abc", b"payload")
    assert open(os.path.join(fstore.root, "results", "abc"), "rb").read() == b"payload"
    assert os.listdir(os.path.join(fstore.root, "results")) == ["abc"]


def test_file_list_hides_temporary_files(fstore):
    fstore.put("r/a", b"1")
    # What a writer killed between open and rename leaves behind:
    open(os.path.join(fstore.root, "r", TMP_PREFIX + "deadbeef"), "wb").write(b"partial")
    open(os.path.join(fstore.root, TMP_PREFIX + "cafe"), "wb").write(b"partial")
    assert list(fstore.list()) == ["r/a"]
    assert list(fstore.list("r/")) == ["r/a"]


def test_file_get_of_a_folder_is_key_not_found(fstore):
    fstore.put("folder/inside", b"1")
    with pytest.raises(KeyNotFound):
        fstore.get("folder")
    with pytest.raises(KeyNotFound):
        fstore.get("folder/inside/deeper")


def test_file_key_that_is_also_a_folder_is_a_store_error(fstore):
    fstore.put("a/b", b"1")
    with pytest.raises(StoreError, match="a key cannot be both"):
        fstore.put("a", b"2")  # "a" is a folder
    fstore.put("c", b"1")
    with pytest.raises(StoreError, match="a key cannot be both"):
        fstore.put("c/d", b"2")  # "c" is a file
    assert fstore.get("a/b") == b"1" and fstore.get("c") == b"1"
    assert sorted(fstore.list()) == ["a/b", "c"]


def test_file_recreates_a_folder_removed_behind_its_back(fstore):
    fstore.put("r/one", b"1")
    os.unlink(os.path.join(fstore.root, "r", "one"))
    os.rmdir(os.path.join(fstore.root, "r"))
    fstore.put("r/two", b"2")
    assert fstore.get("r/two") == b"2"


def test_file_never_writes_through_a_link_swapped_in_for_a_folder_it_keeps(fstore, tmp_path):
    """A put keeps its folder's descriptor for the thread's next put there (issue 18: the walk
    from the root cost more than the write). Whoever then swaps the folder for a link steers no
    write: the kept descriptor is the folder that was checked, wherever it went; a fresh walk (a
    thread that kept none) refuses the link."""
    fstore.put("r/one", b"1")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.rename(os.path.join(fstore.root, "r"), tmp_path / "moved")
    os.symlink(elsewhere, os.path.join(fstore.root, "r"))
    fstore.put("r/two", b"2")
    errors = []

    def other_thread():
        try:
            fstore.put("r/three", b"3")
        except OSError as e:
            errors.append(e)
    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert os.listdir(elsewhere) == []
    assert sorted(os.listdir(tmp_path / "moved")) == ["one", "two"]
    assert errors and "link" in str(errors[0])


def _leftovers(root):
    return [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.startswith(TMP_PREFIX)]


def _fake_enospc_write(monkeypatch):
    """os.write writes half of its first buffer, then the disk is full."""
    real = os.write
    calls = {"n": 0}

    def write(fd, data):
        calls["n"] += 1
        if calls["n"] == 1:
            return real(fd, bytes(memoryview(data)[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", write)


def test_file_enospc_gives_store_error_and_no_partial_object(fstore, monkeypatch):
    fstore.put("r/old", b"the old value")
    _fake_enospc_write(monkeypatch)
    with pytest.raises(StoreError) as info:
        fstore.put("r/new", b"x" * 100_000)
    monkeypatch.undo()
    msg = str(info.value)
    assert os.path.join(fstore.root, "r", "new") in msg
    assert "No space left" in msg and "free space" in msg
    assert info.value.errno == errno.ENOSPC
    assert not fstore.exists("r/new")
    assert _leftovers(fstore.root) == []

    _fake_enospc_write(monkeypatch)
    with pytest.raises(StoreError, match="No space left"):
        fstore.put("r/old", b"y" * 100_000)  # an overwrite that fails keeps the old value
    monkeypatch.undo()
    assert fstore.get("r/old") == b"the old value"
    assert _leftovers(fstore.root) == []
    assert sorted(fstore.list()) == ["r/old"]


def test_file_enospc_or_permission_error_on_create(fstore, monkeypatch):
    real_open = os.open

    for err in (errno.ENOSPC, errno.EACCES):
        def deny(path, flags, mode=0o777, *a, err=err, **kw):
            if flags & os.O_CREAT:
                raise OSError(err, os.strerror(err), path)
            return real_open(path, flags, mode, *a, **kw)

        monkeypatch.setattr(os, "open", deny)
        with pytest.raises(StoreError) as info:
            fstore.put("r/k", b"data")
        monkeypatch.undo()
        assert os.path.join(fstore.root, "r") in str(info.value)
        assert os.strerror(err) in str(info.value)
    assert not fstore.exists("r/k")
    assert _leftovers(fstore.root) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_file_permission_error_real(fstore):  # pragma: no cover - CI runs as root
    fstore.put("ro/k", b"1")
    os.chmod(os.path.join(fstore.root, "ro"), 0o555)
    try:
        with pytest.raises(StoreError, match="Permission denied"):
            fstore.put("ro/k2", b"2")
    finally:
        os.chmod(os.path.join(fstore.root, "ro"), 0o755)


def test_file_works_without_renameat2(fstore, monkeypatch):
    import faas.store.file as filemod

    def unsupported(*args):
        ctypes.set_errno(errno.EINVAL)  # what NFS and other file systems answer
        return -1

    monkeypatch.setattr(filemod, "_renameat2", unsupported)
    fstore._use_renameat2 = True
    fstore.put("k", b"1")
    assert fstore._use_renameat2 is False  # learnt once, plain os.replace from then on
    fstore.put("k", b"2")
    assert fstore.get("k") == b"2"
    fstore.put("n/new", b"3")
    assert sorted(fstore.list()) == ["k", "n/new"]
    assert _leftovers(fstore.root) == []


READER = r"""
import json, sys, time
from faas.store.file import FileStore
store, key = FileStore(sys.argv[1]), sys.argv[2]
sizes, seconds = set(map(int, sys.argv[3].split(","))), float(sys.argv[4])
path = store.root + "/" + key
reads = bad = missing = 0
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    for how in ("store", "open"):
        try:
            v = store.get(key) if how == "store" else open(path, "rb").read()
        except (KeyError, FileNotFoundError):
            missing += 1
            continue
        reads += 1
        if len(v) not in sizes or v != v[:1] * len(v):
            bad += 1
print(json.dumps({"reads": reads, "bad": bad, "missing": missing}))
"""


def test_file_readers_never_see_a_partial_object(fstore):
    """Write big objects over one key in a loop while another process and a thread read it."""
    sizes = [1 << 20, 3 << 20, (2 << 20) + 7]
    values = [bytes([65 + i]) * n for i, n in enumerate(sizes)]
    fstore.put("big/obj", values[0])
    proc = subprocess.Popen(
        [sys.executable, "-c", READER, fstore.url, "big/obj", ",".join(map(str, sizes)), "2.0"],
        stdout=subprocess.PIPE, text=True)
    stop = threading.Event()
    thread_result = {"reads": 0, "bad": 0}

    def thread_reader():
        while not stop.is_set():
            v = fstore.get("big/obj")
            thread_result["reads"] += 1
            if v not in values:
                thread_result["bad"] += 1

    t = threading.Thread(target=thread_reader)
    t.start()
    writes = 0
    while proc.poll() is None:
        fstore.put("big/obj", values[writes % len(values)])
        writes += 1
    stop.set()
    t.join()
    result = json.loads(proc.stdout.read())
    assert proc.returncode == 0
    assert writes > 10 and result["reads"] > 10 and thread_result["reads"] > 10
    assert result["bad"] == 0 and result["missing"] == 0, result
    assert thread_result["bad"] == 0
    assert _leftovers(fstore.root) == []


WRITER = r"""
import sys
from faas.store.file import FileStore
store = FileStore(sys.argv[1])
values = [bytes([65 + i]) * ((i + 1) << 20) for i in range(3)]
print("ready", flush=True)
i = 0
while True:
    store.put("k", values[i % 3])
    i += 1
"""


def test_file_kill_9_mid_write_leaves_a_complete_object(fstore):
    fstore.put("k", b"A" * (1 << 20))
    for delay in (0.05, 0.2, 0.37):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, fstore.url],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        v = fstore.get("k")
        assert len(v) in (1 << 20, 2 << 20, 3 << 20) and v == v[:1] * len(v)
        assert list(fstore.list()) == ["k"]  # a leftover temp file, if any, stays hidden


# ------------------------------------------------------------------------------------------------
# MemoryStore


def test_memory_stores_of_one_name_share_objects():
    name = f"memory://shared-{uuid.uuid4().hex}"
    a, b = MemoryStore(name), MemoryStore(name)
    a.put("k", b"v")
    assert b.get("k") == b"v"
    other = MemoryStore(f"memory://other-{uuid.uuid4().hex}")
    assert not other.exists("k")
    with pytest.raises(ConfigError):
        MemoryStore("file:///tmp/x")


# ------------------------------------------------------------------------------------------------
# S3Store


@pytest.fixture
def s3(s3_bucket):
    from faas.store.s3 import S3Store
    store = S3Store(f"s3://{s3_bucket}/pre")
    store.retry_wait = 0.01  # keep the retry tests quick
    yield store
    store.close()


def _client_error(code, status, op="PutObject"):
    from botocore.exceptions import ClientError
    return ClientError({"Error": {"Code": code, "Message": code},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, op)


def test_s3_prefix_is_the_store_root(s3, s3_bucket):
    from faas.store.s3 import S3Store
    s3.put("results/a", b"1")
    whole = S3Store(f"s3://{s3_bucket}")
    assert list(whole.list()) == ["pre/results/a"]
    assert whole.get("pre/results/a") == b"1"
    assert list(s3.list()) == ["results/a"]
    assert s3.url == f"s3://{s3_bucket}/pre"
    whole.close()


def test_s3_list_pages(s3):
    keys = [f"many/{i:04d}" for i in range(1005)]  # more than one page of 1000
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put(k, b""), keys))
    assert sorted(s3.list("many/")) == keys


def test_s3_retries_throttling_then_succeeds(s3):
    real, calls = s3.client.put_object, []

    def flaky(**kw):
        calls.append(1)
        if len(calls) <= 2:
            raise _client_error("SlowDown", 503)
        return real(**kw)

    s3.client.put_object = flaky
    s3.put("k", b"v")
    assert len(calls) == 3
    assert s3.get("k") == b"v"


def test_s3_retries_are_bounded(s3):
    calls = []

    def always_500(**kw):
        calls.append(1)
        raise _client_error("InternalError", 500)

    s3.client.put_object = always_500
    with pytest.raises(StoreError, match="InternalError"):
        s3.put("k", b"v")
    assert len(calls) == s3.retry_attempts


def test_s3_retries_a_dropped_connection(s3):
    from botocore.exceptions import ConnectionClosedError
    s3.put("k", b"value")
    real, calls = s3.client.get_object, []

    def reset(**kw):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionClosedError(endpoint_url=s3.endpoint_url)
        return real(**kw)

    s3.client.get_object = reset
    assert s3.get("k") == b"value"
    assert len(calls) == 2


def test_s3_get_head_stays_bounded_when_the_server_ignores_range(s3):
    """An S3-compatible server that ignores the Range header sends the whole object: get_head
    still takes only the bytes it asked for off the socket, then drops the connection."""
    import tracemalloc

    s3.put("big", bytes(32 << 20))
    ignored = []

    def drop_range(request, **_):
        if request.headers.get("Range"):
            del request.headers["Range"]
            ignored.append(1)

    s3.client.meta.events.register("before-send.s3.GetObject", drop_range)
    tracemalloc.start()
    try:
        head = s3.get_head("big", 100)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        s3.client.meta.events.unregister("before-send.s3.GetObject", drop_range)
    assert ignored and head == bytes(100)
    assert peak < 4 << 20, f"get_head of 100 bytes allocated {peak} bytes with the Range dropped"
    assert s3.get_head("big", 10) == bytes(10)   # the client still works afterwards


def test_s3_access_denied_names_bucket_and_key_and_is_not_retried(s3, s3_bucket):
    calls = []

    def denied(**kw):
        calls.append(1)
        raise _client_error("AccessDenied", 403, "GetObject")

    s3.client.get_object = denied
    with pytest.raises(StoreError) as info:
        s3.get("secret/key")
    assert f"s3://{s3_bucket}/pre/secret/key" in str(info.value)
    assert "access denied" in str(info.value) and s3_bucket in str(info.value)
    assert len(calls) == 1


def test_s3_missing_bucket_is_a_store_error_naming_it(moto_url):
    from faas.store.s3 import S3Store
    name = f"faas-missing-{uuid.uuid4().hex[:12]}"
    store = S3Store(f"s3://{name}/p")
    for op in (lambda: store.get("k"), lambda: store.put("k", b"v"), lambda: store.exists("k"),
               lambda: list(store.list()), lambda: store.delete("k")):
        with pytest.raises(StoreError, match=f"bucket '{name}' does not exist"):
            op()
    store.close()


def test_s3_missing_credentials(moto_url, monkeypatch, tmp_path):
    from faas.store.s3 import S3Store
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
              "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
              "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = S3Store("s3://any-bucket")
    with pytest.raises(CredentialsError) as info:
        store.put("k", b"v")
    assert str(info.value) == ("no AWS credentials found: set AWS_PROFILE or "
                               "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (boto3's usual chain)")
    store.close()


@pytest.mark.parametrize("how", ["env", "argument"])
def test_s3_unreachable_endpoint_fails_fast_naming_it(monkeypatch, how):
    from faas.store.s3 import S3Store
    bad = "http://127.0.0.1:1"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    if how == "env":
        monkeypatch.setenv("AWS_ENDPOINT_URL", bad)
        store = S3Store("s3://some-bucket/p")
    else:
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        store = S3Store("s3://some-bucket/p", endpoint_url=bad)
    t = time.monotonic()
    with pytest.raises(StoreError) as info:
        store.put("k", b"v")
    elapsed = time.monotonic() - t
    assert bad in str(info.value) and "AWS_ENDPOINT_URL" in str(info.value)
    assert elapsed < 10, elapsed
    with pytest.raises(StoreError, match="127.0.0.1:1"):
        store.exists("k")
    store.close()


def test_s3_url_forms_and_close(moto_url):
    from faas.store.s3 import S3Store
    with pytest.raises(ConfigError):
        S3Store("s3:///no-bucket")
    with pytest.raises(ValueError):
        S3Store("s3://bucket/../escape")
    s = S3Store("s3://bucket/a/b/")
    assert (s.bucket, s.prefix, s.url) == ("bucket", "a/b/", "s3://bucket/a/b")
    s2 = pickle.loads(pickle.dumps(s))
    assert (s2.bucket, s2.prefix) == ("bucket", "a/b/") and s2.client is not s.client
    s.close()
    assert s.client is None
    s.close()  # twice is fine
    s2.close()
