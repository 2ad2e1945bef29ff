"""Tracing Python functions: the same graph as the text, NumPy dispatch, and trace-time errors."""

from __future__ import annotations

import hashlib
import io
import math
import tokenize
from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import graphc
import graphc.numpy as gnp
from graphc.graph import Graph
from graphc.ops import BLOCK_OPS, COMPOSITES, CONST, FUNCTIONS, OPS, VAR
from tests.test_diff import CORPUS, op_case

# --- comparing graphs node for node ----------------------------------------------------------------


def structure(graph: Graph) -> tuple[int, set[str], list[str]]:
    """The graph up to node numbering: a label per node from its op, data (name, value or params),
    shape and operands' labels (sorted for a commutative op), the set of labels, and the outputs' labels. Two
    hash-consed graphs with equal sizes, label sets and output labels match node for node."""
    labels: list[str] = []
    for node, op in enumerate(graph.ops):
        data = (
            graph.name(node) if op == VAR else graph.const_value(node) if op == CONST else graph.params(node)
        )
        operands = [labels[a] for a in graph.args(node)]
        if op in OPS and OPS[op].commutative:
            operands.sort()
        key = (op, data, graph.shape(node), operands)
        labels.append(hashlib.blake2b(repr(key).encode(), digest_size=12).hexdigest())
    return len(graph), set(labels), [labels[o] for o in graph.outputs]


def assert_same_graph(traced: Graph, text: Graph) -> None:
    size, labels, outputs = structure(traced)
    assert size == len(set(labels)) == len(text)  # hash-consed: one node per label
    assert (size, labels, outputs) == structure(text)
    assert traced.variables == text.variables


PY_LOGIC = {"and": "&", "or": "|", "not": "~"}


def as_python(text: str, names: list[str]) -> Callable[..., Any]:
    """The program as a Python function of ``names``: graphc's functions called from graphc.numpy,
    ``^`` as ``**``, the last statement returned. (The test's own translation of its corpus.)"""
    statements: list[list[str]] = [[]]
    depth = 0
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        word = tok.string
        if tok.type == tokenize.OP:
            depth += (word in "([") - (word in ")]")
        if tok.type == tokenize.NAME and (word in FUNCTIONS or word in ("pi", "e")):
            word = f"gnp.{word}"
        elif tok.type == tokenize.NAME and word in PY_LOGIC:  # Python's own and/or/not ask bool()
            word = PY_LOGIC[word]
        elif word == "^":
            word = "**"
        elif tok.type in (tokenize.COMMENT, tokenize.ENDMARKER):
            continue
        elif (word == ";" or tok.type in (tokenize.NEWLINE, tokenize.NL)) and depth == 0:
            statements.append([])
            continue
        statements[-1].append(word)
    lines = [" ".join(words) for words in statements if words]
    lines[-1] = f"return {lines[-1]}"
    source = f"def f({', '.join(names)}):\n" + "".join(f"    {line}\n" for line in lines)
    scope: dict[str, Any] = {"gnp": gnp}
    exec(source, scope)  # noqa: S102 - the test corpus, translated by this test
    return scope["f"]


def inputs_in_order(text: str) -> list[str]:
    graph = graphc.parse(text)
    return sorted(graph.variables, key=graph.variable)


CASES = {**{f"corpus-{k}": c.text for k, c in CORPUS.items()}, **{f"op-{n}": op_case(n).text for n in OPS}}


@pytest.mark.parametrize("text", CASES.values(), ids=list(CASES))
def test_tracing_the_corpus_builds_the_texts_graph_node_for_node(text: str) -> None:
    function = as_python(text, inputs_in_order(text))
    assert_same_graph(graphc.trace(function), graphc.parse(text))


@pytest.mark.parametrize("text", CASES.values(), ids=list(CASES))
def test_a_traced_graphs_text_parses_back_to_it(text: str) -> None:
    traced = graphc.trace(as_python(text, inputs_in_order(text)))
    assert_same_graph(graphc.parse(traced.to_text()), traced)


# --- random programs: built by operators and graphc.numpy, and spelled as text -----------------------

UNARY = sorted(name for name, op in OPS.items() if op.arity == 1)
BINARY = sorted(name for name, op in OPS.items() if op.arity == 2)
PY_INFIX = {"add": "__add__", "sub": "__sub__", "mul": "__mul__", "div": "__truediv__", "pow": "__pow__"}


