"""Sparse Jacobians and Hessians (graphc.sparse): patterns read off the graph, colourings within
their bounds, and compressed results equal to the dense ones entry for entry."""

from __future__ import annotations

import multiprocessing
import pickle
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_hypothesis import POINTS, Formula, fast, formulas

import graphc
from graphc.ops import OPS
from graphc.sparse import sparse_hessian, sparse_jacobian
from graphc.sparse.coloring import ORDERS, column_coloring, recovery_rows, star_coloring, transpose
from graphc.sparse.pattern import interactions

scipy_sparse = pytest.importorskip("scipy.sparse")

# --- patterns, as row lists, and functions with exactly that structure ------------------------------


def banded(n: int, below: int, above: int) -> list[list[int]]:
    return [list(range(max(0, i - below), min(n, i + above + 1))) for i in range(n)]


def block_diagonal(blocks: int, size: int) -> list[list[int]]:
    return [list(range(b * size, (b + 1) * size)) for b in range(blocks) for _ in range(size)]


def arrow(n: int) -> list[list[int]]:
    """A dense first row and column, and the diagonal."""
    return [list(range(n))] + [[0, i] for i in range(1, n)]


def residual_text(rows: list[list[int]], n: int) -> str:
    """One output per row, depending (nonlinearly) on exactly the row's columns."""
    outputs = []
    for i, row in enumerate(rows):
        terms = [
            f"{0.5 + 0.1 * k}*x{j}*x{j}" if k % 2 else f"sin({1 + 0.1 * i}*x{j})" for k, j in enumerate(row)
        ]
        if len(row) > 1:
            terms.append(f"x{row[0]}*exp(0.1*x{row[-1]})")
        outputs.append(" + ".join(terms) if terms else "0*1")
    unused = sorted(set(range(n)) - {j for row in rows for j in row})
    outputs[0] += "".join(f" + 0*x{j}" for j in unused)  # a variable in no row still exists
    return ", ".join(outputs)


def names(n: int) -> list[str]:
    return [f"x{j}" for j in range(n)]


def point(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, n)


def assert_jacobian_matches_dense(
    rows: list[list[int]], n: int, mode: str, backend: str = "numpy"
) -> graphc.SparseKernel:
    text, wrt = residual_text(rows, n), names(n)
    sparse = graphc.jacobian(text, wrt, mode=mode, backend=backend, sparse=True)
    dense = graphc.jacobian(text, wrt, mode=mode, backend=backend)
    values = dict(zip(wrt, point(n), strict=True))
    matrix = sparse(**values)
    assert isinstance(matrix, scipy_sparse.csr_matrix) and matrix.shape == (len(rows), n)
    np.testing.assert_allclose(matrix.toarray(), dense(**values), rtol=1e-14, atol=0)
    expected = np.zeros((len(rows), n), dtype=bool)
    for i, row in enumerate(rows):
        expected[i, row] = True
    np.testing.assert_array_equal(graphc.jacobian_sparsity(text, wrt).toarray(), expected)
    return sparse


def column_bound(rows: list[list[int]], n: int) -> int:
    """What greedy partial distance-2 colouring promises: one more than the most columns any
    column shares a row with."""
    by_column = transpose(rows, n)
    return 1 + max((len({k for r in by_column[j] for k in rows[r]} - {j}) for j in range(n)), default=0)


PATTERNS = {
    "tridiagonal": (banded(12, 1, 1), 12),
    "banded 2-3": (banded(15, 2, 3), 15),
    "block diagonal": (block_diagonal(4, 3), 12),
    "arrow": (arrow(10), 10),
    "rectangular": ([[0, 5], [1], [2, 3, 7], [], [4, 6, 7]], 8),
}


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_sparse_jacobian_equals_dense_on_structured_patterns(pattern: str, mode: str) -> None:
    rows, n = PATTERNS[pattern]
    kernel = assert_jacobian_matches_dense(rows, n, mode)
    bound = column_bound(rows, n) if kernel.mode == "forward" else column_bound(transpose(rows, n), len(rows))
    assert kernel.info["colors"] <= bound
    assert kernel.info["nnz"] == sum(map(len, rows))


