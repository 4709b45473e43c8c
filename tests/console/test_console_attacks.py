"""The console against whoever may write the store or run a page on another local port: planted
argument objects that would make a page view allocate without bound (P4), the pages FastAPI
serves by itself (P3), and a form posted from elsewhere that reaches the console through a
redirect (P5)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from faas.console import Tokens, create_app

ROOT = Path(__file__).resolve().parents[2]
MANAGE = "m-attacks"


# -- P4: planted arguments -------------------------------------------------------------------

def _calls(inner: bytes) -> bytes:
    """A pickle of ``[((X,), {})]``, X made by the opcodes ``inner`` (plain opcodes, as an
    attacker writes them; no pickler would)."""
    return b"\x80\x04](" + inner + b"\x85}\x86e."


def _memo(build: bytes) -> bytes:
    """``build`` memoized and popped: later BINGETs reuse it."""
    return build + b"\x94" + b"0"


def _planted() -> dict[str, bytes]:
    mib = 1 << 20
    big = mib * 200
    one_mib = b"B" + mib.to_bytes(4, "little") + b"\0" * mib
    # bytearray(200 MiB) from 96 bytes (the review's proof): its repr would be 800 MB
    count = _calls(b"cbuiltins\nbytearray\nJ" + big.to_bytes(4, "little") + b"\x85R")
    # set(range(5,000,000)): hundreds of MB from a few dozen bytes
    span = _calls(b"cbuiltins\nset\ncbuiltins\nrange\nJ" + (5_000_000).to_bytes(4, "little") + b"\x85R\x85R")
    # one 1 MiB bytes object, copied by bytearray() 300 times through the memo: 300 MiB from 1 MiB
    memo = (b"\x80\x04" + _memo(b"cbuiltins\nbytearray\n") + _memo(one_mib)
            + b"](" + b"](" + b"h\x00h\x01\x85R" * 300 + b"e" + b"\x85}\x86e.")
    # a 3-deep tree of 1,000 references each to one short string, in a slice (whose repr is
    # built whole): 100 GB of text from 6 kB
    tree = (b"\x80\x04" + _memo(b"X\x64\0\0\0" + b"x" * 100)
            + _memo(b"](" + b"h\x00" * 1000 + b"e") + _memo(b"](" + b"h\x01" * 1000 + b"e")
            + _memo(b"](" + b"h\x02" * 1000 + b"e")
            + b"](" + b"cbuiltins\nslice\nh\x03\x85R" + b"\x85}\x86e.")
    return {"count": count, "span": span, "memo": memo, "tree": tree}


#: run in a child: plant the objects, start the console, cap its address space a few hundred MiB
#: above what it uses, then view each task (API and page). Prints one JSON object.
VIEW = r'''
import json, os, resource, sys, uuid
from fastapi.testclient import TestClient
from faas import sealing, serialize
from faas.console import Tokens, create_app
from faas.messages import args_key
from faas.store import open_store

planted = {k: bytes.fromhex(v) for k, v in json.loads(sys.stdin.read()).items()}
key = sealing._b64(os.urandom(32))
os.environ["FAAS_RESULT_KEY"] = key
user_key = sealing.load_user_key(None, key)
cid = sealing.client_id(user_key)
store = open_store("memory://p4-" + uuid.uuid4().hex)
ids = {}
for name, payload in planted.items():   # sealed for the task (by whoever holds its message): the preview opens them
    ids[name] = str(uuid.uuid4())
    store.put(args_key(ids[name], cid), serialize.seal_args(serialize.frame({"n": 1}, payload), ids[name],
                                                            sealing.task_secret(user_key, ids[name])))
app = create_app(store.url, home=sys.argv[1], tokens=Tokens(manage="m"))
out = {}
with TestClient(app, headers={"Authorization": "Bearer m"}) as c:
    c.get("/api/whoami"); c.get("/endpoints")
    vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize:")) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + (384 << 20), resource.RLIM_INFINITY))
    peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    before = peak()
    for name, tid in ids.items():
        try:
            r = c.get("/api/tasks/" + tid)
            page = c.get("/tasks/" + tid)
            out[name] = {"status": r.status_code, "args": r.json().get("args") if r.status_code == 200
                         else r.text[:300], "page": page.status_code, "page_size": len(page.text)}
        except BaseException as e:
            out[name] = {"status": None, "error": repr(e)[:300]}
        out[name]["grew"] = peak() - before
print(json.dumps(out))
'''


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc/self/status: Linux")
def test_planted_arguments_cannot_make_a_page_view_allocate_without_bound(tmp_path):
    """P4: the preview's unpickler allowed ``bytearray(N)``, ``set(range(N))`` and constructors
    fed the same object again and again through the memo, and reprlib built whole texts of bytes
    and slices before cutting them: 96 bytes in the store cost a page view gigabytes. Under an
    address-space cap 384 MiB above the console's own, every view answers 200, says what is not
    shown, and the console's peak memory grows by less than 64 MiB."""
    planted = _planted()
    assert all(len(p) < 2 << 20 for p in planted.values())
    p = subprocess.run([sys.executable, "-c", VIEW, str(tmp_path / "home")],
                       input=json.dumps({k: v.hex() for k, v in planted.items()}),
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=str(ROOT))
    assert p.returncode == 0, p.stderr[-3000:]
    seen = json.loads(p.stdout.strip().splitlines()[-1])
    for name, got in seen.items():
        assert got["grew"] < 64 << 20, f"viewing {name} grew the console by {got['grew'] >> 20} MiB"
    for name in ("count", "span", "memo"):
        got = seen[name]
        assert got["status"] == 200 and got.get("page") == 200, (name, str(got)[:500])
        assert "not shown" in (got.get("args") or {}).get("note", ""), (name, str(got)[:500])
    tree = seen["tree"]
    assert tree["status"] == 200 and tree.get("page") == 200, str(tree)[:500]
    assert len(tree["args"]["calls"][0]) < 30_000 and tree["args"]["calls"][0].startswith("(slice(")


