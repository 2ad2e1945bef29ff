"""The NumPy backend: readable source, broadcasting, argument handling, memory, domains."""

from __future__ import annotations

import inspect
import math
import os
import re
import subprocess
import sys
import textwrap
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import graphc
from graphc import EvaluationError


def test_source_is_one_statement_per_node_and_readable():
    k = graphc.compile("sin(x*y) + exp(x)")
    body = k.source.split("with np.errstate(all='ignore'):")[1].split("return")[0]
    statements = [line.strip() for line in body.strip().splitlines()]
    assert statements == ["t0 = x * y", "t0 = np.sin(t0)", "t1 = np.exp(x)", "t0 = t0 + t1"]
    assert "def f(x, y, *, out=None):" in k.source


def test_generated_module_runs_standalone_with_only_numpy(tmp_path):
    source = graphc.compile("u = x*y; sigmoid(u) + softplus(x) - relu(y), max(x, y)").source
    module = tmp_path / "standalone.py"
    module.write_text(
        source
        + textwrap.dedent("""
        import sys
        print(f(0.5, -1.5))
        assert "graphc" not in sys.modules
    """)
    )
    result = subprocess.run([sys.executable, str(module)], capture_output=True, text=True, check=True)
    assert "0.5" in result.stdout


def test_a_tensor_gradient_imports_only_what_the_numpy_path_needs():
    """A first gradient on the NumPy backend, from a fresh process, imports none of SymPy, networkx,
    SciPy or llvmlite (nor graphc's modules for SciPy users, nor hashlib, which loads OpenSSL): each
    is tens of milliseconds of a start that should take a few hundred."""
    script = (
        "import sys\n"
        "import numpy as np\n"
        "import graphc\n"
        "text = 'X: [n, 4]; W: [4, 3]; b: [3]; T: [n, 3]\\nz = tanh(X @ W + b)\\n-mean(sum(T * log_softmax(z), axis=1))'\n"
        "kernel = graphc.value_and_grad(text, wrt=['W', 'b'], backend='numpy')\n"
        "value, (dW, db) = kernel(X=np.ones((5, 4)), W=np.ones((4, 3)), b=np.zeros(3), T=np.eye(3)[[0, 1, 2, 0, 1]])\n"
        "assert dW.shape == (4, 3) and np.isfinite(float(value))\n"
        "heavy = ('sympy', 'networkx', 'scipy', 'llvmlite', 'graphc.sparse', 'graphc.optimize', 'hashlib')\n"
        "print(sorted(m for m in sys.modules if m in heavy or m.startswith(tuple(h + '.' for h in heavy))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    assert done.stdout.splitlines()[-1] == "[]"


def test_keywords_positions_and_sorted_variables():
    k = graphc.compile("y - x")
    assert k.variables == ("x", "y")
    assert float(k(1.0, 3.0)) == 2.0
    assert float(k(y=3.0, x=1.0)) == 2.0
    assert float(k(1.0, y=3.0)) == 2.0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda k: k(1.0), "missing value for variable y"),
        (lambda k: k(), "missing value for variables x, y"),
        (lambda k: k(1.0, 2.0, 3.0), "3 positional arguments"),
        (lambda k: k(1.0, 2.0, z=3.0), "unexpected argument 'z'"),
        (lambda k: k(1.0, x=2.0, y=1.0), "'x' is given twice"),
        (lambda k: k(x="a", y=1.0), "variable 'x': cannot convert str"),
        (lambda k: k(x=np.ones(3), y=np.ones(4)), r"do not broadcast.*x\(3,\), y\(4,\)"),
    ],
)
def test_bad_calls_are_evaluation_errors(call, message):
    k = graphc.compile("y - x")
    with pytest.raises(EvaluationError, match=message):
        call(k)


