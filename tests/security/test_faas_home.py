"""FAAS_HOME as another account on a shared login node sees it. It holds the endpoints' configs
(``endpoint_setup`` runs as their user), keys, the embedded store and queues, and logs of what
functions print. Each test plays the attacker with a real Unix account (useradd).

Before: ``faas endpoint configure`` made FAAS_HOME with the umask's mode (755) and never looked at
an existing one, so another account read the workers' logs (every function's output) and config
files; and a FAAS_HOME in a folder another account owns was used as it was: that account renamed
``endpoints/`` and put its own config.yaml there, whose ``endpoint_setup`` the victim's next
start ran as the victim.
"""
from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from helpers import python_as  # noqa: E402
from multiuser.conftest import mu_shared, mu_users  # noqa: E402,F401 - fixtures: real accounts

pytestmark = pytest.mark.slow

# The victim's faas command, with a FAAS_HOME of the test's choosing and the usual umask.
FAAS = """
import os, sys
os.environ["FAAS_HOME"] = sys.argv[1]
os.umask(0o022)
from faas.cli.main import main
main(sys.argv[2:], prog_name="faas")
"""

# The attacker, in a folder they own: the victim's endpoints/ moved aside, their own in its place.
SWAP = """
import os, sys
home = sys.argv[1]
os.rename(os.path.join(home, "endpoints"), os.path.join(home, "endpoints.old"))
os.makedirs(os.path.join(home, "endpoints", "ep"))
with open(os.path.join(home, "endpoints", "ep", "config.yaml"), "w") as f:
    f.write("endpoint_setup: id > " + sys.argv[2] + "\\n")
"""


@pytest.fixture
def shared_tmp():
    """A folder like /tmp (1777): every account may make its own folders in it."""
    d = Path(tempfile.mkdtemp(prefix="faas-home-", dir="/tmp"))
    os.chmod(d, 0o1777)
    yield d
    import shutil
    shutil.rmtree(d, ignore_errors=True)


def test_a_faas_home_in_another_accounts_folder_is_refused(mu_users, shared_tmp):
    victim, attacker, _ = mu_users
    trap = shared_tmp / "project"
    made = python_as(attacker, "-c", f"import os; os.mkdir({str(trap)!r}); os.chmod({str(trap)!r}, 0o777)")
    assert made.returncode == 0, made.stderr
    home = trap / "faas"
    done = python_as(victim, "-c", FAAS, str(home), "endpoint", "configure", "ep")
    assert done.returncode != 0, (
        f"faas used a FAAS_HOME inside {attacker.pw_name}'s folder {trap}: {done.stdout}{done.stderr}")
    assert f"{trap} belongs to {attacker.pw_name}" in done.stderr, done.stderr
    assert not (home / "endpoints").exists(), "something was made in the attacker's folder"
    # what the attacker would have done next: nothing of theirs can be run as the victim
    pwned = shared_tmp / "pwned"
    python_as(attacker, "-c", SWAP, str(home), str(pwned))
    python_as(victim, "-c", FAAS, str(home), "endpoint", "start", "ep")
    assert not pwned.exists(), "the attacker's endpoint_setup ran as the victim"


def test_faas_home_is_closed_to_other_accounts(mu_users, shared_tmp):
    victim, attacker, _ = mu_users
    home = shared_tmp / "victim-faas"
    done = python_as(victim, "-c", FAAS, str(home), "endpoint", "configure", "ep")
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    looked = python_as(attacker, "-c", f"import os; print(os.listdir({str(home / 'endpoints' / 'ep')!r}))")
    assert looked.returncode != 0 and "PermissionError" in looked.stderr, (
        f"{attacker.pw_name} listed the victim's endpoint folder: {looked.stdout}")
    config = home / "endpoints" / "ep" / "config.yaml"
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600   # it may hold signing keys

    # a FAAS_HOME the victim made open (755) before is closed at its next use, and said so
    os.chmod(home, 0o755)
    again = python_as(victim, "-c", FAAS, str(home), "endpoint", "configure", "ep", "--max-blocks", "2")
    assert again.returncode == 0, again.stderr
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    assert "had mode 755: made it 700" in again.stderr
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
