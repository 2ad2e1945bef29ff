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


# --- a value inside a block op's sums that feeds a selected and an unselected output --------------
#
# ``out[i, j] = Σ_k a[i, k] b[j, k]`` under ``where(m, out, 0)``: b's infinite element b[1, 2] is read
# by the selected out[1, 1] and the unselected out[0, 1]. a's row 0 is live (out[0, 0] is selected),
# so its adjoint ``g @ b`` must skip the unselected g[0, 1] = 0 rather than multiply it by inf.

MASK = np.array([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
A = np.arange(1.0, 7.0).reshape(2, 3)
B = np.ones((4, 3))
B[1, 2] = np.inf
PRODUCT = "a: [2, 3]; b: [4, 3]; m: [2, 4]; sum(where(m > 0, a @ transpose(b), 0))"


def _masked_sum(mask: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``Σ_j left[i, j] right[j, k]`` over the terms with ``mask[i, j]`` only (the oracle)."""
    with np.errstate(invalid="ignore"):  # the products the mask leaves out may be 0 * inf
        terms = np.where(mask[:, :, None] != 0, left[:, :, None] * right[None, :, :], 0.0)
    return terms.sum(axis=1)


@pytest.mark.parametrize("method", ["dp", "paths"])
@pytest.mark.parametrize("backend", AVAILABLE)
def test_an_infinite_operand_shared_by_a_selected_and_an_unselected_output(method, backend):
    d_a, d_b = graphc.grad(PRODUCT, wrt=["a", "b"], method=method, backend=backend)(a=A, b=B, m=MASK)
    np.testing.assert_array_equal(d_a, _masked_sum(MASK, np.ones((2, 4)), B))  # row 0: 3, 3, 3
    np.testing.assert_array_equal(d_a[0], [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(d_b, _masked_sum(MASK.T, np.ones((4, 2)), A))


@pytest.mark.parametrize("method", ["dp", "paths"])
@pytest.mark.parametrize("backend", AVAILABLE)
def test_an_infinite_left_operand_shared_by_a_selected_and_an_unselected_output(method, backend):
    """The other operand's adjoint ``aᵀ g``: a[0, 2] is infinite, out[0, 1] unselected."""
    a = A.copy()
    a[0, 2] = -np.inf
    d_a, d_b = graphc.grad(PRODUCT, wrt=["a", "b"], method=method, backend=backend)(
        a=a, b=np.ones((4, 3)), m=MASK
    )
    np.testing.assert_array_equal(d_b, _masked_sum(MASK.T, np.ones((4, 2)), a))
    assert np.isfinite(d_b[1]).all() and d_b[0, 2] == -np.inf  # out[0, 1] reads a[0, 2]: unselected
    np.testing.assert_array_equal(d_a, _masked_sum(MASK, np.ones((2, 4)), np.ones((4, 3))))


VECTOR_PRODUCTS = [  # (program, point): an infinite element meets a dead lane and a live one
    (
        "A: [2, 3]; v: [3]; m: [2]; sum(where(m > 0, A @ v, 0) * A[:, 0])",
        {
            "A": np.array([[1.0, 2.0, np.inf], [3.0, 4.0, 5.0]]),
            "v": np.array([1.0, -1.0, 2.0]),
            "m": np.array([0.0, 1.0]),
        },
    ),
    (
        "v: [2]; B: [2, 3]; m: [3]; sum(where(m > 0, v @ B, 0))",
        {
            "v": np.array([2.0, 3.0]),
            "B": np.array([[1.0, np.inf, 2.0], [1.0, 1.0, 1.0]]),
            "m": np.array([1.0, 0.0, 1.0]),
        },
    ),
]


@pytest.mark.parametrize(("text", "point"), VECTOR_PRODUCTS, ids=[v[0] for v in VECTOR_PRODUCTS])
@pytest.mark.parametrize("backend", AVAILABLE)
def test_matrix_vector_products_under_a_mask_per_element(text, point, backend):
    """dp agrees with paths (exact, scalar) and every partial is finite: no infinite element is
    read by a selected output here."""
    want = graphc.grad(text, method="paths")(**point)
    got = graphc.grad(text, method="dp", backend=backend)(**point)
    for w, g in zip(want, got, strict=True):
        assert np.isfinite(g).all()
        np.testing.assert_allclose(g, w, rtol=1e-15)


@pytest.mark.parametrize("method", ["dp", "forward", "paths"])
@pytest.mark.parametrize("backend", AVAILABLE)
def test_a_scalar_condition_masks_a_whole_product(method, backend):
    b = np.array([[1.0, np.inf], [2.0, 3.0]])
    kernel = graphc.grad(
        "c; A: [2, 2]; B: [2, 2]; sum(where(c > 0, A @ B, 0))", wrt=["A"], method=method, backend=backend
    )
    (got,) = kernel(c=-1.0, A=np.ones((2, 2)), B=b)
    np.testing.assert_array_equal(got, np.zeros((2, 2)))


# forward: the tangent of ``where(c > 0, sqrt(c * x), 0)`` is dead where c <= 0, and b's infinite
# row 1 meets the dead t[0, 1] (out[0, :] must stay finite) and the live t[1, 1] (out[1, 0] is inf)
C = np.array([[1.0, -1.0, 4.0], [1.0, 1.0, -1.0]])
BF = np.array([[1.0, 2.0], [np.inf, 1.0], [3.0, -1.0]])
TANGENT = "x; c: [2, 3]; b: [3, 2]; where(c > 0, sqrt(c * x), 0) @ b"


@pytest.mark.parametrize("method", ["forward", "paths"])
@pytest.mark.parametrize("backend", AVAILABLE)
def test_a_dead_tangent_lane_meets_an_infinite_operand(method, backend):
    (got,) = graphc.grad(TANGENT, wrt=["x"], method=method, backend=backend)(x=1.0, c=C, b=BF)
    t = np.where(C > 0, np.sqrt(np.maximum(C, 0.0)) / 2.0, 0.0)  # d sqrt(c x)/dx at x = 1
    np.testing.assert_allclose(got, _masked_sum(C > 0, t, BF), rtol=1e-15)
    assert np.isfinite(got[0]).all() and got[1, 0] == np.inf


@pytest.mark.parametrize("backend", AVAILABLE)
def test_dp_forward_and_paths_agree_on_dead_lanes_above_and_below_a_product(backend):
    """The product's row 1 (which meets the infinite b[1, 0] in a live lane) is unselected above
    it, its operand's lane [0, 1] (which meets it too) below it: every method gives row 0 only."""
    text = "x; c: [2, 3]; b: [3, 2]; r: [2, 1]; sum(where(r > 0, where(c > 0, sqrt(c * x), 0) @ b, 0))"
    point = {"x": 1.0, "c": C, "b": BF, "r": np.array([[1.0], [0.0]])}
    got = [
        graphc.grad(text, wrt=["x"], method=m, backend=backend)(**point)[0]
        for m in ("dp", "forward", "paths")
    ]
    t = np.where(C > 0, np.sqrt(np.maximum(C, 0.0)) / 2.0, 0.0)
    want = _masked_sum(C > 0, t, BF)[0].sum()
    assert np.isfinite(want)
    np.testing.assert_allclose(got, [want] * 3, rtol=1e-15)


@pytest.mark.parametrize("backend", AVAILABLE)
def test_a_hessian_through_a_masked_product_keeps_unselected_terms_out(backend):
    """``f = Σ where(m, (a*a) @ bᵀ, 0)``: ∂²f/∂a[i,k]² = 2 Σ_j m[i,j] b[j,k] over selected j only."""
    text = "a: [2, 3]; b: [4, 3]; m: [2, 4]; sum(where(m > 0, (a * a) @ transpose(b), 0))"
    hessian = graphc.hessian(text, wrt=["a"], backend=backend)(a=A, b=B, m=MASK).reshape(6, 6)
    diagonal = 2.0 * _masked_sum(MASK, np.ones((2, 4)), B)
    np.testing.assert_array_equal(hessian.diagonal().reshape(2, 3), diagonal)
    assert diagonal[0].tolist() == [6.0, 6.0, 6.0] and diagonal[1, 2] == np.inf
    # off the diagonal, 0: also in the column of the selected infinite ∂f/∂a[1, 2], which each
    # other row's one-hot seed meets with a structural 0 (0, not NaN: graphc.diff.blocks)
    off = ~np.eye(6, dtype=bool)
    np.testing.assert_array_equal(hessian[off], np.zeros(30))


# --- the masked product itself --------------------------------------------------------------------


def _masked_product(a: np.ndarray, f: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The oracle, with batch axes: ``Σ_j a[..., i, j] b[..., j, k]`` over the terms ``f`` keeps."""
    with np.errstate(invalid="ignore"):
        terms = np.where(f[..., :, :, None] != 0, a[..., :, :, None] * b[..., None, :, :], 0.0)
        return terms.sum(axis=-2)


@pytest.mark.parametrize("backend", AVAILABLE)
def test_masked_matmul_never_takes_a_dead_term_with_batch_axes(backend):
    """Non-finite entries in b (whole columns, one entry, per batch element) and in a (live and
    dead); a dead term is skipped even where a is not 0 there."""
    rng = np.random.default_rng(7)
    a = rng.normal(size=(3, 4, 5))
    f = (rng.random((3, 4, 5)) < 0.6).astype(float)
    b = rng.normal(size=(3, 5, 2))
    b[0, 1, 0], b[1, 3, 1], b[2, :, 1] = np.inf, np.nan, -np.inf
    a[1, 2, 0] = np.inf
    got = graphc.compile("a: [4, 5]; f: [4, 5]; b: [5, 2]; masked_matmul(a, f, b)", backend=backend)(
        a=a, f=f, b=b
    )
    np.testing.assert_allclose(got, _masked_product(a, f, b), rtol=1e-14)  # inf and NaN where the oracle's
    finite = rng.normal(size=(5, 2))  # finite b, broadcast over a's batch: the plain product's path
    got = graphc.compile("a: [4, 5]; f: [4, 5]; b: [5, 2]; masked_matmul(a, f, b)", backend=backend)(
        a=a, f=f, b=finite
    )
    np.testing.assert_allclose(got, _masked_product(a, f, np.broadcast_to(finite, (3, 5, 2))), rtol=1e-14)


def test_masked_matmul_refuses_operands_it_does_not_take():
    with pytest.raises(graphc.GraphcError, match=r"cannot masked_matmul \[3\] by \[3, 2\]"):
        graphc.parse("a: [3]; b: [3, 2]; masked_matmul(a, a, b)")
    with pytest.raises(graphc.GraphcError, match=r"mask \[2, 2\] is not shaped like its operand \[2, 3\]"):
        graphc.parse("a: [2, 3]; f: [2, 2]; b: [3, 2]; masked_matmul(a, f, b)")


def test_an_infinite_pixel_shared_by_a_selected_and_an_unselected_convolution_output():
    """The centre pixel is read by all four outputs, only out[0, 0] is selected: ∂/∂K is X's
    top-left window (the only selected term), as paths gives."""
    text = "X: [1, 1, 3, 3]; K: [1, 1, 2, 2]; m: [1, 1, 2, 2]; sum(where(m > 0, conv2d(X, K), 0))"
    x = np.ones((1, 1, 3, 3))
    x[0, 0, 1, 1] = np.inf
    point = {"X": x, "K": np.ones((1, 1, 2, 2)), "m": np.array([1.0, 0.0, 0.0, 0.0]).reshape(1, 1, 2, 2)}
    (got,) = graphc.grad(text, wrt=["K"])(**point)
    np.testing.assert_array_equal(got.ravel(), [1.0, 1.0, 1.0, np.inf])


@pytest.mark.parametrize("method", ["dp", "forward"])
@pytest.mark.parametrize("backend", AVAILABLE)
def test_a_second_derivative_through_the_masked_products_of_a_gradient(method, backend):
    """``f = x² Σ_live (A B)²``: the gradient graph's masked product depends on x, and is itself
    differentiated under the mask. b[1, 0] = inf is read by the live P[1, 0] and the dead P[0, 0]:
    f'' is +inf (the live term), never the NaN of the dead one's 0 * inf."""
    text = "x; A: [2, 3]; B: [3, 2]; m: [2, 2]; P = (x * A) @ B; sum(where(m > 0, P * P, 0))"
    point = {
        "x": 0.5,
        "A": np.array([[1.0, 2.0, 1.0], [1.0, 1.0, 2.0]]),
        "B": np.array([[1.0, 2.0], [np.inf, 1.0], [1.0, 3.0]]),
        "m": np.array([[0.0, 1.0], [1.0, 1.0]]),
    }
    assert graphc.hessian(text, wrt=["x"], method=method, backend=backend)(**point) == np.inf
    finite = {**point, "B": np.array([[1.0, 2.0], [1.0, 1.0], [1.0, 3.0]])}
    want = 2.0 * np.sum(np.where(finite["m"] > 0, (finite["A"] @ finite["B"]) ** 2, 0.0))
    got = graphc.hessian(text, wrt=["x"], method=method, backend=backend)(**finite)
    np.testing.assert_allclose(got, want, rtol=1e-14)


@pytest.mark.parametrize("method", ["dp", "forward", "paths"])
@pytest.mark.parametrize("backend", AVAILABLE)
def test_a_second_derivative_with_dead_lanes_above_and_below_a_product(method, backend):
    """forward over forward differentiates the first pass's masked product with a flagged tangent
    (the dead lane [0, 1] meets b's infinite row again); row 1, which reads it live, is unselected."""
    text = "x; c: [2, 3]; b: [3, 2]; r: [2, 1]; sum(where(r > 0, where(c > 0, sqrt(c * x), 0) @ b, 0))"
    point = {"x": 1.0, "c": C, "b": BF, "r": np.array([[1.0], [0.0]])}
    got = graphc.hessian(text, wrt=["x"], method=method, backend=backend)(**point)
    second = np.where(C > 0, -np.sqrt(np.maximum(C, 0.0)) / 4.0, 0.0)  # d² sqrt(c x)/dx² at x = 1
    np.testing.assert_allclose(got, _masked_sum(C > 0, second, BF)[0].sum(), rtol=1e-15)


@pytest.mark.skipif("llvm" not in AVAILABLE, reason="the llvm backend is not available")
def test_a_gradient_with_masked_products_compiles_to_llvm_loops():
    text = "X: [n, 4]; W: [4, 3]; A = X @ W; sum(where(A > 0, tanh(A), 0))"
    kernel = graphc.grad(text, wrt=["W"], backend="llvm")
    assert kernel.function.kind == "loops"


@pytest.mark.parametrize("method", ["dp", "forward", "paths"])
@pytest.mark.parametrize("backend", AVAILABLE)
def test_an_infinite_second_order_adjoint_meets_a_term_the_products_own_mask_skips(method, backend):
    """∂f/∂X is ``masked(G, m > 0, Y) * sqrt'(X)``, infinite at X[0, 0] = 0; differentiated wrt Y,
    that inf meets the terms of Y's dead row 1 (m[0, 1] = 0), which the product never took: 0 there,
    as paths gives, and inf in the live rows (the first row of the result's first column)."""
    text = "X: [1, 2]; Y: [3, 2]; m: [1, 3]; sum(where(m > 0, sqrt(X) @ transpose(Y), 0))"
    gradient = graphc.differentiate(text, wrt=["X"])
    second = graphc.differentiate(gradient, wrt=["Y"], method=method)
    point = {
        "X": np.array([[0.0, 4.0]]),
        "Y": np.arange(1.0, 7.0).reshape(3, 2),
        "m": np.array([[1.0, 0.0, 1.0]]),
    }
    values = dict(zip(second.output_names, graphc.compile(second, backend=backend)(**point), strict=True))
    want = np.zeros((1, 2, 3, 2))  # ∂²f/∂X[0, k]∂Y[j, k] = [m[0, j] > 0] sqrt'(X[0, k])
    for j, k in np.ndindex(3, 2):
        if point["m"][0, j] > 0:
            want[0, k, j, k] = np.inf if k == 0 else 0.25
    np.testing.assert_array_equal(values["∂²f/∂X∂Y"], want)
