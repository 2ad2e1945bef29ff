"""Convolution's masked forms (graphc/masked_conv.py): conv2d and its adjoints never take a term
whose flagged element is dead, so below a ``where`` with a condition per element an infinite or
NaN pixel or tap read by a selected and an unselected output gives the selected outputs'
derivative, in ``dp``, ``forward`` and ``paths``, first and second order, on both backends."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import graphc
from graphc.backends import BACKENDS, UNAVAILABLE
from graphc.graph import Graph
from graphc.printing import to_text

AVAILABLE = [name for name in BACKENDS if name not in UNAVAILABLE]
RNG = np.random.default_rng(2512)


def _terms(x_shape, k_shape, stride, padding):
    """Every term of conv2d's trilinear form: (image index, filter index, output index)."""
    *lead, channels, height, width = x_shape
    c_out, _, kh, kw = k_shape
    oh, ow = (height + 2 * padding - kh) // stride + 1, (width + 2 * padding - kw) // stride + 1
    for before, o, c, i, j, h, w in itertools.product(
        itertools.product(*map(range, lead)), *map(range, (c_out, channels, kh, kw, oh, ow))
    ):
        y, z = stride * h + i - padding, stride * w + j - padding
        if 0 <= y < height and 0 <= z < width:
            yield (*before, c, y, z), (o, c, i, j), (*before, o, h, w)


def _oracle(op, slot, a, b, f, x_shape, k_shape, out_shape, stride, padding):
    """The masked sum term by term (IEEE products, the dead ones left out): the oracle."""
    roles = {"conv2d": ("x", "k", "o"), "conv2d_input": ("o", "k", "x"), "conv2d_filter": ("x", "o", "k")}[op]
    out = np.zeros(out_shape)
    with np.errstate(invalid="ignore", over="ignore"):
        for x_at, k_at, o_at in _terms(x_shape, k_shape, stride, padding):
            at = dict(zip("xko", (x_at, k_at, o_at), strict=True))
            if f[at[roles[slot]]] != 0:
                out[at[roles[2]]] += a[at[roles[0]]] * b[at[roles[1]]]
    return out


def _poisoned(shape, count):
    """Normal values with ``count`` elements made inf, -inf or NaN (seeded)."""
    values = RNG.normal(size=shape)
    for k, index in enumerate(RNG.choice(values.size, size=count, replace=False)):
        values.flat[index] = (np.inf, -np.inf, np.nan)[k % 3]
    return values