def test_tridiagonal_jacobian_takes_three_colors_in_either_mode() -> None:
    rows = banded(40, 1, 1)
    for mode in ("forward", "reverse", "auto"):
        assert graphc.jacobian(residual_text(rows, 40), names(40), mode=mode, sparse=True).info["colors"] == 3


def test_auto_picks_the_fewer_colors() -> None:
    n = 10
    rows = [list(range(n))] + [[i] for i in range(1, n)]  # a dense row: rows need 2 colours, columns 10
    kernel = graphc.jacobian(residual_text(rows, n), names(n), sparse=True)
    assert (kernel.mode, kernel.info["colors"]) == ("reverse", 2)
    columns = transpose(rows, n)  # its transpose: a dense column: forward needs 2
    kernel = graphc.jacobian(residual_text(columns, n), names(n), sparse=True)
    assert (kernel.mode, kernel.info["colors"]) == ("forward", 2)


@st.composite
def random_patterns(draw: st.DrawFn) -> tuple[list[list[int]], int]:
    n = draw(st.integers(1, 9))
    m = draw(st.integers(1, 9))
    rows = [sorted(draw(st.sets(st.integers(0, n - 1), max_size=n))) for _ in range(m)]
    return rows, n


@fast(40)
@given(random_patterns(), st.sampled_from(["forward", "reverse"]))
def test_sparse_jacobian_equals_dense_on_random_patterns(
    pattern: tuple[list[list[int]], int], mode: str
) -> None:
    rows, n = pattern
    kernel = assert_jacobian_matches_dense(rows, n, mode)
    bound = column_bound(rows, n) if mode == "forward" else column_bound(transpose(rows, n), len(rows))
    assert kernel.info["colors"] <= bound


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_llvm_backend_gives_the_same_sparse_jacobian(mode: str) -> None:
    rows, n = PATTERNS["banded 2-3"]
    assert_jacobian_matches_dense(rows, n, mode, backend="llvm")


@fast(60)
@given(st.lists(formulas(max_leaves=6), min_size=1, max_size=3), POINTS)
def test_sparse_jacobian_of_random_formulas_equals_dense(fs: list[Formula], at: dict[str, float]) -> None:
    graph = graphc.parse(", ".join(f.text for f in fs))
    if not graph.variables:
        return
    values = {name: at[name] for name in graph.variables}
    for mode in ("forward", "reverse"):  # each mode against its dense twin: at a singular point
        dense = graphc.jacobian(graph, mode=mode)(**values)  # ((x-x)**(x+x) at 0) the modes differ
        sparse = graphc.jacobian(graph, mode=mode, sparse=True)(**values).toarray()
        np.testing.assert_allclose(sparse, dense, rtol=1e-12, atol=0, equal_nan=True)


# --- Hessians ---------------------------------------------------------------------------------------------


def objective_text(rows: list[list[int]], n: int) -> str:
    """A function whose Hessian has exactly the symmetric pattern ``rows`` (diagonal included)."""
    terms = []
    for i, row in enumerate(rows):
        for j in row:
            if j == i:
                terms.append(f"exp({0.3 + 0.01 * i}*x{i})")
            elif j > i:
                terms.append(f"{1 + 0.1 * i}*x{i}*x{j}")
    terms += [f"0*x{j}" for j in range(n)]  # every variable exists
    return " + ".join(terms)


def symmetric(rows: list[list[int]], n: int) -> list[list[int]]:
    pairs = {(i, j) for i, row in enumerate(rows) for j in row} | {
        (j, i) for i, row in enumerate(rows) for j in row
    }
    return [sorted(j for (k, j) in pairs if k == i) for i in range(n)]


