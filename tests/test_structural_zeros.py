"""Zeros known when the derivative graph is built (graphc.diff.structure) act like a ``where``'s
unselected lanes: a one-hot seed of a tensor output's row (``dp``) or of an input's column
(``forward``, one element at a time or stacked) and the zeros of indexing's VJP never meet an
infinite value in a product (0 * inf = 0 there), so ``dp`` and ``forward`` agree with ``paths``
(which has no such zeros: it sums products along paths) and with a NumPy reference, on both
backends. A zero that is a computed value still gives NaN with inf."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphc
from graphc.backends import BACKENDS, UNAVAILABLE

AVAILABLE = [name for name in BACKENDS if name not in UNAVAILABLE]
EXACT = ["dp", "forward", "paths"]

A = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
B = np.array([[1.0, np.inf], [2.0, 3.0], [1.0, 1.0]])  # b's column 1 never reaches (a @ b)[:, 0]


def _row_jacobians(a: np.ndarray, b: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
    """∂(a @ b)[i]/∂a and ∂(a @ b)[i]/∂b without a product: each element is one term or none."""
    m, k = a.shape
    n = b.shape[1]
    d_a = np.zeros((n, m, k))
    d_a[:, i, :] = b.T
    d_b = np.zeros((n, k, n))
    for j in range(n):
        d_b[j, :, j] = a[i]
    return d_a, d_b


@pytest.mark.parametrize("method", EXACT)
@pytest.mark.parametrize("backend", AVAILABLE)
def test_a_row_of_a_product_takes_no_term_from_an_infinite_column_it_never_reads(method, backend):
    """The issue's case: ``(a @ b)[0]`` with an inf in b's other column. The seeds of its two
    rows (dp), or a's and b's columns (forward), are one-hot; a's row 1 is indexing's zero."""
    got = graphc.grad("a: [2, 3]; b: [3, 2]; (a @ b)[0]", method=method, backend=backend)(a=A, b=B)
    want = _row_jacobians(A, B, 0)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)  # inf at ∂/∂a[0, 0] of element 1, never NaN


CASES = [  # (program, point, the Jacobian of each variable): elementwise, indexing, reductions
    (  # a diagonal Jacobian: off the diagonal, a one-hot's 0 meets sqrt's infinite partial at 0
        "x: [3]; sqrt(x)",
        {"x": np.array([0.0, 1.0, 4.0])},
        {"x": np.diag([np.inf, 0.5, 0.25])},
    ),
    (  # a scalar output: indexing's VJP puts 0 where log's partial is infinite
        "x: [3]; y: [3]; sum(log(x)[0:2] * y[0:2])",
        {"x": np.array([1.0, 2.0, 0.0]), "y": np.array([3.0, 4.0, 5.0])},
        {"x": np.array([3.0, 2.0, 0.0]), "y": np.array([0.0, np.log(2.0), 0.0])},
    ),
    (  # both: a tensor output of an indexed elementwise node
        "x: [3]; sqrt(x)[1:]",
        {"x": np.array([0.0, 1.0, 4.0])},
        {"x": np.array([[0.0, 0.5, 0.0], [0.0, 0.0, 0.25]])},
    ),
    (  # a reduction's row: the one-hot of row 0 meets row 1's inf (sqrt at 0) below sum's VJP
        "X: [2, 2]; sum(sqrt(X), axis=1)",
        {"X": np.array([[1.0, 4.0], [0.0, 1.0]])},
        {"X": np.array([[[0.5, 0.25], [0.0, 0.0]], [[0.0, 0.0], [np.inf, 0.5]]])},
    ),
    (  # a matrix-vector product: the seed of output 0 meets W's infinite row 1
        "W: [2, 2]; x: [2]; W @ x",
        {"W": np.array([[1.0, 2.0], [np.inf, 3.0]]), "x": np.array([5.0, 7.0])},
        {"x": np.array([[1.0, 2.0], [np.inf, 3.0]])},
    ),
]


@pytest.mark.parametrize(("text", "point", "expected"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("method", EXACT)
@pytest.mark.parametrize("backend", AVAILABLE)
def test_a_structural_zero_meets_an_infinite_partial_as_zero(text, point, expected, method, backend):
    kernel = graphc.grad(text, wrt=list(expected), method=method, backend=backend)
    for name, got in zip(kernel.wrt, kernel(**point), strict=True):
        np.testing.assert_array_equal(got, expected[name])


def test_a_computed_zero_still_gives_nan_with_inf():
    """``c - c`` is 0 by value, not by structure: times sqrt's infinite partial at 0 it is NaN in
    every method, as without graphc's rule; a user's zero cotangent likewise."""
    text = "x: [2]; c; sum(sqrt(x) * (c - c))"
    for method in EXACT:
        (got,) = graphc.grad(text, wrt=["x"], method=method)(x=np.array([0.0, 4.0]), c=1.0)
        assert np.isnan(got[0]) and got[1] == 0.0, method
    (got,) = graphc.vjp("x: [2]; sqrt(x)", wrt="x")(np.array([0.0, 4.0]), np.array([0.0, 1.0]))
    assert np.isnan(got[0]) and got[1] == 0.25


def test_a_scalar_outputs_gradient_builds_no_flag():
    """No structural zero without a tensor output or an index: T1's gradient is the plain one."""
    text = (
        "X: [n, 64]; T: [n, 10]; W1: [64, 32]; b1: [32]; W2: [32, 10]; b2: [10]\n"
        "h = tanh(X @ W1 + b1); z = h @ W2 + b2\n"
        "-mean(sum(T * log_softmax(z, axis=-1), axis=-1))"
    )
    graph = graphc.differentiate(text, wrt=["W1", "b1", "W2", "b2"])
    ops = {graph.op(node) for node, kept in enumerate(graph.reachable()) if kept}
    assert not ops & {"where", "masked_matmul", "and", "or"}, ops


