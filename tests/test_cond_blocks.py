"""The NaN-free rule of ``where`` through block ops: a condition per element keeps its unselected
lanes out of every derivative below a reshape, a transpose, a matmul, a reduction or a softmax,
in ``dp``, ``forward`` and ``numeric`` on the NumPy backend, at points where the unselected
branch is infinite or NaN; and the structural pullback that carries the flag marks exactly the
elements that reach a live one."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.backends import BACKENDS, UNAVAILABLE
from graphc.diff.blocks import _flagged_vjp

METHODS = ["dp", "forward", "numeric"]
AVAILABLE = [name for name in BACKENDS if name not in UNAVAILABLE]
RNG = np.random.default_rng(25)

X2 = np.array([[1.0, 3.0], [-1.0, 0.0]])  # row 1: log is NaN and -inf, sqrt is NaN and 0

# (program, point, the analytic gradient by variable); every unselected lane's branch is inf or
# NaN there, and no selected lane is at a kink, so central differences are exact enough too
CASES = [
    (
        "x: [3]; y = where(x > 0, sqrt(x), 0); sum(y)",
        {"x": np.array([4.0, -1.0, 0.25])},
        {"x": [0.25, 0.0, 1.0]},
    ),
    (
        "x: [3]; sum(where(x > 0, transpose(reshape(sqrt(x), [3, 1])), 0))",
        {"x": np.array([4.0, -1.0, -2.0])},
        {"x": [0.25, 0.0, 0.0]},
    ),
    (  # an outer product: the infinite column of log(x) feeds only unselected outputs
        "x: [2]; a: [2]; sum(where(x > 0, reshape(a, [2, 1]) @ reshape(log(x), [1, 2]), 0))",
        {"x": np.array([2.0, -1.0]), "a": np.array([2.0, 3.0])},
        {"x": [2.5, 0.0], "a": [np.log(2.0), np.log(2.0)]},
    ),
    (
        "X: [2, 2]; c: [2]; sum(where(c > 0, sum(sqrt(X), axis=1), 0))",
        {"X": np.array([[4.0, 1.0], [-1.0, -4.0]]), "c": np.array([1.0, -1.0])},
        {"X": [[0.25, 0.5], [0.0, 0.0]], "c": [0.0, 0.0]},
    ),
    (  # softmax(log X) per row is X / its row sum; row 1 is NaN and unselected
        "X: [2, 2]; c: [2, 1]; w: [2, 2]; sum(where(c > 0, softmax(log(X), axis=1), 0) * w)",
        {"X": X2, "c": np.array([[1.0], [-1.0]]), "w": np.array([[1.0, 2.0], [3.0, 4.0]])},
        {"X": [[-0.1875, 0.0625], [0.0, 0.0]], "c": [[0.0], [0.0]], "w": [[0.25, 0.75], [0.0, 0.0]]},
    ),
    (  # the where below the block op, the unsafe op above it: sqrt of an unselected row's 0
        "X: [2, 2]; c: [2, 1]; sum(sqrt(sum(where(c > 0, X, 0), axis=1)))",
        {"X": np.array([[4.0, 0.0], [1.0, 2.0]]), "c": np.array([[1.0], [-1.0]])},
        {"X": [[0.25, 0.25], [0.0, 0.0]], "c": [[0.0], [0.0]]},
    ),
    (
        "x: [3]; sum(sqrt(transpose(reshape(where(x > 0, x, 0), [3, 1]))))",
        {"x": np.array([4.0, -1.0, 1.0])},
        {"x": [0.25, 0.0, 0.5]},
    ),
    (
        "X: [2, 2]; c: [2]; sum(where(c > 0, max(log(X), axis=1), 0))",
        {"X": X2, "c": np.array([1.0, -1.0])},
        {"X": [[0.0, 1 / 3], [0.0, 0.0]], "c": [0.0, 0.0]},
    ),
    (
        "X: [2, 2]; c: [2]; sum(where(c > 0, logsumexp(log(X), axis=1), 0))",
        {"X": X2, "c": np.array([1.0, -1.0])},
        {"X": [[0.25, 0.25], [0.0, 0.0]], "c": [0.0, 0.0]},
    ),
]


@pytest.mark.parametrize(("text", "point", "expected"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("method", METHODS)
def test_an_unselected_lane_below_a_block_op_contributes_exactly_zero(text, point, expected, method):
    kernel = graphc.grad(text, method=method)
    got = dict(zip(kernel.wrt, kernel(**point), strict=True))
    for name, want in expected.items():
        assert np.all(np.isfinite(got[name])), (method, name, got[name])
        np.testing.assert_allclose(got[name], want, rtol=1e-6 if method == "numeric" else 1e-15, atol=1e-9)


# at the boundary itself (x = 0, where sqrt's derivative is infinite): the exact methods only
EDGES = [
    ("x: [3]; sum(where(x > 0, transpose(reshape(sqrt(x), [3, 1])), 0))", [4.0, 0.0, -1.0], [0.25, 0.0, 0.0]),
    ("x: [3]; sum(where(x > 0, reshape(sqrt(x), [3]), 0))", [0.0, 4.0, 0.0], [0.0, 0.25, 0.0]),
    (
        "x: [2]; sum(where(x > 0, reshape(x, [2, 1]) @ reshape(log(x), [1, 2]), 0))",
        [2.0, 0.0],
        [np.log(2.0) + 1.0, np.log(2.0)],  # x[1] is also a row factor, which no lane masks
    ),
]


@pytest.mark.parametrize(("text", "x", "expected"), EDGES, ids=[e[0] for e in EDGES])
@pytest.mark.parametrize("method", ["dp", "forward", "paths"])
@pytest.mark.parametrize("backend", AVAILABLE)
def test_at_the_boundary_the_gradient_is_the_selected_lanes_only(text, x, expected, method, backend):
    """On both backends (LLVM runs the scalarised gradient graph; paths works on it too)."""
    (got,) = graphc.grad(text, method=method, backend=backend)(np.array(x))
    np.testing.assert_allclose(got, expected, rtol=1e-15, atol=0)


def test_a_selected_lane_still_propagates_its_nan():
    """The rule zeroes unselected lanes only: a NaN in a selected lane's branch stays."""
    (got,) = graphc.grad("x: [2]; sum(where(x > -10, reshape(sqrt(x), [2]), 0))")(np.array([-1.0, 4.0]))
    assert np.isnan(got[0]) and got[1] == 0.25


