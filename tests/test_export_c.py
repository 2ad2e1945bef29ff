"""C export: the generated C99 compiles warning-free, and through ctypes computes what graphc does."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import graphc
from graphc.backends.c import build_shared, c_name, export

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
EXPR = "sin(x*y) + exp(x)/(1 + y*y)"
DOUBLES = ctypes.POINTER(ctypes.c_double)


def _library(paths: list[Path], name: str) -> ctypes.CDLL:
    sources = [str(p) for p in paths if p.suffix == ".c"]
    library = paths[0].parent / f"lib{name}.so"
    flags = ["-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-shared", "-fPIC"]
    subprocess.run(["cc", *flags, *sources, "-o", str(library), "-lm"], check=True, timeout=300)
    return ctypes.CDLL(str(library))


def _call(library: ctypes.CDLL, name: str, inputs: list[np.ndarray], outputs: int) -> list[np.ndarray]:
    """``name(n, inputs..., outputs...)`` on arrays of one length."""
    n = len(inputs[0])
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in inputs]
    results = [np.empty(n) for _ in range(outputs)]
    function = getattr(library, name)
    function.restype = None
    function.argtypes = [ctypes.c_long] + [DOUBLES] * (len(arrays) + outputs)
    function(n, *(a.ctypes.data_as(DOUBLES) for a in arrays + results))
    return results


def _point(library: ctypes.CDLL, name: str, point: list[float], outputs: int) -> list[float]:
    inputs = (ctypes.c_double * max(len(point), 1))(*point)
    out = (ctypes.c_double * outputs)()
    function = getattr(library, f"{name}_point")
    function.restype = None
    function(inputs, out)
    return list(out)


def _flat(result: Any) -> list[np.ndarray]:
    stack, leaves = [result], []
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            stack.extend(reversed(item))
        else:
            leaves.append(np.asarray(item))
    return leaves


RNG = np.random.default_rng(28)
XS, YS = RNG.uniform(-2.0, 2.0, 5000), RNG.uniform(0.3, 2.0, 5000)


def test_the_issues_model_builds_and_matches_value_and_grad(tmp_path: Path) -> None:
    kernel = graphc.value_and_grad(EXPR, backend="llvm")
    paths = kernel.export_c(tmp_path / "out", "model", source=EXPR)
    assert [p.name for p in paths] == ["model.h", "model.c"]
    header = paths[0].read_text()
    assert (
        "void model(long n, const double *x, const double *y, double *f, double *df_dx, double *df_dy);"
        in header
    )
    assert "void model_point(const double *in, double *out);" in header
    assert "output 1: ∂f/∂x" in header and EXPR in header
    library = _library(paths, "model")
    got = _call(library, "model", [XS, YS], 3)
    expected = _flat(kernel(XS, YS))
    for c_values, graphc_values in zip(got, expected, strict=True):
        # sin, cos and exp are libm's in C and graphc's own in its kernels: a few ulp apart at most
        np.testing.assert_allclose(c_values, graphc_values, rtol=4e-15, atol=4e-16)
    assert _point(library, "model", [0.5, 1.5], 3) == pytest.approx(
        [float(v) for v in _flat(kernel(0.5, 1.5))], rel=1e-15
    )


def test_where_graphc_calls_libm_too_the_c_code_gives_the_same_bits(tmp_path: Path) -> None:
    # no sin/cos/exp/log/tanh (SIMD code of NumPy's own, and graphc's own in its LLVM kernels, which
    # may also fuse a*b + c into one FMA): the NumPy backend's ufuncs call libm for these ops
    expr = (
        "a = x*y - x/y; tan(a/3) + atan(x) * sinh(y) - cosh(x/4) + pow(y, x) + atan2(x, y) + sqrt(y) * abs(a)"
    )
    kernel = graphc.value_and_grad(expr, backend="numpy")
    library = _library(kernel.export_c(tmp_path, "exact"), "exact")
    got = _call(library, "exact", [XS, YS], 3)
    for c_values, graphc_values in zip(got, _flat(kernel(XS, YS)), strict=True):
        assert c_values.tobytes() == graphc_values.tobytes()


def test_policy_ops_follow_numpy_at_nan_ties_and_signed_zeros(tmp_path: Path) -> None:
    expr = "max(x, y), min(x, y), relu(x), sign(x), abs(x), -x, softplus(x), sigmoid(x)"
    kernel = graphc.compile(expr)
    specials = [0.0, -0.0, np.nan, np.inf, -np.inf, 1.0, -1.0, 2.5, -700.0, 700.0]
    x, y = (np.array(v) for v in zip(*[(a, b) for a in specials for b in specials], strict=True))
    library = _library(kernel.export_c(tmp_path, "policy"), "policy")
    got = _call(library, "policy", [x, y], 8)
    for j, (c_values, numpy_values) in enumerate(zip(got, _flat(kernel(x, y)), strict=True)):
        if j < 6:  # exact operations: the same bits, NaN and the sign of zero included
            assert c_values.tobytes() == numpy_values.tobytes(), kernel.outputs[j]
        else:
            np.testing.assert_allclose(c_values, numpy_values, rtol=1e-15, atol=0)


def test_jacobian_outputs_come_row_by_row_after_the_values(tmp_path: Path) -> None:
    graph = graphc.differentiate("x*y + z, sin(x) - y*z", method="forward")
    paths = export(graph, tmp_path, "jac")
    header = paths[0].read_text()
    order = ["f1", "f2", "df1_dx", "df1_dy", "df1_dz", "df2_dx", "df2_dy", "df2_dz"]
    assert (
        f"void jac(long n, const double *x, const double *y, const double *z, double *{', double *'.join(order)});"
        in header
    )
    library = _library(paths, "jac")
    zs = RNG.uniform(-1.0, 1.0, 5000)
    got = _call(library, "jac", [XS, YS, zs], 8)
    values = graphc.compile("x*y + z, sin(x) - y*z")(XS, YS, zs)
    jacobian = graphc.jacobian("x*y + z, sin(x) - y*z")(XS, YS, zs)
    expected = [*values, *np.moveaxis(jacobian, 0, -1).reshape(6, -1)]  # batch first: (points, 2, 3)
    for c_values, graphc_values in zip(got, expected, strict=True):
        np.testing.assert_allclose(c_values, graphc_values, rtol=1e-15, atol=1e-300)


def test_a_large_graph_is_split_into_parts_and_files(tmp_path: Path) -> None:
    text = "; ".join(f"u{i} = sin(u{i - 1}) * x + cos(y * u{i - 1})" for i in range(1, 400))
    graph = graphc.parse(f"u0 = x*y; {text}; u399")
    derivative = graphc.differentiate(graph)
    paths = export(derivative, tmp_path, "big", part_nodes=300, file_bytes=40_000)
    assert len(paths) > 3  # the header, big.c and more files
    text = "".join(p.read_text() for p in paths)
    assert text.count("_part") > 2 * 4
    library = _library(paths, "big")
    kernel = graphc.compile(derivative, "llvm")
    inputs = [RNG.uniform(0.1, 1.0, 500) for _ in kernel.variables]
    got = _call(library, "big", inputs, len(kernel.outputs))
    for c_values, graphc_values in zip(got, _flat(kernel(*inputs)), strict=True):
        np.testing.assert_allclose(c_values, graphc_values, rtol=1e-12, atol=1e-300)


def test_constants_and_awkward_names(tmp_path: Path) -> None:
    g = graphc.Graph()
    n, inside = g.var("n"), g.var("in")
    g.set_outputs(
        [
            g.add(g.mul(n, g.const(-0.5)), g.const(1e300)),
            g.mul(inside, g.const(float("inf"))),
            g.const(-0.0),
            n,
        ],
        ["out", "∂²f/∂n²", "zero", "n copy"],
    )
    paths = export(g, tmp_path, "names")
    header = paths[0].read_text()
    assert (
        "void names(long n, const double *in_, const double *n_, double *out_, double *d2f_dn2, double *zero, double *n_copy);"
        in header
    )
    library = _library(paths, "names")
    got = _call(library, "names", [np.array([2.0, 0.0]), np.array([3.0, -1.0])], 4)
    expected = _flat(graphc.compile(g)(np.array([2.0, 0.0]), np.array([3.0, -1.0])))
    for c_values, graphc_values in zip(got, expected, strict=True):
        assert c_values.tobytes() == np.broadcast_to(graphc_values, (2,)).tobytes()


def test_names_for_c() -> None:
    assert [c_name(s) for s in ["∂f/∂x", "∂³f/∂x³", "x", "int", "2x", "∂f1/∂y_2", "é"]] == [
        "df_dx",
        "d3f_dx3",
        "x",
        "int_",
        "v2x",
        "df1_dy_2",
        "v",
    ]
    with pytest.raises(graphc.GraphcError, match="C identifier"):
        export(graphc.parse("x"), "/nonexistent", "bad name")


def test_build_shared_runs_cc(tmp_path: Path) -> None:
    paths = graphc.grad("x**3 * y").export_c(tmp_path, "cube")
    library = build_shared(paths, "cube")
    assert library == tmp_path / "libcube.so"
    got = _call(ctypes.CDLL(str(library)), "cube", [np.array([2.0]), np.array([5.0])], 2)
    assert [v.tolist() for v in got] == [[60.0], [8.0]]


def test_the_issues_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from graphc.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["export", EXPR, "--grad", "--name", "model", "-o", "out"]) == 0
    assert capsys.readouterr().out.split() == ["out/model.h", "out/model.c"]
    command = "cc -O2 -std=c99 -shared -fPIC out/model.c -o libmodel.so -lm"
    subprocess.run(command.split(), check=True, timeout=120)
    library = ctypes.CDLL(str(tmp_path / "libmodel.so"))
    f, df_dx, df_dy = _call(library, "model", [XS, YS], 3)
    value, (dx, dy) = graphc.value_and_grad(EXPR)(XS, YS)
    for got, expected in [(f, value), (df_dx, dx), (df_dy, dy)]:
        np.testing.assert_allclose(got, expected, rtol=4e-15, atol=4e-16)


def test_the_command_lines_jacobian_wrt_and_shared(tmp_path: Path, capsys: Any) -> None:
    from graphc.cli import main

    args = [
        "export",
        "x*y, sin(z)",
        "--jacobian",
        "--wrt",
        "z,x",
        "--name",
        "jac",
        "-o",
        str(tmp_path),
        "--shared",
    ]
    assert main(args) == 0
    assert capsys.readouterr().out.split()[-1] == str(tmp_path / "libjac.so")
    header = (tmp_path / "jac.h").read_text()
    outputs = "double *f1, double *f2, double *df1_dz, double *df1_dx, double *df2_dz, double *df2_dx"
    assert f"void jac(long n, const double *x, const double *y, const double *z, {outputs});" in header
    got = _call(
        ctypes.CDLL(str(tmp_path / "libjac.so")),
        "jac",
        [np.array([2.0]), np.array([3.0]), np.array([0.0])],
        6,
    )
    assert [float(v[0]) for v in got] == [6.0, 0.0, 0.0, 3.0, 1.0, 0.0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x*y, x", "--grad"], "--grad needs a function with one output"),
        (["x*y", "--wrt", "x"], "--wrt and --method need --grad or --jacobian"),
        (["x*y", "--grad", "--wrt", "q"], "unknown variable 'q'"),
        (["x*", "--grad"], "expected an operand"),
    ],
)
def test_the_command_lines_errors_are_one_line(
    tmp_path: Path, capsys: Any, args: list[str], message: str
) -> None:
    from graphc.cli import main

    assert main(["export", *args, "--name", "m", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("graphc: error: ") and message in err.splitlines()[0]
    assert not (tmp_path / "m.c").exists()


# --- tensor graphs: scalarised, each tensor argument its points one after another ----------------


def _call_tensors(
    library: ctypes.CDLL, name: str, inputs: list[np.ndarray], output_shapes: list[tuple[int, ...]], n: int
) -> list[np.ndarray]:
    """``name(n, inputs..., outputs...)``, each input an array of shape ``(n, *its shape)``."""
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in inputs]
    results = [np.full((n, *shape), np.nan) for shape in output_shapes]
    function = getattr(library, name)
    function.restype = None
    function.argtypes = [ctypes.c_long] + [DOUBLES] * (len(arrays) + len(results))
    function(n, *(a.ctypes.data_as(DOUBLES) for a in arrays + results))
    return results


TENSOR_PROGRAMS = [
    "W: [3, 4]; x: [4]; b: [3]; h = tanh(W @ x + b); sum(h * h) + max(x) + h[1:3] @ b[0:2]",
    "A: [2, 3]; y = softmax(A, axis=0) + log_softmax(A); sum(y * reshape(logsumexp(A, axis=1), [2, 1]))",
    "A: [3, 4]; v: [4]; sum(reshape(A, [2, -1])[1, ::-2]) + dot(v, v) + sum(transpose(A) @ A[:, 0]) * c",
]


@pytest.mark.parametrize("text", TENSOR_PROGRAMS)
def test_a_tensor_gradient_exports_and_matches_graphc(tmp_path: Path, text: str) -> None:
    kernel = graphc.value_and_grad(text)  # NumPy: libm's functions where C calls them too
    graph = kernel.graph
    paths = kernel.export_c(tmp_path, "tensor", source=text)
    header = paths[0].read_text()
    shapes = [graph.shape(graph.variable(v)) for v in kernel.variables]
    for v, shape in zip(kernel.variables, shapes, strict=True):
        if shape:
            size = int(np.prod(shape))
            assert f"the variable {v}, shape {list(shape)}: {size} values per point in C order" in header
    n = 50
    inputs = [RNG.uniform(-1.5, 1.5, (n, *shape)) for shape in shapes]
    out_shapes = [tuple(graph.shape(o)) for o in graph.outputs]
    got = _call_tensors(_library(paths, "tensor"), "tensor", inputs, out_shapes, n)  # type: ignore[arg-type]
    expected = _flat(kernel(*inputs))
    assert len(got) == len(expected)
    for c_values, graphc_values in zip(got, expected, strict=True):
        # the scalarised sums add in the order NumPy's matmul and sum may not: a few ulp
        np.testing.assert_allclose(c_values, graphc_values, rtol=1e-13, atol=1e-14)


def test_a_tensor_jacobian_and_its_point_function(tmp_path: Path) -> None:
    kernel = graphc.jacobian("W: [3, 4]; x: [4]; tanh(W @ x)", wrt="x")
    paths = kernel.export_c(tmp_path, "jt")
    header = paths[0].read_text()
    assert "#define JT_POINT_INPUTS 16" in header and "#define JT_POINT_OUTPUTS 12" in header
    library = _library(paths, "jt")
    W, x = RNG.normal(size=(7, 3, 4)), RNG.normal(size=(7, 4))
    (got,) = _call_tensors(library, "jt", [W, x], [(3, 4)], 7)
    np.testing.assert_allclose(got, kernel(W, x), rtol=1e-14, atol=1e-15)
    point = _point(library, "jt", [*W[0].ravel(), *x[0]], 12)
    np.testing.assert_allclose(point, kernel(W[0], x[0]).ravel(), rtol=1e-14, atol=1e-15)


def test_a_tensor_graph_without_a_scalar_form_or_with_unbound_dims_names_why(tmp_path: Path) -> None:
    with pytest.raises(graphc.GraphcError, match="the block op conv2d has no scalar form yet") as err:
        graphc.compile("X: [1, 6, 6]; K: [2, 1, 3, 3]; sum(conv2d(X, K))").export_c(tmp_path, "conv")
    assert "\n" not in str(err.value)
    with pytest.raises(graphc.GraphcError, match=r"C export needs concrete shapes.*dims=\{'n': \.\.\.\}"):
        graphc.compile("x: [n]; sum(x)").export_c(tmp_path, "named")
    paths = graphc.compile("x: [n]; sum(x)", dims={"n": 3}).export_c(tmp_path, "bound")
    assert "shape [3]" in paths[0].read_text()
    assert not (tmp_path / "conv.c").exists() and not (tmp_path / "named.c").exists()


def test_the_command_line_exports_a_tensor_gradient(tmp_path: Path, capsys: Any) -> None:
    from graphc.cli import main

    text = "x: [3]; w: [3]; sum(w * x * x)"
    assert main(["export", text, "--grad", "--name", "tg", "-o", str(tmp_path), "--shared"]) == 0
    capsys.readouterr()
    x, w = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 3))
    library = ctypes.CDLL(str(tmp_path / "libtg.so"))
    f, dw, dx = _call_tensors(library, "tg", [w, x], [(), (3,), (3,)], 5)
    value, (gw, gx) = graphc.value_and_grad(text)(w, x)
    for got, expected in [(f, value), (dw, gw), (dx, gx)]:
        np.testing.assert_allclose(got, expected, rtol=1e-15, atol=1e-15)
