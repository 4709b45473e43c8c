"""Flows: definitions in the Globus Flows language (a dialect of the Amazon States Language).

* :mod:`faas.flows.definition` - load (JSON/YAML) and ``validate`` definitions.
* :mod:`faas.flows.paths` - JSONPath, InputPath/ResultPath/OutputPath, Parameters templating.
* :mod:`faas.flows.expressions` - the safe evaluator of ``.=`` expressions.
* :mod:`faas.flows.interpreter` - the pure interpreter (``start``/``step``).
* :mod:`faas.flows.local` - ``run``: a whole run in-process, for tests and notebooks.
"""
from faas.flows.definition import Problem, check, load, validate
from faas.flows.errors import DefinitionError, ExpressionError, FlowError, PathError
from faas.flows.local import ActionResult, run

__all__ = ["run", "ActionResult", "load", "validate", "check", "Problem", "DefinitionError",
           "ExpressionError", "FlowError", "PathError"]
