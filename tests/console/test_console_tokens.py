"""The console always needs a token: the one ``faas console`` keeps in ``$FAAS_HOME/console.token``
when given none (made mode 600, refused when not private), the login URL that holds it, and the
tokens a user gives: ``--token-file`` (mode 600) or the environment, never the command line."""
from __future__ import annotations

import os
import stat
import uuid

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from faas.console import Tokens, create_app
from faas.console.token_file import load_or_create, read_token, token_path
from faas.exceptions import ConfigError


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# -- the token file ---------------------------------------------------------------------------

def test_token_file_is_made_private_once_and_reused(tmp_path):
    home = tmp_path / "home"
    token, path, made = load_or_create(home)
    assert made and path == home / "console.token" == token_path(home)
    assert _mode(home) == 0o700                       # the folder it made is private too
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and _mode(path) == 0o600
    assert len(token) >= 43 and path.read_text() == token + "\n"
    again, _, made_again = load_or_create(home)
    assert again == token and not made_again          # a bookmarked login URL keeps working
    os.chmod(path, 0o400)                             # stricter than 600 is fine
    assert load_or_create(home)[0] == token


def test_token_file_made_under_a_restrictive_umask_is_still_readable(tmp_path):
    old = os.umask(0o077)
    try:
        token, path, _ = load_or_create(tmp_path)
    finally:
        os.umask(old)
    assert _mode(path) == 0o600 and read_token(path) == token


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666, 0o700 | 0o044])
def test_token_file_others_may_read_is_refused(tmp_path, mode):
    token, path, _ = load_or_create(tmp_path)
    os.chmod(path, mode)
    with pytest.raises(ConfigError) as e:
        load_or_create(tmp_path)
    msg = str(e.value)
    assert f"mode {mode:03o}" in msg and f"rm {path}" in msg and "600" in msg and token not in msg


def test_token_file_that_is_a_link_is_refused_and_never_followed(tmp_path):
    target = tmp_path / "elsewhere"
    path = tmp_path / "console.token"
    os.symlink(target, path)                          # dangling: creating must not go through it
    with pytest.raises(ConfigError, match="symbolic link"):
        load_or_create(tmp_path)
    assert not target.exists()
    target.write_text("planted-token\n")
    os.chmod(target, 0o600)
    with pytest.raises(ConfigError, match="symbolic link"):
        load_or_create(tmp_path)


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_token_file_that_is_not_a_regular_file_is_refused(tmp_path, kind):
    path = tmp_path / "console.token"
    if kind == "folder":
        path.mkdir(mode=0o700)
    else:
        os.mkfifo(path, 0o600)                        # opened without blocking, then refused
    with pytest.raises(ConfigError, match="not a regular file"):
        load_or_create(tmp_path)


def test_token_file_another_account_owns_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file to another account (chown)")
    _, path, _ = load_or_create(tmp_path)
    os.chown(path, 65534, -1)
    with pytest.raises(ConfigError, match="owned by uid 65534"):
        load_or_create(tmp_path)


def test_token_file_without_a_token_is_refused(tmp_path):
    path = tmp_path / "console.token"
    for text in ("", "\n", "two words\n", "bad\x01byte"):
        path.write_text(text)
        os.chmod(path, 0o600)
        with pytest.raises(ConfigError, match="does not hold one token"):
            load_or_create(tmp_path)


# -- the login URL ----------------------------------------------------------------------------

