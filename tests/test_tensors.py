"""Tensors: the language of issue 24 (declarations, @, reductions, structure), the NumPy backend's
batch rule, and dp, forward and numeric agreeing with hand-written NumPy at block level."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import graphc
import graphc.backends.numpy
from graphc.ops import ALL_OPS, BLOCK_OPS, COMPOSITES, OPS

RNG = np.random.default_rng(24)
LECTURE = "W: [3, 5]; b: [3]; x: [5]; t: [3]; a = W @ x + b; y = softmax(a); -sum(t * log(y))"


def lecture_inputs() -> dict[str, np.ndarray]:
    t = RNG.uniform(0.1, 1.0, 3)
    return {"W": RNG.normal(size=(3, 5)), "b": RNG.normal(size=3), "x": RNG.normal(size=5), "t": t / t.sum()}


def lecture_by_hand(W: np.ndarray, b: np.ndarray, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
    """The 003 lecture's backward pass, written out: ∇a = y·Σt - t, ∇W = ∇a xᵀ, ∇x = Wᵀ∇a."""
    a = W @ x + b
    y = np.exp(a - a.max())
    y /= y.sum()
    grad_a = y * t.sum() - t
    return {"W": np.outer(grad_a, x), "b": grad_a, "t": -np.log(y), "x": W.T @ grad_a}


# --- the language -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("x: [5]; x", (5,)),
        ("W: [3, 5]; x: [5]; W @ x", (3,)),
        ("x: [5]; W: [5, 3]; x @ W", (3,)),
        ("A: [2, 3]; B: [3, 4]; A @ B", (2, 4)),
        ("x: [5]; y: [5]; dot(x, y)", ()),
        ("x: [3]; y: [4]; outer(x, y)", (3, 4)),
        ("A: [2, 3]; sum(A)", ()),
        ("A: [2, 3]; sum(A, axis=0)", (3,)),
        ("A: [2, 3]; mean(A, axis=-1)", (2,)),
        ("A: [2, 3]; max(A, axis=1) + min(A, axis=1)", (2,)),
        ("A: [2, 3]; logsumexp(A, axis=0)", (3,)),
        ("A: [2, 3]; softmax(A) + log_softmax(A, axis=0)", (2, 3)),
        ("A: [2, 3]; transpose(A)", (3, 2)),
        ("x: [6]; reshape(x, [2, 3])", (2, 3)),
        ("x: [6]; reshape(x, [-1, 2])", (3, 2)),
        ("X: [n, 4]; reshape(X, [n, 2, 2])", ("n", 2, 2)),
        ("x: [5]; x[0] + x[-1]", ()),
        ("x: [5]; x[1:4]", (3,)),
        ("x: [5]; x[::2]", (3,)),
        ("x: [5]; x[::-1]", (5,)),
        ("A: [3, 4]; A[:, 0]", (3,)),
        ("A: [3, 4]; A[2, :]", (4,)),
        ("A: [3, 4]; A[1, 2]", ()),
        ("b: [3]; A: [2, 3]; A + b", (2, 3)),
        ("x: [3]; s * x + 1", (3,)),
        ("x: [3]\ny: [3]\nx * y", (3,)),
        ("X: [n, 64]; W: [64, 32]; tanh(X @ W)", ("n", 32)),
    ],
)
def test_programs_have_the_shapes_of_numpy(text: str, shape: tuple[object, ...]) -> None:
    graph = graphc.parse(text)
    assert graph.shape(graph.outputs[0]) == shape


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("A: [3, 4]; x: [5]; A @ x", 21, "cannot matmul [3, 4] by [5]: 4 != 5"),
        ("x: [3]; y: [4]; x + y", 18, "cannot + [3] with [4]: 3 != 4"),
        ("x: [3]; x[3]", 9, "index 3 is out of range"),
        ("x: [3]; x[-4]", 9, "index -4 is out of range"),
        ("A: [2, 3]; A[0, 0, 0]", 12, "too many indices (3) for shape [2, 3]"),
        ("x: [6]; reshape(x, [4, 2])", 8, "cannot reshape [6] to [4, 2]"),
        ("x: [6]; reshape(x, [-1, -1])", 8, "at most one -1"),
        ("x: [3]; sum(x, axis=1)", 8, "axis 1 is out of range for shape [3]"),
        ("x: [3]; softmax(x, axis=-2)", 8, "axis -2 is out of range"),
        ("x: [3]; sin(x, axis=0)", 8, "sin() takes no axis="),
        ("x: [3]; sum(x, keepdim=1)", 15, "unknown keyword argument 'keepdim'"),
        ("x: [3]; softmax(x, keepdims=1)", 19, "unknown keyword argument 'keepdims'"),  # reductions only
        ("x: [3]; sum(x, keepdims=2)", 8, "keepdims= takes 0 or 1"),
        ("x: [3]; x[1.5]", 10, "integer literals"),
        ("x: [3]; y = x; x: [4]; y", 15, "declared twice"),
        ("y = x; x: [3]; y", 7, "declare 'x' before its first use"),
        ("x: [0]; x", 4, "whole number >= 1"),
        ("x: 3; x", 1, "':' declares a shape"),
        ("x: [3]; reshape(x, [q])", 20, "unknown dimension 'q'"),
        ("[1, 2]", 0, "lists are not part of the language"),
        ("x: [3]; y: [3]; outer(x)", 16, "outer() takes 2 tensor arguments (1 given)"),
        ("x: [3]; max(x, 1.0, axis=0)", 8, "elementwise: it takes no axis="),
    ],
)
def test_shape_errors_are_parse_errors_at_the_operator_naming_both_shapes(
    text: str, column: int, words: str
) -> None:
    with pytest.raises(graphc.ParseError) as info:
        graphc.parse(text)
    assert words in str(info.value)
    assert info.value.column == column, str(info.value)
    assert "^" in info.value.render()


