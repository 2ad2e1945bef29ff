"""Python functions through the API: shapes= or shapes from the first call (traced once per new
combination of argument shapes), the function's parameter order, and traced symbols in wrt=."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import graphc
import graphc.numpy as gnp
from graphc.shapes import ShapeError
from graphc.tracing import LazyKernel


def layer_loss(W: Any, x: Any) -> Any:
    return np.sum(np.tanh(x @ W.T))


def layer_gradient(W: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The gradient of ``layer_loss``, by hand: ``dL/dh = 1 - tanh(h)**2`` for ``h = x @ W.T``."""
    d = 1 - np.tanh(x @ W.T) ** 2
    return d.T @ x, d @ W


RNG = np.random.default_rng(31)
W35, X45, X25 = RNG.normal(size=(3, 5)), RNG.normal(size=(4, 5)), RNG.normal(size=(2, 5))


def leaves(result: Any) -> list[np.ndarray]:
    """The arrays of a kernel's result (an array, a tuple, or a tuple of rows of them)."""
    out, stack = [], [result]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            stack.extend(reversed(item))
        else:
            out.append(np.asarray(item))
    return out


def assert_all_close(got: Any, expected: Any) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# --- gap 1: shapes= everywhere, or shapes from the first call ---------------------------------------


def test_grad_takes_shapes_with_a_named_dimension_bound_at_the_call() -> None:
    g = graphc.grad(layer_loss, shapes={"W": (3, 5), "x": ("n", 5)})
    assert isinstance(g, graphc.Kernel) and g.variables == ("W", "x") and g.wrt == ("W", "x")
    assert_all_close(g(W35, X45), layer_gradient(W35, X45))
    assert_all_close(g(W35, X25), layer_gradient(W35, X25))  # n = 2 now: the same kernel
    assert_all_close(g(x=X25, W=W35), layer_gradient(W35, X25))


def test_without_shapes_the_first_call_traces_with_its_arguments_shapes() -> None:
    g = graphc.grad(layer_loss)
    assert isinstance(g, LazyKernel) and g.variables == ("W", "x") and not g.kernels
    assert_all_close(g(W35, X45), layer_gradient(W35, X45))
    first = g.kernel(W35, X45)
    assert first.graph.shape(first.graph.variable("x")) == (4, 5) and g.wrt == ("W", "x")
    assert_all_close(g(W35, X45 + 1), layer_gradient(W35, X45 + 1))
    assert len(g.kernels) == 1 and g.kernel(W35, X45) is first  # same shapes: no new trace
    assert_all_close(g(W35, X25), layer_gradient(W35, X25))
    assert len(g.kernels) == 2  # other shapes: traced again
    np.testing.assert_allclose(graphc.grad(lambda x: gnp.sum(x * x))(np.arange(3.0))[0], [0.0, 2.0, 4.0])


def test_declared_shapes_stay_declared_and_the_rest_come_from_each_call() -> None:
    g = graphc.value_and_grad(lambda W, x: np.sum(W) * np.sum(x * x), shapes={"x": ("n",)})
    for columns in (3, 4):
        W, x = np.ones((2, columns)), np.arange(float(columns))
        value, (dW, dx) = g(W, x)
        assert value == 2 * columns * np.sum(x * x) and dW.shape == W.shape
        np.testing.assert_allclose(dx, 2 * x * 2 * columns)
    assert len(g.kernels) == 2  # one per shape of W; x's stays [n]
    assert g.kernel(np.ones((2, 3)), np.ones(7)) is g.kernel(np.ones((2, 3)), np.ones(2))


