"""``paths``: the path-aggregation lemma, literally.

``∂o/∂x`` is the sum over every path from ``x`` to ``o`` of the product of the local derivatives
on the path's edges (one edge per operand slot, so ``x*x`` gives two paths). The number of paths
can grow exponentially with depth: it is counted first, exactly, by dynamic programming over
Python integers, and the method refuses with :class:`TooManyPathsError` before enumerating more
than ``max_paths``. Below the limit the paths are enumerated one by one (an explicit stack, no
recursion), so the method's cost is the path count, as the lemma's cost is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from graphc.diff.common import (
    LocalPartials,
    accumulated,
    assemble,
    depends_on,
    prepared,
    resolve_wrt,
    scaled,
)
from graphc.errors import GraphcError
from graphc.graph import Graph

MAX_PATHS = 1_000_000
SCALARISE_FIRST = (
    "the {method} method works on scalar graphs: this graph has tensor (block) nodes, which need "
    "scalarising first; use method='dp', 'forward' or 'numeric'"
)
T = TypeVar("T")


class TooManyPathsError(GraphcError):
    """The path method would enumerate more paths than allowed."""

    def __init__(self, message: str, paths: int) -> None:
        super().__init__(message)
        self.paths = paths


def paths_to(graph: Graph, output: int) -> list[int]:
    """The number of paths from every node to ``output``, indexed by node (exact integers)."""
    count = [0] * (output + 1)
    count[output] = 1
    for node in range(output, -1, -1):
        c = count[node]
        if c:
            for arg in graph.args(node):
                count[arg] += c
    return count


def count_paths(graph: Graph, wrt: str | Sequence[str] | None = None) -> dict[str, int]:
    """The number of input-to-output paths from each variable, summed over the outputs.

    >>> from graphc.parse import parse
    >>> count_paths(parse("a1 = w*w; a2 = a1*a1; a3 = a2*a2; a4 = a3*a3; a4*a4"))
    {'w': 32}
    """
    names = resolve_wrt(graph, wrt)
    if graph.tensor:
        from graphc.diff import blocks

        return blocks.count_paths(graph, names)
    totals = dict.fromkeys(names, 0)
    for output in graph.outputs:
        count = paths_to(graph, output)
        for name in names:
            node = graph.variable(name)
            totals[name] += count[node] if node < len(count) else 0
    return totals


def walk_paths(
    graph: Graph, output: int, source: int, start: T, step: Callable[[T, int, int], T | None]
) -> Iterator[T]:
    """Every path from ``source`` to ``output``, as ``step`` folds it edge by edge from the output.

    Depth-first with an explicit stack of (a partial path's end node, its value so far); the
    edge into operand ``slot`` of ``node`` turns a value ``v`` into ``step(v, node, slot)``, and
    ``None`` drops every path through that edge.
    """
    if source > output:  # creation order is topological: no path
        return
    on_path = depends_on(graph, [source], output + 1)
    stack: list[tuple[int, T]] = [(output, start)] if on_path[output] else []
    while stack:
        node, value = stack.pop()
        if node == source:
            yield value
            continue
        for slot, arg in enumerate(graph.args(node)):
            if on_path[arg]:
                extended = step(value, node, slot)
                if extended is not None:
                    stack.append((arg, extended))


@dataclass(frozen=True)
class Path:
    """One input-to-output path: its nodes from the input on, the operand slot each edge enters
    (``x*x`` has two paths, slots 0 and 1), and each edge's local derivative (a node of the graph
    :func:`list_paths` returns; ``None`` where it is structurally zero)."""

    input: str
    output: str
    nodes: tuple[int, ...]
    slots: tuple[int, ...]
    factors: tuple[int | None, ...]


def list_paths(graph: Graph, wrt: str | Sequence[str] | None = None) -> tuple[Graph, list[Path]]:
    """Every input-to-output path with its edges' local derivatives, built on a copy of ``graph``.

    As many as :func:`count_paths` counts: check that count before asking for the list.

    >>> from graphc.parse import parse
    >>> work, found = list_paths(parse("sin(x*y)"), "x")
    >>> [work.op(n) if work.op(n) != "var" else work.name(n) for n in found[0].nodes]
    ['x', 'mul', 'sin']
    >>> from graphc.printing import formula
    >>> [formula(work, z) for z in found[0].factors]
    ['y', 'cos(x*y)']
    """
    names = resolve_wrt(graph, wrt)
    work = graph.copy()
    local = LocalPartials(work)
    Edges = tuple[tuple[int, int], ...]

    no_edges: Edges = ()

    def step(edges: Edges, node: int, slot: int) -> Edges:
        return ((node, slot), *edges)

    found = []
    for output, output_name in zip(graph.outputs, graph.output_names, strict=True):
        for name in names:
            source = work.variable(name)
            for edges in walk_paths(work, output, source, no_edges, step):
                nodes = (source, *(node for node, _ in edges))
                slots = tuple(slot for _, slot in edges)
                factors = tuple(local(node, slot) for node, slot in edges)
                found.append(Path(name, output_name, nodes, slots, factors))
    return work, found


def _describe(n: int) -> str:
    exponent = n.bit_length() - 1
    power = f" = 2^{exponent}" if n == 1 << exponent and exponent > 10 else ""
    return f"{n:,}{power}" if n < 10**30 else f"about 2^{exponent}"


def differentiate(
    graph: Graph, wrt: str | Sequence[str] | None = None, *, max_paths: int = MAX_PATHS
) -> Graph:
    """The function's outputs followed by each output's partials, as sums over paths.

    >>> from graphc.parse import parse
    >>> d = differentiate(parse("a1 = w*w; a2 = a1*a1; a3 = a2*a2; a4 = a3*a3; a4*a4"))
    >>> d.info["paths"], d.info["terms"]
    (32, 32)
    """
    if not isinstance(max_paths, int) or isinstance(max_paths, bool):
        raise GraphcError(f"max_paths must be a whole number, got {max_paths!r}")
    if graph.tensor:
        raise GraphcError(SCALARISE_FIRST.format(method="paths"))
    result, names = prepared(graph, wrt)
    total = sum(count_paths(graph, names).values())
    if total > max_paths:
        raise TooManyPathsError(
            f"the path method would enumerate {_describe(total)} paths, more than max_paths="
            f"{max_paths:,}; the dp method computes the same gradient in time linear in the graph "
            "(method='dp', or --method dp)",
            total,
        )
    local = LocalPartials(result)
    products = terms = 0
    empty: tuple[int, ...] = ()  # the product of no local derivatives

    def step(product: tuple[int, ...], node: int, slot: int) -> tuple[int, ...] | None:
        nonlocal products
        z = local(node, slot)
        if z is None:  # this path's product is structurally zero
            return None
        products += bool(product)
        return (scaled(result, product[0], z),) if product else (z,)

    rows = []
    for output in graph.outputs:
        row: list[int | None] = []
        for name in names:
            source = result.variable(name)
            total_node: int | None = None
            for product in walk_paths(result, output, source, empty, step):
                term = product[0] if product else result.const(1.0)
                total_node = accumulated(result, total_node, term)
                terms += 1
            row.append(total_node)
        rows.append(row)
    return assemble(graph, result, names, rows, "paths", paths=total, terms=terms, products=products)