def _adjacency(n: int, edges: list[tuple[int, int]]) -> list[list[int]]:
    """The sorted neighbour lists of an undirected graph on ``n`` vertices (loops dropped)."""
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for a, b in edges:
        if a != b:
            neighbours[a].add(b)
            neighbours[b].add(a)
    return [sorted(s) for s in neighbours]


def assert_star_coloring(neighbours: list[list[int]], colour: list[int]) -> None:
    for v, adjacent in enumerate(neighbours):
        assert all(colour[v] != colour[w] for w in adjacent)
    for a, adjacent in enumerate(neighbours):  # every path on four vertices has three colours or more
        for b in adjacent:
            for c in neighbours[b]:
                if c == a:
                    continue
                for d in neighbours[c]:
                    if d not in (a, b):
                        assert len({colour[a], colour[b], colour[c], colour[d]}) >= 3, (a, b, c, d)


def star_bound(neighbours: list[list[int]]) -> int:
    """One more than the most vertices within distance two of a vertex."""
    within = [
        {w for u in adjacent for w in [u, *neighbours[u]]} - {v} for v, adjacent in enumerate(neighbours)
    ]
    return 1 + max(map(len, within), default=0)


def assert_hessian_matches_dense(
    rows: list[list[int]], n: int, backend: str = "numpy"
) -> graphc.SparseKernel:
    text, wrt = objective_text(rows, n), names(n)
    sparse = graphc.hessian(text, wrt, backend=backend, sparse=True)
    values = dict(zip(wrt, point(n, 1), strict=True))
    matrix = sparse(**values)
    np.testing.assert_allclose(
        matrix.toarray(), graphc.hessian(text, wrt, backend=backend)(**values), rtol=1e-14
    )
    assert (matrix != matrix.T).nnz == 0  # exactly symmetric: one node serves both triangles
    pattern = symmetric(rows, n)
    expected = np.zeros((n, n), dtype=bool)
    for i, row in enumerate(pattern):
        expected[i, row] = True
    np.testing.assert_array_equal(graphc.hessian_sparsity(text, wrt).toarray(), expected)
    neighbours = [[j for j in row if j != i] for i, row in enumerate(pattern)]
    assert sparse.info["colors"] <= star_bound(neighbours)
    return sparse


@pytest.mark.parametrize("pattern", ["tridiagonal", "banded 2-3", "block diagonal", "arrow"])
def test_sparse_hessian_equals_dense_on_structured_patterns(pattern: str) -> None:
    rows, n = PATTERNS[pattern]
    assert_hessian_matches_dense(symmetric(rows, n), n)


def test_tridiagonal_hessian_takes_three_colors() -> None:
    kernel = assert_hessian_matches_dense(banded(30, 1, 1), 30)
    assert kernel.info["colors"] == 3
    assert kernel.info["coloring"] == "natural"  # three colours are the least a path takes


def test_arrow_hessian_takes_two_colors() -> None:
    assert assert_hessian_matches_dense(arrow(20), 20).info["colors"] == 2


def test_llvm_backend_gives_the_same_sparse_hessian() -> None:
    assert_hessian_matches_dense(banded(12, 2, 2), 12, backend="llvm")


@fast(40)
@given(random_patterns())
def test_sparse_hessian_equals_dense_on_random_patterns(pattern: tuple[list[list[int]], int]) -> None:
    rows, n = pattern
    assert_hessian_matches_dense(symmetric([row for row in rows[:n]] + [[]] * (n - len(rows)), n), n)