def spell(name: str, operands: list[str]) -> str:
    op = OPS[name]
    if op.arity == 1 and op.infix is not None:  # -x, not x
        return f"({op.infix} {operands[0]})"
    if op.function is not None:
        return f"{op.function}({', '.join(operands)})"
    return f"({operands[0]} {op.infix} {operands[1]})"


@st.composite
def programs(draw: Any) -> list[tuple[str, list[int | float]]]:
    """Steps over x, y, z (values 0, 1, 2) and earlier steps: an op name and its operands,
    each an earlier value's index or a small constant."""
    steps: list[tuple[str, list[int | float]]] = []
    for k in range(draw(st.integers(1, 12))):
        name = draw(st.sampled_from(UNARY + BINARY))
        operands: list[int | float] = [
            draw(st.integers(0, k + 2) | st.sampled_from([0.0, 1.0, 2.0, -0.5]))
            for _ in range(OPS[name].arity)
        ]
        steps.append((name, operands))
    return steps


@settings(max_examples=60, deadline=None)
@given(programs())
def test_random_programs_traced_equal_their_text(steps: list[tuple[str, list[int | float]]]) -> None:
    def run(x: Any, y: Any, z: Any) -> Any:
        values: list[Any] = [x, y, z]
        for name, operands in steps:
            args = [values[a] if isinstance(a, int) else a for a in operands]
            if name in PY_INFIX and isinstance(args[0], graphc.Traced):
                values.append(getattr(args[0], PY_INFIX[name])(args[1]))  # Python's operator
            elif name == "neg" and isinstance(args[0], graphc.Traced):
                values.append(-args[0])
            else:
                values.append(getattr(gnp, OPS[name].function or name)(*args))
        return values[-1]

    texts = ["x", "y", "z"]
    for name, operands in steps:
        texts.append(spell(name, [texts[a] if isinstance(a, int) else f"({a!r})" for a in operands]))
    traced = graphc.trace(run)
    parsed = graphc.parse(texts[-1])
    # the text names only the inputs it uses; the traced function has all three
    for name in ("x", "y", "z"):
        parsed.var(name)
    assert_same_graph(traced, parsed)


# --- functions as expr -------------------------------------------------------------------------------


def test_the_issues_example_grad_of_a_lambda() -> None:
    traced = graphc.grad(lambda x, y: np.sin(x * y) + np.exp(x))(1.5, 2.0)
    text = graphc.grad("sin(x*y) + exp(x)")(1.5, 2.0)
    assert traced == text
    assert traced[0] == pytest.approx(2.0 * math.cos(3.0) + math.exp(1.5))


def test_every_public_function_takes_a_python_function() -> None:
    def f(x: Any, y: Any) -> Any:
        return x**2 * y

    text = "x**2 * y"
    assert graphc.compile(f)(3.0, 2.0) == graphc.compile(text)(3.0, 2.0)
    assert graphc.value_and_grad(f)(3.0, 2.0) == graphc.value_and_grad(text)(3.0, 2.0)
    assert graphc.jacobian(f)(3.0, 2.0).tolist() == graphc.jacobian(text)(3.0, 2.0).tolist()
    assert graphc.hessian(f)(3.0, 2.0).tolist() == [[4.0, 6.0], [6.0, 0.0]]
    assert float(graphc.derivative(f, "x", order=2)(3.0, 2.0)) == 4.0
    assert graphc.count_paths(f) == graphc.count_paths(text)
    assert graphc.differentiate(f, "y").output_names == ["f", "∂f/∂y"]
    assert graphc.grad(f, method="paths", backend="llvm")(x=3.0, y=2.0) == (12.0, 9.0)


def test_a_function_loops_calls_helpers_and_returns_several_outputs() -> None:
    def layer(u: Any, w: float) -> Any:
        return gnp.tanh(w * u + 1)

    def f(x: Any, *, scale: Any) -> Any:
        u = x
        for w in (0.5, -1.0, 2.0):  # Python control flow runs at trace time
            u = layer(u, w)
        return u * scale, sum(x**k for k in range(3))

    graph = graphc.trace(f)
    text = "u = tanh(0.5*x + 1); u = tanh(-1*u + 1); u = tanh(2*u + 1); u*scale, 1 + x + x**2"
    assert graph.variables == ["scale", "x"]
    assert_same_graph(graph, graphc.parse(text))
    kernel = graphc.compile(f)
    assert kernel(x=0.3, scale=2.0) == graphc.compile(text)(x=0.3, scale=2.0)