def test_a_flag_live_everywhere_at_build_time_is_dropped():
    """Past the first dense product a one-hot seed reaches every element: only the first product of
    each reverse pass is masked, and the pinned chain count is that of plain products."""
    text = "A: [8, 2]; B: [2, 8]; C: [8, 8]; x: [8]; A @ (B @ (C @ x))"
    graph = graphc.differentiate(text, wrt=["x"])
    kept = graph.reachable()
    masked = [node for node in range(len(graph)) if kept[node] and graph.op(node) == "masked_matmul"]
    assert len(masked) == 8  # Aᵀ e_i, one per row; Bᵀ and Cᵀ take a dense adjoint


@settings(max_examples=40, deadline=None)  # the first example builds the kernels
@given(
    a=st.lists(st.sampled_from([1.0, -2.0, 0.5, np.inf, -np.inf, 0.0]), min_size=6, max_size=6),
    b=st.lists(st.sampled_from([1.0, 3.0, -0.25, np.inf, -np.inf, 0.0]), min_size=12, max_size=12),
    row=st.integers(0, 1),
)
def test_random_infinities_meet_one_hot_seeds_as_paths_says(a, b, row):
    """dp and forward equal paths and the reference on ``(a @ b)[row]`` wherever inf lands."""
    a_, b_ = np.array(a).reshape(2, 3), np.array(b).reshape(3, 4)
    text = f"a: [2, 3]; b: [3, 4]; (a @ b)[{row}]"
    want = _row_jacobians(a_, b_, row)
    for method in EXACT:
        got = _kernel(text, method)(a=a_, b=b_)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


_KERNELS: dict[tuple[str, str], graphc.Kernel] = {}


def _kernel(text: str, method: str) -> graphc.Kernel:
    key = (text, method)
    if key not in _KERNELS:
        _KERNELS[key] = graphc.grad(text, method=method)
    return _KERNELS[key]


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("backend", AVAILABLE)
def test_a_network_jacobian_keeps_an_unread_infinity_out(mode, backend):
    """``tanh(W @ x)[0:2]``: W's row 2 is infinite and never read by the outputs kept; the
    Jacobian wrt W is 0 there and wrt x finite, in both modes (forward: stacked)."""
    w = np.array([[0.5, -1.0], [0.25, 0.5], [np.inf, 1.0]])
    x = np.array([0.5, 0.25])
    kernel = graphc.jacobian(
        "W: [3, 2]; x: [2]; tanh(W @ x)[0:2]", wrt=["W", "x"], mode=mode, backend=backend
    )
    ((d_w, d_x),) = kernel(W=w, x=x)  # one output: one row of blocks
    slope = 1.0 - np.tanh(w[:2] @ x) ** 2
    want_w = np.zeros((2, 3, 2))
    for i in range(2):
        want_w[i, i] = slope[i] * x
    np.testing.assert_allclose(d_w, want_w, rtol=1e-15)
    np.testing.assert_allclose(d_x, slope[:, None] * w[:2], rtol=1e-15)
