"""conv2d, maxpool2d and avgpool2d: values against direct loops over pixels, gradients against the
004 lecture's formulas, dp against forward and numeric, ties of max pooling, shapes and errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import graphc
from graphc.printing import to_text

RNG = np.random.default_rng(27)


# --- independent references: direct loops over every output pixel ---------------------------------


def loop_conv2d(X: np.ndarray, K: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    c_out, _, kh, kw = K.shape
    Xp = np.pad(X, ((0, 0), (padding, padding), (padding, padding)))
    h = (Xp.shape[1] - kh) // stride + 1
    w = (Xp.shape[2] - kw) // stride + 1
    out = np.zeros((c_out, h, w))
    for o, r, c in itertools.product(range(c_out), range(h), range(w)):
        patch = Xp[:, r * stride : r * stride + kh, c * stride : c * stride + kw]
        out[o, r, c] = np.sum(patch * K[o])
    return out


def loop_pool(X: np.ndarray, k: int, stride: int, reduce: str) -> np.ndarray:
    h, w = (X.shape[-2] - k) // stride + 1, (X.shape[-1] - k) // stride + 1
    out = np.zeros(X.shape[:-2] + (h, w))
    for r, c in itertools.product(range(h), range(w)):
        window = X[..., r * stride : r * stride + k, c * stride : c * stride + k]
        out[..., r, c] = getattr(np, reduce)(window, axis=(-2, -1))
    return out


def lecture_filter_grad(X: np.ndarray, G: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """∂L/∂F = conv(X, ∂L/∂O): each input channel correlated with each output gradient (stride 1)."""
    dK = np.zeros((G.shape[0], X.shape[0], kh, kw))
    for o, c in itertools.product(range(G.shape[0]), range(X.shape[0])):
        dK[o, c] = loop_conv2d(X[c][None], G[o][None, None])[0]
    return dK


def lecture_input_grad(K: np.ndarray, G: np.ndarray) -> np.ndarray:
    """∂L/∂X = full-conv(rot180(F), ∂L/∂O): G padded by k-1, correlated with the rotated filter."""
    _, c_in, kh, kw = K.shape
    rotated = K[:, :, ::-1, ::-1]
    dX = []
    for c in range(c_in):
        Gp = np.pad(G, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
        dX.append(loop_conv2d(Gp, rotated[:, c][None])[0])
    return np.array(dX)


# --- values ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 0), (1, 1), (2, 1), (3, 2)])
def test_conv2d_matches_the_direct_loop(stride: int, padding: int) -> None:
    X, K = RNG.normal(size=(2, 7, 6)), RNG.normal(size=(3, 2, 3, 2))
    text = f"X: [2, 7, 6]; K: [3, 2, 3, 2]; conv2d(X, K, stride={stride}, padding={padding})"
    np.testing.assert_allclose(graphc.compile(text)(X=X, K=K), loop_conv2d(X, K, stride, padding), rtol=1e-12)


def test_conv2d_keeps_declared_and_batch_leading_axes() -> None:
    X, K = RNG.normal(size=(5, 4, 2, 6, 6)), RNG.normal(size=(3, 2, 3, 3))
    out = graphc.compile("X: [4, 2, 6, 6]; K: [3, 2, 3, 3]; conv2d(X, K)")(X=X, K=K)
    assert out.shape == (5, 4, 3, 4, 4)
    np.testing.assert_allclose(out[3, 1], loop_conv2d(X[3, 1], K), rtol=1e-12)


@pytest.mark.parametrize("k,stride", [(2, 2), (3, 1), (2, 1), (3, 2)])
def test_pooling_matches_the_direct_loop(k: int, stride: int) -> None:
    X = RNG.normal(size=(2, 7, 6))
    for function, reduce in (("maxpool2d", "max"), ("avgpool2d", "mean")):
        text = f"X: [2, 7, 6]; {function}(X, {k}, stride={stride})"
        np.testing.assert_allclose(graphc.compile(text)(X), loop_pool(X, k, stride, reduce), rtol=1e-13)


# --- gradients -------------------------------------------------------------------------------------


def test_conv2d_gradients_are_the_lectures_formulas() -> None:
    X, K, W = RNG.normal(size=(2, 6, 5)), RNG.normal(size=(3, 2, 3, 2)), RNG.normal(size=(3, 4, 4))
    dK, dW, dX = graphc.grad("X: [2, 6, 5]; K: [3, 2, 3, 2]; W: [3, 4, 4]; sum(conv2d(X, K) * W)")(
        X=X, K=K, W=W
    )
    # W is the upstream gradient ∂L/∂O of the layer's output
    np.testing.assert_allclose(dK, lecture_filter_grad(X, W, 3, 2), rtol=1e-12)
    np.testing.assert_allclose(dX, lecture_input_grad(K, W), rtol=1e-12)
    np.testing.assert_allclose(dW, loop_conv2d(X, K), rtol=1e-12)


LAYERS = [
    "X: [2, 6, 6]; K: [3, 2, 3, 3]; W: [3, 4, 4]; sum(tanh(conv2d(X, K)) * W)",
    "X: [2, 6, 6]; K: [3, 2, 3, 3]; W: [3, 3, 3]; sum(sin(conv2d(X, K, stride=2, padding=1)) * W)",
    "X: [2, 6, 6]; W: [2, 3, 3]; sum(maxpool2d(X, 2) * W)",
    "X: [2, 7, 7]; W: [2, 3, 3]; sum(maxpool2d(X, 3, stride=2) ** 2 * W)",
    "X: [2, 6, 6]; W: [2, 5, 5]; sum(exp(avgpool2d(X, 2, stride=1)) * W)",
    "X: [1, 8, 8]; K: [2, 1, 3, 3]; W: [2, 3, 3]; sum(maxpool2d(relu(conv2d(X, K)), 2) * W)",
]


@pytest.mark.parametrize("text", LAYERS)
def test_dp_forward_and_numeric_agree(text: str) -> None:
    shapes = graphc.parse(text)
    args = [RNG.normal(size=shapes.shape(shapes.variable(name))) for name in shapes.variables]
    by_dp = graphc.grad(text)(*args)
    by_forward = graphc.grad(text, method="forward")(*args)
    by_numeric = graphc.grad(text, method="numeric")(*args)
    for dp, forward, numeric in zip(by_dp, by_forward, by_numeric, strict=True):
        np.testing.assert_allclose(forward, dp, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(numeric, dp, rtol=1e-5, atol=1e-6)


def test_second_derivatives_stay_in_the_layer_ops() -> None:
    """The adjoints' own VJPs and JVPs: a Hessian of a conv layer by dp, against numeric."""
    text = "X: [1, 4, 4]; K: [1, 1, 2, 2]; sum(tanh(conv2d(X, K)))"
    X, K = RNG.normal(size=(1, 4, 4)), RNG.normal(size=(1, 1, 2, 2))
    exact = graphc.hessian(text, wrt="K")(X=X, K=K)
    numeric = graphc.hessian(text, wrt="K", method="numeric")(X=X, K=K)
    np.testing.assert_allclose(exact, numeric, rtol=1e-4, atol=1e-5)