def test_broadcasting_and_output_shapes():
    k = graphc.compile("x*y, x, 2, y")
    x = np.arange(6.0).reshape(2, 3)
    f1, f2, f3, f4 = k(x=x, y=np.array([1.0, 2.0, 3.0]))
    for out in (f1, f2, f3, f4):
        assert out.shape == (2, 3) and out.dtype == np.float64
    assert np.array_equal(f3, np.full((2, 3), 2.0))
    f3[0, 0] = 9.0  # outputs are writable, fresh arrays
    f2[0, 0] = 9.0
    assert x[0, 0] == 0.0, "an input returned as an output is a copy, never the caller's array"


def test_large_batches_are_computed_in_cache_sized_slices_with_the_same_results():
    from graphc.backends.numpy import generate

    k = graphc.compile("u = x*y; sin(u) + u**2, x, 2, y")
    assert "CHUNK = " in k.source and "_chunked(_f_body, _f_slice" in k.source
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 1))
    y = rng.standard_normal((1, 200))  # 60,000 points: several slices, both inputs broadcast
    f1, f2, f3, f4 = k(x, y)
    u = x * y
    assert f1.shape == (300, 200)
    assert np.array_equal(f1, np.sin(u) + u**2)
    assert np.array_equal(f2, np.broadcast_to(x, (300, 200)))
    assert np.array_equal(f3, np.full((300, 200), 2.0))
    assert np.array_equal(f4, np.broadcast_to(y, (300, 200)))
    strided = rng.standard_normal(100_001 * 2)[::2]
    single = k(strided, 3.0)
    assert np.array_equal(single[0], np.sin(strided * 3.0) + (strided * 3.0) ** 2)
    assert "def _f_body(x, y):" in generate(graphc.parse("x*y"))


def test_the_slice_body_writes_into_dead_temporaries_and_the_results():
    k = graphc.compile("u = x*y; sin(u) + u**2 - 1/u, max(x, 0.5), sigmoid(y), u, x, 2, u*3")
    sliced = k.source.split("def _f_slice(x, y, scratch, results):")[1].split("def f(")[0]
    statements = [line.strip() for line in sliced.strip().splitlines()]
    assert statements == [
        "t0, t1, t2, t3, t4 = scratch",
        "with np.errstate(all='ignore'):",
        "t0 = np.multiply(x, y, out=results[3])",  # an output, used again: the results' row
        "np.sin(t0, out=t1)",
        "np.square(t0, out=t2)",  # x ** 2.0 as np.square: the same value, without pow per element
        "t1 += t2",
        "np.divide(1.0, t0, out=t2)",
        "t1 = np.subtract(t1, t2, out=results[0])",
        "t2 = np.maximum(x, 0.5, out=results[1])",
        "t3 = 1.0 / (1.0 + np.exp(-y))",  # not one ufunc: allocated, and copied by _chunked
        "t4 = np.multiply(t0, 3.0, out=results[6])",
        "return (t1, t2, t3, t0, x, 2.0, t4)",
    ]
    assert "_chunked(_f_body, _f_slice, (x, y), shape, out, temporaries=5, outputs=7)" in k.source
    x = np.linspace(-3.0, 3.0, 40_000)
    y = np.linspace(2.0, -1.0, 40_000)
    for got, expected in zip(k(x, y), k._function.__globals__["_f_body"](x, y), strict=True):
        np.testing.assert_array_equal(got, np.broadcast_to(expected, x.shape))


def test_a_square_and_a_reciprocal_by_a_literal_power_are_np_square_and_np_reciprocal():
    k = graphc.compile("x ** 2 + y ** -1 + x ** 3")
    body = k.source.split("def _f_body")[1].split("def ")[0]
    assert "np.square(x)" in body and "np.reciprocal(y)" in body and "x ** 3.0" in body
    x = np.array([0.0, -0.0, 1e-170, 1e200, -3.0, np.inf, -np.inf, np.nan, 1.1, 5e-324])
    y = np.array([0.0, -0.0, 1e-310, 1e308, -3.0, np.inf, -np.inf, np.nan, 7.0, 5e-324])
    with np.errstate(all="ignore"):
        expected = np.power(x, 2.0) + np.power(y, -1.0) + np.power(x, 3.0)
        assert np.array_equal(np.square(x), np.power(x, 2.0), equal_nan=True)
        assert np.array_equal(np.reciprocal(y), np.power(y, -1.0), equal_nan=True)
    assert np.array_equal(k(x, y), expected, equal_nan=True)