@fast(80)
@given(formulas(max_leaves=8), POINTS)
def test_sparse_hessian_of_random_formulas_equals_dense(f: Formula, at: dict[str, float]) -> None:
    """The pattern's nonlinear interactions, derived from the op table, cover every structural
    nonzero of the dense Hessian (dp over dp), whatever the ops."""
    graph = graphc.parse(f.text)
    if not graph.variables:
        return
    values = {name: at[name] for name in graph.variables}
    dense = np.asarray(graphc.hessian(graph)(**values))
    sparse = graphc.hessian(graph, sparse=True)(**values).toarray()

    def close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.isclose(a, b, rtol=1e-12, atol=1e-300, equal_nan=True)

    # dense's two mirrored entries are computed by different passes, and near overflow or subnormal
    # values one may be NaN where the other is finite ((y*x)**(x+x) at y = 2.2e-309); the symmetric
    # recovery reads one of them, so each sparse entry must be one of its two dense twins
    assert np.all(close(sparse, dense) | close(sparse, dense.T)), (sparse, dense)
    assert np.array_equal(sparse, sparse.T, equal_nan=True)


@fast(60)
@given(
    st.integers(1, 14).flatmap(
        lambda n: st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n).map(
            lambda e: (n, e)
        )
    )
)
def test_star_coloring_has_no_two_colored_path_on_four_vertices(
    graph: tuple[int, list[tuple[int, int]]],
) -> None:
    adjacency = _adjacency(*graph)
    colour = star_coloring(adjacency)
    assert_star_coloring(adjacency, colour)
    assert max(colour, default=-1) + 1 <= star_bound(adjacency)
    for (i, j), row in recovery_rows(adjacency, colour).items():  # the other is alone in its colour there
        other = j if row == i else i
        assert sum(colour[w] == colour[other] for w in adjacency[row]) == 1


def test_column_coloring_separates_columns_that_share_a_row() -> None:
    rows = [[0, 3, 4], [1, 2], [2, 4], [0, 1]]
    for order in ORDERS:
        colour = column_coloring(rows, 5, order)
        for row in rows:
            assert len({colour[j] for j in row}) == len(row)


@fast(60)
@given(random_patterns())
def test_every_order_gives_a_column_coloring_within_the_greedy_bound(
    pattern: tuple[list[list[int]], int],
) -> None:
    rows, n = pattern
    for order in ORDERS:
        colour = column_coloring(rows, n, order)
        assert len(colour) == n and min(colour, default=0) >= 0
        for row in rows:
            assert len({colour[j] for j in row}) == len(row), (order, row, colour)
        assert max(colour, default=-1) + 1 <= column_bound(rows, n)


@fast(60)
@given(
    st.integers(1, 14).flatmap(
        lambda n: st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n).map(
            lambda e: (n, e)
        )
    ),
    st.sampled_from(ORDERS),
)
def test_every_order_gives_a_star_coloring(graph: tuple[int, list[tuple[int, int]]], order: str) -> None:
    adjacency = _adjacency(*graph)
    colour = star_coloring(adjacency, order)
    assert_star_coloring(adjacency, colour)
    assert max(colour, default=-1) + 1 <= star_bound(adjacency)


def crown(k: int) -> list[list[int]]:
    """Rows joining column 2i to column 2j+1 for i != j: natural order (0, 1, 2, ...) alternates
    the two sides and needs k colours, an order by degree two."""
    return [[2 * i, 2 * j + 1] for i in range(k) for j in range(k) if i != j]


def test_the_fewest_colors_are_kept_and_reported() -> None:
    rows, n = crown(5), 10
    counts = {order: max(column_coloring(rows, n, order)) + 1 for order in ORDERS}
    assert counts["natural"] == 5 and min(counts.values()) == 2
    graph = graphc.parse(residual_text(rows, n))
    kernel = sparse_jacobian(graph, names(n), mode="forward")
    assert kernel.info["colors"] == 2 and kernel.info["coloring"] != "natural"
    natural = sparse_jacobian(graph, names(n), mode="forward", order="natural")
    assert (natural.info["colors"], natural.info["coloring"]) == (5, "natural")
    values = point(n)
    np.testing.assert_array_equal(kernel.at(values).toarray(), natural.at(values).toarray())
    assert_jacobian_matches_dense(rows, n, "forward")


