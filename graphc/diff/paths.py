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
    Flag,
    Gates,
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
from graphc.ops import ALL_OPS, INERT

MAX_PATHS = 1_000_000
T = TypeVar("T")


class TooManyPathsError(GraphcError):
    """The path method would enumerate more paths than allowed."""

    def __init__(self, message: str, paths: int) -> None:
        super().__init__(message)
        self.paths = paths


def paths_to(graph: Graph, output: int) -> list[int]:
    """The number of paths from every node to ``output``, indexed by node (exact integers): paths
    whose every edge carries a derivative, the ones :func:`differentiate` enumerates (an edge into
    an op's ``inert`` slot, such as a comparison's operand or a where's condition, carries none)."""
    count = [0] * (output + 1)
    count[output] = 1
    ops, operands = graph.ops, graph.operands
    for node in range(output, -1, -1):
        c = count[node]
        if c:
            dead = INERT.get(ops[node])
            if dead is None:
                for arg in operands[node]:
                    count[arg] += c
            else:
                for slot, arg in enumerate(operands[node]):
                    if slot not in dead:
                        count[arg] += c
    return count


def count_paths(graph: Graph, wrt: str | Sequence[str] | None = None) -> dict[str, int]:
    """The number of input-to-output paths from each variable, summed over the outputs: the paths
    along which a derivative flows, which :func:`differentiate` enumerates (``x > 0`` and
    ``floor(x)`` have none; ``where(x > 0, x, 0)`` has one, through its selected branch).

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
    :func:`list_paths` returns)."""

    input: str
    output: str
    nodes: tuple[int, ...]
    slots: tuple[int, ...]
    factors: tuple[int, ...]


def list_paths(graph: Graph, wrt: str | Sequence[str] | None = None) -> tuple[Graph, list[Path]]:
    """Every input-to-output path with its edges' local derivatives, built on a copy of ``graph``.

    As many as :func:`count_paths` counts (no path through an edge without a derivative, such as
    a comparison's): check that count before asking for the list. A tensor
    graph's paths are those of its scalarised graph (graphc.scalarise), from each input element.

    >>> from graphc.parse import parse
    >>> work, found = list_paths(parse("sin(x*y)"), "x")
    >>> [work.op(n) if work.op(n) != "var" else work.name(n) for n in found[0].nodes]
    ['x', 'mul', 'sin']
    >>> from graphc.printing import formula
    >>> [formula(work, z) for z in found[0].factors]
    ['y', 'cos(x*y)']
    """
    names = resolve_wrt(graph, wrt)
    if graph.tensor:  # the scalar paths, on the scalarised graph: inputs by element (``x[0]``)
        from graphc import scalarise

        scalar = scalarise.scalarise(graph, what="listing paths")
        names = [scalarise.element_name(n, i) for n in names for i in scalarise.indices(scalar.inputs[n])]
        graph = scalar.graph
    work = graph.copy()
    local = LocalPartials(work)
    Edges = tuple[tuple[int, int], ...]

    no_edges: Edges = ()

    def step(edges: Edges, node: int, slot: int) -> Edges | None:
        return None if slot in ALL_OPS[work.op(node)].inert else ((node, slot), *edges)

    found = []
    for output, output_name in zip(graph.outputs, graph.output_names, strict=True):
        for name in names:
            source = work.variable(name)
            for edges in walk_paths(work, output, source, no_edges, step):
                nodes = (source, *(node for node, _ in edges))
                slots = tuple(slot for _, slot in edges)
                factors = []
                for node, slot in edges:
                    z = local(node, slot)
                    assert z is not None  # an edge without a rule is inert: no path through it
                    factors.append(z)
                found.append(Path(name, output_name, nodes, slots, tuple(factors)))
    return work, found


def _describe(n: int) -> str:
    exponent = n.bit_length() - 1
    power = f" = 2^{exponent}" if n == 1 << exponent and exponent > 10 else ""
    return f"{n:,}{power}" if n < 10**30 else f"about 2^{exponent}"


def _check_limit(total: int, max_paths: int) -> None:
    if total > max_paths:
        raise TooManyPathsError(
            f"the path method would enumerate {_describe(total)} paths, more than max_paths="
            f"{max_paths:,}; the dp method computes the same gradient in time linear in the graph "
            "(method='dp', or --method dp)",
            total,
        )


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
    if graph.tensor:  # counted at block level, then enumerated on the scalarised graph
        from graphc import scalarise

        names = resolve_wrt(graph, wrt)
        scalarise.concrete_shapes(graph, "the paths method")
        _check_limit(sum(count_paths(graph, names).values()), max_paths)
        return scalarise.differentiated(
            graph, names, "paths", lambda scalar, columns: differentiate(scalar, columns, max_paths=max_paths)
        )
    result, names = prepared(graph, wrt)
    total = sum(count_paths(graph, names).values())
    _check_limit(total, max_paths)
    local, gates = LocalPartials(result), Gates(result)
    products = terms = 0
    # A path's value so far: the product of its local derivatives (none yet: ()), and where it is
    # selected at every ``where`` it passes (None: everywhere); the product is taken there only.
    Product = tuple[tuple[int, ...], Flag]
    empty: Product = ((), None)

    def step(so_far: Product, node: int, slot: int) -> Product | None:
        nonlocal products
        product, reach = so_far
        gate = ALL_OPS[result.op(node)].gate
        if gate is not None:  # the path passes a select: its value is the product where selected
            passed = gate(result, result.args(node), slot, result.const(1.0))
            return None if passed is None else (product, gates.both(reach, passed[1]))
        z = local(node, slot)
        if z is None:  # this path's product is structurally zero
            return None
        products += bool(product)
        return ((scaled(result, product[0], z),) if product else (z,)), reach

    rows = []
    for output in graph.outputs:
        row: list[int | None] = []
        for name in names:
            source = result.variable(name)
            total_node: int | None = None
            for product, reach in walk_paths(result, output, source, empty, step):
                term = product[0] if product else result.const(1.0)
                if reach is not None:
                    term = result.apply("where", reach, term, result.const(0.0))
                total_node = accumulated(result, total_node, term)
                terms += 1
            row.append(total_node)
        rows.append(row)
    return assemble(graph, result, names, rows, "paths", paths=total, terms=terms, products=products)