def test_sign_written_into_an_array_gives_the_bits_of_np_sign():
    from graphc.ops import OPS, block_helpers

    sign = block_helpers()["_sign"]
    special = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-300, 0.5, -1.0, 3.0, 1e308]
    x = np.array(special + [-1e308, np.inf, -np.inf, np.nan] + list(np.linspace(-2.0, 2.0, 41)))
    expected = np.sign(x)
    for into_operand in (True, False):
        out = x.copy() if into_operand else np.empty_like(x)
        with np.errstate(over="ignore"):  # as in generated code: nonzero x times 2**1074
            got = sign(out if into_operand else x, out=out)
        assert got is out
        assert np.array_equal(got, expected, equal_nan=True)
        assert np.array_equal(np.signbit(got), np.signbit(expected))
    assert OPS["sign"].numpy_into == "_sign({0}, out={out})"
    assert "_sign(t0, out=t0)" in graphc.compile("sign(x*y) + x").source


def test_the_slice_body_is_compiled_on_the_first_large_batch_and_gives_the_bits_of_the_emitted_module():
    import linecache

    k = graphc.grad("u = x*y; sin(u)*exp(x) - u**3 + max(x, y)/sqrt(abs(y) + 1) + softplus(-u)")
    module = k._function.__globals__
    rng = np.random.default_rng(11)
    x, y = rng.uniform(-2.0, 2.0, 40_000), rng.uniform(-2.0, 2.0, 40_000)
    k(x[:10], y[:10])
    k(x, 0.5)  # a scalar input: the allocating body
    assert not inspect.isfunction(module["_f_slice"]), "compiled before a large batch needed it"
    got = k(x, y)
    sliced = module["_f_slice"]
    assert inspect.isfunction(sliced)
    # numbered as in k.source, as the functions compiled with the module are
    filename = k._function.__code__.co_filename
    assert sliced.__code__.co_filename == filename
    for function, header in ((sliced, "def _f_slice(x, y, scratch"), (k._function, "def f(x, y, *")):
        assert linecache.getline(filename, function.__code__.co_firstlineno).startswith(header)
    # the emitted module, compiled whole, defines the slice body and gives the same bits
    standalone: dict = {}
    exec(compile(k.source, "<emitted>", "exec"), standalone)  # noqa: S102 - the module under test
    assert inspect.isfunction(standalone["_f_slice"])
    for mine, emitted in zip(got, standalone["f"](x, y), strict=True):
        np.testing.assert_array_equal(mine, emitted)
    for mine, again in zip(got, k(x, y), strict=True):
        np.testing.assert_array_equal(mine, again)


