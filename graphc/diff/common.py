"""What every differentiation method shares: resolving ``wrt``, activity, local partials, names.

Every method returns a new Graph whose outputs are the function's outputs followed by the
partials, row by row (``∂f1/∂x, ∂f1/∂y, ∂f2/∂x, ...``), built on a copy of the function's graph
so that the partials share the primal nodes. A structurally zero partial is the constant 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from graphc.errors import GraphcError
from graphc.graph import Graph
from graphc.ops import OPS

_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_FROM_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
_PARTIAL = re.compile(r"∂([⁰¹²³⁴⁵⁶⁷⁸⁹]*)(.+)/((?:∂[^∂]+)+)\Z")
_DENOMINATOR = re.compile(r"∂([^∂⁰¹²³⁴⁵⁶⁷⁸⁹]+)([⁰¹²³⁴⁵⁶⁷⁸⁹]*)")
_UNBUILT: Any = object()  # a partial not built yet (None is a structurally zero one)
_SLOTS = max(op.arity for op in OPS.values())


def resolve_wrt(graph: Graph, wrt: str | Sequence[str] | None) -> list[str]:
    """The variables to differentiate with respect to: ``None`` means all (sorted names).

    A string may list several names separated by commas (``"x,y"``). Every name must be a
    variable of the graph.
    """
    if wrt is None:
        return graph.variables
    if not isinstance(wrt, (str, list, tuple)):
        raise GraphcError(f"wrt must name one or more variables, got {wrt!r}")
    names = [part.strip() for part in wrt.split(",")] if isinstance(wrt, str) else list(wrt)
    if not names or any(not isinstance(name, str) or not name for name in names):
        raise GraphcError(f"wrt must name one or more variables, got {wrt!r}")
    for name in names:
        graph.variable(name)  # raises UnknownVariableError naming the variables there are
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise GraphcError(f"wrt names variable '{duplicates[0]}' twice")
    return names


def depends_on(graph: Graph, sources: Sequence[int], end: int | None = None) -> list[bool]:
    """Which nodes (of the first ``end``) depend on any of the ``sources``, indexed by node."""
    end = len(graph) if end is None else end
    active = [False] * end
    for node in sources:
        active[node] = True
    operands = graph.operands
    for node in range(min(sources, default=end), end):
        if not active[node]:
            for arg in operands[node]:
                if active[arg]:
                    active[node] = True
                    break
    return active


class LocalPartials:
    """The local derivative ``∂node/∂args[slot]`` of each edge, from the op table, built once."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._operands = graph.operands
        self._cache: dict[int, int | None] = {}  # keyed by node * _SLOTS + slot

    def __call__(self, node: int, slot: int) -> int | None:
        key = node * _SLOTS + slot
        z = self._cache.get(key, _UNBUILT)
        if z is _UNBUILT:
            rule = OPS[self.graph.op(node)].partials[slot]
            z = self._cache[key] = None if rule is None else rule(self.graph, self._operands[node], node)
        return z


def scaled(graph: Graph, factor: int, z: int) -> int:
    """``factor * z``, with a factor of -1 built as a negation (``-g``, not ``-1*g``)."""
    value = graph.const_value(z)
    if value == 1.0:
        return factor  # what the builder makes of factor*1, without asking it
    if value == -1.0:
        return graph.neg(factor)
    if graph.const_value(factor) == -1.0:
        return graph.neg(z)
    return graph.mul(factor, z)


def accumulated(graph: Graph, total: int | None, term: int) -> int:
    """``total + term``, a negated term built as a subtraction; ``term`` alone when no total."""
    if total is None:
        return term
    if graph.op(term) == "neg":
        return graph.sub(total, graph.args(term)[0])
    if graph.op(total) == "neg":
        return graph.sub(term, graph.args(total)[0])
    return graph.add(total, term)


def partial_name(output: str, variable: str) -> str:
    """The name of ``∂output/∂variable``; repeated differentiation gives ``∂²f/∂x∂y``, ``∂³f/∂x³``.

    >>> partial_name("f", "x"), partial_name("∂f/∂x", "y"), partial_name("∂²f/∂x²", "x")
    ('∂f/∂x', '∂²f/∂x∂y', '∂³f/∂x³')
    """
    match = _PARTIAL.match(output)
    if match is None:
        return f"∂{output}/∂{variable}"
    order = int(match.group(1).translate(_FROM_SUPERSCRIPTS) or "1")
    denominators: list[list[Any]] = []
    for name, power in _DENOMINATOR.findall(match.group(3)):
        denominators.append([name, int(power.translate(_FROM_SUPERSCRIPTS) or "1")])
    if denominators and denominators[-1][0] == variable:
        denominators[-1][1] += 1
    else:
        denominators.append([variable, 1])
    bottom = "".join(f"∂{name}{_superscript(power)}" for name, power in denominators)
    return f"∂{_superscript(order + 1)}{match.group(2)}/{bottom}"


def _superscript(n: int) -> str:
    return "" if n == 1 else str(n).translate(_SUPERSCRIPTS)


def assemble(
    source: Graph,
    result: Graph,
    wrt: Sequence[str],
    partials: Sequence[Sequence[int | None]],
    method: str,
    **info: Any,
) -> Graph:
    """Give ``result`` its outputs: the function's outputs, then ``partials[i][j] = ∂out_i/∂wrt_j``."""
    nodes = list(source.outputs)
    names = list(source.output_names)
    for name, row in zip(source.output_names, partials, strict=True):
        for variable, node in zip(wrt, row, strict=True):
            nodes.append(result.const(0.0) if node is None else node)
            names.append(partial_name(name, variable))
    result.set_outputs(nodes, names)
    result.info = {
        "method": method,
        "wrt": list(wrt),
        "function_outputs": len(source.outputs),
        "primal_nodes": len(source),
        **info,
    }
    return result


def prepared(graph: Graph, wrt: str | Sequence[str] | None) -> tuple[Graph, list[str]]:
    """A copy of ``graph`` to build the derivative on, and the resolved ``wrt`` names."""
    if not graph.outputs:
        raise GraphcError("the graph has no outputs to differentiate")
    return graph.copy(), resolve_wrt(graph, wrt)
