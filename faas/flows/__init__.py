"""Flows: definitions in the Globus Flows language (a dialect of the Amazon States Language).

* :mod:`faas.flows.definition` - load (JSON/YAML) and ``validate`` definitions.
* :mod:`faas.flows.paths` - JSONPath (slices and filters as Step Functions' Jayway JsonPath),
  InputPath/ResultPath/OutputPath.
* :mod:`faas.flows.expressions` - the safe evaluator of ``.=`` expressions.
* :mod:`faas.flows.parameters` - Parameters/ResultSelector templating (``.$`` and ``.=`` keys).
* :mod:`faas.flows.interpreter` - the pure interpreter (``start``/``step``).
* :mod:`faas.flows.local` - ``run``: a whole run in-process, for tests and notebooks.
* :mod:`faas.flows.client` - ``FlowsClient``: deploy flows, start and watch durable runs.
* :mod:`faas.flows.runner` - the durable runner (``faas flows serve``).
* :mod:`faas.flows.timers` - ``TimersClient``: once or recurring runs.
"""
from typing import Any

from faas.flows.definition import Problem, check, load, validate
from faas.flows.errors import DefinitionError, ExpressionError, FlowError, PathError
from faas.flows.local import ActionResult, run

__all__ = ["FlowsClient", "TimersClient", "run", "ActionResult", "load", "validate", "check",
           "Problem", "DefinitionError", "ExpressionError", "FlowError", "PathError"]


def __getattr__(name: str) -> Any:   # the clients load config and store backends: only on first use
    if name == "FlowsClient":
        from faas.flows.client import FlowsClient
        return FlowsClient
    if name == "TimersClient":
        from faas.flows.timers import TimersClient
        return TimersClient
    raise AttributeError(f"module 'faas.flows' has no attribute {name!r}")