def test_every_kernel_function_takes_shapes_and_is_lazy_without_them() -> None:
    def f(W: Any, x: Any) -> Any:
        return np.sum(np.tanh(W @ x))

    shapes = {"W": [2, 3], "x": [3]}
    W, x = np.arange(6.0).reshape(2, 3) / 10, np.array([1.0, -1.0, 0.5])
    text = "W: [2, 3]; x: [3]; sum(tanh(W @ x))"
    kinds = {
        "compile": lambda e, **k: graphc.compile(e, **k),
        "grad": lambda e, **k: graphc.grad(e, **k),
        "value_and_grad": lambda e, **k: graphc.value_and_grad(e, **k),
        "jacobian": lambda e, **k: graphc.jacobian(e, **k),
        "hessian": lambda e, **k: graphc.hessian(e, **k),
        "derivative": lambda e, **k: graphc.derivative(e, "x", **k),
        "vjp": lambda e, **k: graphc.vjp(e, **k),
        "jvp": lambda e, **k: graphc.jvp(e, wrt="x", **k),
    }
    extra = {"vjp": (1.0,), "jvp": (np.ones(3),)}
    for name, make in kinds.items():
        args = (W, x, *extra.get(name, ()))
        expected = make(text)(*args)
        for kernel in (make(f, shapes=shapes), make(f)):
            got, want = leaves(kernel(*args)), leaves(expected)
            assert len(got) == len(want), name
            for a, b in zip(got, want, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-12, err_msg=name)
    assert graphc.count_paths(f, shapes=shapes) == graphc.count_paths(text)
    assert graphc.differentiate(f, shapes=shapes).output_names == ["f", "∂f/∂W", "∂f/∂x"]
    assert graphc.as_graph(f, shapes=shapes).to_text() == graphc.parse(text).to_text()


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: graphc.grad(layer_loss, shapes={"w": [3]}),
            graphc.TraceError,
            "shapes= names w, not a parameter",
        ),
        (
            lambda: graphc.grad(layer_loss, shapes={"W": [3, 0]}),
            graphc.TraceError,
            "whole number >= 1 or a name",
        ),
        (lambda: graphc.grad(layer_loss, shapes=[3, 5]), graphc.TraceError, "shapes= takes a dict"),
        (
            lambda: graphc.grad("x*y", shapes={"x": [3]}),
            graphc.GraphcError,
            "shapes= gives a Python function",
        ),
        (lambda: graphc.grad(layer_loss)(W35), graphc.EvaluationError, "missing value for parameter x"),
        (
            lambda: graphc.grad(layer_loss)(W35, X45, W=W35),
            graphc.EvaluationError,
            "parameter 'W' is given twice",
        ),
        (lambda: graphc.grad(layer_loss)(W35, X45, z=1.0), graphc.EvaluationError, "unexpected argument 'z'"),
        (lambda: graphc.grad(layer_loss)(W35, np.ones((0, 5))), graphc.TraceError, r"shape \(0, 5\)"),
        (lambda: graphc.grad(layer_loss)(W35, [[1.0], [1.0, 2.0]]), graphc.TraceError, "'x' has no shape"),
        (lambda: graphc.grad(layer_loss)(W35, np.ones(4)), ShapeError, r"cannot matmul \[4\] by \[5, 3\]"),
        (lambda: graphc.grad(layer_loss).wrt, AttributeError, "traced on its first call"),
        (lambda: graphc.grad(lambda *xs: xs[0]), graphc.TraceError, r"cannot trace a function with \*xs"),
    ],
)
def test_mistakes_are_one_line_errors_naming_them(call: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message) as info:
        call()
    assert "\n" not in str(info.value)


# --- gap 2: the function's parameter order --------------------------------------------------------


