"""A user's console over a multi-user endpoint's shared file store: it lists that user's own
finished tasks from the journal and never another account's (their journal folders are theirs:
the store's ``journal/`` is 1733, each user endpoint's folder in it is its user's, mode 700; the
file store skips a folder another account owns rather than failing the whole listing)."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

READ_JOURNAL = r'''
import json, sys
from faas.console.journal_index import JournalIndex
from faas.store import open_store
index = JournalIndex(open_store(sys.argv[1]), min_interval=0)
index.refresh(force=True)
print(json.dumps(sorted({r["task_id"] for r in index.records()})))
'''


def journal_as(site, user) -> list[str]:
    p = subprocess.run([sys.executable, "-c", READ_JOURNAL, site.store.as_uri()], user=user.pw_uid,
                       group=user.pw_gid, extra_groups=[], env=site.user_env(user), cwd=user.pw_dir,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"the journal as {user.pw_name} failed:\n{p.stderr}"
    return json.loads(p.stdout.strip().splitlines()[-1])


def journal_showing(site, user, tasks: set[str]) -> set[str]:
    """The tasks ``user``'s console lists, once it lists ``tasks`` (pools write their journal
    every few seconds)."""
    deadline = time.monotonic() + 60
    while True:
        seen = set(journal_as(site, user))
        if tasks <= seen or time.monotonic() > deadline:
            return seen
        time.sleep(1)


def test_each_users_console_lists_their_own_tasks_only(site, mu_users):
    alice, bob, _ = mu_users
    site.configure()
    site.start()
    mine = {r["task"] for r in site.run_as(alice, n=2)}
    theirs = {r["task"] for r in site.run_as(bob, n=2)}
    seen_by_bob = journal_showing(site, bob, theirs)
    assert theirs <= seen_by_bob, (theirs, seen_by_bob)
    seen_by_alice = journal_showing(site, alice, mine)   # bob's journal folder is there by now
    assert mine <= seen_by_alice, (mine, seen_by_alice)
    assert not theirs & seen_by_alice, "alice's console read bob's journal"
    assert not mine & seen_by_bob, "bob's console read alice's journal"