@pytest.mark.parametrize("order", ORDERS)
def test_each_order_gives_the_dense_hessian(order: str) -> None:
    rows = symmetric(PATTERNS["arrow"][0], 10)
    text, wrt = objective_text(rows, 10), names(10)
    kernel = sparse_hessian(graphc.parse(text), wrt, order=order)
    assert kernel.info["coloring"] == order
    values = point(10, 1)
    dense = graphc.hessian(text, wrt)(**dict(zip(wrt, values, strict=True)))
    np.testing.assert_allclose(kernel.at(values).toarray(), dense, rtol=1e-14)


def test_an_unknown_coloring_order_is_refused() -> None:
    with pytest.raises(graphc.GraphcError, match="unknown colouring order 'random'.*fewest, natural"):
        sparse_jacobian(graphc.parse("x*y, y"), ["x", "y"], order="random")


# --- the op table's second-order structure ------------------------------------------------------------


def test_every_op_has_derived_interactions() -> None:
    for name, op in OPS.items():
        for a, b in interactions(name):
            assert 0 <= a <= b < op.arity
    assert interactions("sub") == () and interactions("neg") == ()  # linear
    assert interactions("sign") == ()  # no partial: no derivative flows through it
    assert interactions("pow") == ((0, 0), (0, 1), (1, 1))


def test_a_nonsmooth_op_contributes_what_dense_graphc_computes() -> None:
    # relu's partial is sign(out): structurally constant, so relu is linear to second order, as
    # dp over dp has it (a zero Hessian, not a missing or spurious entry)
    assert graphc.hessian_sparsity("relu(x*y) + abs(x)").nnz == 2
    np.testing.assert_array_equal(
        graphc.hessian("relu(x*y)", sparse=True)(1.0, 2.0).toarray(), [[0, 1], [1, 0]]
    )


# --- calls, batches, errors ---------------------------------------------------------------------------


def test_a_batch_gives_one_matrix_per_point() -> None:
    kernel = graphc.jacobian("x*y, sin(y)", sparse=True)
    xs, ys = np.linspace(0, 1, 5), np.linspace(1, 2, 5)
    matrices = kernel(xs, ys)
    assert isinstance(matrices, list) and len(matrices) == 5
    for x, y, matrix in zip(xs, ys, matrices, strict=True):
        np.testing.assert_array_equal(matrix.toarray(), kernel(x, y).toarray())
    assert len(kernel(xs, 1.5)) == 5  # scalars broadcast
    with pytest.raises(graphc.EvaluationError, match="one-dimensional"):
        kernel(np.ones((2, 2)), 1.0)


def test_keywords_and_variables_outside_wrt() -> None:
    kernel = graphc.jacobian("a*x**2, x*y", ["x", "y"], sparse=True)
    assert kernel.variables == ("a", "x", "y") and kernel.wrt == ("x", "y")
    np.testing.assert_array_equal(kernel(a=3.0, x=2.0, y=5.0).toarray(), [[12.0, 0.0], [5.0, 2.0]])
    np.testing.assert_array_equal(kernel.at(np.array([3.0, 2.0, 5.0])).toarray(), [[12.0, 0.0], [5.0, 2.0]])
    with pytest.raises(graphc.EvaluationError, match="missing value"):
        kernel(x=1.0)


def test_constant_entries_are_not_computed_at_each_call() -> None:
    kernel = graphc.jacobian("x0 - 2*x1 + x2, x1 - 2*x2 + exp(x2)", ["x0", "x1", "x2"], sparse=True)
    assert (kernel.info["nnz"], kernel.info["computed"]) == (5, 1)
    np.testing.assert_array_equal(kernel(0.0, 0.0, 0.0).toarray(), [[1, -2, 1], [0, 1, -1]])
    linear = graphc.jacobian("x - y, 2*y", sparse=True, backend="llvm")  # nothing to compute at all
    np.testing.assert_array_equal(linear(1.0, 2.0).toarray(), [[1, -1], [0, 2]])
    assert len(linear(np.zeros(3), 1.0)) == 3


