"""docs/from-globus.md matches the code: every Globus config key faas accepts without effect, every
one that acts under another name, and every method of faas.Client is on the page."""
from __future__ import annotations

import re
from pathlib import Path

import faas
from faas.endpoint import from_globus

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "from-globus.md").read_text()


def test_every_no_effect_key_is_on_the_page_with_its_reason():
    missing = [".".join(where + (key,)) for where, keys in from_globus.NO_EFFECT.items() for key, why in keys.items()
               if f"| `{'.'.join(where + (key,))}` | {why.replace('|', '/')} |" not in PAGE]
    assert not missing, f"docs/from-globus.md lacks (or words differently) these no-effect keys: {missing}"


def test_every_renamed_key_is_on_the_page():
    missing = [key for keys in from_globus.ACTS.values() for key in keys
               if not re.search(rf"[.`]{re.escape(key)}\b", PAGE)]
    assert not missing, missing


def test_every_client_method_is_on_the_page():
    methods = [n for n in dir(faas.Client) if not n.startswith("_") and callable(getattr(faas.Client, n))
               and n not in ("close", "boto_client")]
    missing = [n for n in methods if f"`{n}(" not in PAGE and f"`{n}`" not in PAGE and f", `{n}" not in PAGE]
    assert not missing, f"faas.Client methods missing from docs/from-globus.md: {missing}"


def test_every_endpoint_command_and_globus_option_is_on_the_page():
    """Each ``faas endpoint`` command, and each option globus-compute-endpoint has that faas takes,
    is named in the page's "Endpoints" table."""
    from faas.cli.main import endpoint
    endpoints_part = PAGE[PAGE.index("## Endpoints"):PAGE.index("### config.yaml")]
    globus_commands = ("configure", "start", "stop", "restart", "list", "delete", "render-user-config",
                       "enable-on-boot", "disable-on-boot", "python-exec", "version", "login", "logout",
                       "whoami", "migrate-to-template-capable")
    missing = [c for c in globus_commands if c not in endpoint.commands or f"`{c}" not in endpoints_part]
    globus_options = [o for c in ("configure", "start", "restart", "stop", "delete", "render-user-config")
                      for p in endpoint.commands[c].params for o in p.opts
                      if o.startswith("--") and o not in _FAAS_OWN_OPTIONS]
    missing += [o for o in globus_options if o not in endpoints_part]
    assert not missing, f"docs/from-globus.md's Endpoints section lacks: {missing}"


#: options of faas's own (documented in docs/site-admin.md and docs/multi-user.md)
_FAAS_OWN_OPTIONS = {"--provider", "--store", "--queue", "--max-workers-per-node", "--pools-per-node",
                     "--init-blocks", "--min-blocks", "--max-blocks", "--max-idle-time", "--max-receives",
                     "--partition", "--pbs-queue", "--account", "--walltime", "--nodes-per-block", "--launcher",
                     "--worker-init", "--signing-key", "--from-terraform", "--timeout", "--user", "--help"}