# (op, its operands' shapes, params): a batch axis, stride 2 and padding 1, several channels
FORMS = [
    ("conv2d", (2, 2, 5, 5), (3, 2, 3, 3), (2, 1)),
    ("conv2d", (2, 2, 4, 4), (3, 2, 2, 2), (1, 0)),
    ("conv2d_input", (2, 3, 3, 3), (3, 2, 3, 3), (2, 1, (5, 5))),
    ("conv2d_input", (2, 3, 3, 3), (3, 2, 2, 2), (1, 0, (4, 4))),
    ("conv2d_filter", (2, 2, 5, 5), (2, 3, 3, 3), (2, 1, (3, 3))),
    ("conv2d_filter", (2, 2, 4, 4), (2, 3, 3, 3), (1, 0, (2, 2))),
]


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("slot", [0, 1])
@pytest.mark.parametrize(("op", "first", "second", "params"), FORMS)
def test_a_masked_convolution_never_takes_a_dead_term(op, first, second, params, slot, backend):
    """Against the term-by-term oracle, with inf, -inf and NaN in either operand or both (dead and
    live ones) and without (the plain op's path); a pixel in the padding is no term."""
    g = Graph()
    a, b = g.var("a", first), g.var("b", second)
    f = g.var("f", (first, second)[slot])
    node = g.apply(f"masked_{op}", a, b, f, params=(*params, slot))
    g.set_outputs([node])
    stride, padding = params[:2]
    shapes = {"conv2d": (first, second), "conv2d_input": (None, second), "conv2d_filter": (first, None)}[op]
    out_shape = g.shape(node)
    x_shape = shapes[0] or out_shape
    k_shape = shapes[1] or out_shape
    kernel = graphc.compile(g, backend=backend)
    for counts in ((0, 0), (5, 0), (0, 5), (5, 5)):
        values = {"a": _poisoned(first, counts[0]), "b": _poisoned(second, counts[1])}
        flags = (RNG.random((first, second)[slot]) < 0.5).astype(float)
        got = kernel(**values, f=flags)
        want = _oracle(
            op, slot, values["a"], values["b"], flags, x_shape, k_shape, out_shape, stride, padding
        )
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_a_masked_convolution_spells_and_parses_back_and_refuses_a_misshapen_mask():
    text = "X: [1, 3, 3]; K: [2, 1, 2, 2]; F: [2, 1, 2, 2]; masked_conv2d_input(conv2d(X, K, padding=1), K, F, stride=1, padding=1, size=[3, 3], masked=1)"
    graph = graphc.parse(text)
    again = graphc.parse(to_text(graph))
    assert again.params(again.outputs[0]) == graph.params(graph.outputs[0]) == (1, 1, (3, 3), 1)
    assert to_text(again) == to_text(graph)
    with pytest.raises(
        graphc.GraphcError, match=r"mask \[1, 3, 3\] is not shaped like its operand \[2, 1, 2, 2\]"
    ):
        graphc.parse("X: [1, 3, 3]; K: [2, 1, 2, 2]; masked_conv2d(X, K, X, stride=1, padding=0, masked=1)")
    with pytest.raises(graphc.GraphcError, match=r"masked_conv2d\(\) needs masked="):
        graphc.parse("X: [1, 3, 3]; K: [2, 1, 2, 2]; masked_conv2d(X, K, X, stride=1, padding=0)")
    with pytest.raises(graphc.GraphcError, match=r"masks operand 0 or 1, got masked=2"):
        graphc.parse("X: [1, 3, 3]; K: [2, 1, 2, 2]; masked_conv2d(X, K, X, stride=1, padding=0, masked=2)")


# --- differentiation: dp, forward and paths agree, and skip what no selected output reads ------------

LAYER = "X: [2, 2, 4, 4]; K: [3, 2, 2, 2]; m: [2, 3, 3, 3]; sum(where(m > 0, conv2d(X, K), 0))"


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("method", ["dp", "paths"])
def test_infinite_and_nan_pixels_and_taps_under_a_mask_per_output(method, backend):
    """∂/∂K is conv2d_filter of X by the mask, ∂/∂X conv2d_input of the mask by K, each over the
    selected outputs' terms only (the oracle); a NaN or inf a selected output reads still shows."""
    x, k = _poisoned((2, 2, 4, 4), 6), _poisoned((3, 2, 2, 2), 3)
    m = (RNG.random((2, 3, 3, 3)) < 0.4).astype(float)
    d_x, d_k = graphc.grad(LAYER, wrt=["X", "K"], method=method, backend=backend)(X=x, K=k, m=m)
    shapes = ((2, 2, 4, 4), (3, 2, 2, 2), (2, 3, 3, 3))
    want_k = _oracle("conv2d_filter", 1, x, m, m, shapes[0], shapes[1], shapes[1], 1, 0)
    want_x = _oracle("conv2d_input", 0, m, k, m, shapes[0], shapes[1], shapes[0], 1, 0)
    np.testing.assert_allclose(d_k, want_k, rtol=1e-13)
    np.testing.assert_allclose(d_x, want_x, rtol=1e-13)
    assert np.isfinite(want_k).sum() > 0 and np.isnan(want_x).sum() < want_x.size / 2  # not all poisoned