def test_scalar_programs_build_the_graphs_they_built_before_tensors() -> None:
    graph = graphc.parse("u = x*y; max(u, 1) + sin(u)**2")
    assert not graph.tensor and all(graph.shape(n) == () for n in range(len(graph)))
    assert graph.attrs(graph.outputs[0])["shape"] == ()


def test_hash_consing_includes_the_params() -> None:
    graph = graphc.parse("A: [2, 3]; sum(A, axis=0), sum(A, axis=0), sum(A, axis=1), sum(A, axis=-1)")
    first, again, one, minus_one = graph.outputs
    assert first == again and one == minus_one and first != one
    assert graph.params(first) == ((0,), False)


def test_deep_nestings_of_tensor_ops_parse_without_recursion() -> None:
    text = "x: [3]; " + "sum(" * 10_000 + "x" + ")" * 10_000
    assert graphc.parse(text).shape(0) == (3,)
    text = "x: [3]; " + "(" * 10_000 + "x" + ")[::-1]" * 10_000
    assert len(graphc.parse(text)) == 10_001


def test_max_and_min_reduce_one_tensor_and_stay_elementwise_with_two() -> None:
    graph = graphc.parse("x: [3]; max(x), max(x, 0), min(x, axis=0)")
    assert [graph.op(o) for o in graph.outputs] == ["amax", "max", "amin"]
    with pytest.raises(graphc.ParseError, match=r"max\(\) takes 2 arguments \(1 given\)"):
        graphc.parse("max(x)")  # a scalar: the elementwise max, as before


# --- the NumPy backend and the batch rule --------------------------------------------------------------

