"""Optimal Jacobian chains: the bracketing of a chain of block Jacobians by the matrix-chain DP.

A function that is a chain of blocks from a vector input to a vector output, ``y = f_L(…f_1(x))``,
has the Jacobian ``J_L ··· J_1``. Forward mode pushes one tangent per input element through
every block, reverse mode one adjoint per output element: ``n_0 · Σ c_i`` and ``n_L · Σ c_i``
scalar multiplications, ``c_i`` the cost of one product with ``J_i``. Multiplying the local
Jacobians themselves, in the cheapest order, can cost far less: the 003 lecture's "going
left-to-right is cheaper: O(Ln²) vs O((L−1)n³)" is one case of choosing the bracketing, and the
choice is the matrix-chain problem, solved by dynamic programming over the chain's intervals (the
000 lecture's DP idea, as in backprop itself).

A link is a ``W @ h`` (its Jacobian ``W``, a matrix given by the graph), an ``h @ W`` (``Wᵀ``) or
an elementwise op of ``h`` (a diagonal Jacobian, kept as the vector of its local partials, from the
op's own derivative rule). A product with a diagonal factor scales rows or columns, so the DP
counts it as such. :func:`chain_of` finds the chain (None if the graph is not one), :func:`plan`
runs the DP, and :func:`build` adds the bracketed product to a graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphc.diff.common import depends_on
from graphc.graph import Graph
from graphc.ops import ALL_OPS, VAR


@dataclass(frozen=True)
class Link:
    """One factor ``J_i`` of a chain: ``rows × cols``, diagonal or not, and where it comes from."""

    node: int  # the block's node (its result, f_i(h))
    operand: int  # the node h the chain goes through
    rows: int
    cols: int
    diagonal: bool
    label: str  # how the order prints this factor: "J3" (counting from the input)

    def product_cost(self) -> int:
        """The multiplications of one Jacobian-vector product with this factor."""
        return self.rows if self.diagonal else self.rows * self.cols


def _vector_size(graph: Graph, node: int) -> int | None:
    shape = graph.shape(node)
    return shape[0] if len(shape) == 1 and isinstance(shape[0], int) else None


def chain_of(graph: Graph, name: str) -> list[Link] | None:
    """The links from input ``name`` to the single output, input side first; None unless every
    node on the way is a link (one operand on the chain) between vectors."""
    if len(graph.outputs) != 1:
        return None
    source = graph.variable(name)
    on_chain = depends_on(graph, [source])
    node = graph.outputs[0]
    links: list[Link] = []
    while node != source:
        args = graph.args(node)
        through = [a for a in args if on_chain[a]]
        op = ALL_OPS[graph.op(node)]
        rows, cols = _vector_size(graph, node), _vector_size(graph, through[0]) if len(through) == 1 else None
        if rows is None or cols is None or len(through) != 1 or graph.op(node) == VAR:
            return None
        h = through[0]
        if op.product:
            other = args[0] if args[1] == h else args[1]
            if len(graph.shape(other)) != 2:
                return None
            diagonal = False
        elif not op.block and all(graph.shape(a) in ((), (cols,)) for a in args) and rows == cols:
            diagonal = True
        else:
            return None
        links.append(Link(node, h, rows, cols, diagonal, ""))
        node = h
    if all(link.diagonal for link in links):
        return None  # a diagonal Jacobian: no product to order
    links.reverse()
    return [Link(k.node, k.operand, k.rows, k.cols, k.diagonal, f"J{i + 1}") for i, k in enumerate(links)]


@dataclass(frozen=True)
class Plan:
    """The cheapest bracketing of ``J_L ··· J_1``, with its cost and the two modes' for comparison."""

    multiplications: int
    order: str  # "J3 @ (J2 @ J1)"
    forward: int  # n_0 tangents through every link
    reverse: int  # n_L adjoints through every link
    split: dict[tuple[int, int], int]  # the DP's choice for each interval


def plan(links: list[Link]) -> Plan:
    """The matrix-chain DP over the factors ``J_L, ..., J_1`` (interval [i, j] in the product's
    left-to-right order), a product with a diagonal factor costing a scaling."""
    factors = links[::-1]  # the product's order, output side first
    n = len(factors)
    diagonal = [[False] * n for _ in range(n)]
    cost = [[0] * n for _ in range(n)]
    split: dict[tuple[int, int], int] = {}
    for i in range(n):
        diagonal[i][i] = factors[i].diagonal
    for span in range(1, n):
        for i in range(n - span):
            j = i + span
            diagonal[i][j] = diagonal[i][j - 1] and factors[j].diagonal
            best = None
            for k in range(i, j):
                rows, inner, cols = factors[i].rows, factors[k].cols, factors[j].cols
                left, right = diagonal[i][k], diagonal[k + 1][j]
                step = (
                    rows
                    if left and right
                    else inner * cols
                    if left
                    else rows * inner
                    if right
                    else rows * inner * cols
                )
                total = cost[i][k] + cost[k + 1][j] + step
                if best is None or total < best:
                    best, split[(i, j)] = total, k
            cost[i][j] = best or 0
    per_pass = sum(link.product_cost() for link in links)
    return Plan(
        cost[0][n - 1], _order(factors, split, n), links[0].cols * per_pass, links[-1].rows * per_pass, split
    )


