"""The site's flows config is checked when it is loaded: a misspelt key (several are the site's
security settings) is an error naming the file and the key, never a setting silently ignored."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from faas.exceptions import ConfigError
from faas.flows import site_config
from faas.flows.runner import Runner


@pytest.mark.parametrize("config, expected", [
    ({"transfer": {"allow_url": False}}, "transfer.allow_url: unknown key (got False); did you mean allow_urls?"),
    ({"htp": {}}, "htp: unknown key; did you mean http?"),
    ({"notify": {"smtp": {"host": "mail", "pasword_env": "P"}}},
     "notify.smtp.pasword_env: unknown key (got 'P'); did you mean password_env?"),
    ({"http_allow_any_url": "yes"}, "http_allow_any_url: Input should be a valid boolean (got 'yes')"),
    ({"notify": {"recipients": "*@example.org"}}, "notify.recipients: Input should be a valid list"),
    ({"collections": {"data": 3}}, "collections.data: Input should be a valid string (got 3)"),
    (["collections"], "expected a mapping"),
])
def test_a_bad_key_names_itself(config, expected):
    with pytest.raises(ConfigError, match="site.yaml") as e:
        site_config.check(config, "site.yaml")
    assert expected in str(e.value)


def test_every_documented_section_loads():
    config = {"collections": {"scratch": "file:///scratch"}, "transfer": {"allow_urls": False},
              "compute": {"profile": "site", "endpoints": {"4b11": "cluster"}},
              "http": {"https://ap.example.org/": {"token": "t"}, "https://open.example.org/": {}},
              "http_allow_any_url": False,
              "notify": {"smtp": {"host": "mail", "port": 587, "security": "starttls", "username": "f",
                                  "password_env": "P", "sender": "flows@example.org", "timeout": 10},
                         "recipients": ["*@example.org"], "senders": ["flows@example.org"]},
              "permission_managers": {"scratch": ["alice"]}, "groups": {"lab": "labgroup"},
              "identity_mapping": "/etc/faas/identity_mapping.json"}
    assert site_config.check(config, "site.yaml") == config


def test_the_runner_refuses_a_bad_config_and_keeps_a_good_one_with_its_queue(tmp_path, faas_home):
    url = (tmp_path / "store").as_uri()
    with pytest.raises(ConfigError, match="transfer.allow_url: unknown key"):
        Runner(url, config={"transfer": {"allow_url": False}})
    # --queue records the queue in the store's flows/config.json; the site config stays the site's
    r = Runner(url, config={"transfer": {"allow_urls": False}}, queue_url=f"local://{tmp_path}/q/flows")
    assert r.config == {"transfer": {"allow_urls": False}}


def test_faas_flows_serve_says_which_key(tmp_path, faas_home):
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({"notify": {"recipient": ["*@example.org"]}}))
    p = subprocess.run([sys.executable, "-m", "faas.cli.main", "flows", "serve", "--once", "--config", str(path),
                        "--store", (tmp_path / "store").as_uri()], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert f"{path}: 1 problem(s)" in p.stderr, p.stderr
    assert "notify.recipient: unknown key (got ['*@example.org']); did you mean recipients?" in p.stderr, p.stderr