A = RNG.normal(size=(3, 4))
V = RNG.normal(size=4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A: [3, 4]; v: [4]; A @ v", A @ V),
        ("A: [3, 4]; v: [4]; v @ transpose(A)", A @ V),
        ("A: [3, 4]; v: [4]; A @ outer(v, v)", A @ np.outer(V, V)),
        ("A: [3, 4]; v: [4]; dot(v, v) + sum(A)", V @ V + A.sum()),
        ("A: [3, 4]; v: [4]; mean(A, axis=0) * v", A.mean(axis=0) * V),
        ("A: [3, 4]; v: [4]; max(A) - min(v)", A.max() - V.min()),
        ("A: [3, 4]; v: [4]; logsumexp(A, axis=1)", np.log(np.exp(A).sum(axis=1))),
        ("A: [3, 4]; v: [4]; softmax(A, axis=0)", np.exp(A) / np.exp(A).sum(axis=0)),
        ("A: [3, 4]; v: [4]; log_softmax(v)", V - np.log(np.exp(V).sum())),
        ("A: [3, 4]; v: [4]; reshape(A, [2, -1])[1, ::-2]", A.reshape(2, 6)[1, ::-2]),
        ("A: [3, 4]; v: [4]; A[:, 1:3] + v[2]", A[:, 1:3] + V[2]),
    ],
)
def test_block_ops_compute_what_numpy_computes(text: str, expected: np.ndarray) -> None:
    np.testing.assert_allclose(graphc.compile(text)(A=A, v=V), expected, rtol=1e-13, atol=1e-15)


def test_softmax_and_logsumexp_are_stable_at_1000() -> None:
    k = graphc.compile("x: [3]; softmax(x), logsumexp(x), log_softmax(x)")
    soft, lse, log_soft = k([1000.0, 1000.0, -1000.0])
    np.testing.assert_allclose(soft, [0.5, 0.5, 0.0])
    np.testing.assert_allclose(lse, 1000.0 + np.log(2.0))
    np.testing.assert_allclose(log_soft[:2], -np.log(2.0))


def test_batch_axes_lead_every_output_and_broadcast_between_inputs() -> None:
    k = graphc.compile("A: [3, 4]; v: [4]; b: [3]; A @ v + b, sum(v)")
    As = RNG.normal(size=(7, 3, 4))
    b = RNG.normal(size=(2, 1, 3))
    out, total = k(A=As, v=V, b=b)
    assert out.shape == (2, 7, 3) and total.shape == (2, 7)
    np.testing.assert_allclose(out[1, 5], As[5] @ V + b[1, 0], rtol=1e-13)
    # a batched vector operand of @ is never read as a matrix, nor a batch axis as a declared one
    vs = RNG.normal(size=(7, 4))
    np.testing.assert_allclose(k(A=A, v=vs, b=b[0, 0])[0], vs @ A.T + b[0, 0], rtol=1e-13)
    k2 = graphc.compile("x: [3]; s * x")
    assert k2(x=np.ones(3), s=np.arange(2.0)).tolist() == [[0.0] * 3, [1.0] * 3]


def test_named_dimensions_are_bound_at_call_time_and_checked() -> None:
    k = graphc.compile("X: [n, 4]; y: [n]; W: [4, 2]; transpose(X @ W) @ y")
    X, y, W = RNG.normal(size=(6, 4)), RNG.normal(size=6), RNG.normal(size=(4, 2))
    np.testing.assert_allclose(k(X=X, y=y, W=W), (X @ W).T @ y, rtol=1e-13)
    with pytest.raises(graphc.EvaluationError, match=r"input 'y' is declared \[n\] but given shape \(5,\)"):
        k(X=X, y=y[:5], W=W)
    with pytest.raises(
        graphc.EvaluationError, match=r"input 'W' is declared \[4, 2\] but given shape \(4, 3\)"
    ):
        k(X=X, y=y, W=np.ones((4, 3)))


