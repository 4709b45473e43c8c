"""``faas submit`` run from a folder other accounts may write into, played with real Unix
accounts (tests/multiuser/conftest.py ``mu_users``: root only, skipped otherwise). Alice runs
it, Bob plants modules.

Before: ``faas submit`` put the current folder first on ``sys.path`` (for the user's own
``--function mymod:f``) before faas imported the rest of what it needs, so a ``secrets.py`` or
``hmac.py`` Bob dropped in a shared 1777 project folder ran as Alice even for
``--function json:dumps``. Now the folder is searched last, and only while the function's
module is imported: Alice's own module there still loads, as with ``python -m``."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from multiuser.conftest import mu_shared, mu_users  # noqa: E402,F401 - fixtures: real accounts

# The `faas` console script as installed (python -P: nothing but the script's own folder on
# sys.path, so only faas itself can put the current folder there), run in argv[1].
FAAS = "import os, sys; os.chdir(sys.argv[1]); sys.argv[1:2] = []; " \
       "from faas.cli.main import main; main()"
PLANTED = "import os; open(os.path.join({folder!r}, 'RAN-' + __name__ + '-as-' + str(os.getuid())), 'w')\n"


def _faas_as(user, cwd, *args: str) -> subprocess.CompletedProcess:
    env = {"HOME": user.pw_dir, "USER": user.pw_name, "PATH": "/usr/bin:/bin",
           "FAAS_HOME": os.path.join(user.pw_dir, ".faas"), "FAAS_AUTOSTART": "false",
           **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}
    return subprocess.run([sys.executable, "-P", "-c", FAAS, str(cwd), *args], user=user.pw_uid,
                          group=user.pw_gid, extra_groups=[], env=env, cwd=user.pw_dir,
                          capture_output=True, text=True, timeout=120)


def _plant(user, folder, name: str) -> None:
    p = subprocess.run([sys.executable, "-c", "import sys; open(sys.argv[1], 'w').write(sys.argv[2])",
                        str(folder / name), PLANTED.format(folder=str(folder))],
                       user=user.pw_uid, group=user.pw_gid, extra_groups=[], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr


@pytest.fixture
def shared_folder(mu_shared, request):
    folder = mu_shared / f"proj-{request.node.name.replace('[', '-').replace(']', '')}"
    folder.mkdir()
    os.chmod(folder, 0o1777)
    return folder


def test_modules_another_account_planted_in_the_current_folder_do_not_run(mu_users, shared_folder):
    alice, bob, _ = mu_users
    for name in ("secrets.py", "hmac.py", "uuid.py", "tqdm.py", "click.py"):
        _plant(bob, shared_folder, name)
    calls = shared_folder / "calls.jsonl"
    calls.write_text('{"args": [[1, 2]]}\n')
    os.chmod(calls, 0o644)
    p = _faas_as(alice, shared_folder, "submit", "--function", "json:dumps", "--input", str(calls),
                 "--endpoint", "nosuch", "--no-progress")
    ran = sorted(n for n in os.listdir(shared_folder) if n.startswith("RAN-"))
    assert ran == [], f"Bob's modules ran as Alice: {ran}\n{p.stderr[-2000:]}"
    assert "cannot import module" not in p.stderr, p.stderr   # json:dumps itself loaded


def test_the_users_own_module_in_the_current_folder_still_loads(mu_users, shared_folder):
    alice, _, _ = mu_users
    own = alice.pw_dir + "/work"
    os.makedirs(own, exist_ok=True)
    with open(os.path.join(own, "mymod.py"), "w") as f:
        f.write("import os\nopen(os.path.join(os.getcwd(), 'LOADED'), 'w')\n"
                "def f(x):\n    return x\n")
    with open(os.path.join(own, "calls.jsonl"), "w") as f:
        f.write('{"args": [1]}\n')
    os.system(f"chown -R {alice.pw_uid}:{alice.pw_gid} {own}")
    p = _faas_as(alice, own, "submit", "--function", "mymod:f", "--input", "calls.jsonl",
                 "--endpoint", "nosuch", "--no-progress")
    assert "cannot import module" not in p.stderr, p.stderr
    assert os.path.exists(os.path.join(own, "LOADED")), p.stderr[-2000:]
    # and from a shared folder too (hers, made there): found after the standard modules
    with open(shared_folder / "herjob.py", "w") as f:
        f.write("def g(x):\n    return x\n")
    os.chown(shared_folder / "herjob.py", alice.pw_uid, alice.pw_gid)
    p = _faas_as(alice, shared_folder, "submit", "--function", "herjob:g", "--input",
                 os.path.join(own, "calls.jsonl"), "--endpoint", "nosuch", "--no-progress")
    assert "cannot import module" not in p.stderr and "has no attribute" not in p.stderr, p.stderr
