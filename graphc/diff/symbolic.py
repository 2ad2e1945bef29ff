"""``symbolic``: the graph to SymPy, ``sympy.diff``, optionally ``sympy.cse``, back to a graph.

This method is the independent oracle for smooth functions: the derivatives of the elementary
functions and the chain rule are SymPy's own. The ops with a kink or an IEEE hazard (``relu``,
``abs``, ``max``, ``min``, ``sigmoid``, ``softplus``, ``pow`` with a non-constant exponent) go to
SymPy as functions whose derivatives are the op table's rules, so that every row of the policy
table (graphc/policy.py) holds here too (and SymPy's own Abs and Max, which take minutes on large
arguments, are never built). SymPy recurses over expression
depth (``diff`` of about 300 nested ``sin`` fails); that is reported as a :class:`SymbolicError`
naming the depth and pointing to ``dp``, never as a ``RecursionError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphc.diff.common import assemble, prepared
from graphc.errors import GraphcError
from graphc.graph import Graph


class SymbolicError(GraphcError):
    """SymPy could not differentiate the expression (too deep, or an unsupported result)."""


def differentiate(graph: Graph, wrt: str | Sequence[str] | None = None, *, cse: bool = False) -> Graph:
    """The function's outputs followed by each output's partials, by ``sympy.diff``.

    >>> from graphc.parse import parse
    >>> d = differentiate(parse("x**3 + y"), cse=True)
    >>> d.to_sympy()[1:]
    (3*x**2, 1)
    """
    if graph.tensor:
        from graphc.diff.paths import SCALARISE_FIRST

        raise GraphcError(SCALARISE_FIRST.format(method="symbolic"))
    import sympy  # imported when first used: ``import graphc`` does not pay for SymPy

    from graphc.sympy_bridge import build, to_sympy

    result, names = prepared(graph, wrt)
    try:
        try:
            functions = to_sympy(graph, policy=True)
        except GraphcError:
            raise RecursionError from None  # to_sympy's own depth failure: reported below
        if len(graph.outputs) == 1:
            functions = (functions,)
        symbols = {name: sympy.Symbol(name, real=True) for name in names}
        flat = [_real(sympy.diff(function, symbols[name])) for function in functions for name in names]
        if any(d.has(sympy.Derivative) for d in flat):
            raise SymbolicError("SymPy left a derivative unevaluated; use the dp method")
        memo: dict[Any, int] = {sympy.Symbol(n, real=True): result.variable(n) for n in graph.variables}
        if cse:
            replacements, flat = sympy.cse(
                flat, symbols=sympy.numbered_symbols("_graphc_cse", cls=sympy.Dummy)
            )
            for symbol, expression in replacements:
                memo[symbol] = build(result, [expression], memo)[0]
        nodes = build(result, flat, memo)
    except SymbolicError:
        raise
    except (GraphcError, ValueError, TypeError) as err:  # a result build cannot convert; SymPy's own
        raise SymbolicError(f"SymPy could not differentiate this graph ({err}); use the dp method") from None
    except RecursionError:
        depth = graph.stats()["depth"]
        raise SymbolicError(
            f"SymPy recursed too deeply differentiating an expression of depth {depth}; the dp method "
            "has no depth limit (method='dp', or --method dp)"
        ) from None
    n = len(names)
    rows: list[list[int | None]] = [list(nodes[i * n : (i + 1) * n]) for i in range(len(graph.outputs))]
    return assemble(graph, result, names, rows, "symbolic", cse=cse)


def _real(derivative: Any) -> Any:
    """``sign`` is flat wherever it is differentiable (as the op table says); SymPy leaves
    ``Derivative(sign(u), x)`` when it cannot tell that ``u`` is real (``sign(log(x))``)."""
    import sympy

    return derivative.replace(
        lambda e: isinstance(e, sympy.Derivative) and isinstance(e.expr, sympy.sign), lambda e: sympy.S.Zero
    )
