"""NaN provenance: where a non-finite value first appears in a function or its gradient.

:func:`check` differentiates the function, evaluates every node of the derivative graph at one
point with the op table's float64 semantics (the same NumPy scalar operations constant folding
uses, so the values match the backends'), and names each *source* of a non-finite value: a node
whose value is nan or ±inf although its operands are finite, or nan although none of them is nan
(``0 * inf``). Nodes are visited in creation order, a topological order, so the first source
listed is the first node that produced a non-finite value.

The derivative graph is built on a copy of the function's graph, so its first nodes are the
function's own (the *forward* pass) and the rest compute the partials (the *backward* pass). A
backward node is related back to the function: replaying the op table's local-derivative rules
(and, for ``dp`` and ``forward``, the adjoint or tangent accumulation) on a copy finds the existing
nodes again by hash-consing, which says which node is the local derivative of which edge, the
adjoint of which node, or the tangent of which node (or one of these divided by the power of two
that the accumulation carries as a separate factor: "minus the adjoint ...", "... divided by 4").
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphc import diff
from graphc.api import DEFAULT, as_graph
from graphc.backends import check_backend, compile_graph
from graphc.diff.common import LocalPartials, depends_on
from graphc.diff.dp import adjoints
from graphc.diff.forward import tangents
from graphc.errors import EvaluationError
from graphc.graph import Graph
from graphc.ops import ALL_OPS, CONST, VAR
from graphc.printing import constant_text, formula
from graphc.trace import evaluate
from graphc.values import check_point, json_number, parse_assignments

MAX_TEXT = 120  # longest subexpression text shown; longer ones are cut with "..."
MAX_SOURCES = 20  # sources listed per pass


@dataclass(frozen=True)
class Operand:
    text: str
    value: float
    role: str | None  # what the operand is in the differentiation, for backward nodes


@dataclass(frozen=True)
class Source:
    """A node that produced a non-finite value from operands that did not force it."""

    pass_name: str  # "forward" (the function) or "backward" (the partials)
    node: int  # the node id in the derivative graph (equal to the function graph's for forward)
    op: str
    text: str  # the subexpression, in graphc's language
    value: float
    operands: tuple[Operand, ...]
    role: str | None  # backward: what the node is, related to the function's nodes

    def describe(self) -> str:
        lines = [f"{self.value!r} at node {self.node} [{self.op}]: {self.text}"]
        if self.role:
            lines.append(f"    {self.role}")
        for operand in self.operands:
            role = f"  ({operand.role})" if operand.role else ""
            lines.append(f"    operand {operand.text} = {operand.value!r}{role}")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "pass": self.pass_name,
            "node": self.node,
            "op": self.op,
            "text": self.text,
            "value": json_number(self.value),
            "role": self.role,
            "operands": [
                {"text": o.text, "value": json_number(o.value), "role": o.role} for o in self.operands
            ],
        }


@dataclass(frozen=True)
class CheckResult:
    """The values at the point and the sources of non-finite values in each pass."""

    point: dict[str, float]
    method: str
    backend: str
    values: dict[str, float]  # every output of the derivative graph, by name, from the backend
    function_outputs: int
    forward: list[Source] = field(default_factory=list)
    backward: list[Source] = field(default_factory=list)
    forward_count: int = 0  # sources in the forward pass (only MAX_SOURCES are listed)
    backward_count: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def finite(self) -> bool:
        """True when every value, of every node the outputs depend on, is finite."""
        return not self.forward_count and not self.backward_count and not self.notes

    @property
    def value(self) -> list[float]:
        return list(self.values.values())[: self.function_outputs]

    @property
    def gradient(self) -> dict[str, float]:
        return dict(list(self.values.items())[self.function_outputs :])

    def __str__(self) -> str:
        lines = [f"{name} = {value!r}" for name, value in self.values.items()]
        for pass_name, sources, count in (
            ("forward pass (the function)", self.forward, self.forward_count),
            ("backward pass (the partials)", self.backward, self.backward_count),
        ):
            if not sources:
                lines.append(f"{pass_name}: all finite")
                continue
            more = f", the first {len(sources)} listed" if count > len(sources) else ""
            where = "one node" if count == 1 else f"{count} nodes{more}; in order"
            lines.append(f"{pass_name}: non-finite values arise at {where}:")
            lines += ["  " + source.describe().replace("\n", "\n  ") for source in sources]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "backend": self.backend,
            "point": {k: json_number(v) for k, v in self.point.items()},
            "value": [json_number(v) for v in self.value],
            "gradient": {k: json_number(v) for k, v in self.gradient.items()},
            "finite": self.finite,
            "forward": [s.as_json() for s in self.forward],
            "backward": [s.as_json() for s in self.backward],
            "forward_sources": self.forward_count,
            "backward_sources": self.backward_count,
            "notes": self.notes,
        }


def _short(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


_ROLE_ORDER = {"local": 0, "adjoint": 1, "tangent": 1, "output": 2}


class _Roles:
    """What each node of a derivative graph is: a local derivative, an adjoint or a tangent."""

    def __init__(self, function: Graph, derivative: Graph, method: str) -> None:
        self.function, self.derivative = function, derivative
        self.roles: dict[int, list[tuple[str, int, Any]]] = {}
        self._texts: dict[tuple[int, int], str] = {}
        for name, node in zip(derivative.output_names, derivative.outputs, strict=True):
            if node >= len(function):
                self.roles.setdefault(node, []).append(("output", node, name))
        self._owners: list[int] = []
        if method not in ("dp", "forward", "paths"):
            return  # symbolic and numeric do not build from the op table's rules
        work, size, primal = derivative.copy(), len(derivative), len(function)
        local = LocalPartials(work)
        for node in range(primal):
            for slot in range(len(function.args(node))):
                z = local(node, slot)
                if z is not None and primal <= z < size:
                    self.roles.setdefault(z, []).append(("local", node, slot))
        sources = [work.variable(name) for name in derivative.info["wrt"]]
        if method == "dp":
            active = depends_on(work, sources, primal)
            for output, label in zip(function.outputs, function.output_names, strict=True):
                if active[output]:
                    for node, (adjoint, k) in adjoints(work, output, active, local).items():
                        if primal <= adjoint < size:
                            self.roles.setdefault(adjoint, []).append(("adjoint", node, (label, k)))
        elif method == "forward":
            keep = function.reachable()
            for name, source in zip(derivative.info["wrt"], sources, strict=True):
                for node, (tangent, k) in tangents(work, source, keep, local).items():
                    if primal <= tangent < size:
                        self.roles.setdefault(tangent, []).append(("tangent", node, (name, k)))
        self._owners = sorted(self.roles)

    def text(self, graph: Graph, node: int) -> str:
        key = (id(graph), node)
        if key not in self._texts:
            op = graph.op(node)
            if op == CONST:
                text = constant_text(graph.const_value(node))[0]  # type: ignore[arg-type]
            elif op == VAR:
                text = graph.name(node)
            else:
                text = _short(formula(graph, node, simplify_below=0))  # as built, not simplified
            self._texts[key] = text
        return self._texts[key]

    def describe(self, node: int, owner: bool = True) -> str | None:
        """The node's role in words, or the role of the first role node built after it."""
        if self.derivative.op(node) == CONST:
            return None  # a constant such as the seed 1 plays many roles: naming one says nothing
        roles = self.roles.get(node)
        if roles is None:
            if not owner or node < len(self.function):
                return None
            k = bisect.bisect_right(self._owners, node)
            if k == len(self._owners):
                return None
            inner = self.describe(self._owners[k], owner=False)
            return f"built for {inner}" if inner else None
        ordered = sorted(roles, key=lambda role: _ROLE_ORDER[role[0]])  # the output last
        return "; ".join(self._role(*role) for role in ordered)

    def _role(self, kind: str, target: int, extra: Any) -> str:
        f = self.function
        if kind == "output":
            return f"the output {extra}"
        if kind == "local":
            operand = f.args(target)[extra]
            return (
                f"the local derivative of {self.text(f, target)} [{f.op(target)}] with respect to "
                f"its operand {extra + 1}, {self.text(f, operand)}"
            )
        text = self.text(f, target)
        text = text if f.op(target) == VAR else f"({text})"
        name, k = extra  # the node is the adjoint or tangent divided by k, a power of two
        role = f"the adjoint ∂{name}/∂{text}" if kind == "adjoint" else f"the tangent ∂{text}/∂{name}"
        sign = "minus " if k < 0 else ""
        return sign + role + ("" if abs(k) == 1.0 else f" divided by {constant_text(abs(k))[0]}")