def test_a_max_pool_tie_splits_evenly() -> None:
    X = np.array([[[1.0, 3.0, 0.0, 0.0], [3.0, 2.0, 0.0, 0.0], [5.0, 5.0, 1.0, 2.0], [5.0, 5.0, 7.0, 2.0]]])
    (dX,) = graphc.grad("X: [1, 4, 4]; sum(maxpool2d(X, 2))")(X)
    expected = np.array(
        [[[0, 0.5, 0.25, 0.25], [0.5, 0, 0.25, 0.25], [0.25, 0.25, 0, 0], [0.25, 0.25, 1, 0]]]
    )
    np.testing.assert_array_equal(dX, expected)
    tangent = graphc.jvp("X: [1, 4, 4]; maxpool2d(X, 2)")(X, np.ones_like(X))
    np.testing.assert_array_equal(tangent, np.ones((1, 2, 2)))


def test_overlapping_max_windows_add_their_shares() -> None:
    X = np.array([[[0.0, 0.0, 0.0], [0.0, 9.0, 0.0], [0.0, 0.0, 0.0]]])
    (dX,) = graphc.grad("X: [1, 3, 3]; sum(maxpool2d(X, 2, stride=1))")(X)
    assert dX[0, 1, 1] == 4.0 and dX.sum() == 4.0