def test_previews_show_plain_data_whole_and_cut_big_values_before_building_them():
    import collections
    import datetime
    import decimal
    import pickle

    from faas import serialize
    from faas.console.preview import args_preview
    from faas.plain_data import loads as safe_loads
    plain = [{1, 2}, frozenset({3}), bytearray(b"ab"), b"xy", collections.deque([1, 2], maxlen=5),
             collections.OrderedDict(a=1), complex(1, 2), slice(1, 2, 3), range(1, 5, 2),
             datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=1), "X")),
             decimal.Decimal("1.5"), uuid.uuid4(), datetime.timedelta(1), 10 ** 2000]
    for proto in (2, 4, 5):                   # what CPython's picklers write still loads
        for o in plain:
            got = safe_loads(pickle.dumps(o, proto))
            assert got == o and type(got) is type(o), (proto, o)
    shown = args_preview(serialize.calls_bytes([((b"z" * 1_000_000, bytearray(300_000), 7 ** 5000),
                                                 {"k": list(range(100))})]))["calls"][0]
    assert len(shown) < 2000 and "(1,000,000 bytes)" in shown and "(300,000 bytes)" in shown
    assert "<int of" in shown and "k=[0, 1, 2" in shown


# -- P3: nothing without a token ---------------------------------------------------------------