def test_symbols_traced_apart_combine_into_one_graph() -> None:
    x, y = graphc.sym("x"), graphc.sym("y")
    big = gnp.sin(x * y) + gnp.exp(x)
    also_x = graphc.sym("x")  # the same name is the same variable
    f = also_x * big
    assert_same_graph(graphc.as_graph(f), graphc.parse("x*(sin(x*y) + exp(x))"))
    assert_same_graph(graphc.as_graph((x * y, x + y)), graphc.parse("x*y, x + y"))
    assert graphc.as_graph(x).variables == ["x"]  # x's graph now holds y too, but x needs only x
    assert graphc.grad(f, wrt="y")(1.0, 2.0) == graphc.grad("x*(sin(x*y) + exp(x))", wrt="y")(1.0, 2.0)


def test_numpy_functions_on_traced_values_are_the_table_ops() -> None:
    x = graphc.sym("x")
    y = graphc.sym("y")
    traced = np.tanh(np.arctan2(x, y) * np.float64(2.0)) - np.maximum(np.abs(x), np.power(y, 2))
    text = "tanh(atan2(x, y)*2) - max(abs(x), y**2)"
    assert_same_graph(graphc.as_graph(traced), graphc.parse(text))
    assert_same_graph(graphc.as_graph(np.negative(x) / np.sqrt(x)), graphc.parse("-x/sqrt(x)"))


def test_graphc_numpy_has_every_op_of_the_table_and_numbers_give_numbers() -> None:
    for name, op in OPS.items():
        function = getattr(gnp, op.function or name)
        args = [v for v, _ in op.domain]
        assert function(*args) == pytest.approx(float(op.fold(*args)), nan_ok=True)
    spelled = {op.function for op in BLOCK_OPS.values() if op.function} | set(COMPOSITES)
    assert spelled <= set(gnp.__all__)  # every block op the language calls by name, and composites
    assert gnp.arctan2 is not gnp.atan2 and gnp.arctan2(1.0, 1.0) == gnp.atan2(1.0, 1.0)
    assert gnp.pi == math.pi and gnp.e == math.e


# --- errors ------------------------------------------------------------------------------------------


def this_line() -> str:
    import inspect

    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return f"{__file__}:{frame.f_back.f_lineno + 1}"


def test_a_traced_value_in_if_names_the_problem_and_the_users_line() -> None:
    def f(x: Any) -> Any:
        where = this_line()
        if x > 0:
            return x
        return -x, where

    with pytest.raises(graphc.TraceError, match=r"cannot be used as a Python bool") as err:
        graphc.grad(f, shapes={"x": ()})  # x > 0 builds a node; `if` then asks for its truth at trace time
    assert f"(at {__file__}:" in str(err.value)
    with pytest.raises(graphc.TraceError, match=r"cannot be used as a Python bool") as err:
        graphc.grad(f)(1.0)  # without shapes=, traced at the first call
    assert f"(at {__file__}:" in str(err.value)
    with pytest.raises(graphc.TraceError, match=r"Python bool \(in if, while") as err:
        where = this_line()
        bool(graphc.sym("x"))
    assert str(err.value).endswith(f"(at {where})")


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (lambda x: len(x), r"len\(\) of a traced scalar"),
        (lambda x: math.sin(x), "no number at trace time: float"),
        (lambda x: float(x), "no number at trace time"),
        (lambda x: np.cumsum(x), "numpy.cumsum is not supported on traced values"),
        (lambda x: np.trunc(x), "numpy.trunc is not supported on traced values"),
        (lambda x: np.add.reduce(x), "numpy.add.reduce is not supported"),
        (lambda x: np.sin(x, out=np.zeros(1)), "numpy.sin on traced values takes no out="),
        (lambda x: np.array([x, x]), "NumPy tried to make an array of a traced value"),
        (lambda x: [v for v in x], "iterating over a traced scalar"),
        (lambda x: x + "1", "unsupported operand"),
        (lambda x: gnp.sin(x, x), r"sin\(\) takes 1 argument, got 2"),
        (lambda x: None, "expected a number or a traced value, got NoneType"),
        (lambda x: (), "returned no outputs"),
        (lambda *xs: xs[0], r"cannot trace a function with \*xs"),
        (lambda pi: pi, "'pi' is a built-in name"),
    ],
)
def test_what_tracing_refuses_is_a_graphc_error_naming_it(function: Callable[..., Any], message: str) -> None:
    with pytest.raises((graphc.GraphcError, TypeError), match=message):
        graphc.trace(function)


