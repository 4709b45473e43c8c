"""Parameters / ResultSelector / ItemSelector templating: ``.$`` keys take a JSONPath's value,
``.=`` keys an expression's.

It sits above both :mod:`faas.flows.paths` and :mod:`faas.flows.expressions` (which itself
reads paths for ``is_present``), so neither of those imports the other's caller.
"""
from __future__ import annotations

import copy
from typing import Any

from faas.flows import expressions, paths
from faas.flows.errors import PathError


def render(template: Any, data: Any, context: dict | None = None) -> Any:
    """The template with its ``.$`` and ``.=`` keys filled in from ``data``.

    Recursively through dicts and lists: a key ending ``.$`` takes the value at the JSONPath it
    holds (the key loses its ``.$``; a wildcard, slice or filter gives the list of matches); a
    key ending ``.=`` takes the value of the expression it holds, evaluated with the top-level
    names of ``data`` and ``_context``; other values are copied (and templated inside)."""
    if isinstance(template, list):
        return [render(v, data, context) for v in template]
    if not isinstance(template, dict):
        return copy.deepcopy(template)
    out: dict = {}
    for key, val in template.items():
        if isinstance(key, str) and key.endswith(".$"):
            if not isinstance(val, str):
                raise PathError(f"{key}: the value of a '.$' key must be a JSONPath string")
            out[key[:-2]] = copy.deepcopy(paths.get(data, val, context))
        elif isinstance(key, str) and key.endswith(".="):
            if not isinstance(val, str):
                raise PathError(f"{key}: the value of a '.=' key must be an expression string")
            out[key[:-2]] = expressions.evaluate(val, expression_names(data, context))
        else:
            out[key] = render(val, data, context)
    return out


def expression_names(data: Any, context: dict | None) -> dict:
    """Names visible to an expression: the state's top-level keys plus ``_context``."""
    names = dict(data) if isinstance(data, dict) else {}
    names[paths.CONTEXT_KEY] = dict(context or {})
    return names
