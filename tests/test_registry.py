"""One registry shape for stores, queues, providers and built-in actions (faas/registry.py):
a site plugin registers "module:Class", unknown names list the known ones, a missing optional
module says what to install."""
from __future__ import annotations

import textwrap

import pytest

from faas.endpoint.provider_config import LocalProviderConfig, PluginProviderConfig
from faas.exceptions import ConfigError
from faas.providers import PROVIDERS, make_provider, register_provider
from faas.providers.local import LocalProvider
from faas.registry import Registry
from faas.store import create_queue, open_queue, open_store, register_queue, register_store
from faas.store.memory import MemoryStore
from faas.store.registry import QUEUES, STORES

PLUGIN = textwrap.dedent('''
    """A site's plugin: a store, a queue and a provider under schemes/types of its own."""
    import os
    from urllib.parse import urlsplit

    from faas.providers.local import LocalProvider
    from faas.store.local_queue import LocalQueue
    from faas.store.memory import MemoryStore


    class SiteStore(MemoryStore):
        def __init__(self, url):
            super().__init__("memory://site-" + urlsplit(url).netloc)


    class SiteQueue(LocalQueue):
        """site:///DIR/NAME is a local queue kept under DIR."""

        @staticmethod
        def _local(url):
            return "local://" + urlsplit(url).path

        @classmethod
        def open(cls, url):
            return LocalQueue.open(cls._local(url))

        @classmethod
        def create(cls, url, **kw):
            return LocalQueue.create(cls._local(url), **kw)


    class SiteProvider(LocalProvider):
        pass
''')


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / "site_plugin_for_tests.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "site_plugin_for_tests"
    STORES.unregister("site")
    QUEUES.unregister("site")
    PROVIDERS.unregister("site")


def test_plugin_store_by_module_and_class(plugin):
    register_store("site", f"{plugin}:SiteStore")
    store = open_store("site://bucket")
    assert type(store).__name__ == "SiteStore" and isinstance(store, MemoryStore)
    store.put("k", b"v")
    assert open_store("site://bucket").get("k") == b"v"   # the same memory store behind both


def test_plugin_queue_by_module_and_class(plugin, tmp_path):
    register_queue("site", f"{plugin}:SiteQueue")
    url = f"site://{tmp_path}/q1"
    create_queue(url).send(['{"id": "a"}'])
    assert [m.body for m in open_queue(url).receive(10)] == ['{"id": "a"}']


def test_plugin_provider_by_module_and_class(plugin, tmp_path):
    register_provider("site", f"{plugin}:SiteProvider")
    cfg = PluginProviderConfig(type="site")
    provider = make_provider(cfg, tmp_path)
    assert type(provider).__name__ == "SiteProvider" and isinstance(provider, LocalProvider)


def test_builtin_names_resolve_as_before(tmp_path):
    assert type(open_store(f"file://{tmp_path}")).__name__ == "FileStore"
    assert type(open_store(str(tmp_path))).__name__ == "FileStore"
    assert type(open_store("memory://reg")).__name__ == "MemoryStore"
    assert type(make_provider(LocalProviderConfig(), tmp_path)).__name__ == "LocalProvider"
    assert type(open_queue(f"spool://{tmp_path}")).__name__ == "SpoolQueue"


def test_unknown_names_list_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match=r"unknown provider type 'cloud'; known: local, pbs, slurm"):
        make_provider(LocalProviderConfig().model_copy(update={"type": "cloud"}), tmp_path)   # unchecked
    with pytest.raises(ConfigError, match=r"unknown scheme 'amqp'.*known schemes: local, spool, sqs"):
        open_queue("amqp://broker/q")


def test_clobber_is_explicit():
    reg = Registry("widget", {"a": "collections:OrderedDict"})
    with pytest.raises(ConfigError, match="already registered.*clobber=True"):
        reg.register("a", "collections:Counter")
    reg.register("a", "collections:Counter", clobber=True)
    assert reg.get("a").__name__ == "Counter"
    with pytest.raises(ConfigError, match="'module:Class'"):
        reg.register("b", "collections.Counter")


def test_missing_optional_module_gives_the_install_hint():
    register_store("nosuch", "faas_plugin_not_installed.store:Store",
                   hint="pip install 'faas[nosuch]'")
    try:
        with pytest.raises(ImportError, match=r"store scheme 'nosuch' needs faas_plugin_not_installed"
                                              r".*pip install 'faas\[nosuch\]'"):
            open_store("nosuch://x")
    finally:
        STORES.unregister("nosuch")


def test_missing_class_names_the_entry():
    reg = Registry("widget", {"w": "collections:NoSuchThing"})
    with pytest.raises(ConfigError, match="widget 'w': collections has no 'NoSuchThing'"):
        reg.get("w")