def test_threads_that_call_first_with_a_large_batch_at_once_get_the_same_results():
    k = graphc.grad("sin(x*y) + x*exp(y) - log(1 + y*y)")
    x, y = np.linspace(-2.0, 2.0, 50_000), np.linspace(3.0, -1.0, 50_000)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: k(x, y), range(4)))
    expected = graphc.grad("sin(x*y) + x*exp(y) - log(1 + y*y)")(x, y)
    for result in results:
        for got, want in zip(result, expected, strict=True):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "shapes",
    [
        [(40_000,), (40_000,)],  # the sliced body
        [(40_000,), ()],  # a scalar: the allocating body, scalar temporaries
        [(1,), (40_000,)],
        [(40_000,), (1, 1)],
        [(200, 1), (1, 201)],  # broadcast inputs, made whole
        [(20_001,), (20_001,)],  # a short last slice
        [(300_001,), (300_001,)],  # slices longer than CHUNK (few temporaries), a short last one
    ],
)
def test_large_batches_leave_inputs_alone_and_match_small_calls_bit_for_bit(shapes):
    k = graphc.grad("u = x*y; sin(u)*exp(x) - u**3 + max(x, y)/sqrt(abs(y) + 1) + softplus(-u)")
    rng = np.random.default_rng(7)
    inputs = [rng.uniform(-2.0, 2.0, shape) for shape in shapes]
    for array in inputs:
        array.setflags(write=False)  # a write into an input would raise
    shape = np.broadcast_shapes(*shapes)
    whole = [np.broadcast_to(a, shape).reshape(-1) for a in inputs]
    big = k(*inputs)
    small = [k(*(a[start : start + 1000] for a in whole)) for start in range(0, whole[0].size, 1000)]
    for j, partial in enumerate(big):
        assert partial.shape == shape
        expected = np.concatenate([piece[j] for piece in small]).reshape(shape)
        np.testing.assert_array_equal(partial, expected)  # the same bits (NaNs equal)
    again = k(*inputs)  # the scratch of a call is not shared with the next one
    for first, second in zip(big, again, strict=True):
        np.testing.assert_array_equal(first, second)
        assert not np.shares_memory(first, second)


def test_large_batches_return_outputs_that_are_their_own():
    """An output that is an input, a constant, or the same node twice is a separate array."""
    k = graphc.compile("u = x*y; u, u, x, 2, exp(u)")
    x = np.linspace(-1.0, 1.0, 50_000)
    results = k(x, 3.0)
    results_whole = k(x, np.full(50_000, 3.0))
    for got in (results, results_whole):
        for i, first in enumerate(got):
            assert not np.shares_memory(first, x)
            for second in got[i + 1 :]:
                assert not np.shares_memory(first, second)
        np.testing.assert_array_equal(got[0], x * 3.0)
        np.testing.assert_array_equal(got[3], np.full(50_000, 2.0))


def test_scalars_in_scalars_out():
    k = graphc.compile("x + y")
    result = k(1, 2)
    assert isinstance(result, np.float64) and result == 3.0
    assert isinstance(graphc.compile("3")(), np.float64)


def test_non_float_and_non_contiguous_inputs_are_converted():
    k = graphc.compile("x*2 + y")
    ints = np.arange(10)
    strided = np.arange(20.0)[::2]
    f32 = np.arange(10, dtype=np.float32)
    result = k(ints, strided)
    assert np.array_equal(result, ints * 2 + strided)
    assert k(f32, [True] * 10).dtype == np.float64
    assert np.array_equal(k(x=[1, 2], y=0.5), [2.5, 4.5])


