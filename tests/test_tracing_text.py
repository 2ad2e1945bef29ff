"""Graph.to_text() parses back to the same graph, node for node: function graphs (parsed or traced)
and their derivative graphs, scalar and tensor, through every block op of the table."""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import graphc
import graphc.numpy as gnp
from graphc.graph import Graph
from graphc.ops import BLOCK_OPS, INTERNAL_CALLS, RESERVED, VAR
from tests.test_tracing import assert_same_graph, programs

INPUTS = "X: [2, 3]; v: [3]; N: [n, 3]; I: [1, 1, 4, 4]; K: [1, 1, 3, 3]\n"
# scalar terms over the inputs and x, y, each using block ops (softmax's shift, mean's count over
# a named dimension, keepdims and multi-axis reductions, indexing, layers...)
TERMS = [
    "sum(softmax(X, axis=0) * X)",
    "mean(log_softmax(v))",
    "logsumexp(X, axis=1)[0]",
    "max(X, axis=0)[1] * min(v)",
    "sum(transpose(X) @ v[0:2])",
    "sum(reshape(X, [3, 2])[::2, 1])",
    "sum(X, axis=[0, 1], keepdims=1)[0, 0]",
    "sum(maxpool2d(I, 2))",
    "sum(avgpool2d(I, 2, stride=1))",
    "sum(conv2d(I, K, padding=1))",
    "sum(outer(v, v))",
    "sum(where(X > 0, X, 0.5 * X))",
    "sum(where(X @ v > 0, X @ v, 0))",  # a product below a mask per element: masked_matmul
    # convolutions and a max pool below and above a mask per element: their masked forms
    "sum(where(maxpool2d(conv2d(where(I > 0, I, 0), K, padding=1), 2) > 0, maxpool2d(conv2d(I, K), 2, stride=1), 0))",
    "sum(clip(v, -1, 1) ** 2)",
    "mean(tanh(N @ v))",
    "sin(x*y) + exp(x)",
]


def assert_round_trip(graph: Graph) -> None:
    """``graph`` (pruned) equals the parse of its text; scalar inputs it does not use, which the
    text cannot name, are added to the parse as the pruned graph keeps them."""
    graph = graph.pruned()
    parsed = graphc.parse(graph.to_text())
    for name in graph.variables:
        if name not in parsed.variables:
            parsed.var(name, graph.shape(graph.variable(name)))
    assert_same_graph(parsed, graph)


def derivative_graphs(text: str) -> list[Graph]:
    graph = graphc.parse(INPUTS + text)
    concrete = graph.with_dims({"n": 2})  # forward mode seeds each element: its shapes are numbers
    return [
        graph,
        graphc.differentiate(graph, method="dp"),
        graphc.differentiate(concrete, method="forward"),
        graphc.differentiate(graphc.differentiate(concrete, method="dp"), "v", method="dp"),
    ]


@pytest.mark.parametrize("term", TERMS)
def test_each_term_its_gradients_and_a_second_derivative_print_and_parse_back(term: str) -> None:
    for graph in derivative_graphs(term):
        assert_round_trip(graph)


def test_the_terms_and_their_derivatives_hold_every_block_op() -> None:
    graphc.block("smooth(a) = log(1 + exp(a))", vjp="g * exp(a) / (1 + exp(a))")
    graphs = [g for term in [*TERMS, "sum(smooth(v))"] for g in derivative_graphs(term)]
    seen = {g.op(n) for g in graphs for n in range(len(g))}
    assert set(BLOCK_OPS) <= seen, sorted(set(BLOCK_OPS) - seen)
    for graph in graphs[-4:]:  # the user block's
        assert_round_trip(graph)


FUNCTIONS = ["tanh", "exp", "sin", ""]


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.sampled_from(TERMS), min_size=1, max_size=3, unique=True),
    st.lists(st.sampled_from(["+", "-", "*"]), min_size=2, max_size=2),
    st.sampled_from(FUNCTIONS),
)
def test_random_combinations_of_terms_round_trip_with_their_derivatives(
    terms: list[str], operators: list[str], outer: str
) -> None:
    text = terms[0]
    for operator, term in zip(operators, terms[1:], strict=False):
        text = f"({text}) {operator} ({term})"
    for graph in derivative_graphs(f"{outer}({text})" if outer else text):
        assert_round_trip(graph)