def test_emitted_numpy_is_standalone_one_statement_per_block_node() -> None:
    graph = graphc.parse(LECTURE)
    source = graphc.backends.numpy.generate(graph)
    namespace: dict[str, object] = {}
    exec(compile(source, "<standalone>", "exec"), namespace)  # noqa: S102 - graphc's generated module
    values = lecture_inputs()
    f = namespace["f"]
    assert callable(f)
    np.testing.assert_allclose(f(**values), graphc.compile(graph)(**values), rtol=1e-15)
    body = source.split("with np.errstate(all='ignore'):")[-1].splitlines()
    statements = [line for line in body if line.startswith("        t")]
    constants = sum(graph.op(n) == "const" for n in range(len(graph)))  # literals: no line of their own
    assert len(statements) == len(graph) - len(graph.variables) - constants


def test_a_module_holds_the_helpers_its_statements_call_and_those_they_call_only() -> None:
    from graphc.backends.numpy import generate

    text = "X: [n, 1, 4, 4]; y = maxpool2d(X, 2); sum(y * y)"
    source = generate(graphc.grad(text).graph)
    defined = set(re.findall(r"^def (_\w+)\(", source, flags=re.MULTILINE))
    # _maxpool2d_route (the VJP) calls _pool_hits, which calls _maxpool2d and _corners
    assert {"_maxpool2d_route", "_pool_hits", "_maxpool2d", "_corners", "_bind", "_shaped"} <= defined
    assert not defined & {"_conv2d", "_windows", "_logsumexp", "_sum_rows", "_erf"}
    namespace: dict[str, Any] = {}
    exec(compile(source, "<standalone>", "exec"), namespace)  # noqa: S102 - graphc's generated module
    X = RNG.normal(size=(3, 1, 4, 4))
    gradient = namespace["f"](X=X)  # the one output, as it is
    np.testing.assert_array_equal(gradient, graphc.grad(text)(X=X)[0])
    assert "_erf = np.vectorize" in generate(graphc.parse("x: [3]; sum(erf(x))"))


def test_an_elementwise_node_writes_into_a_dead_operand_unless_batch_axes_could_widen_it() -> None:
    k = graphc.compile("X: [n, 4]; W: [4, 3]; b: [3]; sum(relu(X @ W + b))")
    assert re.search(r"(t\d+) = np\.add\(b\[\.\.\., None, :\], \1, out=\1 if not batch else None\)", k.source)
    X, W, b = RNG.normal(size=(6, 4)), RNG.normal(size=(4, 3)), RNG.normal(size=3)
    np.testing.assert_allclose(k(X=X, W=W, b=b), np.maximum(X @ W + b, 0.0).sum(), rtol=1e-13)
    bs = RNG.normal(size=(5, 3))  # a batch on b alone: X @ W has no batch axes, the sum a new array
    np.testing.assert_allclose(k(X=X, W=W, b=bs), [np.maximum(X @ W + c, 0.0).sum() for c in bs], rtol=1e-13)


@pytest.mark.parametrize(
    ("text", "form", "axis", "keepdims"),
    [
        ("A: [n, 5]; sum(A, axis=1)", "_sum_rows", -1, False),  # short rows of a known length
        ("A: [n, 5]; sum(A, axis=-1, keepdims=1)", "_sum_rows", -1, True),
        ("x: [5]; sum(x)", "_sum_rows", -1, False),
        ("A: [n, 5]; sum(A, axis=0)", "_sum_columns", -2, False),  # down columns, at least two
        ("A: [4, n, 5]; sum(A, axis=1, keepdims=1)", "_sum_columns", -2, True),
        ("A: [5, n]; sum(A, axis=1)", "np.sum", -1, False),  # rows of unknown length: pairwise
        ("A: [2, 200]; sum(A, axis=1)", "np.sum", -1, False),  # long rows: pairwise
        ("A: [n, 1]; sum(A, axis=0)", "np.sum", -2, False),  # one column: NumPy's sum is pairwise
        ("A: [3, 5]; sum(A, axis=[0, 1])", "np.sum", (-2, -1), False),
    ],
)
def test_a_sum_along_short_rows_or_down_columns_is_a_product_with_ones(
    text: str, form: str, axis: Any, keepdims: bool
) -> None:
    k = graphc.compile(text)
    assert f"= {form}(" in k.source
    (name,) = k.variables
    shape = k.graph.shape(k.graph.variable(name))
    concrete = tuple(6 if d == "n" else d for d in shape)
    rng = np.random.default_rng(24)  # its own: the same draws whatever ran before
    for batch in ((), (3,)):  # the batch axes stay in front
        a = rng.normal(size=batch + concrete)
        a.flat[::7] = np.resize([np.inf, -np.inf, np.nan, -0.0], a.flat[::7].shape)
        with np.errstate(invalid="ignore"):
            expected = np.sum(a, axis=axis, keepdims=keepdims)
        got = k(**{name: a})
        # BLAS adds in another order than NumPy: an ulp or so of the terms' size apart
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-14)
        assert np.shape(got) == expected.shape


