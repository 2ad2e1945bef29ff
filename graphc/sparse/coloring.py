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

Both are greedy in the natural order (first fit), which is optimal on banded patterns: a
tridiagonal Jacobian gets 3 colours, a tridiagonal Hessian 3.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


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


def column_coloring(rows: Sequence[Sequence[int]], columns: int) -> list[int]:
    """A colour per column such that no two columns with a nonzero in the same row share one.

    At most one more colour than the largest number of other columns any column shares a row with.

    >>> column_coloring([[0, 1], [0, 1, 2], [1, 2, 3], [2, 3]], 4)  # tridiagonal
    [0, 1, 2, 0]
    """
    by_column = transpose(rows, columns)
    colour = [-1] * columns
    forbidden: list[int] = []  # forbidden[c] == j: a column sharing a row with column j has colour c
    for j in range(columns):
        for row in by_column[j]:
            for k in rows[row]:
                if colour[k] >= 0:
                    forbidden[colour[k]] = j
        colour[j] = _first_free(forbidden, j)
    return colour


def star_coloring(neighbours: Sequence[Sequence[int]]) -> list[int]:
    """A star colouring of the graph with these adjacency lists (no self loops).

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
    for v in range(n):
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