def test_a_functions_kernel_takes_and_returns_its_parameters_in_their_order() -> None:
    def f(y: Any, x: Any, *, a: Any) -> Any:
        return x**2 * y + a

    text = "x**2 * y + a"
    for kernel in (graphc.grad(f), graphc.grad(f, shapes={"y": (), "x": (), "a": ()})):
        assert kernel(2.0, 3.0, 1.0) == (9.0, 12.0, 1.0)  # y, x, a: ∂/∂y = x², ∂/∂x = 2xy, ∂/∂a = 1
        assert kernel(x=3.0, a=1.0, y=2.0) == (9.0, 12.0, 1.0)
        assert kernel.variables == kernel.wrt == ("y", "x", "a")
    assert graphc.grad(text)(1.0, 3.0, 2.0) == (1.0, 12.0, 9.0)  # text keeps the sorted names: a, x, y
    assert graphc.grad(text).variables == graphc.grad(text).wrt == ("a", "x", "y")
    assert graphc.grad(f, wrt="x")(2.0, 3.0, 1.0) == (12.0,)
    assert graphc.compile(lambda b, a: a - b)(1.0, 5.0) == 4.0
    assert graphc.jacobian(lambda b, a: (a * b, a - b))(2.0, 3.0).tolist() == [[3.0, 2.0], [-1.0, 1.0]]
    assert graphc.hessian(lambda y, x: x**2 * y)(2.0, 3.0).tolist() == [[0.0, 6.0], [6.0, 4.0]]
    jvp = graphc.jvp(lambda y, x: x * y)
    assert jvp(2.0, 3.0, 1.0, 0.0) == 3.0 and jvp.variables == ("y", "x")  # the function's parameters
    assert jvp.kernel(2.0, 3.0).variables == ("y", "x", "tangent_y", "tangent_x")  # then the seeds
    vjp = graphc.vjp(lambda y, x: x * y, shapes={"y": (), "x": ()})
    assert vjp.variables == ("y", "x", "cotangent") and vjp(2.0, 3.0, 1.0) == (3.0, 2.0)
    assert graphc.differentiate(f).output_names == ["f", "∂f/∂y", "∂f/∂x", "∂f/∂a"]


def test_a_function_of_no_parameters_is_traced_at_once() -> None:
    kernel = graphc.compile(lambda: gnp.exp(0.0) + 2)
    assert isinstance(kernel, graphc.Kernel) and kernel() == 3.0
    assert graphc.grad(lambda: 1.0)() == ()


def test_batches_of_a_scalar_function_by_declaring_its_parameters_scalars() -> None:
    g = graphc.grad(lambda y, x: x * y, shapes={"y": (), "x": ()})
    dy, dx = g(np.arange(3.0), 2.0)  # declared scalars: extra axes are batch axes
    np.testing.assert_array_equal(dy, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(dx, [0.0, 1.0, 2.0])


# --- gap 3: traced symbols in wrt= ----------------------------------------------------------------


def test_wrt_takes_traced_symbols_and_names_and_refuses_anything_else() -> None:
    x, y = graphc.sym("x"), graphc.sym("y")
    f = x**2 * y
    assert graphc.grad(f, wrt=x)(3.0, 2.0) == (12.0,)
    assert graphc.grad(f, wrt=[y, "x"])(3.0, 2.0) == (9.0, 12.0)
    assert graphc.jacobian(f, wrt=(y,))(3.0, 2.0).tolist() == [[9.0]]
    assert float(graphc.derivative(f, x, order=2)(3.0, 2.0)) == 4.0
    assert graphc.count_paths(f, wrt=[x]) == graphc.count_paths("x**2 * y", wrt="x")
    assert graphc.grad("x**2 * y", wrt=y)(3.0, 2.0) == (9.0,)  # a symbol names the variable anywhere
    W = graphc.sym("W", [2, 3])
    assert graphc.grad(np.sum(W * W), wrt=W)(np.ones((2, 3)))[0].tolist() == [[2.0] * 3] * 2
    for wrt, message in [
        (x * 2, r"wrt must name variables: <traced 2\*x> is a traced expression"),
        ([x, 1.5], r"got float 1.5 \(item 1 of wrt\)"),
        (3, "wrt must name one or more variables"),
        (None.__class__, "got type"),
    ]:
        with pytest.raises(graphc.GraphcError, match=message):
            graphc.grad(f, wrt=wrt)
    with pytest.raises(graphc.GraphcError, match="unknown variable|not a variable|'z'"):
        graphc.grad(f, wrt=graphc.sym("z"))


def test_a_functions_kernel_keeps_its_parameter_order_when_pickled() -> None:
    import pickle

    g = graphc.grad(lambda y, x: x**2 * y, shapes={"y": (), "x": ()})
    loaded = pickle.loads(pickle.dumps(g))
    assert loaded.variables == ("y", "x") and loaded(2.0, 3.0) == g(2.0, 3.0) == (9.0, 12.0)
    rebuild, (state,) = g.__reduce__()
    with pytest.raises(graphc.GraphcError, match="variables are not the graph's variables"):
        rebuild({**state, "variables": ["y", "z"]})