def test_a_relu_gate_is_written_into_the_relu_output_with_the_bits_of_np_sign() -> None:
    # relu'(o) = sign(o), into o's own array once o is dead (graphc.ops' _sign: vectorised)
    k = graphc.value_and_grad("X: [n, 3]; W: [3, 4]; sum(relu(X @ W) * X[:, 0:1])", wrt="W")
    assert re.search(r"(t\d+) = _sign\(\1, out=\1\)", k.source)
    X = RNG.normal(size=(8, 3))
    X[0] = 0.0  # a row of relu(0): relu'(0) = 0
    X[1, 1] = np.nan  # a row of NaN: NaN in every column of the gradient, as np.sign gives
    W = RNG.normal(size=(3, 4))
    a = X @ W
    gradient = X.T @ (np.sign(np.maximum(a, 0.0)) * X[:, 0:1])
    value, (got,) = k(X=X, W=W)
    np.testing.assert_array_equal(got, gradient)
    assert np.isnan(got).all() and np.isnan(value)
    X[1, 1] = 0.5
    np.testing.assert_allclose(k(X=X, W=W)[1][0], X.T @ ((X @ W > 0) * X[:, 0:1]), rtol=1e-14)


# --- differentiation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["dp", "forward", "numeric"])
def test_the_003_lecture_example_as_written_matches_the_hand_backward_pass(method: str) -> None:
    values = lecture_inputs()
    kernel = graphc.grad(LECTURE, method=method)
    expected = lecture_by_hand(**values)
    tolerance = 1e-7 if method == "numeric" else 1e-12
    for name, partial in zip(kernel.wrt, kernel(**values), strict=True):
        assert partial.shape == values[name].shape
        np.testing.assert_allclose(partial, expected[name], rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("method", ["dp", "forward"])
def test_a_logsumexp_of_all_minus_infinity_is_minus_infinity_with_derivative_zero(method: str) -> None:
    # each element stays -inf under any finite change, and so does the logsumexp: the weights
    # exp(x - logsumexp(x)) are exp(-inf - 0) = 0 there, not exp(-inf + inf) = nan. (The scalar
    # chain that paths, symbolic and llvm use still gives nan there: see graphc/scalarise.py.)
    x = np.array([[-np.inf, -np.inf, -np.inf], [1.0, 2.0, -np.inf]])
    kernel = graphc.value_and_grad("x: [2, 3]; sum(logsumexp(x, axis=1))", method=method)
    value, (gradient,) = kernel(x=x)
    assert value == -np.inf
    weights = np.exp(x[1] - np.logaddexp(1.0, 2.0))
    np.testing.assert_allclose(gradient, [[0.0, 0.0, 0.0], weights], rtol=1e-14, atol=0.0)


def test_gradients_of_a_batch_have_the_batch_in_front() -> None:
    values = lecture_inputs()
    Ws = RNG.normal(size=(4, 3, 5))
    gW, gb = graphc.grad(LECTURE, wrt="W,b")(**{**values, "W": Ws})
    assert gW.shape == (4, 3, 5) and gb.shape == (4, 3)
    np.testing.assert_allclose(gW[2], lecture_by_hand(**{**values, "W": Ws[2]})["W"], rtol=1e-12)


def test_dp_is_one_vjp_per_block_node() -> None:
    d = graphc.differentiate(LECTURE, "W")
    assert d.info["passes"] == 1 and len(d) < 40


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x: [3]; sum(x*x)", {"x": 6}),
        ("A: [3, 4]; x: [4]; sum(A @ x)", {"A": 12, "x": 12}),
        ("A: [2, 3]; B: [3, 4]; sum(A @ B)", {"A": 24, "B": 24}),
        ("x: [4]; y = x*x; sum(y)*sum(y)", {"x": 16}),
        ("x: [3]; x[0] + x[::2][1]", {"x": 2}),
    ],
)
def test_count_paths_is_exact_at_block_level(text: str, expected: dict[str, int]) -> None:
    assert graphc.count_paths(text) == expected