# --- the structural pullback: nonzero exactly where an element reaches a live output ---------------

BLOCKS = [
    ("A: [3, 2]; B: [2, 4]; A @ B", (3, 4)),
    ("A: [3, 2]; v: [2]; A @ v", (3,)),
    ("v: [3]; B: [3, 2]; v @ B", (2,)),
    ("A: [3, 4]; sum(A, axis=1)", (3,)),
    ("A: [3, 4]; max(A, axis=0)", (4,)),
    ("A: [3, 4]; min(A, axis=1)", (3,)),
    ("A: [3, 4]; logsumexp(A, axis=1)", (3,)),
    ("A: [3, 4]; transpose(A)", (4, 3)),
    ("A: [3, 4]; reshape(A, [2, 6])", (2, 6)),
    ("A: [3, 4]; A[1:, 0]", (2,)),
    ("X: [1, 1, 5, 5]; K: [2, 1, 2, 2]; conv2d(X, K)", (1, 2, 4, 4)),
    ("X: [1, 1, 4, 4]; maxpool2d(X, 2)", (1, 1, 2, 2)),
    ("X: [1, 1, 4, 4]; avgpool2d(X, 2)", (1, 1, 2, 2)),
]


@pytest.mark.parametrize(("text", "shape"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_the_flag_through_a_block_op_marks_the_elements_that_reach_a_live_one(text, shape):
    """Oracle: an operand element reaches an output element where a NaN put there makes that
    output NaN (every block op propagates NaN from each element it reads)."""
    graph = graphc.parse(text)
    node = graph.outputs[0]
    mask = (RNG.random(shape) < 0.5).astype(float)
    mask.flat[0] = 1.0
    result = graph.copy()
    flag = result.var("live", shape)
    _, reaches = _flagged_vjp(result, node, flag, flag)
    values = {name: RNG.normal(size=graph.shape(graph.variable(name))) for name in graph.variables}
    function = graphc.compile(graph)
    for arg, reach in zip(graph.args(node), reaches, strict=True):
        name = graph.name(arg)
        assert reach is not None
        probe = result.copy()
        probe.set_outputs([reach])
        got = np.asarray(graphc.compile(probe)(**values, live=mask))
        assert np.all(got >= 0), (text, name)
        want = np.zeros(graph.shape(arg), dtype=bool)
        for index in np.ndindex(*want.shape):
            poisoned = {**values, name: values[name].copy()}
            poisoned[name][index] = np.nan
            want[index] = bool(np.any(np.isnan(function(**poisoned)) & (mask != 0)))
        assert np.array_equal(got != 0, want), (text, name)
