"""``paths``: the path-aggregation lemma, literally.

``∂o/∂x`` is the sum over every path from ``x`` to ``o`` of the product of the local derivatives
on the path's edges (one edge per operand slot, so ``x*x`` gives two paths). The number of paths
can grow exponentially with depth: it is counted first, exactly, by dynamic programming over
Python integers, and the method refuses with :class:`TooManyPathsError` before enumerating more
than ``max_paths``. Below the limit the paths are enumerated one by one (an explicit stack, no
recursion), so the method's cost is the path count, as the lemma's cost is.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    local = LocalPartials(result)
    products = terms = 0
    rows = []
    for output in graph.outputs:
        row: list[int | None] = []
        for name in names:
            source = result.variable(name)
            on_path = depends_on(result, [source], len(graph))
            total_node: int | None = None
            # Depth-first over the paths from the output back to the source; each stack entry is
            # a partial path's end node and the product of the local derivatives along it so far.
            stack: list[tuple[int, int | None]] = [(output, None)] if on_path[output] else []
            while stack:
                node, product = stack.pop()
                if node == source:
                    term = result.const(1.0) if product is None else product
                    total_node = accumulated(result, total_node, term)
                    terms += 1
                    continue
                for slot, arg in enumerate(result.args(node)):
                    if not on_path[arg]:
                        continue
                    z = local(node, slot)
                    if z is None:  # this path's product is structurally zero
                        continue
                    stack.append((arg, z if product is None else scaled(result, product, z)))
                    products += product is not None
            row.append(total_node)
        rows.append(row)
    return assemble(graph, result, names, rows, "paths", paths=total, terms=terms, products=products)