def _routes(routes):
    """Every route, inside included routers too (FastAPI may keep them as one entry each)."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        yield from (_routes(inner.routes) if inner is not None else [r])


def test_nothing_is_served_without_a_token_but_the_static_files(filled, tmp_path):
    """P3: FastAPI's /docs, /redoc and /openapi.json answered without a token (and /docs loaded
    Swagger UI from a CDN into the console's origin). Every route, tried without a token: the
    API and the OpenAPI document answer 401, pages send to /login; only /login, /logout and the
    console's own CSS and JavaScript answer."""
    app = create_app(filled.store.url, home=tmp_path / "home", tokens=Tokens(manage=MANAGE))
    public = {"/login", "/logout", "/", ""}    # "/": a redirect to /endpoints, which needs a token
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect", "/openapi.json"):
            r = c.get(path, follow_redirects=False)
            assert r.status_code in (401, 404), (path, r.status_code, r.text[:200])
        tried = 0
        for route in _routes(app.routes):
            path = getattr(route, "path", "")
            methods = getattr(route, "methods", None) or {"GET"}
            if path in public or path.startswith("/static"):
                continue
            url = path.replace("{", "x").replace("}", "x").replace(":path", "")
            for m in methods - {"HEAD"}:
                r = c.request(m, url, follow_redirects=False)
                tried += 1
                if url.startswith("/api/") or url == "/openapi.json":
                    assert r.status_code == 401, (m, url, r.status_code)
                else:
                    assert r.status_code == 303 and r.headers["location"].startswith("/login"), (m, url, r.status_code)
        assert tried > 30
        assert c.get("/", follow_redirects=False).headers["location"] == "/endpoints"
        assert c.get("/static/console.css").status_code == 200      # no data: public, as documented
        doc = c.get("/openapi.json", headers={"Authorization": f"Bearer {MANAGE}"})
        assert doc.status_code == 200 and "/api/tasks" in doc.json()["paths"]
        assert "/openapi.json" not in doc.json()["paths"]
    for template in (ROOT / "faas" / "console" / "templates").glob("*.html"):   # no script from elsewhere
        text = template.read_text()
        assert "//cdn" not in text and 'src="http' not in text and "src='http" not in text, template


# -- P5: a form posted from another port -------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CHROMIUM),
                    reason=f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/chromium.sh)")
def test_a_page_on_another_port_cannot_post_an_action_with_the_users_cookie(filled, tmp_path):
    """P5: the console let ``Origin: null`` through, and a form a page on another port of
    127.0.0.1 posts to its own server, answered with 307 to the console, arrives with that
    origin and the user's cookie (the same site: ports do not count): Chromium cancelled the
    user's task. Tried in Chromium with the user logged in: (a) a sandboxed frame's form,
    (b) a plain form, (c) the redirected form; none cancels. The console's own Cancel button
    still does."""
    import http.server
    import threading
    import time

    import uvicorn
    from playwright.sync_api import sync_playwright

    from faas.messages import cancel_key

    a, b = _free_port(), _free_port()
    app = create_app(filled.store.url, home=tmp_path / "home", tokens=Tokens(manage=MANAGE))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=a, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    tasks = {k: str(uuid.uuid4()) for k in ("a", "b", "c", "own")}

    def form(t: str) -> str:
        return (f'<form method=post action="http://127.0.0.1:{a}/api/tasks/{t}/cancel"></form>'
                f'<script>document.forms[0].submit()</script>')

    class Attacker(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = {"/a": f'<iframe sandbox="allow-forms allow-scripts" srcdoc=\'{form(tasks["a"])}\'></iframe>',
                    "/b": form(tasks["b"]),
                    "/c": '<form method=post action="/bounce"></form><script>document.forms[0].submit()</script>'
                    }.get(self.path, "")
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body.encode())

        def do_POST(self):
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{a}/api/tasks/{tasks['c']}/cancel")
            self.end_headers()

    attacker = http.server.ThreadingHTTPServer(("127.0.0.1", b), Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    cancelled = lambda t: filled.store.exists(cancel_key(t, filled.cid))  # noqa: E731
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the console did not start"
            time.sleep(0.05)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            try:
                page = browser.new_page()
                page.set_default_timeout(60_000)
                page.goto(f"http://127.0.0.1:{a}/?token={MANAGE}")      # the user logs in: a cookie
                page.wait_for_url(f"http://127.0.0.1:{a}/endpoints")
                for k in "abc":
                    page.goto(f"http://127.0.0.1:{b}/{k}")
                    page.wait_for_timeout(1500)
                    assert not cancelled(tasks[k]), f"({k}): the page on port {b} cancelled the user's task"
                # the console's own form, with the same cookie
                page.goto(f"http://127.0.0.1:{a}/tasks/{tasks['own']}")
                page.click("button:has-text('Cancel task')")
                page.wait_for_url(f"**/tasks/{tasks['own']}**")
                deadline = time.monotonic() + 30
                while not cancelled(tasks["own"]) and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert cancelled(tasks["own"]), page.content()[:2000]
            finally:
                browser.close()
    finally:
        attacker.shutdown()
        server.should_exit = True
        time.sleep(0.3)