def test_gradients_carry_batch_axes() -> None:
    X, K, W = RNG.normal(size=(3, 2, 5, 5)), RNG.normal(size=(2, 2, 2, 2)), RNG.normal(size=(2, 4, 4))
    text = "X: [2, 5, 5]; K: [2, 2, 2, 2]; W: [2, 4, 4]; sum(conv2d(X, K) * W)"
    dK, _, dX = graphc.grad(text)(X=X, K=K, W=W)
    assert dX.shape == X.shape and dK.shape == (3, 2, 2, 2, 2)
    np.testing.assert_allclose(dK[1], lecture_filter_grad(X[1], W, 2, 2), rtol=1e-12)


def test_a_declared_minibatch_axis_sums_into_the_filter_gradient() -> None:
    X, K, W = RNG.normal(size=(3, 1, 5, 5)), RNG.normal(size=(2, 1, 2, 2)), RNG.normal(size=(3, 2, 4, 4))
    text = "X: [3, 1, 5, 5]; K: [2, 1, 2, 2]; W: [3, 2, 4, 4]; sum(conv2d(X, K) * W)"
    dK, _, _ = graphc.grad(text)(X=X, K=K, W=W)
    expected = sum(lecture_filter_grad(X[n], W[n], 2, 2) for n in range(3))
    np.testing.assert_allclose(dK, expected, rtol=1e-12)


def test_path_counts_of_a_conv_layer_match_its_scalar_unrolling() -> None:
    counts = graphc.count_paths("X: [1, 3, 3]; K: [1, 1, 2, 2]; sum(conv2d(X, K))")
    # each of the 4 outputs is a sum of 4 products: every product gives each factor one path
    assert counts == {"K": 16, "X": 16}


# --- every method and backend, through the scalar forms ---------------------------------------------

SMALL = [
    "X: [2, 4, 4]; K: [2, 2, 2, 2]; W: [2, 3, 3]; sum(tanh(conv2d(X, K, stride=2, padding=1)) * W)",
    "X: [2, 1, 4, 4]; K: [2, 1, 2, 2]; sum(sin(conv2d(X, K)))",
    "X: [2, 4, 4]; W: [2, 2, 2]; sum(maxpool2d(X, 2) ** 2 * W)",
    "X: [1, 5, 5]; W: [1, 2, 2]; sum(maxpool2d(X, 3, stride=2) * W)",
    "X: [1, 4, 4]; W: [1, 3, 3]; sum(exp(avgpool2d(X, 2, stride=1)) * W)",
    "X: [1, 5, 5]; K: [1, 1, 2, 2]; sum(avgpool2d(relu(conv2d(X, K)), 2))",
]
EVERY = [("paths", "numpy"), ("symbolic", "numpy"), ("dp", "llvm"), ("forward", "llvm"), ("paths", "llvm")]


def _arguments(text: str) -> dict[str, np.ndarray]:
    graph = graphc.parse(text)
    return {name: RNG.normal(size=graph.shape(graph.variable(name))) for name in graph.variables}


@pytest.mark.parametrize("text", SMALL)
def test_every_method_and_backend_agrees_with_dp_on_numpy(text: str) -> None:
    """The scalar forms (graphc.convolution) carry the layers into paths, symbolic and LLVM."""
    args = _arguments(text)
    expected = graphc.grad(text)(**args)
    value = graphc.compile(text)(**args)
    np.testing.assert_allclose(graphc.compile(text, backend="llvm")(**args), value, rtol=1e-13)
    for method, backend in EVERY:
        got = graphc.grad(text, method=method, backend=backend)(**args)
        for partial, reference in zip(got, expected, strict=True):
            np.testing.assert_allclose(
                partial, reference, rtol=1e-12, atol=1e-13, err_msg=f"{method} {backend}"
            )


