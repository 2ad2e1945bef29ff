"""Evaluation traces: the table a textbook draws for forward and reverse mode.

Every input and every operation the output depends on is a row ``v1 … vN`` (inputs first, then
operations in topological order) with its definition in terms of earlier rows, its primal value,
and its tangent ``∂v/∂x`` (forward mode, for one input ``x``) or its adjoint ``∂f/∂v`` (reverse
mode). The derivatives come from the same tangent and adjoint graphs the ``forward`` and ``dp``
methods build, evaluated at the point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from graphc.diff.common import LocalPartials, Terms, depends_on, resolve_wrt
from graphc.diff.dp import adjoints
from graphc.diff.forward import tangents
from graphc.errors import GraphcError
from graphc.graph import Graph
from graphc.ops import CONST, OPS, VAR
from graphc.printing import constant_text

MODES = ("forward", "reverse")


@dataclass(frozen=True)
class Row:
    name: str  # v1, v2, ...
    definition: str  # "x1", "v1 * v2", "exp(v3)"
    value: float
    derivative: float  # tangent (forward) or adjoint (reverse)


@dataclass(frozen=True)
class Trace:
    mode: str
    wrt: str | None  # the input a forward trace differentiates by
    output: str
    rows: list[Row]
    gradient: dict[str, float]  # ∂output/∂x for the inputs this trace gives


def evaluate(graph: Graph, point: Mapping[str, float]) -> list[float]:
    """Every node's value at ``point`` (float64 semantics: nan and inf, no exceptions)."""
    values: list[float] = []
    for node in range(len(graph)):
        op = graph.op(node)
        if op == VAR:
            name = graph.name(node)
            if name not in point:
                raise GraphcError(f"missing value for variable '{name}'")
            values.append(float(point[name]))
        elif op == CONST:
            values.append(graph.const_value(node))  # type: ignore[arg-type]
        else:
            values.append(OPS[op].fold(*(values[a] for a in graph.args(node))))
    return values


def _definition(graph: Graph, node: int, label: dict[int, str]) -> str:
    op = graph.op(node)
    if op == VAR:
        return graph.name(node)
    operands = [
        label[a] if a in label else constant_text(graph.const_value(a))[0]  # type: ignore[arg-type]
        for a in graph.args(node)
    ]
    spec = OPS[op]
    if spec.infix and spec.arity == 2:
        return f"{operands[0]} {spec.infix} {operands[1]}"
    if spec.infix:  # -x, not x
        return f"{spec.infix}{' ' * spec.infix.isalpha()}{operands[0]}"
    return f"{spec.function}({', '.join(operands)})"


def _labels(graph: Graph, order: list[int]) -> dict[int, str]:
    """Row labels: the program's binding name where it names an operation, else ``v1 … vN`` by
    position (``v3'`` where the program itself uses ``v3``)."""
    taken = set(graph.variables) | set(graph.names.values())
    label = {}
    for i, node in enumerate(order):
        name = graph.names.get(node) if graph.op(node) != VAR else None
        if name is None:
            name = f"v{i + 1}"
            while name in taken:
                name += "'"
        label[node] = name
    return label


def trace(graph: Graph, point: Mapping[str, float], mode: str = "forward", wrt: str | None = None) -> Trace:
    """The evaluation trace of a one-output function at ``point``.

    >>> from graphc.parse import parse
    >>> t = trace(parse("x1*x2 + exp(x1*x2) - sin(x2)"), {"x1": 1.5, "x2": 0.5}, "reverse")
    >>> [(r.name, r.definition) for r in t.rows][:4]
    [('v1', 'x1'), ('v2', 'x2'), ('v3', 'v1 * v2'), ('v4', 'exp(v3)')]
    """
    if mode not in MODES:
        raise GraphcError(f"unknown trace mode {mode!r} (the modes are: {', '.join(MODES)})")
    if len(graph.outputs) != 1:
        raise GraphcError(f"a trace needs a function with one output; this one has {len(graph.outputs)}")
    if wrt is not None and mode == "reverse":
        raise GraphcError("--wrt chooses the input of a forward trace; a reverse trace gives every input")
    output = graph.outputs[0]
    work = graph.copy()
    keep = graph.reachable()
    local = LocalPartials(work)
    if mode == "forward":
        if not graph.variables:
            raise GraphcError("a forward trace needs an input variable, and this function has none")
        source_name: str | None = resolve_wrt(graph, wrt)[0] if wrt is not None else graph.variables[0]
        terms = tangents(work, work.variable(str(source_name)), keep, local)
    else:
        source_name = None
        active = depends_on(work, [work.variable(v) for v in graph.variables], len(graph))
        terms = adjoints(work, output, active, local) if graph.variables else {}
    materialised = Terms(work).materialised
    derivative = {node: materialised(term) for node, term in terms.items()}
    values = evaluate(work, point)
    order = [work.variable(v) for v in _inputs_in_order(graph)]
    order += [n for n in range(len(graph)) if keep[n] and graph.op(n) not in (VAR, CONST)]
    label = _labels(graph, order)
    rows = [
        Row(
            label[node],
            _definition(graph, node, label),
            values[node],
            values[derivative[node]] if node in derivative else 0.0,
        )
        for node in order
    ]
    if mode == "forward":
        gradient = {source_name: values[derivative[output]] if output in derivative else 0.0}
    else:
        gradient = {
            v: values[derivative[work.variable(v)]] if work.variable(v) in derivative else 0.0
            for v in graph.variables
        }
    return Trace(mode, source_name, graph.output_names[0], rows, gradient)  # type: ignore[arg-type]


def _inputs_in_order(graph: Graph) -> list[str]:
    """The variables in the order they first appear (creation order), as a textbook lists them."""
    return sorted(graph.variables, key=graph.variable)
