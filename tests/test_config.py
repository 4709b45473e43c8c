"""Client settings resolve like boto3's; config.yaml errors name the file, the key and the fix."""
from __future__ import annotations

import pytest

import faas
from faas.config import resolve
from faas.endpoint import config as ep_config
from faas.exceptions import ConfigError, EndpointNotFound


def write_profile(home, text):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config").write_text(text)


def test_defaults_are_the_embedded_default(faas_home):
    s = resolve()
    assert s.home == faas_home and s.endpoint == "local"
    assert s.store_url == (faas_home / "store").as_uri() and s.is_embedded


def test_precedence_arguments_then_env_then_profile(faas_home, monkeypatch):
    write_profile(faas_home, "[default]\nendpoint = from-default\nstore = s3://p/default\n"
                             "[profile ci]\nendpoint = from-ci\n")
    assert resolve().endpoint == "from-default"
    assert resolve("ci").endpoint == "from-ci"
    assert resolve("ci").store is None            # a profile does not inherit [default]
    monkeypatch.setenv("FAAS_ENDPOINT", "from-env")
    assert resolve("ci").endpoint == "from-env"
    assert resolve("ci", endpoint="from-arg").endpoint == "from-arg"
    monkeypatch.setenv("FAAS_PROFILE", "ci")
    monkeypatch.delenv("FAAS_ENDPOINT")
    assert resolve().endpoint == "from-ci"
    assert faas.Session(profile_name="ci").client().settings.endpoint == "from-ci"
    assert faas.client("ci", endpoint="x").settings.endpoint == "x"


def test_unknown_profile_and_bad_keys(faas_home):
    with pytest.raises(ConfigError, match="profile 'nope' not found"):
        resolve("nope")
    write_profile(faas_home, "[profile ci]\nendpiont = x\n")
    with pytest.raises(ConfigError, match=r"\[profile ci\]: unknown key\(s\) endpiont"):
        resolve("ci")
    write_profile(faas_home, "[default\nbroken")
    with pytest.raises(ConfigError, match="cannot parse"):
        resolve()


def test_bad_environment_value(faas_home, monkeypatch):
    monkeypatch.setenv("FAAS_AUTOSTART", "perhaps")
    with pytest.raises(ConfigError, match="autostart"):
        resolve()


def cfg_file(tmp_path, text):
    p = tmp_path / "ep" / "config.yaml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_endpoint_config_valid_with_globus_spellings(tmp_path):
    p = cfg_file(tmp_path, "store: /tmp/s\nengine:\n  type: GlobusComputeEngine\n  max_workers_per_node: 3\n"
                           "  provider:\n    type: LocalProvider\n    max_blocks: 2\n"
                           "    launcher:\n      type: SingleNodeLauncher\n")
    cfg = ep_config.load(p)
    assert cfg.store == "file:///tmp/s" and cfg.engine.max_workers_per_node == 3
    assert cfg.engine.provider.type == "local" and cfg.engine.provider.max_blocks == 2


@pytest.mark.parametrize("text, expected", [
    ("store: [unclosed\n", r"config.yaml: line \d+, column \d+: not valid YAML"),
    ("- a\n- b\n", "expected a mapping of keys"),
    ("engine:\n  max_worker_per_node: 8\n",
     r"engine.max_worker_per_node: unknown key \(got 8\); did you mean max_workers_per_node\?"),
    ("store: s3://b\nengine:\n  max_workers_per_node: zero\n",
     r"engine.max_workers_per_node: .*integer.*\(got 'zero'\)"),
    ("store: s3://b\nengine:\n  provider:\n    max_blok: 3\n", r"engine.provider.max_blok: unknown key"),
    ("store: s3://b\nengine:\n  provider:\n    min_blocks: 3\n    max_blocks: 1\n",
     "min_blocks \\(3\\) must be <= max_blocks \\(1\\)"),
    ("store: s3://b\nengine:\n  provider:\n    type: kubernetes\n",
     r"engine.provider.type: .*'local'.*\(got 'kubernetes'\)"),
    ("store: relative/path\n", "expected a store URL"),
    ("store: s3://b\nvisibility_timeout: 1\n", "visibility_timeout: .*greater than or equal to 2"),
])
def test_endpoint_config_errors_name_file_and_key(tmp_path, text, expected):
    p = cfg_file(tmp_path, text)
    with pytest.raises(ConfigError, match=expected) as info:
        ep_config.load(p)
    assert str(p) in str(info.value)


def test_missing_config_says_how_to_make_it(tmp_path):
    with pytest.raises(EndpointNotFound, match="faas endpoint configure ep"):
        ep_config.load(tmp_path / "ep" / "config.yaml")


def test_endpoint_names_checked():
    for bad in ("", "a/b", "-x", "x" * 64, "a b"):
        with pytest.raises(ConfigError):
            ep_config.check_name(bad)
    assert ep_config.check_name("site_1-a") == "site_1-a"


SITE_PROVIDER_PLUGIN = '''
from faas.providers.local import LocalProvider


class SiteProvider(LocalProvider):
    """A site's own provider: reads its own key (site_queue) beside faas's common ones."""

    def __init__(self, cfg, endpoint_dir):
        super().__init__(cfg, endpoint_dir)
        self.site_queue = cfg.model_extra["site_queue"]
'''


@pytest.fixture
def site_provider(tmp_path, monkeypatch):
    from faas.providers import PROVIDERS, register_provider
    (tmp_path / "site_provider_for_config_tests.py").write_text(SITE_PROVIDER_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    register_provider("site", "site_provider_for_config_tests:SiteProvider")
    yield "site"
    PROVIDERS.unregister("site")


def test_a_plugin_provider_type_loads_from_config_yaml_with_its_own_keys(faas_home, site_provider):
    from faas.providers import make_provider
    d = ep_config.endpoint_dir("site-ep")
    d.mkdir(parents=True)
    (d / "config.yaml").write_text("engine:\n  provider:\n    type: site\n    site_queue: gpu-long\n"
                                   "    max_blocks: 3\n")
    cfg = ep_config.load(d / "config.yaml")
    assert cfg.engine.provider.type == "site" and cfg.engine.provider.max_blocks == 3
    provider = make_provider(cfg.engine.provider, d)
    assert type(provider).__name__ == "SiteProvider" and provider.site_queue == "gpu-long"
    ep_config.write(d / "config.yaml", cfg)   # rewritten, the plugin's key is still there
    assert ep_config.load(d / "config.yaml").engine.provider.model_extra == {"site_queue": "gpu-long"}
    # faas's common provider keys are checked for a plugin's provider as for its own
    (d / "config.yaml").write_text("engine:\n  provider:\n    type: site\n    max_blocks: 0\n")
    with pytest.raises(ConfigError, match=r"config\.yaml.*\n.*engine\.provider\.max_blocks: .*greater than"):
        ep_config.load(d / "config.yaml")


def test_an_unregistered_provider_type_names_the_key_and_how_to_add_one(faas_home, site_provider):
    d = ep_config.endpoint_dir("cloud-ep")
    d.mkdir(parents=True)
    (d / "config.yaml").write_text("engine:\n  provider:\n    type: cloud\n    site_queue: q\n")
    with pytest.raises(ConfigError) as e:
        ep_config.load(d / "config.yaml")
    assert str(d / "config.yaml") in str(e.value)
    assert "engine.provider.type: expected 'local'" in str(e.value)
    assert "or one a site plugin registered (site)" in str(e.value)
    assert "engine.provider.site_queue: unknown key" in str(e.value)   # built-in types keep their keys strict