def test_the_adjoint_ops_have_scalar_forms_too() -> None:
    """LLVM compiles dp's derivative graph, which holds conv2d_input, conv2d_filter and the pooling
    adjoints; a Hessian by dp holds their own adjoints; a JVP holds maxpool2d_select."""
    text = "X: [1, 4, 4]; K: [1, 1, 2, 2]; sum(tanh(conv2d(X, K)))"
    X, K = RNG.normal(size=(1, 4, 4)), RNG.normal(size=(1, 1, 2, 2))
    np.testing.assert_allclose(
        graphc.hessian(text, wrt="K", backend="llvm")(X=X, K=K),
        graphc.hessian(text, wrt="K")(X=X, K=K),
        rtol=1e-12,
    )
    pooled = "X: [1, 4, 4]; maxpool2d(sin(X), 2)"
    T = RNG.normal(size=(1, 4, 4))
    np.testing.assert_allclose(graphc.jvp(pooled, backend="llvm")(X, T), graphc.jvp(pooled)(X, T), rtol=1e-13)


def test_a_tie_splits_evenly_on_llvm_and_in_the_scalar_form() -> None:
    """dp's route/select on LLVM weigh the maxima by (x == m) / Σ(x == m): 1/k each, as NumPy. The
    paths and symbolic methods differentiate maxpool2d's scalar form, a chain of two-operand maxes,
    whose partials count the tied leaves: a tie of three (here max(max(max(a, b), c), d) with
    a = b = d) gives 1/3 to each too, as a reduced amax's scalar form does."""
    text = "X: [1, 2, 2]; sum(maxpool2d(X, 2))"
    X = np.array([[[1.0, 1.0], [0.0, 1.0]]])
    (on_numpy,) = graphc.grad(text)(X)
    (on_llvm,) = graphc.grad(text, backend="llvm")(X)
    np.testing.assert_allclose(on_llvm, on_numpy, rtol=1e-15)
    np.testing.assert_allclose(on_numpy, [[[1 / 3, 1 / 3], [0.0, 1 / 3]]], rtol=1e-15)
    for method in ("paths", "symbolic"):
        (by_chain,) = graphc.grad(text, method=method)(X)
        np.testing.assert_array_equal(by_chain, [[[1 / 3, 1 / 3], [0.0, 1 / 3]]])
    two = np.array([[[2.0, 1.0], [0.0, 2.0]]])
    for method in ("paths", "symbolic"):
        np.testing.assert_array_equal(graphc.grad(text, method=method)(two)[0], [[[0.5, 0.0], [0.0, 0.5]]])


# --- the language ----------------------------------------------------------------------------------


def test_layer_calls_print_and_parse_back() -> None:
    text = "X: [2, 6, 6]; K: [3, 2, 3, 3]; maxpool2d(conv2d(X, K, stride=1, padding=1), 2, stride=1)"
    graph = graphc.parse(text)
    printed = to_text(graph)
    assert "conv2d(X, K, padding=1)" in printed and "maxpool2d(" in printed and "stride=1" in printed
    again = graphc.parse(printed)
    X, K = RNG.normal(size=(2, 6, 6)), RNG.normal(size=(3, 2, 3, 3))
    np.testing.assert_array_equal(graphc.compile(again)(X=X, K=K), graphc.compile(graph)(X=X, K=K))


@pytest.mark.parametrize(
    "text,message",
    [
        ("X: [2, 6, 6]; K: [3, 1, 3, 3]; conv2d(X, K)", "the image has 2 channels, the filter takes 1"),
        ("X: [6, 6]; K: [3, 1, 3, 3]; conv2d(X, K)", r"conv2d takes an image \[..., C, H, W\]"),
        ("X: [1, 6, 6]; K: [1, 3, 3]; conv2d(X, K)", r"conv2d takes a filter \[C_out, C_in, kh, kw\]"),
        ("X: [1, 2, 6]; K: [1, 1, 3, 3]; conv2d(X, K)", "a 3-wide window does not fit in 2"),
        ("X: [1, 6, 6]; K: [1, 1, 3, 3]; conv2d(X, K, stride=0)", "stride >= 1"),
        ("X: [1, 6, 6]; K: [1, 1, 3, 3]; conv2d(X, K, axis=0)", "the only ones are stride=, padding="),
        ("X: [1, 6, 6]; maxpool2d(X, 2, padding=1)", "the only ones are stride="),
        ("X: [1, 6, 6]; maxpool2d(X, X)", "window size as a whole number"),
        ("X: [1, 6, 6]; maxpool2d(X, 1.5)", "window size as a whole number"),
        ("X: [1, 6, 6]; maxpool2d(X)", r"maxpool2d\(\) takes 1 tensor argument\(s\) and 1 whole number"),
        ("X: [1, 6, n]; avgpool2d(X, 2)", "avgpool2d needs whole-number sizes"),
        ("X: [1, 6, 6]; avgpool2d(X, 7)", "a 7-wide window does not fit in 6"),
    ],
)
def test_layer_shape_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(graphc.ParseError, match=message):
        graphc.parse(text)


