"""faas.safe_open.replace_file: the one way faas replaces a file whole (configs, profiles with
signing keys, router files, pool status). Written as the attacker who can write the folder's
temporary names first."""
from __future__ import annotations

import os
import stat

import pytest

from faas.safe_open import replace_file


def test_readers_see_the_whole_new_file_with_the_mode_asked(tmp_path):
    p = tmp_path / "profile"
    replace_file(p, "old\n")
    replace_file(p, "secret=1\n", 0o600)
    assert p.read_text() == "secret=1\n"
    assert list(tmp_path.iterdir()) == [p]          # no temporary left behind


def test_a_temporary_someone_left_is_not_reused(tmp_path):
    """A world-readable file planted at the temporary name must not become the secret file
    (O_TRUNC on it would keep its owner and mode 644)."""
    p = tmp_path / "config"
    planted = tmp_path / f".config.{os.getpid()}.tmp"
    planted.write_text("planted")
    os.chmod(planted, 0o666)
    old_umask = os.umask(0o022)
    try:
        replace_file(p, "signing_key = k\n", 0o600)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert p.read_text() == "signing_key = k\n"


def test_a_link_planted_at_the_temporary_name_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("untouched")
    p = tmp_path / "status.json"
    os.symlink(target, tmp_path / f".status.json.{os.getpid()}.tmp")
    replace_file(p, "{}")
    assert target.read_text() == "untouched" and p.read_text() == "{}"
    assert not p.is_symlink()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant a file as another account")
def test_a_temporary_owned_by_another_account_does_not_give_it_the_file(tmp_path):
    p = tmp_path / "router.json"
    planted = tmp_path / f".router.json.{os.getpid()}.tmp"
    planted.write_text("")
    os.chown(planted, 65534, 65534)     # nobody
    replace_file(p, "{\"users\": []}", 0o600)
    assert p.stat().st_uid == os.geteuid()