def test_sparse_errors_are_graphc_errors() -> None:
    with pytest.raises(graphc.GraphcError, match="one output"):
        graphc.hessian_sparsity("x*y, x")
    with pytest.raises(graphc.GraphcError, match="unknown Jacobian mode"):
        graphc.jacobian("x*y", mode="sideways", sparse=True)
    with pytest.raises(graphc.GraphcError, match="takes no method"):
        graphc.hessian("x*y", method="paths", sparse=True)


def test_missing_scipy_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)
    monkeypatch.setitem(sys.modules, "scipy", None)
    with pytest.raises(graphc.GraphcError, match=r"pip install 'graphc\[sparse\]'"):
        graphc.jacobian_sparsity("x*y")


def test_empty_rows_and_columns() -> None:
    for mode in ("forward", "reverse"):
        kernel = graphc.jacobian("1 + 0*x0, x1**2, 3 + 0*x2", names(3), mode=mode, sparse=True)
        np.testing.assert_array_equal(kernel(1.0, 2.0, 3.0).toarray(), [[0, 0, 0], [0, 4, 0], [0, 0, 0]])
        assert kernel.info["nnz"] == 1


def test_wrt_a_subset_treats_the_other_variables_as_constants() -> None:
    text = "a*x*y + exp(a*x) + a**2 + sin(y)*b"
    values = {"a": 0.7, "b": -1.3, "x": 0.4, "y": 2.0}
    sparse = graphc.hessian(text, ["x", "y"], sparse=True)
    assert sparse.variables == ("a", "b", "x", "y") and sparse.shape == (2, 2)
    np.testing.assert_allclose(
        sparse(**values).toarray(), graphc.hessian(text, ["x", "y"])(**values), rtol=1e-15
    )
    np.testing.assert_array_equal(graphc.hessian_sparsity(text, ["y"]).toarray(), [[True]])
    jacobian = graphc.jacobian("a*x, b*y, a*b", ["x", "y"], sparse=True)
    np.testing.assert_array_equal(jacobian.pattern.toarray(), [[True, False], [False, True], [False, False]])


def test_importing_graphc_does_not_import_scipy() -> None:
    code = "import sys, graphc; graphc.objective; sys.exit('scipy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_build_reports_the_seconds_of_each_stage() -> None:
    jacobian = graphc.jacobian(residual_text(banded(6, 1, 1), 6), names(6), sparse=True)
    hessian = graphc.hessian(objective_text(banded(6, 1, 1), 6), names(6), sparse=True)
    for kernel in (jacobian, hessian):
        seconds = kernel.info["seconds"]
        assert list(seconds) == ["pattern", "coloring", "passes", "compile"]
        assert all(isinstance(s, float) and s >= 0.0 for s in seconds.values())


# --- pickling: a SparseKernel travels as plain data and its compiled kernel's graph ----------------


def _call_pickled_sparse(blob: bytes, args: tuple) -> list[tuple[bytes, bytes, bytes]]:
    matrices = pickle.loads(blob)(*args)
    return [(m.data.tobytes(), m.indices.tobytes(), m.indptr.tobytes()) for m in matrices]


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("kind", ["jacobian", "hessian", "constant entries"])
def test_a_pickled_sparse_kernel_gives_the_same_matrices(kind: str, backend: str) -> None:
    text = residual_text(banded(6, 1, 2), 6)
    kernel = {
        "jacobian": lambda: graphc.jacobian(text, backend=backend, sparse=True),
        "hessian": lambda: graphc.hessian("x1*x2*x3 + sin(x1) + x4**2 * x5", backend=backend, sparse=True),
        "constant entries": lambda: graphc.jacobian("2*x + y, x - 3*y", backend=backend, sparse=True),
    }[kind]()
    blob = pickle.dumps(kernel)
    loaded = pickle.loads(blob)
    assert (loaded.shape, loaded.wrt, loaded.variables, loaded.info, loaded.mode) == (
        kernel.shape,
        kernel.wrt,
        kernel.variables,
        kernel.info,
        kernel.mode,
    )
    rng = np.random.default_rng(29)
    args = tuple(rng.uniform(0.5, 2.0, 5) for _ in kernel.variables)
    here = [(m.data.tobytes(), m.indices.tobytes(), m.indptr.tobytes()) for m in kernel(*args)]
    assert _call_pickled_sparse(blob, args) == here
    point = np.array([a[0] for a in args])
    assert (loaded.at(point) != kernel.at(point)).nnz == 0
    if kind == "jacobian":  # and in a fresh process
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            assert pool.submit(_call_pickled_sparse, blob, args).result(timeout=180) == here