# the tangent of where(c > 0, sqrt(c x), 0) is dead at the pixels c <= 0: the four top-left ones,
# the only ones the infinite tap K[.., 0, 0] reads; the others' sum is finite
C = np.array([[-1.0, 0.0, 4.0], [-2.0, -1.0, 1.0], [1.0, 9.0, 4.0]]).reshape(1, 1, 3, 3)
K_INF = np.array([[np.inf, 2.0], [-1.0, 3.0]]).reshape(1, 1, 2, 2)


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("method", ["forward", "dp", "paths"])
def test_a_dead_tangent_pixel_meets_an_infinite_tap(method, backend):
    text = "x; c: [1, 1, 3, 3]; K: [1, 1, 2, 2]; sum(conv2d(where(c > 0, sqrt(c * x), 0), K))"
    (got,) = graphc.grad(text, wrt=["x"], method=method, backend=backend)(x=1.0, c=C, K=K_INF)
    t = np.where(C > 0, np.sqrt(np.maximum(C, 0.0)) / 2.0, 0.0)  # d sqrt(c x)/dx at x = 1
    want = _oracle("conv2d", 0, t, K_INF, C > 0, C.shape, K_INF.shape, (1, 1, 2, 2), 1, 0).sum()
    assert np.isfinite(want)
    np.testing.assert_allclose(got, want, rtol=1e-14)


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("method", ["forward", "dp", "paths"])
def test_a_dead_tangent_tap_meets_an_infinite_pixel_on_a_batch(method, backend):
    """The filter's tangent is dead at tap [0, 0], the only one the infinite X[.., 0, 0] meets;
    two images (a leading axis)."""
    text = "k; c: [1, 1, 2, 2]; X: [2, 1, 3, 3]; sum(conv2d(X, where(c > 0, sqrt(c * k), 0)))"
    c = np.array([[-1.0, 4.0], [1.0, 9.0]]).reshape(1, 1, 2, 2)
    x = RNG.normal(size=(2, 1, 3, 3))
    x[:, 0, 0, 0] = [np.inf, -np.inf]
    x[1, 0, 2, 2] = np.inf  # read by the live tap [1, 1] (at output [1, 1]): +inf
    (got,) = graphc.grad(text, wrt=["k"], method=method, backend=backend)(k=1.0, c=c, X=x)
    t = np.where(c > 0, np.sqrt(np.maximum(c, 0.0)) / 2.0, 0.0)
    want = _oracle("conv2d", 1, x, t, c > 0, x.shape, c.shape, (2, 1, 2, 2), 1, 0).sum()
    assert want == np.inf
    assert got == want
    x[1, 0, 2, 2] = 1.0
    (got,) = graphc.grad(text, wrt=["k"], method=method, backend=backend)(k=1.0, c=c, X=x)
    want = _oracle("conv2d", 1, x, t, c > 0, x.shape, c.shape, (2, 1, 2, 2), 1, 0).sum()
    assert np.isfinite(want)
    np.testing.assert_allclose(got, want, rtol=1e-14)


SECOND = (
    "x; X: [1, 1, 3, 3]; K: [1, 1, 2, 2]; m: [1, 1, 2, 2]; P = conv2d(x * X, K); sum(where(m > 0, P * P, 0))"
)


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("method", ["dp", "forward"])
def test_a_second_derivative_through_the_masked_convolutions_of_a_gradient(method, backend):
    """``f = x² Σ_live conv2d(X, K)²``: f'' = 2 Σ_live conv2d(X, K)². X[2, 2] = inf is read only by
    the unselected output [1, 1]: f'' is finite; X[1, 1] = inf, read by all: +inf (the gradient
    graph's conv2d_filter of X by the adjoint meets it in the selected and the unselected
    outputs), never NaN."""
    rng = np.random.default_rng(0)
    x, k = rng.random((1, 1, 3, 3)) + 0.5, rng.random((1, 1, 2, 2)) + 0.5
    m = np.array([1.0, 1.0, 1.0, 0.0]).reshape(1, 1, 2, 2)
    hessian = graphc.hessian(SECOND, wrt=["x"], method=method, backend=backend)
    finite = x.copy()
    want = 2.0 * np.sum(
        np.where(m > 0, graphc.compile("X: [1, 1, 3, 3]; K: [1, 1, 2, 2]; conv2d(X, K)")(X=x, K=k) ** 2, 0.0)
    )
    finite[0, 0, 2, 2] = np.inf
    np.testing.assert_allclose(hessian(x=0.5, X=finite, K=k, m=m), want, rtol=1e-13)
    x[0, 0, 1, 1] = np.inf
    assert graphc.hessian(SECOND, wrt=["x"], method=method, backend=backend)(x=0.5, X=x, K=k, m=m) == np.inf