def test_count_paths_matches_the_scalar_unrolling() -> None:
    unrolled = "; ".join(f"y{i} = a{i}0*x0 + a{i}1*x1" for i in range(2)) + "; y0*y0 + y1*y1"
    tensor = graphc.count_paths("A: [2, 2]; x: [2]; y = A @ x; sum(y*y)")
    scalar = graphc.count_paths(unrolled)
    assert tensor["A"] == sum(scalar[f"a{i}{j}"] for i in range(2) for j in range(2))
    assert tensor["x"] == scalar["x0"] + scalar["x1"]


def test_jacobian_is_batch_plus_out_shape_plus_in_shape() -> None:
    text = "W: [2, 3]; x: [3]; tanh(W @ x)"
    W, x = RNG.normal(size=(2, 3)), RNG.normal(size=(5, 3))
    for mode in ("forward", "reverse"):
        J = graphc.jacobian(text, wrt="W", mode=mode)(W, x)
        assert J.shape == (5, 2, 2, 3)
        a = np.tanh(x @ W.T)
        expected = np.einsum("bi,ij,bk->bijk", 1 - a**2, np.eye(2), x)
        np.testing.assert_allclose(J, expected, rtol=1e-12, atol=1e-15)
    assert graphc.jacobian(text, wrt="x").mode == "forward"  # one stacked pass against 2 reverse ones
    assert graphc.jacobian("x: [2]; outer(x, x)").mode == "forward"  # 2 inputs, 4 outputs


def test_hessian_of_a_tensor_input() -> None:
    H = graphc.hessian("x: [3]; A: [3, 3]; 0.5 * (x @ A) @ x", wrt="x")
    A_ = RNG.normal(size=(3, 3))
    np.testing.assert_allclose(H(A_, np.ones(3)), (A_ + A_.T) / 2, rtol=1e-13)


def test_vjp_and_jvp_are_the_products_with_the_jacobian() -> None:
    text = "W: [2, 3]; x: [3]; sin(W @ x)"
    W, x = RNG.normal(size=(2, 3)), RNG.normal(size=3)
    J = graphc.jacobian(text, wrt="x")(W, x)
    ct, tangent = RNG.normal(size=2), RNG.normal(size=3)
    vjp = graphc.vjp(text, wrt="x")
    assert vjp.variables == ("W", "x", "cotangent")
    np.testing.assert_allclose(vjp(W, x, ct)[0], ct @ J, rtol=1e-13)
    jvp = graphc.jvp(text, wrt="x")
    assert jvp.variables == ("W", "x", "tangent_x")
    np.testing.assert_allclose(jvp(W, x, tangent), J @ tangent, rtol=1e-13)


