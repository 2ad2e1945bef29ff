"""graphc's graph into a peer's own expressions: one peer expression per node, in creation order.

No strings are evaluated: each node's op is looked up in the peer's table of constructors and
applied to the peer expressions of its operands (creation order is a topological order, so the
operands are already built). Shared nodes stay shared (each is built once).

>>> import graphc, math
>>> convert(graphc.parse("x*y + sin(x)"), {"x": 2.0, "y": 3.0}.get, float, python_table(math))
[6.909297426825682]
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from graphc.errors import GraphcError
from graphc.graph import Graph
from graphc.ops import CONST, VAR

ARITHMETIC: dict[str, Callable[..., Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "neg": operator.neg,
    "pow": operator.pow,
}
FUNCTIONS = ("sin", "cos", "tan", "tanh", "exp", "log", "sqrt")


class UnsupportedOpError(GraphcError):
    """A node whose op the peer's table has no constructor for."""


def python_table(module: ModuleType | Any, **extra: Callable[..., Any]) -> dict[str, Callable[..., Any]]:
    """The arithmetic operators plus ``module``'s functions of the same names (sin, cos, ...)."""
    table = dict(ARITHMETIC)
    table.update({name: getattr(module, name) for name in FUNCTIONS if hasattr(module, name)})
    table.update(extra)
    return table


def convert(
    graph: Graph,
    variable: Callable[[str], Any],
    constant: Callable[[float], Any],
    table: Mapping[str, Callable[..., Any]],
) -> list[Any]:
    """The graph's outputs as peer expressions (``variable(name)``, ``constant(value)`` for leaves)."""
    built: list[Any] = []
    for node in range(len(graph)):
        op = graph.op(node)
        if op == VAR:
            built.append(variable(graph.name(node)))
        elif op == CONST:
            built.append(constant(graph.const_value(node)))  # type: ignore[arg-type]
        else:
            try:
                make = table[op]
            except KeyError:
                raise UnsupportedOpError(f"op {op!r} has no constructor in this peer's table") from None
            built.append(make(*(built[arg] for arg in graph.args(node))))
    return [built[node] for node in graph.outputs]


def integral_or_float(value: float) -> int | float:
    """A whole-number constant as an int (so ``x^2`` is an integer power in every peer)."""
    return int(value) if value.is_integer() and abs(value) < 2**53 else value
