"""forward and numeric differentiate a tensor input in one stacked pass (graphc.diff.stacked):
the graph grows with the function, not with the input's element count, and the gradients are
today's."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.diff import stacked
from graphc.graph import Graph
from graphc.parse import parse

RNG = np.random.default_rng(24)

PROGRAMS = [
    "x: [3, 4]; sum(exp(x) * x, axis=1)",
    "x: [4]; y: [3, 4]; transpose(y * x)[1:3] * 2 + sum(x)",
    "x: [2, 3]; logsumexp(x * x, axis=0) + max(x) - min(x, axis=1)[0]",
    "x: [5]; reshape(x*x, [1, 5]) + x",
    "x: [2, 4]; softmax(x * x, axis=0) + log_softmax(x)",
    "x: [3]; c*x + c, sum(x)",
    "x: [3]; W: [2, 3]; W @ sin(x)",
    "x: [4]; where(x > 0, x * x, -x)",
]


def _values(graph: Graph) -> dict[str, np.ndarray]:
    return {name: RNG.normal(size=graph.shape(graph.variable(name))) for name in graph.variables}


def test_a_large_input_is_one_pass_of_a_small_graph_with_the_gradient_of_dp() -> None:
    graph = parse("x: [1000]; sum(sin(x) * x)")
    x = RNG.normal(size=1000)
    expected = np.sin(x) + x * np.cos(x)
    (value, reverse) = graphc.compile(graphc.differentiate(graph, method="dp"))(x=x)
    np.testing.assert_allclose(reverse, expected, rtol=1e-13)
    for method, passes, tolerance in [("forward", 1, 1e-13), ("numeric", 2, 1e-7)]:
        derivative = graphc.differentiate(graph, method=method)
        assert len(derivative) < 40 and derivative.info["passes"] == passes, method
        (same, gradient) = graphc.compile(derivative)(x=x)
        assert same == value and gradient.shape == (1000,)
        np.testing.assert_allclose(gradient, reverse, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("text", PROGRAMS)
def test_stacked_forward_and_numeric_agree_with_dp(text: str) -> None:
    graph = parse(text)
    values = _values(graph)
    reverse = graphc.compile(graphc.differentiate(graph, method="dp"))(**values)
    forward = graphc.compile(graphc.differentiate(graph, method="forward"))(**values)
    numeric = graphc.compile(graphc.differentiate(graph, method="numeric"))(**values)
    for r, f, n in zip(reverse, forward, numeric, strict=True):
        assert np.shape(r) == np.shape(f) == np.shape(n)
        np.testing.assert_allclose(f, r, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(n, r, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape", [(1,), (4,), (2, 3), (2, 1, 2)])
def test_the_stacked_identity_holds_each_elements_one_hot_in_five_nodes(shape: tuple[int, ...]) -> None:
    graph = Graph()
    before = len(graph)
    eye = stacked.identity(graph, shape)
    assert len(graph) - before <= 7  # the constants 1.0 (and 0.0 for unindex) and five ops
    graph.set_outputs([eye], ["E"])
    n = int(np.prod(shape))
    np.testing.assert_array_equal(graphc.compile(graph)(), np.eye(n).reshape((n, *shape)))


@pytest.mark.parametrize(
    ("text", "forward", "numeric"),
    [
        ("x: [3]; sum(x * x)", True, True),
        ("x: [3]; logsumexp(x)", True, True),  # not linear: a stacked JVP of its own
        ("x: [3]; softmax(x)", True, True),  # its max shift is a constant to differentiation
        ("x: [3]; where(x > 0, x, 0)", True, True),  # the flags are the primal's, unstacked
        ("x: [3]; W: [2, 3]; W @ x", True, True),  # linear in each operand
        ("x: [1, 1, 3, 3]; maxpool2d(x, 2)", True, True),  # its JVP selects by the primal's maxima
        ("x: [2, 1]; a: [1, 2]; f: [1, 2]; sum(masked_matmul(a, f, x))", False, False),  # no stacked rule
    ],
)
def test_only_functions_whose_every_op_can_carry_the_stacked_axis_are_stacked(
    text: str, forward: bool, numeric: bool
) -> None:
    graph = parse(text)
    every = [True] * len(graph)
    assert stacked.stackable(graph, every, tangent=True) == forward
    assert stacked.stackable(graph, every, tangent=False) == numeric
    n = int(np.prod(graph.shape(graph.variable("x"))))
    passes = graphc.differentiate(graph, "x", method="forward").info["passes"]
    assert passes == (1 if forward else n)
    passes = graphc.differentiate(graph, "x", method="numeric").info["passes"]
    assert passes == (2 if numeric else 2 * n)


# Each block op newly carrying the stacked axis, on an input of 200 elements: one pass (two for
# numeric) whose graph is a few dozen nodes, where one element at a time built 1,200 to 14,000.
N = 200
NEWLY_STACKED = [
    f"x: [{N}]; W: [5, {N}]; sum(tanh(W @ x))",  # matrix @ stacked vector
    f"x: [{N}]; W: [{N}, 3]; sum(cos(x @ W))",  # stacked vector @ matrix
    f"x: [{N}]; dot(sin(x), x)",  # both operands stacked (numeric), each in turn (forward)
    f"x: [{N}, 2]; W: [3, {N}]; sum(W @ exp(x))",  # matrix @ stacked matrix
    f"x: [{N // 4}, 4]; W: [4, 3]; sum(x @ W * x[:, 0:3])",  # stacked matrix @ matrix
    f"x: [{N // 10}, 10]; sum(x @ transpose(x))",  # stacked matrix @ stacked matrix
    f"x: [{N // 4}, 4]; v: [{N // 4}]; sum(sin(v @ x))",  # vector @ stacked matrix
    f"x: [{N // 10}, 10]; v: [{N // 10}]; sum(tanh(transpose(x) @ v) * 3)",  # a stacked transpose
    f"x: [{N}]; sum(outer(x, sin(x)))",
    f"x: [{N}]; logsumexp(x * x)",
    f"x: [{N // 10}, 10]; sum(max(sin(x), axis=1)) + min(x)",
    f"x: [{N}]; sum(where(x > 0, sqrt(x), -x))",
    f"x: [{N}]; sum(broadcast(x, shape=[3, {N}]) * 2)",
    f"x: [{N}]; sum(exp(unindex(x, at=[0:{N}], shape=[{N + 5}])))",
]


@pytest.mark.parametrize("text", NEWLY_STACKED)
def test_every_block_op_but_convolutions_is_stacked_in_a_small_graph(text: str) -> None:
    graph = parse(text)
    values = _values(graph)
    reverse = graphc.compile(graphc.differentiate(graph, "x", method="dp"))(**values)
    for method, passes, rtol in [("forward", 1, 1e-12), ("numeric", 2, 1e-6)]:
        derivative = graphc.differentiate(graph, "x", method=method)
        assert derivative.info["passes"] == passes, method
        assert len(derivative) - len(graph) < 80, (method, len(derivative))  # one element at a time: > 1,000
        got = graphc.compile(derivative)(**values)
        for r, g in zip(reverse, got, strict=True):
            np.testing.assert_allclose(g, r, rtol=rtol, atol=rtol)


def test_count_carries_the_stacked_axis_where_a_dimension_is_named() -> None:
    graph = parse("x: [3]; z: [n, 3]; mean(x * z)")
    values = {"x": RNG.normal(size=3), "z": RNG.normal(size=(4, 3))}
    reverse = graphc.compile(graphc.differentiate(graph, "x", method="dp"))(**values)
    for method in ("forward", "numeric"):
        derivative = graphc.differentiate(graph, "x", method=method)
        assert derivative.info["passes"] == (1 if method == "forward" else 2)
        got = graphc.compile(derivative)(**values)
        np.testing.assert_allclose(got[1], reverse[1], rtol=1e-6, atol=1e-9)


def test_forward_matches_dp_where_an_elementwise_partial_is_infinite() -> None:
    # the one-hot seed's other lanes are structurally zero: d/dx_j sqrt(x_i) = 0 for i != j, not
    # 0 * inf = nan (the stacked tangent stays diagonal until the sum, which takes it as it is)
    graph = parse("x: [3]; sum(sqrt(x))")
    x = np.array([1.0, 0.0, 4.0])
    expected = [0.5, np.inf, 0.25]
    for method in ("dp", "forward"):
        (_, gradient) = graphc.compile(graphc.differentiate(graph, method=method))(x=x)
        np.testing.assert_array_equal(gradient, expected, err_msg=method)


def test_a_diagonal_tangent_becomes_a_stack_with_exact_zeros_off_the_diagonal() -> None:
    x = np.array([1.0, 0.0, 4.0])
    jacobian = graphc.compile(graphc.differentiate(parse("x: [3]; sqrt(x)"), method="forward"))(x=x)[1]
    np.testing.assert_array_equal(jacobian, np.diag([0.5, np.inf, 0.25]))  # dp: nan beside the inf
    # the stack built where a reduction mixes the elements: each column times its partial
    graph = parse("x: [3]; c: [2, 3]; sum(sqrt(x) * c, axis=1)")
    c = np.array([[1.0, 2.0, 3.0], [0.5, 0.25, 2.0]])
    jacobian = graphc.compile(graphc.differentiate(graph, "x", method="forward"))(x=x, c=c)[1]
    np.testing.assert_array_equal(jacobian, c * [0.5, np.inf, 0.25])


@pytest.mark.parametrize(
    "text",
    [
        "x: [4]; sum(sqrt(x) * x)",
        "x: [4]; W: [3, 4]; logsumexp(W @ sin(x)) + max(x * x)",
        "x: [4]; sum(where(x > 1, x * x * x, sqrt(x)))",
        "x: [4]; W: [3, 4]; sum(softmax(W @ x) * (W @ x))",
    ],
)
def test_forward_over_forward_hessians_equal_dp_over_dp(text: str) -> None:
    # the gradient graph's own where, unindex, broadcast and stacked nodes are stacked again
    values = {"x": np.array([1.5, 2.0, 0.5, 3.0]), "W": RNG.normal(size=(3, 4))}
    graph = parse(text)
    values = {k: v for k, v in values.items() if k in graph.variables}
    reverse = graphc.hessian(graph, wrt="x", method="dp")(**values)
    forward = graphc.hessian(graph, wrt="x", method="forward")
    np.testing.assert_allclose(forward(**values), reverse, rtol=1e-12, atol=1e-13)