def _order(factors: list[Link], split: dict[tuple[int, int], int], n: int) -> str:
    """The bracketing as text (``J3 @ (J2 @ J1)``), built with an explicit stack (no recursion)."""
    text: dict[tuple[int, int], str] = {}
    stack: list[tuple[int, int, bool]] = [(0, n - 1, False)]
    while stack:
        i, j, ready = stack.pop()
        k = split.get((i, j), i)
        if i == j:
            text[(i, j)] = factors[i].label
        elif ready:
            parts = [text[(i, k)] if i == k else f"({text[(i, k)]})"]
            parts.append(text[(k + 1, j)] if k + 1 == j else f"({text[(k + 1, j)]})")
            text[(i, j)] = " @ ".join(parts)
        else:
            stack += [(i, j, True), (i, k, False), (k + 1, j, False)]
    return text[(0, n - 1)]


def _factor(b: Graph, link: Link) -> int:
    """The node of ``J_i``: the matrix itself, its transpose, or the vector of a diagonal."""
    op = ALL_OPS[b.op(link.node)]
    args = b.args(link.node)
    if not link.diagonal:
        if args[1] == link.operand:
            return args[0]  # W @ h
        return b.apply("transpose", args[1], params=(1, 0))  # h @ W: J = Wᵀ
    terms = []
    for slot, arg in enumerate(args):
        rule = op.partials[slot]
        if arg == link.operand and rule is not None:
            partial = rule(b, args, link.node)
            if partial is not None:
                terms.append(partial)
    total: Any = terms[0] if terms else b.const(0.0)
    for term in terms[1:]:
        total = b.add(total, term)
    if b.shape(total) != (link.rows,):
        total = b.apply("broadcast", total, params=(link.rows,))
    return int(total)


def _times(b: Graph, left: tuple[int, bool], right: tuple[int, bool], rows: int) -> tuple[int, bool]:
    (x, x_diag), (y, y_diag) = left, right
    if x_diag and y_diag:
        return b.mul(x, y), True
    if x_diag:
        return b.mul(b.apply("reshape", x, params=(rows, 1)), y), False
    if y_diag:
        return b.mul(x, y), False  # scales the columns
    return b.apply("matmul", x, y), False


def build(b: Graph, links: list[Link], chosen: Plan) -> int:
    """Add ``J_L ··· J_1`` in the planned bracketing to graph ``b``; return its node (a matrix)."""
    factors = links[::-1]
    n = len(factors)
    done: dict[tuple[int, int], tuple[int, bool]] = {}
    stack: list[tuple[int, int, bool]] = [(0, n - 1, False)]
    while stack:
        i, j, ready = stack.pop()
        if i == j:
            done[(i, j)] = (_factor(b, factors[i]), factors[i].diagonal)
        elif ready:
            k = chosen.split[(i, j)]
            done[(i, j)] = _times(b, done[(i, k)], done[(k + 1, j)], factors[i].rows)
        else:
            k = chosen.split[(i, j)]
            stack += [(i, j, True), (i, k, False), (k + 1, j, False)]
    return done[(0, n - 1)][0]


def multiplications(graph: Graph, start: int = 0) -> int:
    """The scalar multiplications per point of the nodes from ``start`` on (those a derivative
    added to its function's) that the outputs depend on, as each op's entry counts them
    (``multiplies``). A node no output needs is not counted: the backends never compute it (``dp``
    builds the adjoints of every operand of a block, the weights' too, and the kernel drops those
    of the inputs not asked for; counting them doubled reverse mode's count on a matrix chain)."""
    total = 0
    shapes, operands = graph.shapes, graph.operands
    live = graph.reachable()
    for node in range(start, len(graph)):
        if not live[node]:
            continue
        count = ALL_OPS[graph.op(node)].multiplies if graph.op(node) in ALL_OPS else None
        if count is not None:
            try:
                total += count(tuple(shapes[a] for a in operands[node]), shapes[node])
            except TypeError:  # a named dimension: not counted
                continue
    return total