def test_named_dimensions_need_dims_for_element_by_element_methods() -> None:
    text = "X: [n, 2]; w: [2]; mean(X @ w)"
    with pytest.raises(graphc.GraphcError, match=r"named dimension 'n'.*dims=\{'n': ...\}"):
        graphc.grad(text, method="forward")
    X, w = RNG.normal(size=(4, 2)), RNG.normal(size=2)
    by_dp = graphc.grad(text)(X, w)
    by_forward = graphc.grad(text, method="forward", dims={"n": 4})(X, w)
    np.testing.assert_allclose(by_forward[1], by_dp[1], rtol=1e-13)
    np.testing.assert_allclose(by_dp[1], X.mean(axis=0), rtol=1e-13)


def test_ties_of_a_reduced_max_split_evenly() -> None:
    (g,) = graphc.grad("x: [4]; max(x)")([1.0, 3.0, 3.0, 0.0])
    assert g.tolist() == [0.0, 0.5, 0.5, 0.0]


# --- the op table --------------------------------------------------------------------------------------


# Block ops that paths, symbolic and the llvm backend refuse (with a GraphcError naming them) until
# they get a scalar form: a new op must have one or be added here on purpose. None is now (a user
# block with its own VJP has one when its user says so, else refuses by the block's name).
NOT_YET_SCALARISED: set[str] = set()


def test_a_user_block_with_a_vjp_and_no_scalar_form_is_refused_by_name() -> None:
    """A user block with its own VJP (the custom op) has no scalar form unless its user gives one:
    its scalar derivative would be the body's, not the user's formula (test_user_blocks)."""
    with graphc.blocks():
        graphc.block("soft3(a) = exp(a) / sum(exp(a))", vjp="y * (g - sum(y * g))")
        text = "x: [3]; sum(soft3(x) * x)"
        for method in ("paths", "symbolic"):
            with pytest.raises(graphc.GraphcError, match="block 'soft3' has its own VJP and no scalar form"):
                graphc.differentiate(text, method=method)
        with pytest.raises(graphc.GraphcError, match="block 'soft3' has its own VJP and no scalar form"):
            graphc.grad(text, backend="llvm")(np.ones(3))


def test_every_op_entry_has_every_field_its_kind_needs() -> None:
    """The registry-coverage test: each place an op must appear, for each kind of op."""
    assert set(ALL_OPS) == set(OPS) | set(BLOCK_OPS) and not set(OPS) & set(BLOCK_OPS)
    for name, op in OPS.items():
        assert not op.block and op.numpy and callable(op.sympy) and callable(op.llvm), name
        assert len(op.partials) == op.arity == len(op.domain), name
        assert op.infix or op.function, f"{name} has no spelling"
    for name, op in BLOCK_OPS.items():
        assert op.block and op.numpy == "", name
        for field in ("shape", "emit", "vjp", "jvp", "paths"):
            assert callable(getattr(op, field)), f"block op {name} lacks {field}"
        assert callable(op.scalarise) or name in NOT_YET_SCALARISED, f"block op {name} lacks scalarise"
        assert len(op.domain) == op.arity, name
        for point in op.policy:  # its hard points, checked by tests/test_policy.py
            graph = graphc.parse(point.expr)
            assert graph.tensor and len(point.gradient) == len(graph.variables), (name, point)
    spelled = {op.function for op in BLOCK_OPS.values()} | {op.infix for op in BLOCK_OPS.values()}
    for spelling in spelled - {None}:
        text = "x: [3]; y: [3]; " + (f"x {spelling} y" if spelling == "@" else f"{spelling}(x)")
        if spelling == "reshape":
            text = "x: [3]; reshape(x, [3, 1])"
        elif spelling == "dot":
            text = "x: [3]; y: [3]; dot(x, y)"
        elif spelling == "conv2d":
            text = "X: [1, 3, 3]; K: [2, 1, 2, 2]; conv2d(X, K)"
        elif spelling in ("maxpool2d", "avgpool2d"):
            text = f"X: [1, 4, 4]; {spelling}(X, 2)"
        graphc.parse(text)  # every spelling parses
    for name, composite in COMPOSITES.items():
        args = ", ".join(["x"] * composite.arity)
        assert graphc.parse(f"x: [3]; {name}({args})").tensor, name
