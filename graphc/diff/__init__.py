"""Differentiation methods, each a graph-to-graph transformation registered by name.

``differentiate(graph, wrt, method)`` returns a new Graph whose outputs are the function's
outputs followed by the partials (``∂f/∂x``, ...), row by row for several outputs:

- ``dp`` (the default): reverse mode as dynamic programming, linear in the edges;
- ``forward``: tangent propagation, one pass per input;
- ``paths``: the sum over all input-to-output paths of the product of local derivatives,
  counted first and refused above ``max_paths``;
- ``symbolic``: SymPy's ``diff`` (optionally with ``cse``), back into a Graph;
- ``numeric``: central differences, the reference checker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from graphc.diff import dp, forward, numeric, paths, symbolic
from graphc.diff.common import partial_name, resolve_wrt
from graphc.diff.paths import MAX_PATHS, TooManyPathsError, count_paths
from graphc.diff.symbolic import SymbolicError
from graphc.errors import GraphcError
from graphc.graph import Graph

METHODS: dict[str, Callable[..., Graph]] = {
    "dp": dp.differentiate,
    "paths": paths.differentiate,
    "forward": forward.differentiate,
    "symbolic": symbolic.differentiate,
    "numeric": numeric.differentiate,
}

# The options each method accepts beyond ``wrt``.
OPTIONS: dict[str, frozenset[str]] = {
    "dp": frozenset(),
    "paths": frozenset({"max_paths"}),
    "forward": frozenset(),
    "symbolic": frozenset({"cse"}),
    "numeric": frozenset(),
}

__all__ = [
    "MAX_PATHS",
    "METHODS",
    "SymbolicError",
    "TooManyPathsError",
    "count_paths",
    "differentiate",
    "partial_name",
    "resolve_wrt",
]


def method_function(method: str) -> Callable[..., Graph]:
    """The registered method called ``method``."""
    try:
        return METHODS[method]
    except (KeyError, TypeError):
        known = ", ".join(METHODS)
        raise GraphcError(f"unknown method {method!r} (the methods are: {known})") from None


def differentiate(
    graph: Graph, wrt: str | Sequence[str] | None = None, method: str = "dp", **options: Any
) -> Graph:
    """The graph's outputs followed by their partials, by the named method.

    Options a method does not take are ignored when they are None, else refused.

    >>> from graphc.parse import parse
    >>> differentiate(parse("x*y"), method="forward").output_names
    ['f', '∂f/∂x', '∂f/∂y']
    """
    function = method_function(method)
    given = {key: value for key, value in options.items() if value is not None}
    unknown = sorted(set(given) - OPTIONS[method])
    if unknown:
        raise GraphcError(f"the {method} method takes no option {unknown[0]!r}")
    return function(graph, wrt, **given)