def test_values_outside_the_domain_give_nan_and_inf_without_warnings():
    k = graphc.compile("log(x), sqrt(x), 1/x, asin(x*3), exp(x*1000)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = k(x=np.array([-1.0, 0.0, 1.0]))
    log, root, inverse, asin, big = results
    assert math.isnan(log[0]) and log[1] == -math.inf
    assert math.isnan(root[0]) and root[1] == 0.0
    assert inverse[1] == math.inf
    assert math.isnan(asin[2])
    assert big[2] == math.inf


def test_temporaries_follow_the_live_set_not_the_node_count():
    """A 5,000-node chain needs one temporary name; a wide sum needs few."""
    chain = graphc.compile("sin(" * 5000 + "x" + ")" * 5000)
    assert set(re.findall(r"\bt\d+\b", chain.source)) == {"t0"}
    wide = graphc.compile(" + ".join(f"sin(x{i})*cos(x{i})" for i in range(500)))
    assert len(set(re.findall(r"\bt\d+\b", wide.source))) <= 3
    assert len(wide.variables) == 500


def test_shared_subexpressions_are_computed_once():
    k = graphc.compile("sin(w**2) + cos(w**2)")
    assert k.source.count("np.square(w") == 2  # once in the body, once in the slice body
    assert k.source.split("def _f_slice")[1].count("np.square(w") == 1


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(graphc.BackendError, match="unknown backend 'cuda'.*numpy"):
        graphc.compile("x", backend="cuda")


def test_compile_accepts_text_graph_and_sympy():
    import sympy

    x, y = sympy.symbols("x y")
    for expr in ("x*y + 1", graphc.parse("x*y + 1"), x * y + 1):
        assert float(graphc.compile(expr)(x=2.0, y=3.0)) == 7.0
    with pytest.raises(graphc.GraphcError, match="expected program text"):
        graphc.compile(42)


def test_generated_lines_show_in_tracebacks():
    k = graphc.compile("x + 1")
    import linecache

    filename = k._function.__code__.co_filename
    assert filename.startswith("<graphc-numpy-")
    assert "def f(x, *, out=None):" in "".join(linecache.getlines(filename))


def test_graph_and_source_do_not_depend_on_the_hash_seed():
    program = "u = y*x; v = max(u, z); sin(v)*u + atan2(z, x), exp(-u)"
    code = (
        f"import graphc; g = graphc.parse({program!r}); "
        "print(g._op, g._args, g._data, graphc.compile(g).source)"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1


@pytest.mark.parametrize("backend", sorted(set(graphc.BACKENDS) - set(graphc.backends.UNAVAILABLE)))
@pytest.mark.parametrize(
    ("text", "expected"), [("2 + 3", 5.0), ("2 + 3, 4", (5.0, 4.0)), ("1, 2, 3", (1.0, 2.0, 3.0))]
)
def test_functions_without_variables_compile(text, expected, backend):
    # a kernel of a constant function (one or several outputs) compiles and runs on every backend
    assert graphc.compile(text, backend)() == expected


def test_a_function_without_variables_has_an_empty_gradient():
    assert graphc.grad("2 + 3")() == ()


def test_the_emitted_function_may_write_its_outputs_over_its_inputs():
    """The standalone module does not check ``out`` as Kernel.into does: a caller writing the
    gradient over the inputs, slice by slice, gets the same values as a fresh call."""
    namespace: dict = {}
    exec(graphc.grad("sin(x*y) + x*exp(y)", backend="numpy").source, namespace)  # noqa: S102
    grad = namespace["f"]  # the kernel's one function: the gradient's partials
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-2, 2, 70_000), rng.uniform(-2, 2, 70_000)
    expected = grad(x, y)
    got = grad(x, y, out=(x, y))
    assert got[0] is x and got[1] is y
    np.testing.assert_array_equal(x, expected[0])
    np.testing.assert_array_equal(y, expected[1])


def test_a_body_with_many_live_values_takes_slices_short_enough_to_bound_its_scratch():
    from graphc.backends import numpy as backend

    namespace: dict = {}
    exec(compile("\n".join(backend._PRELUDE), "<prelude>", "exec"), namespace)  # noqa: S102 - graphc's own source
    temporaries = 100_000  # a 100,000-node gradient keeps about half that alive
    seen: list[tuple[int, ...]] = []

    def body(x):
        return (2.0 * x,)

    def sliced(x, scratch, results):
        seen.append(scratch.shape)
        np.multiply(x, 2.0, out=results[0])
        return (results[0],)

    x = np.arange(200_000.0)
    (got,) = namespace["_chunked"](body, sliced, [x], x.shape, None, temporaries, 1)
    np.testing.assert_array_equal(got, 2.0 * x)
    assert max(rows * columns for rows, columns in seen) <= namespace["LIVE"]
    assert all(columns >= 64 for _, columns in seen[:-1])


def test_result_and_scratch_blocks_are_kept_within_limits():
    kernel = graphc.compile("x * y + exp(x)", backend="numpy")
    module = kernel._function.__globals__  # the generated module's namespace
    x = np.linspace(-1.0, 1.0, 50_000)  # 400 kB of results
    y = np.full_like(x, 2.0)  # every input an array: the sliced body, with scratch
    kernel(x, y)
    assert len(module["_BLOCKS"]) == 1 and len(module["_SCRATCH"]) == 1
    scratch = module["_SCRATCH"][0]
    kernel(x, y)
    assert module["_SCRATCH"] == [scratch], "a call took new scratch while the module had some"
    module["RECYCLE_MAX"] = 100_000
    kernel(x, y)
    assert not module["_BLOCKS"], "a block above RECYCLE_MAX was kept"
    module["RECYCLE_MAX"] = 2**28
    kernel(x[:20_000], y[:20_000])
    assert not module["_BLOCKS"], "a block below RECYCLE_MIN was kept"


def test_functions_of_one_module_share_its_scratch_whatever_their_temporaries():
    # value_and_grad's module defines functions with different numbers of temporaries
    many = "sin(x) * cos(y) + exp(x * y) * tanh(x - y) + x * y * (x + y)"
    for text in (many, "x * y"):
        kernel = graphc.value_and_grad(text, backend="numpy")
        x = np.linspace(-1.0, 1.0, 40_000)
        y = np.linspace(1.0, 2.0, 40_000)
        first = kernel(x, y)
        module = kernel._function.__globals__
        module["_SCRATCH"].append(np.empty((1, 100)))  # too small: a call must not use it
        module["_SCRATCH"].append(np.empty((40, 50_000)))  # more rows and columns than needed
        again = kernel(x, y)
        np.testing.assert_array_equal(first[0], again[0])
        for a, b in zip(first[1], again[1], strict=True):
            np.testing.assert_array_equal(a, b)


POINT_EXPR = (
    "sin(x*y) + exp(x)/(1 + y^2) + tanh(x - y)*log(1 + x^2) + sqrt(abs(y) + 1) + atan2(x, y)"
    " + max(x, y) + relu(x - 0.5) + x^3 + sigmoid(y)*cosh(x)"
)


@pytest.mark.parametrize("shape", [(1,), (1, 1), (1, 1, 1)])
def test_a_point_in_arrays_is_computed_on_scalars_with_the_scalars_bits(shape):
    from graphc.backends.numpy import SCALAR_STEPS

    kernel = graphc.grad(POINT_EXPR, backend="numpy")
    assert "values = _point(_f_body(x.reshape(()), y.reshape(())), shape)" in kernel.source
    assert kernel.source.count("\n        t") >= SCALAR_STEPS
    for x, y in [(0.3, -1.7), (2.5, 0.25), (-0.0, 1e-300), (700.0, -3.0), (np.nan, 1.0)]:
        got = kernel(np.full(shape, x), np.full(shape, y))
        as_floats = kernel(x, y)
        batch = kernel(np.array([x, 0.1, 5.0]), np.array([y, 0.2, -4.0]))
        for partial, scalar, column in zip(got, as_floats, batch, strict=True):
            assert isinstance(partial, np.ndarray) and partial.shape == shape and partial.flags.writeable
            np.testing.assert_array_equal(partial.ravel(), [scalar])  # NaN where NaN
            np.testing.assert_allclose(partial.ravel()[0], column[0], rtol=1e-15, equal_nan=True)


def test_a_point_in_arrays_returns_new_arrays_even_for_an_input_returned():
    kernel = graphc.compile(f"x, y, {POINT_EXPR}", backend="numpy")
    x, y = np.array([0.5]), np.array([[1.5]])
    first, second, value = kernel(x, y)
    assert first.shape == second.shape == value.shape == (1, 1)
    assert not np.shares_memory(first, x) and not np.shares_memory(second, y)
    first[...] = 7.0
    assert x[0] == 0.5 and second[0, 0] == 1.5


def test_a_small_body_keeps_computing_a_point_in_arrays():
    kernel = graphc.grad("x*y + sin(x)", backend="numpy")
    assert "values = _point(" not in kernel.source  # a few statements: converting costs more than it saves
    got = kernel(np.array([0.5]), np.array([2.0]))
    assert [g.tolist() for g in got] == [[2.0 + np.cos(0.5)], [0.5]]
