"""Graphs back to graphc's own language, iteratively and without exponential swell.

A shared node (one with several users) and any subexpression longer than ``max_inline``
characters is bound to a temporary (``t1 = ...``), so the text stays linear in the graph's size
and parses back to the same graph.
"""

from __future__ import annotations

import math
from collections.abc import Collection

from graphc.errors import GraphcError
from graphc.graph import Graph
from graphc.ops import ALL_OPS, CONST, CONSTANTS, OPS, RESERVED, VAR
from graphc.shapes import text as shape_text

_ATOM = 5
_NEG = OPS["neg"].precedence
_PRODUCT = OPS["mul"].precedence


def constant_text(value: float) -> tuple[str, int]:
    """A constant in the language, with its precedence (a negative number binds like unary minus)."""
    for name, known in CONSTANTS.items():
        if value == known:
            return name, _ATOM
    if math.isnan(value):
        return "(0/0)", _ATOM
    if math.isinf(value):
        return ("(1/0)", _ATOM) if value > 0 else ("(-1/0)", _ATOM)
    if value == 0.0 and math.copysign(1.0, value) < 0:
        return "-0.0", _NEG  # parses as -(0.0), which folds to -0.0
    text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return text, (_NEG if text.startswith("-") else _ATOM)


def render(
    graph: Graph, max_inline: int = 200, display: bool = False, avoid: Collection[str] = ()
) -> tuple[list[str], list[str]]:
    """The bindings (``t1 = ...``) and one expression per output, as text.

    A binding's name is never a variable of the graph, nor one of ``avoid`` (the names of a larger
    program this graph is part of). With ``display``, a negative coefficient is written ``-2*x``
    rather than ``(-2)*x``: easier to read, but it parses back to ``-(2*x)``, an equal value in
    another graph.
    """
    keep = graph.reachable()
    users = graph.users()
    taken = set(graph.variables) | RESERVED | set(avoid)
    counter = 0
    text: dict[int, str] = {}
    prec: dict[int, int] = {}
    bindings: list[str] = []
    for node in range(len(graph)):
        if not keep[node]:
            continue
        op = graph.op(node)
        if op == VAR:
            text[node], prec[node] = graph.name(node), _ATOM
            continue
        if op == CONST:
            text[node], prec[node] = constant_text(graph.const_value(node))  # type: ignore[arg-type]
            continue
        spec, args = ALL_OPS[op], graph.args(node)

        def wrap(arg: int, bracket: bool) -> str:
            return f"({text[arg]})" if bracket else text[arg]

        if spec.infix and spec.arity == 2:
            a, b = args
            p = spec.precedence
            if spec.infix == "*" and graph.op(b) == CONST and graph.op(a) != CONST:
                a, b = b, a  # a coefficient reads best in front: 2*x
            if spec.infix == "**":  # right-associative; its exponent may be a unary minus
                left, right = wrap(a, prec[a] <= p), wrap(b, prec[b] < _NEG)
            else:
                # For display only, -2*x may stand for (-2)*x: the same value, another graph.
                loose = display and prec[a] == _NEG and graph.op(a) == CONST
                left, right = wrap(a, prec[a] < p and not loose), wrap(b, prec[b] <= p)
            space = " " if p == 1 else ""
            text[node], prec[node] = f"{left}{space}{spec.infix}{space}{right}", p
        elif spec.infix:  # unary minus
            # For display only, -x/z may stand for -(x/z): negation is exact, so the value is equal.
            arg = args[0]
            loose = display and prec[arg] == _PRODUCT and not text[arg].startswith("-")
            text[node], prec[node] = (
                "-" + wrap(arg, prec[arg] < spec.precedence and not loose),
                spec.precedence,
            )
        elif spec.spell is not None:  # a block op (an index's operand an atom: x[0] indexes all of x)
            operands = tuple(wrap(a, spec.postfix and prec[a] < _ATOM) for a in args)
            shapes = tuple(graph.shape(a) for a in args)
            text[node], prec[node] = spec.spell(operands, shapes, graph.params(node)), _ATOM
        else:
            text[node], prec[node] = f"{spec.function}({', '.join(text[a] for a in args)})", _ATOM
        if users[node] > 1 or len(text[node]) > max_inline:
            counter += 1
            while f"t{counter}" in taken:
                counter += 1
            bindings.append(f"t{counter} = {text[node]}")
            text[node], prec[node] = f"t{counter}", _ATOM
    return bindings, [text[o] for o in graph.outputs]


def to_text(graph: Graph) -> str:
    """The whole graph as one program: declarations of its tensor inputs, bindings, then the
    outputs on the last line."""
    bindings, outputs = render(graph)
    declarations = [
        f"{name}: {shape_text(graph.shape(graph.variable(name)))}"
        for name in graph.variables
        if graph.shape(graph.variable(name))
    ]
    return "\n".join([*declarations, *bindings, ", ".join(outputs)])


def formula(graph: Graph, node: int, simplify_below: int = 60) -> str:
    """One node of ``graph`` as a readable formula, its shared subexpressions bound first.

    Small formulas (fewer than ``simplify_below`` operations) also go through SymPy's automatic
    canonical form (``x + x`` becomes ``2*x``), and the shorter text wins: simplification for
    display only, and only while it stays cheap.
    """
    avoid = {*graph.variables, *graph.names.values()}  # the temporaries name none of the program's
    single = graph.copy()
    single.set_outputs([node])
    single = single.rebuilt(single.reachable())
    texts = [_joined(single, avoid)]
    if sum(1 for n in range(len(single)) if single.args(n)) < simplify_below:
        from graphc.sympy_bridge import from_sympy, to_sympy

        try:
            texts.append(_joined(from_sympy(to_sympy(single)), avoid))
        except (GraphcError, RecursionError):
            pass
    return min(texts, key=len)


def _joined(graph: Graph, avoid: Collection[str]) -> str:
    bindings, outputs = render(graph, display=True, avoid=avoid)
    return "; ".join([*bindings, *outputs])
