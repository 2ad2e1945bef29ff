"""Colourings that compress a sparse derivative into a few passes (Gebremedhin, Manne and Pothen,
"What color is your Jacobian?", SIAM Review 47, 2005).

- :func:`column_coloring`: a partial distance-2 colouring of the columns of a Jacobian pattern —
  two columns with a nonzero in the same row differ — so one forward pass seeded with the sum of a
  colour's inputs gives each row's nonzero of that colour alone (rows likewise, on the transpose,
  with one reverse pass per colour).
- :func:`star_coloring`: a distance-1 colouring of the adjacency graph of a symmetric pattern in
  which every path on four vertices has at least three colours. Each off-diagonal nonzero
  ``(i, j)`` is then alone in its colour in row ``i`` or in row ``j`` (:func:`recovery_rows`), so
  the compressed Hessian ``H·S`` determines ``H`` directly, with half the colours or fewer of a
  distance-2 colouring on a band.

Both are greedy (first fit) in a vertex order, one of :data:`ORDERS`: ``natural`` (by index: optimal
on banded patterns, a tridiagonal Jacobian gets 3 colours, a tridiagonal Hessian 3),
``largest_first`` (by degree, largest first) and ``smallest_last`` (repeatedly set aside a vertex of
least degree among those left; colour in the reverse order: Matula and Beck's degeneracy order).
:func:`fewest_colors` tries each and keeps the colouring with the fewest colours. A column's
degree counts the other columns of each of its rows (a column met in two rows counts twice: an
upper bound on its distance-2 degree that costs no more to find than a colouring).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

ORDERS = ("natural", "largest_first", "smallest_last")


def _first_free(forbidden: list[int], mark: int) -> int:
    """The smallest colour not marked ``mark`` in ``forbidden`` (grown by one colour if needed)."""
    colour = 0
    while colour < len(forbidden) and forbidden[colour] == mark:
        colour += 1
    if colour == len(forbidden):
        forbidden.append(-1)
    return colour


def transpose(rows: Sequence[Sequence[int]], columns: int) -> list[list[int]]:
    """The pattern's columns: for each column, the rows holding a nonzero in it (ascending)."""
    by_column: list[list[int]] = [[] for _ in range(columns)]
    for row, entries in enumerate(rows):
        for column in entries:
            by_column[column].append(row)
    return by_column


def column_coloring(rows: Sequence[Sequence[int]], columns: int, order: str = "natural") -> list[int]:
    """A colour per column such that no two columns with a nonzero in the same row share one,
    greedy in the vertex ``order`` (one of :data:`ORDERS`).

    At most one more colour than the largest number of other columns any column shares a row with.

    >>> column_coloring([[0, 1], [0, 1, 2], [1, 2, 3], [2, 3]], 4)  # tridiagonal
    [0, 1, 2, 0]
    """
    by_column = transpose(rows, columns)

    def others(j: int) -> list[int]:
        return [k for row in by_column[j] for k in rows[row] if k != j]

    colour = [-1] * columns
    forbidden: list[int] = []  # forbidden[c] == j: a column sharing a row with column j has colour c
    for j in vertex_order(order, columns, others, lambda j: sum(len(rows[row]) - 1 for row in by_column[j])):
        for row in by_column[j]:
            for k in rows[row]:
                if colour[k] >= 0:
                    forbidden[colour[k]] = j
        colour[j] = _first_free(forbidden, j)
    return colour


def vertex_order(
    order: str, count: int, others: Callable[[int], Sequence[int]], degree: Callable[[int], int]
) -> Sequence[int]:
    """The vertices ``0..count-1`` in ``order``, given each vertex's neighbours (``others``, a
    neighbour listed as often as it is met) and their number (``degree``, without listing them).

    >>> path = [[1], [0, 2], [1, 3], [2]]
    >>> [list(vertex_order(o, 4, path.__getitem__, lambda v: len(path[v]))) for o in ORDERS]
    [[0, 1, 2, 3], [1, 2, 0, 3], [3, 2, 1, 0]]
    """
    if order == "natural":
        return range(count)
    if order == "largest_first":
        return sorted(range(count), key=lambda v: -degree(v))  # stable: ties by index
    if order == "smallest_last":
        return _smallest_last(count, others, degree)
    raise ValueError(f"unknown colouring order {order!r} (the orders are: {', '.join(ORDERS)})")