@settings(max_examples=25, deadline=None)
@given(programs())
def test_random_scalar_programs_traced_and_their_gradients_round_trip(
    steps: list[tuple[str, list[int | float]]],
) -> None:
    def run(x: Any, y: Any, z: Any) -> Any:  # each step through graphc.numpy, by the op's table name
        values: list[Any] = [x, y, z]
        for name, operands in steps:
            values.append(getattr(gnp, name)(*[values[a] if isinstance(a, int) else a for a in operands]))
        return values[-1]

    traced = graphc.trace(run)
    for graph in (
        traced,
        graphc.differentiate(traced, method="dp"),
        graphc.differentiate(traced, method="forward"),
    ):
        assert_round_trip(graph)


def test_a_traced_softmax_model_is_saved_as_text_and_read_back() -> None:
    def model(W: Any, b: Any, x: Any, t: Any) -> Any:
        y = gnp.softmax(W @ x + b)
        return -np.sum(t * np.log(y)), gnp.mean(gnp.log_softmax(W, axis=0))

    traced = graphc.trace(model, shapes={"W": [3, 5], "b": [3], "x": [5], "t": [3]})
    text = traced.to_text()
    assert "shift(" in text and "keepdims=1" in text
    assert_round_trip(traced)
    values = {
        "W": np.linspace(-1, 1, 15).reshape(3, 5),
        "b": np.ones(3),
        "x": np.arange(5.0),
        "t": [0.2, 0.3, 0.5],
    }
    by_function = graphc.compile(model, shapes={"W": [3, 5], "b": [3], "x": [5], "t": [3]})
    for a, b, c in zip(
        graphc.compile(traced)(**values),
        graphc.compile(text)(**values),
        by_function(*values.values()),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_ops_the_language_has_no_function_for_are_called_by_their_own_names() -> None:
    assert set(INTERNAL_CALLS) == {op for op in BLOCK_OPS if BLOCK_OPS[op].function is None} - {
        "index",
        "custom",
    }
    assert not set(INTERNAL_CALLS) & RESERVED  # a variable may still be named count or shift
    graph = graphc.parse("count = 2; shift: [3]; shift * count + shift(shift, axis=0)")
    assert graph.variables == ["shift"] and graph.op(graph.variable("shift")) == VAR


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x: [3]; shift(x)", r"shift\(\) needs axis="),
        ("x: [3]; shift(x, axis=[0, n])", r"unknown dimension 'n'"),
        ("X: [n, 3]; shift(X, axis=[0, n])", r"shift\(\)'s axis= takes an integer or a list of integers"),
        ("x: [3]; shift(x, axis=[0:1])", r"shift\(\)'s axis= takes an integer"),
        ("x: [3]; broadcast(x, shape=[2, 0])", r"shape= takes a list of dimensions"),
        ("x: [3]; broadcast(x, shape=2)", r"shape= takes a list of dimensions"),
        ("x: [3]; broadcast(x, shape=[2, 4])", r"broadcast"),
        ("x: [3]; unindex(x, at=[1:2], shape=[5])", r"cannot place \[3\] at an index of \[5\]"),
        ("x: [3]; sum(x, keepdims=2)", r"keepdims= takes 0 or 1"),
        ("x: [3]; softmax(x, keepdims=1)", r"unknown keyword argument 'keepdims'"),
        ("x: [3]; count(x, axis=0, size=[2, 2])", r"unknown keyword argument 'size'"),
        ("X: [1, 1, 4, 4]; G: [1, 1, 2, 2]; maxpool2d_route(X, G, window=0, stride=2)", r"window= takes"),
    ],
)
def test_the_internal_spellings_refuse_what_they_cannot_build(text: str, message: str) -> None:
    with pytest.raises(graphc.ParseError, match=message):
        graphc.parse(text)
