"""graphc: a symbolic computational-graph compiler.

Text (or a SymPy expression) becomes a hash-consed networkx DAG; graphs compile to fast
callables.

>>> import graphc
>>> f = graphc.compile("sin(x*y) + exp(x)")
>>> f.variables
('x', 'y')
>>> round(float(f(x=0.0, y=2.0)), 12)
1.0
"""

from __future__ import annotations

from typing import Any

from graphc.backends import BACKENDS, compile_graph
from graphc.errors import (
    ArityError,
    BackendError,
    EvaluationError,
    GraphcError,
    ParseError,
    UnknownFunctionError,
    UnknownVariableError,
)
from graphc.graph import Graph
from graphc.kernel import Kernel
from graphc.parse import parse
from graphc.sympy_bridge import from_sympy

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "ArityError",
    "BackendError",
    "EvaluationError",
    "Graph",
    "GraphcError",
    "Kernel",
    "ParseError",
    "UnknownFunctionError",
    "UnknownVariableError",
    "as_graph",
    "compile",
    "from_sympy",
    "parse",
]


def as_graph(expr: Any) -> Graph:
    """A Graph from program text, a Graph (returned as is) or a SymPy expression (or a list of them)."""
    if isinstance(expr, Graph):
        return expr
    if isinstance(expr, str):
        return parse(expr)
    if hasattr(expr, "free_symbols") or isinstance(expr, (list, tuple)):
        return from_sympy(expr)
    raise GraphcError(f"expected program text, a Graph or a SymPy expression, got {type(expr).__name__}")


def compile(expr: Any, backend: str = "numpy") -> Kernel:  # noqa: A001 - the public name is the contract
    """Compile a function: program text, a Graph or a SymPy expression, with the named backend.

    >>> k = compile("x*y, x + y")
    >>> k(2.0, 3.0)
    (np.float64(6.0), np.float64(5.0))
    """
    return compile_graph(as_graph(expr), backend)