# --- PyTorch, when installed -----------------------------------------------------------------------


def test_gradients_agree_with_pytorch() -> None:
    torch = pytest.importorskip("torch")
    X, K, W = RNG.normal(size=(2, 7, 7)), RNG.normal(size=(3, 2, 3, 3)), RNG.normal(size=(3, 3, 3))
    text = "X: [2, 7, 7]; K: [3, 2, 3, 3]; W: [3, 3, 3]; sum(avgpool2d(tanh(conv2d(X, K, padding=1)), 3, stride=2) * W)"
    dK, _, dX = graphc.grad(text)(X=X, K=K, W=W)
    tX, tK = (torch.tensor(a, requires_grad=True) for a in (X, K))
    out = torch.nn.functional.conv2d(tX[None], tK, padding=1).tanh()
    (torch.nn.functional.avg_pool2d(out, 3, stride=2)[0] * torch.tensor(W)).sum().backward()
    np.testing.assert_allclose(dX, tX.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(dK, tK.grad.numpy(), rtol=1e-10)


def test_the_digits_cnn_layers_agree_with_pytorch_on_both_backends() -> None:
    """T3's layers (conv, relu, max pool 2, dense) on a small batch: at points with no tie, every
    convention agrees, so graphc's gradients on NumPy and on LLVM (scalarised) are PyTorch's."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    text = (
        "X: [2, 1, 6, 6]; K: [3, 1, 3, 3]; c: [3, 1, 1]; W: [12, 2]\n"
        "h = maxpool2d(relu(conv2d(X, K) + c), 2); sum(tanh(reshape(h, [2, 12]) @ W))"
    )
    args = {"X": RNG.normal(size=(2, 1, 6, 6)), "K": RNG.normal(size=(3, 1, 3, 3))}
    args |= {"c": RNG.normal(size=(3, 1, 1)), "W": RNG.normal(size=(12, 2))}
    tensors = {name: torch.tensor(value, requires_grad=True) for name, value in args.items()}
    h = F.max_pool2d(torch.relu(F.conv2d(tensors["X"], tensors["K"]) + tensors["c"]), 2)
    torch.tanh(h.reshape(2, 12) @ tensors["W"]).sum().backward()
    for backend in ("numpy", "llvm"):
        got = graphc.grad(text, backend=backend)(**args)
        for name, partial in zip(sorted(args), got, strict=True):
            np.testing.assert_allclose(
                partial, tensors[name].grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=name
            )


def test_the_adjoints_shape_rules_invert_conv2ds_and_refuse_a_cotangent_it_cannot_give():
    from graphc import convolution as cv
    from graphc.shapes import ShapeError

    assert cv.conv2d_input_shape(((2, 4, 3, 3), (4, 3, 2, 2)), (1, 0, (4, 4))) == (2, 3, 4, 4)
    assert cv.conv2d_filter_shape(((2, 3, 4, 4), (2, 4, 3, 3)), (1, 0, (2, 2))) == (4, 3, 2, 2)
    with pytest.raises(ShapeError, match=r"conv2d_input: \[2, 4, 3, 3\] is not conv2d's result"):
        cv.conv2d_input_shape(((2, 4, 3, 3), (4, 3, 2, 2)), (1, 0, (5, 4)))  # wrong size
    with pytest.raises(ShapeError, match=r"conv2d_input: \[2, 5, 3, 3\]"):
        cv.conv2d_input_shape(((2, 5, 3, 3), (4, 3, 2, 2)), (1, 0, (4, 4)))  # wrong channels
    with pytest.raises(ShapeError, match=r"conv2d_filter: \[1, 4, 3, 3\] is not conv2d's result"):
        cv.conv2d_filter_shape(((2, 3, 4, 4), (1, 4, 3, 3)), (1, 0, (2, 2)))  # wrong batch
