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