def _first(role: str | None) -> str | None:
    """An operand's first role only: the node's own line lists them all."""
    return None if role is None else role.split("; ")[0]


def _selected(graph: Graph, values: list[float]) -> list[bool]:
    """The nodes the outputs depend on at this point: a select (``where``) depends on its condition
    and the branch it selects only, so a NaN in the other branch is not reported."""
    keep = [False] * len(graph)
    for node in graph.outputs:
        keep[node] = True
    for node in range(len(graph) - 1, -1, -1):
        if not keep[node]:
            continue
        args = graph.args(node)
        picks = ALL_OPS[graph.op(node)].picks if args else None
        slots = range(len(args)) if picks is None else picks([values[a] for a in args])
        for slot in slots:
            keep[args[slot]] = True
    return keep


def _is_source(values: list[float], graph: Graph, node: int) -> bool:
    value = values[node]
    if math.isfinite(value):
        return False
    operands = [values[a] for a in graph.args(node)]
    if all(math.isfinite(v) for v in operands):
        return True
    return math.isnan(value) and not any(math.isnan(v) for v in operands)


def check(
    expr: Any,
    at: Mapping[str, Any] | str,
    wrt: str | list[str] | None = None,
    method: str = "dp",
    backend: str = "numpy",
    *,
    max_nodes: Any = DEFAULT,
) -> CheckResult:
    """Evaluate a function and its partials at ``at`` and name where non-finite values arise.

    ``at`` maps every variable to a number (or is ``"x=0,y=0"`` text as the CLI's ``--at``);
    ``max_nodes`` caps the graphs as in :func:`graphc.grad`.

    >>> r = check("sqrt(x^2 + y^2)", at={"x": 0.0, "y": 0.0})
    >>> r.finite, r.forward, r.backward[0].value
    (False, [], inf)
    >>> r.backward[0].role.split("; ")[0]
    'the local derivative of sqrt(x**2 + y**2) [sqrt] with respect to its operand 1, x**2 + y**2'
    """
    function = as_graph(expr, max_nodes)
    if isinstance(at, str):
        at = parse_assignments([at], "at")
    if not isinstance(at, Mapping):
        raise EvaluationError(f"at must map each variable to a number, got {type(at).__name__}")
    values_at = check_point(function.variables, at)
    point = {name: value for name, value in values_at.items() if isinstance(value, float)}
    if len(point) < len(values_at):
        array = next(name for name in values_at if name not in point)
        raise EvaluationError(f"check evaluates at one point: variable '{array}' is an array")
    check_backend(backend)
    derivative = diff.differentiate(function, wrt, method)
    computed = compile_graph(derivative, backend)(**point)
    computed = computed if isinstance(computed, tuple) else (computed,)
    values = dict(zip(derivative.output_names, (float(v) for v in computed), strict=True))
    interpreted = evaluate(derivative, point)
    keep = _selected(derivative, interpreted)
    roles = _Roles(function, derivative, method)
    found: dict[str, list[int]] = {"forward": [], "backward": []}
    for node in range(len(derivative)):
        if keep[node] and _is_source(interpreted, derivative, node):
            found["forward" if node < len(function) else "backward"].append(node)
    notes = [
        f"the {backend} backend gives {name} = {value!r} but node-by-node evaluation gives "
        f"{interpreted[node]!r}"
        for (name, value), node in zip(values.items(), derivative.outputs, strict=True)
        if math.isfinite(value) != math.isfinite(interpreted[node])
    ]

    def source(pass_name: str, node: int) -> Source:
        operands = tuple(
            Operand(roles.text(derivative, a), interpreted[a], _first(roles.describe(a, owner=False)))
            for a in derivative.args(node)
        )
        if derivative.op(node) == CONST:
            role: str | None = "a constant: the formula folds to it when it is built"
        elif derivative.op(node) == VAR:
            role = "an input: the point gives it this value"
        else:
            role = roles.describe(node) if pass_name == "backward" else None
        text = roles.text(derivative, node)
        return Source(pass_name, node, derivative.op(node), text, interpreted[node], operands, role)

    return CheckResult(
        point=point,
        method=method,
        backend=backend,
        values=values,
        function_outputs=len(function.outputs),
        forward=[source("forward", n) for n in found["forward"][:MAX_SOURCES]],
        backward=[source("backward", n) for n in found["backward"][:MAX_SOURCES]],
        forward_count=len(found["forward"]),
        backward_count=len(found["backward"]),
        notes=notes,
    )


__all__ = ["CheckResult", "Operand", "Source", "check"]