def test_sym_refuses_names_the_language_cannot_print() -> None:
    for name in ("sin", "e", "2x", "a b", "lambda", 3):
        with pytest.raises(graphc.TraceError):
            graphc.sym(name)  # type: ignore[arg-type]


# --- tensors -----------------------------------------------------------------------------------------

LECTURE = "W: [3, 5]; b: [3]; x: [5]; t: [3]; a = W @ x + b; y = softmax(a); -sum(t * log(y))"


def lecture(W: Any, b: Any, x: Any, t: Any) -> Any:
    a = W @ x + b
    y = gnp.softmax(a)
    return -np.sum(t * np.log(y))


def test_the_003_lecture_traced_is_its_text_node_for_node() -> None:
    shapes = {"W": [3, 5], "b": [3], "x": [5], "t": [3]}
    traced, text = graphc.trace(lecture, shapes=shapes), graphc.parse(LECTURE)
    assert_same_graph(traced, text)
    assert list(traced.ops) == list(text.ops) and list(traced.operands) == list(text.operands)
    assert [traced.shape(n) for n in range(len(traced))] == [text.shape(n) for n in range(len(text))]
    examples = (np.zeros((3, 5)), np.zeros(3), np.zeros(5), np.zeros(3))
    assert_same_graph(graphc.trace(lecture, *examples), text)  # shapes from example arrays


MLP_TEXT = (
    "X: [n, 64]; T: [n, 10]; W1: [64, 32]; b1: [32]; W2: [32, 10]; b2: [10]\n"
    "h = tanh(X @ W1 + b1)\n"
    "o = h @ W2 + b2\n"
    "mean(-sum(T * log_softmax(o, axis=1), axis=1))"
)
MLP_SHAPES = {"X": ["n", 64], "T": ["n", 10], "W1": [64, 32], "b1": [32], "W2": [32, 10], "b2": [10]}


def mlp(X: Any, T: Any, W1: Any, b1: Any, W2: Any, b2: Any) -> Any:
    layers = [(W1, b1), (W2, b2)]
    h = X
    for k, (W, b) in enumerate(layers):
        h = h @ W + b
        if k < len(layers) - 1:  # Python control flow on Python values: fine at trace time
            h = np.tanh(h)
    return np.mean(-np.sum(T * gnp.log_softmax(h, axis=1), axis=1))