@pytest.mark.parametrize("backend", AVAILABLE)
def test_a_hessian_wrt_the_filter_keeps_unselected_windows_out(backend):
    """∂²/∂K² of Σ_live conv2d(X, K)² is 2 Σ_live w wᵀ over the selected outputs' windows w: X's
    infinite pixel in an unselected window only leaves it finite. (An infinite pixel in a selected
    window too would meet the second pass's one-hot seed's zeros: NaN, as without any where.)"""
    text = "X: [1, 3, 3]; K: [1, 1, 2, 2]; m: [1, 2, 2]; y = conv2d(X, K); sum(where(m > 0, y * y, 0))"
    m = np.array([1.0, 1.0, 1.0, 0.0]).reshape(1, 2, 2)
    hessian = graphc.hessian(text, wrt=["K"], backend=backend)
    x = RNG.normal(size=(1, 3, 3))
    x[0, 2, 2] = np.inf  # only in the window of output [1, 1], unselected
    got = hessian(X=x, K=RNG.normal(size=(1, 1, 2, 2)), m=m)
    windows = [x[0, h : h + 2, w : w + 2].ravel() for h, w in ((0, 0), (0, 1), (1, 0))]
    want = 2.0 * sum(np.outer(v, v) for v in windows)
    np.testing.assert_allclose(np.asarray(got).reshape(4, 4), want, rtol=1e-13)


# --- the llvm backend: loops, never scalarised -----------------------------------------------------

T3_WHERE = (
    "X: [n, 1, 8, 8]; T: [n, 10]; K: [8, 1, 3, 3]; c: [8, 1, 1]; W: [72, 10]; b: [10]\n"
    "A = conv2d(X, K) + c; h = maxpool2d(where(A > 0, A, 0), 2); z = reshape(h, [n, 72]) @ W + b\n"
    "-mean(sum(T * log_softmax(z, axis=-1), axis=-1))"
)


@pytest.mark.skipif("llvm" not in AVAILABLE, reason="the llvm backend is not available")
def test_the_digits_cnn_with_a_where_runs_as_loops_equal_to_numpy():
    """T3 with ``where(A > 0, A, 0)`` for relu: K's adjoint is a masked conv2d_filter, a loop
    step; an infinite pixel read only by unselected outputs (in every channel) leaves the gradient
    finite."""
    n = 5
    values = {
        "X": RNG.random((n, 1, 8, 8)),
        "T": np.eye(10)[RNG.integers(0, 10, n)],
        "K": RNG.normal(size=(8, 1, 3, 3)),
        "c": RNG.normal(size=(8, 1, 1)),
        "W": RNG.normal(size=(72, 10)),
        "b": np.zeros(10),
    }
    values["K"][:, 0, 0, 0] = -1.0  # the only tap reading X[0, 0, 0, 0]: -inf there, unselected
    values["X"][0, 0, 0, 0] = np.inf
    kernel = graphc.grad(T3_WHERE, wrt=["K", "c", "W", "b"], backend="llvm")
    assert kernel.function.kind == "loops"
    steps = {kernel.function.plan.graph.op(s.node) for s in kernel.function.plan.steps if hasattr(s, "node")}
    assert "masked_conv2d_filter" in steps
    got = kernel(**values)
    want = graphc.grad(T3_WHERE, wrt=["K", "c", "W", "b"])(**values)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-13)
    assert all(np.isfinite(w).all() for w in want)


# --- max pooling: a dead window's 0 / 0 -----------------------------------------------------------