def test_token_in_the_url_logs_in_and_leaves_the_url(tmp_path):
    app = create_app(f"memory://console-tokens-{uuid.uuid4().hex}", home=tmp_path,
                     tokens=Tokens(manage="good-token", read="ro-token"))
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        r = c.get("/?token=good-token", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
        assert r.headers["referrer-policy"] == "no-referrer"
        assert c.get("/api/whoami").json() == {"role": "manage"}           # the cookie now
        assert c.get("/endpoints").status_code == 200
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        r = c.get("/tasks?status=failed&token=ro-token", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/tasks?status=failed"
        assert c.get("/api/whoami").json() == {"role": "read"}
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        r = c.get("/login?token=good-token&next=/runs", follow_redirects=False)
        assert r.headers["location"] == "/runs"
        for evil in ("http://127.0.0.1:8000//evil.example/x?token=good-token",
                     "/login?token=good-token&next=//evil.example"):
            assert not c.get(evil, follow_redirects=False).headers["location"].startswith("//")
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        r = c.get("/endpoints?token=wrong", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?error=")
        assert "set-cookie" not in r.headers and "wrong" not in r.headers["location"]
        assert "not valid" in c.get(r.headers["location"]).text
        assert c.get("/api/whoami").status_code == 401
        assert c.get("/api/whoami?token=good-token").status_code == 401    # the API: header only
        tid = str(uuid.uuid4())
        r = c.post(f"/tasks/{tid}/cancel?token=good-token", follow_redirects=False)   # not a login
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    with TestClient(app, base_url="http://127.0.0.1:8000", headers={"Authorization": "Bearer good-token"}) as c:
        assert c.get(f"/api/tasks/{tid}").json()["status"] == "pending"


# -- faas console -----------------------------------------------------------------------------

@pytest.fixture
def served(monkeypatch):
    """``faas console`` run through click, with uvicorn.run replaced: the app it would serve."""
    import uvicorn
    apps = []

    def fake_run(app, host, port, **kw):
        apps.append((app, host, port))
        app.state.environ_at_run = dict(os.environ)
        app.state.console.close()

    monkeypatch.setattr(uvicorn, "run", fake_run)

    def run(*args, env=None):
        from faas.cli.main import main
        r = CliRunner().invoke(main, ["console", *args], env=env)
        return r, (apps.pop()[0] if apps else None)
    return run


def test_cli_without_a_token_makes_one_and_prints_the_login_url(faas_home, served):
    r, app = served("--port", "8123")
    assert r.exit_code == 0, r.output
    path = faas_home / "console.token"
    token = path.read_text().strip()
    assert _mode(path) == 0o600
    assert f"http://127.0.0.1:8123/?token={token}" in r.output and str(path) in r.output
    assert app.state.tokens == Tokens(manage=token)
    r2, app2 = served("--port", "8124", "--host", "::1")
    assert r2.exit_code == 0 and f"http://[::1]:8124/?token={token}" in r2.output    # the same token
    assert app2.state.tokens.manage == token


def test_cli_refuses_a_token_file_others_may_read(faas_home, served):
    served()
    path = faas_home / "console.token"
    os.chmod(path, 0o644)
    r, app = served()
    assert r.exit_code == 2 and app is None
    assert "mode 644" in r.output and f"rm {path}" in r.output
    assert path.read_text().strip() not in r.output


def _secret(path, text: str, mode: int = 0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


def test_cli_token_files_and_env_work_and_make_no_file(faas_home, served, tmp_path):
    both = _secret(tmp_path / "both", "# the console's tokens\nmanage:m1\n\nread:r1\n")
    r, app = served("--token-file", both)
    assert r.exit_code == 0, r.output
    assert app.state.tokens == Tokens(manage="m1", read="r1")
    assert "m1" not in r.output and "?token=" not in r.output
    r, app = served(env={"FAAS_CONSOLE_TOKEN": "from-env", "FAAS_CONSOLE_READ_TOKEN": "r-env"})
    assert app.state.tokens == Tokens(manage="from-env", read="r-env")
    assert not {"FAAS_CONSOLE_TOKEN", "FAAS_CONSOLE_READ_TOKEN"} & set(app.state.environ_at_run)  # not inherited
    r, app = served("--token-file", _secret(tmp_path / "ro", "read:only\n"))   # read-only console
    assert app.state.tokens == Tokens(read="only")
    r, app = served("--host", "0.0.0.0", "--token-file", _secret(tmp_path / "bare", "t" * 32))
    assert r.exit_code == 0 and app.state.tokens.manage == "t" * 32
    assert not (faas_home / "console.token").exists()
    for bad in ({"FAAS_CONSOLE_TOKEN": "manage:"}, {"FAAS_CONSOLE_READ_TOKEN": " "},
                {"FAAS_CONSOLE_TOKEN": "same", "FAAS_CONSOLE_READ_TOKEN": "same"}):
        r, app = served(env=bad)
        assert r.exit_code != 0 and app is None, bad
    for text in ("", "# nothing\n", "two words\n"):
        r, app = served("--token-file", _secret(tmp_path / "bad", text))
        assert r.exit_code == 2 and app is None and "one token a line" in r.output, text


def test_cli_refuses_a_token_file_others_may_read_or_a_link(faas_home, served, tmp_path):
    loose = _secret(tmp_path / "loose", "manage:secret-loose\n", 0o644)
    r, app = served("--token-file", loose)
    assert r.exit_code == 2 and app is None
    assert "mode 644" in r.output and f"chmod 600 {loose}" in r.output
    assert "secret-loose" not in r.output
    (tmp_path / "link").symlink_to(_secret(tmp_path / "target", "manage:secret-link\n"))
    r, app = served("--token-file", str(tmp_path / "link"))
    assert r.exit_code == 2 and app is None and "symbolic link" in r.output
    r, app = served("--token-file", str(tmp_path / "missing"))
    assert r.exit_code == 2 and app is None and "does not exist" in r.output


def test_cli_refuses_a_token_on_its_command_line(faas_home, served):
    """A token in argv is every local account's (ps, /proc/PID/cmdline): refused, with the ways
    that keep it private, for the console and the Action Provider server alike."""
    for args in (["--token", "manage:m1"], ["--token", "m1"], ["--read-token", "r1"],
                 ["--host", "0.0.0.0", "--token", "t" * 32]):
        r, app = served(*args)
        assert r.exit_code == 2 and app is None, (args, r.output)
        assert "--token-file" in r.output and "/proc/PID/cmdline" in r.output, r.output
        assert "or set FAAS_CONSOLE_" in r.output
    from faas.cli.main import main
    r = CliRunner().invoke(main, ["actions", "serve", "--token", "run:r1"], env={"FAAS_ACTIONS_TOKEN": None})
    assert r.exit_code == 2 and "--token-file" in r.output and "FAAS_ACTIONS_TOKEN" in r.output, r.output
    r = CliRunner().invoke(main, ["console", "--help"])
    assert "--token-file" in r.output and "--token " not in r.output and "--read-token" not in r.output