def test_an_mlp_written_with_a_loop_over_layers_is_its_text_node_for_node() -> None:
    traced = graphc.trace(mlp, shapes=MLP_SHAPES)
    assert_same_graph(traced, graphc.parse(MLP_TEXT))
    # saved as text and read back, log_softmax's shift and keepdims sum included
    assert_same_graph(graphc.parse(traced.to_text()), traced)
    tanh_net = graphc.trace(
        lambda X, W1, b1: np.sum(np.tanh(X @ W1 + b1) ** 2),
        shapes={k: MLP_SHAPES[k] for k in ("X", "W1", "b1")},
    )
    assert_same_graph(graphc.parse(tanh_net.to_text()), tanh_net)
    rng = np.random.default_rng(31)
    values = {
        name: rng.normal(size=[7 if d == "n" else d for d in shape]) for name, shape in MLP_SHAPES.items()
    }
    for a, b in zip(
        graphc.grad(traced, wrt="W1,b2")(**values),
        graphc.grad(MLP_TEXT, wrt="W1,b2")(**values),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


def test_indexing_slicing_reductions_and_numpy_functions_trace_as_the_language() -> None:
    A, v = graphc.sym("A", [3, 4]), graphc.sym("v", [4])
    cases = [
        (A[1, 2] + A[-1, 0], "A[1, 2] + A[2, 0]"),
        (v[1:3] * v[::2], "v[1:3] * v[::2]"),
        (A[:, 0] @ A[:, 1:2], "A[:, 0] @ A[:, 1:2]"),
        (np.sum(A, axis=0) + np.max(A, axis=0), "sum(A, axis=0) + max(A, axis=0)"),
        (np.mean(A) * np.min(A), "mean(A) * min(A)"),
        (np.dot(A, v) + np.matmul(A, v), "dot(A, v) + A @ v"),
        (A.T @ np.reshape(A, (3, -1))[:, 0], "transpose(A) @ reshape(A, [3, 4])[:, 0]"),
        (gnp.logsumexp(A, axis=1) + gnp.softmax(v)[0], "logsumexp(A, axis=1) + softmax(v)[0]"),
        (np.outer(v, v) + np.maximum(A[0], 0), "outer(v, v) + max(A[0], 0)"),
        (sum(v) * len(v), "(v[0] + v[1] + v[2] + v[3]) * 4"),
    ]
    for traced, text in cases:
        graph = graphc.as_graph(traced)
        graph.var("A", (3, 4)), graph.var("v", (4,))  # inputs, used or not, as the text declares them
        assert_same_graph(graph, graphc.parse(f"A: [3, 4]; v: [4]; {text}"))


def test_named_dimensions_and_batches() -> None:
    X, w = graphc.sym("X", ["n", 3]), graphc.sym("w", [3])
    f = graphc.compile(np.tanh(X @ w))
    values = {"X": np.arange(6.0).reshape(2, 3) / 10, "w": np.array([1.0, -1.0, 0.5])}
    np.testing.assert_allclose(f(**values), np.tanh(values["X"] @ values["w"]))
    assert (X @ w).shape == ("n",) and X.T.shape == (3, "n") and X.ndim == 2


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (lambda W, x: W @ x, r"cannot matmul \[3, 5\] by \[4\]: 5 != 4 \(at .*test_tracing.py:\d+\)"),
        (lambda W, x: W + x, r"\[3, 5\] with \[4\].* \(at .*test_tracing.py:\d+\)"),
        (lambda W, x: x[4], r"index 4 is out of range .* \[4\]"),
        (lambda W, x: W[0.5], "indexed by integers and slices, got float"),
        (lambda W, x: x + np.ones(4), r"a NumPy array of shape \(4,\) in a traced function"),
        (lambda W, x: np.sum(x, keepdims=True), r"sum\(\) on traced values takes no keepdims="),
        (lambda W, x: np.reshape(W, (4, 4)), r"cannot reshape|size"),
        (lambda W, x: gnp.softmax(x, x), r"softmax\(\) takes 1 argument, got 2"),
        (lambda W, x: gnp.transpose(x, axis=0), r"transpose\(\) takes no axis="),
        (lambda W, x: np.linalg.norm(x), "is not supported on traced values"),
    ],
)
def test_tensor_errors_name_the_operation_the_shapes_and_the_line(
    function: Callable[..., Any], message: str
) -> None:
    with pytest.raises(graphc.GraphcError, match=message):
        graphc.trace(function, shapes={"W": [3, 5], "x": [4]})


def test_shapes_are_checked_where_they_are_given() -> None:
    with pytest.raises(graphc.TraceError, match="whole number >= 1 or a name"):
        graphc.sym("W", [3, 0])
    with pytest.raises(graphc.TraceError, match="not a parameter"):
        graphc.trace(lambda x: x, shapes={"y": [2]})
    with pytest.raises(graphc.GraphcError, match=r"variable 'x' has shape \[3\], not \[\]"):
        graphc.sym("x", [3]) + graphc.sym("x")


def test_comparisons_and_logic_trace_to_the_languages_conditionals() -> None:
    def f(x: Any, y: Any) -> Any:
        return gnp.where((x > 0) & ~(y == 1), gnp.sqrt(x), 0.0)

    traced = graphc.trace(f)
    (g,) = graphc.grad(f, wrt=["x"])(x=0.0, y=0.0)  # the branch not taken contributes exactly 0
    assert g == 0.0
    text = graphc.parse("where((x > 0) and not (y == 1), sqrt(x), 0)")
    assert graphc.compile(traced)(x=4.0, y=0.0) == graphc.compile(text)(x=4.0, y=0.0) == 2.0
    assert graphc.compile(traced)(x=4.0, y=1.0) == 0.0