def _smallest_last(
    count: int, others: Callable[[int], Sequence[int]], degree: Callable[[int], int]
) -> list[int]:
    """Matula and Beck's order, with a bucket per degree (dicts as ordered sets: deterministic)."""
    left = [degree(v) for v in range(count)]
    buckets: list[dict[int, None]] = [{} for _ in range(max(left, default=0) + 1)]
    for v in range(count - 1, -1, -1):  # popitem takes the last in: the lowest index first
        buckets[left[v]][v] = None
    removed = [False] * count
    aside = []
    low = 0
    for _ in range(count):
        while not buckets[low]:
            low += 1
        v, _ = buckets[low].popitem()
        removed[v] = True
        aside.append(v)
        for w in others(v):
            if not removed[w]:
                del buckets[left[w]][w]
                left[w] -= 1
                buckets[left[w]][w] = None
                low = min(low, left[w])
    aside.reverse()
    return aside


def fewest_colors(
    color: Callable[[str], list[int]], orders: Sequence[str] = ORDERS, least: int = 1
) -> tuple[list[int], str]:
    """The colouring with the fewest colours among ``color(order)`` for each of ``orders``, and
    its order (the first of them on a tie). A colouring with ``least`` colours, a lower bound the
    caller knows, ends the search: no order can do better.

    >>> rows = [[0, 2], [1, 3], [2, 3]]
    >>> [max(column_coloring(rows, 4, order)) + 1 for order in ORDERS]
    [3, 2, 2]
    >>> fewest_colors(lambda order: column_coloring(rows, 4, order))
    ([1, 0, 0, 1], 'largest_first')
    """
    best: tuple[list[int], str] | None = None
    for order in orders:
        colour = color(order)
        if best is None or max(colour, default=-1) < max(best[0], default=-1):
            best = colour, order
        if max(colour, default=-1) + 1 <= least:
            break
    assert best is not None, "no order given"
    return best


def star_coloring(neighbours: Sequence[Sequence[int]], order: str = "natural") -> list[int]:
    """A star colouring of the graph with these adjacency lists (no self loops), greedy in the
    vertex ``order`` (one of :data:`ORDERS`).

    Each vertex in turn takes the smallest colour that keeps the coloured part free of two-coloured
    paths on four vertices: besides its neighbours' colours, it may not take the colour of ``x`` on a
    path ``v - w - x - y`` with ``y`` coloured as ``w``, nor, when two of its neighbours ``w`` and
    ``x`` share a colour, the colour of a neighbour ``y`` of either (``w - v - x - y``). At most one
    more colour than the largest number of vertices within distance two of a vertex.

    >>> star_coloring([[1], [0, 2], [1, 3], [2, 4], [3]])  # a path: three colours
    [0, 1, 0, 2, 0]
    """
    n = len(neighbours)
    colour = [-1] * n
    around: list[Counter[int]] = [Counter() for _ in range(n)]  # colours of each vertex's coloured neighbours
    forbidden: list[int] = []
    for v in vertex_order(order, n, neighbours.__getitem__, lambda v: len(neighbours[v])):
        coloured = [w for w in neighbours[v] if colour[w] >= 0]
        for w in coloured:
            forbidden[colour[w]] = v
        for w in coloured:  # v - w - x - y, colour(y) == colour(w): y is a second neighbour of x coloured so
            for x in neighbours[w]:
                if x != v and colour[x] >= 0 and around[x][colour[w]] >= 2:
                    forbidden[colour[x]] = v
        shared = Counter(colour[w] for w in coloured)
        for x in coloured:  # w - v - x - y, colour(w) == colour(x): y's colour is not v's
            if shared[colour[x]] >= 2:
                for c in around[x]:
                    forbidden[c] = v
        colour[v] = _first_free(forbidden, v)
        for w in neighbours[v]:
            around[w][colour[v]] += 1
    return colour


def recovery_rows(neighbours: Sequence[Sequence[int]], colour: Sequence[int]) -> dict[tuple[int, int], int]:
    """For each edge ``(i, j)``, ``i < j``, of a star-coloured graph: the row (``i`` or ``j``) in
    which the other is alone in its colour, so that ``H[i, j]`` is the compressed Hessian's entry
    ``B[row, colour[other]]``.

    >>> recovery_rows([[1], [0, 2], [1]], [0, 1, 0])
    {(0, 1): 0, (1, 2): 2}
    """
    count = [Counter(colour[w] for w in adjacent) for adjacent in neighbours]
    rows = {}
    for i, adjacent in enumerate(neighbours):
        for j in adjacent:
            if i < j:
                if count[i][colour[j]] == 1:
                    rows[i, j] = i
                else:
                    assert count[j][colour[i]] == 1, "not a star colouring"
                    rows[i, j] = j
    return rows