def _route_oracle(x, g, f, k, stride):
    """Each live window's ``g / count`` to each of its maxima (NaN-free windows), or its ``g / 0``
    times the hits (all 0) where it holds a NaN: the route's arithmetic, dead windows left out."""
    out = np.zeros(x.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        for index in np.ndindex(g.shape):
            *lead, h, w = index
            if f[index] == 0:
                continue
            window = x[(*lead, slice(stride * h, stride * h + k), slice(stride * w, stride * w + k))]
            hits = window == window.max()
            view = out[(*lead, slice(stride * h, stride * h + k), slice(stride * w, stride * w + k))]
            view += hits * (g[index] / hits.sum())
    return out


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize(("k", "stride"), [(2, 1), (2, 2), (3, 1)])
def test_the_masked_route_skips_dead_windows(k, stride, backend):
    """NaN pixels make windows without a maximum (0 / 0); dead ones give 0, on a batch axis."""
    text = f"X: [2, 5, 5]; G: [2, {(5 - k) // stride + 1}, {(5 - k) // stride + 1}]; F: [2, {(5 - k) // stride + 1}, {(5 - k) // stride + 1}]; masked_maxpool2d_route(X, G, F, window={k}, stride={stride})"
    graph = graphc.parse(text)
    x = _poisoned((2, 5, 5), 3)
    x[np.isinf(x)] = np.nan
    g = RNG.normal(size=graph.shape(graph.variable("G")))
    f = (RNG.random(g.shape) < 0.5).astype(float)
    got = graphc.compile(text, backend=backend)(X=x, G=g, F=f)
    np.testing.assert_allclose(got, _route_oracle(x, g, f, k, stride), rtol=1e-15)


POOLED = "X: [2, 3, 3]; m: [2, 2, 2]; sum(where(m > 0, maxpool2d(X, 2, stride=1), 0))"


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("method", ["dp", "paths"])
def test_a_nan_pixel_in_a_selected_and_an_unselected_window(method, backend):
    """X[.., 0, 1] is NaN, read by window [0, 0] (unselected) and [0, 1] (selected: NaN to its
    pixels); X[.., 1, 0] is read by [0, 0] and by [1, 0], selected, whose maximum it is not: 0,
    not the unselected window's 0 / 0."""
    x = np.arange(18.0).reshape(2, 3, 3)
    x[:, 0, 1] = np.nan
    m = np.array([0.0, 1.0, 1.0, 1.0] * 2).reshape(2, 2, 2)
    (got,) = graphc.grad(POOLED, wrt=["X"], method=method, backend=backend)(X=x, m=m)
    want = _route_oracle(x, m, m, 2, 1)
    np.testing.assert_array_equal(got, want)
    assert (got[:, 1, 0] == 0.0).all() and (got[:, 2, 1:] == 1.0).all()


@pytest.mark.parametrize("backend", AVAILABLE)
def test_forward_through_a_max_pool_with_dead_tangent_lanes_agrees_with_dp_and_paths(backend):
    """Window [0, 0]'s tangent lanes are all dead (its tangent 0); a NaN pixel in an unselected
    window; dp, forward and paths agree."""
    text = (
        "x; c: [1, 3, 3]; X: [1, 3, 3]; r: [1, 2, 2]; "
        "sum(where(r > 0, maxpool2d(where(c > 0, x * X, 0) + X, 2, stride=1), 0))"
    )
    c = np.array([[-1.0, -1.0, 1.0], [-1.0, -1.0, 1.0], [1.0, 1.0, 1.0]]).reshape(1, 3, 3)
    x = np.array([[4.0, 1.0, 2.0], [0.5, 3.0, 5.0], [2.0, 7.0, np.nan]]).reshape(1, 3, 3)
    r = np.array([1.0, 1.0, 1.0, 0.0]).reshape(1, 2, 2)
    got = [
        graphc.grad(text, wrt=["x"], method=m, backend=backend)(x=1.0, c=c, X=x, r=r)[0]
        for m in ("dp", "forward", "paths")
    ]
    assert got[0] == got[1] == got[2] == 7.0 + 5.0  # windows [0, 1] (X[1, 2]) and [1, 0] (X[2, 1])