def test_a_damaged_sparse_pickle_is_a_data_error() -> None:
    from graphc.errors import DataError
    from graphc.sparse import rebuild

    kernel = graphc.jacobian("x*y, y*z, z + x", sparse=True)
    _, (good,) = kernel.__reduce__()
    assert (rebuild(dict(good))(1.0, 2.0, 3.0) != kernel(1.0, 2.0, 3.0)).nnz == 0
    cases = [
        ({"format": "x"}, "not a pickled graphc SparseKernel"),
        ({"kernel": "kernel"}, "no compiled kernel"),
        ({"indptr": [0, 2, 1, 6]}, "not the CSR structure of a 3x3 matrix"),
        ({"indices": [0, 1, 1, 2, 0, 9]}, "not the CSR structure"),
        ({"template": [0.0] * 5}, "the template is not one float per nonzero"),
        ({"take": [0, 1, 2, 3, 4, 99]}, "do not fit the kernel's outputs"),
        ({"info": {"colors": print}}, "holds a builtin_function_or_method"),
    ]
    for change, message in cases:
        with pytest.raises(DataError, match=message):
            rebuild({**good, **change})


def test_an_output_used_by_another_output_or_a_variable_output_keeps_its_pattern() -> None:
    """The pattern walk drops an operand's set at its last use, but an output's only at the end."""
    pattern = graphc.jacobian_sparsity("u = x*y; u, sin(u) + z, y, 2 + 0*x", ["x", "y", "z"]).toarray()
    np.testing.assert_array_equal(pattern, [[1, 1, 0], [1, 1, 1], [0, 1, 0], [0, 0, 0]])


def test_reverse_passes_without_the_partials_cache_build_what_cached_passes_build() -> None:
    """reverse_entries builds its partials at each visit (no cache): the same nodes, in the same
    order, as the cached partials of dp's dense Jacobian, and a second visit builds none."""
    from graphc.diff import dp
    from graphc.diff.common import LocalPartials

    text = "x0*x1 - 2*sin(x1) + x2, exp(x1)*x2 + tanh(x0*x1), x2**3 - x0/x1"
    graph = graphc.parse(text)
    cached, uncached = graph.copy(), graph.copy()
    edges = [(node, slot) for node in range(len(graph)) for slot in range(len(graph.operands[node]))]
    first = [LocalPartials(cached)(node, slot) for node, slot in edges]
    assert [LocalPartials(uncached, cached=False)(node, slot) for node, slot in edges] == first
    assert (uncached.ops, uncached.operands, uncached.data) == (cached.ops, cached.operands, cached.data)
    size = len(uncached)
    assert [LocalPartials(uncached, cached=False)(node, slot) for node, slot in edges] == first
    assert len(uncached) == size
    kernel = graphc.jacobian(text, names(3), mode="reverse", sparse=True)
    dense = dp.differentiate(graph, names(3))
    at = {"x0": 0.3, "x1": -1.2, "x2": 0.8}
    np.testing.assert_array_equal(kernel(**at).toarray(), np.reshape(graphc.compile(dense)(**at)[3:], (3, 3)))
