"""Errors of the flows package. Each carries a ``code`` like every faas error."""
from __future__ import annotations

from faas.exceptions import FaasError


class FlowError(FaasError):
    code = "FlowError"


class DefinitionError(FlowError, ValueError):
    """A flow definition cannot be parsed or does not validate; ``problems`` lists every error."""

    code = "DefinitionError"

    def __init__(self, message: str, problems: list | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


class PathError(FlowError, ValueError):
    """A JSONPath is malformed (a syntax error, or a form ASL does not allow where it is used)."""

    code = "PathError"


class PathNotFound(FlowError, LookupError):
    """A JSONPath names no value in the data it is applied to."""

    code = "PathNotFound"


class PathWriteError(FlowError, ValueError):
    """A ResultPath cannot be written (read-only ``$._context``, or a non-object on the way)."""

    code = "PathWriteError"


class ExpressionError(FlowError, ValueError):
    """A ``.=`` expression is refused (syntax, forbidden construct, limits) or fails."""

    code = "ExpressionError"
