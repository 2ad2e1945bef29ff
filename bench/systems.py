"""The systems the benchmark compares: graphc's backends and the peers, each behind one interface.

A system's ``build(problem, graph)`` turns the problem into a :class:`Built`: a callable gradient
(every partial of the problem's function, or its n-th derivative for ``order > 1``) and a way to
make the function itself. The peers build their own expressions from graphc's parsed graph with
:mod:`convert` (the graph is parsed before the clock starts; graphc's own systems start from the
text, so its parse is timed). Inputs are lists of float64 arrays in ``problem.variables`` order;
``prepare`` puts them in the system's own array type once, outside the timings (JAX device arrays,
SymEngine's points-by-variables matrix).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from convert import convert, integral_or_float, python_table
from problems import Problem

from graphc.graph import Graph


@dataclass
class Built:
    gradient: Callable[[Any], Any]  # prepared inputs -> the partials, computed (blocked on)
    function: Callable[[], Callable[[Any], Any]]  # makes the function's callable (untimed)
    prepare: Callable[[list[np.ndarray]], Any] = lambda xs: xs
    to_numpy: Callable[[Any], list[np.ndarray]] = lambda out: [np.asarray(a, dtype=float) for a in out]


@dataclass(frozen=True)
class System:
    name: str
    summary: str
    build: Callable[[Problem, Graph], Built]
    requires: tuple[str, ...] = ()  # modules that must be importable
    needs_gcc: bool = False
    problems: tuple[str, ...] = ()  # only these problems (empty: all)
    peer: bool = True  # False for graphc's own systems and the hand-written C
    versions: tuple[str, ...] = field(default=())  # distributions whose versions RESULTS.md lists

    def unavailable(self, problem: str) -> str | None:
        """Why this system cannot run ``problem`` here, or None."""
        if self.problems and problem not in self.problems:
            return f"n/a (only {', '.join(self.problems)})"
        for module in self.requires:
            if importlib.util.find_spec(module) is None:
                return f"skipped: {module} is not installed"
        if self.needs_gcc and shutil.which("gcc") is None:
            return "skipped: no gcc on PATH"
        return None


def _as_list(result: Any) -> list[Any]:
    return list(result) if isinstance(result, (tuple, list)) else [result]


# --- graphc ----------------------------------------------------------------------------------------


def _graphc(backend: str, method: str = "dp") -> Callable[[Problem, Graph], Built]:
    def build(problem: Problem, graph: Graph) -> Built:
        import graphc

        threads = {"threads": 1} if backend == "llvm" else {}
        parsed = graphc.parse(problem.text)  # graphc's clock starts at the text
        if problem.order == 1:
            kernel = graphc.grad(parsed, method=method, backend=backend, **threads)
        else:
            wrt = problem.variables[0]
            # the method graphc.derivative chooses for one variable (forward), as a user would get it
            kernel = graphc.derivative(parsed, wrt, problem.order, backend=backend, **threads)

        def function() -> Callable[[Any], Any]:
            forward = graphc.compile(parsed, backend, **threads)
            return lambda xs: forward(*xs)

        return Built(gradient=lambda xs: _as_list(kernel(*xs)), function=function)

    return build


# --- SymPy and SymEngine ---------------------------------------------------------------------------


def _sympy(cse: bool) -> Callable[[Problem, Graph], Built]:
    def build(problem: Problem, graph: Graph) -> Built:
        import sympy

        symbols = [sympy.Symbol(name) for name in problem.variables]
        lookup = dict(zip(problem.variables, symbols, strict=True))

        def constant(value: float) -> Any:
            number = integral_or_float(value)
            return sympy.Integer(number) if isinstance(number, int) else sympy.Float(number)

        (expr,) = convert(graph, lookup.__getitem__, constant, python_table(sympy))
        if problem.order == 1:
            partials = [sympy.diff(expr, s) for s in symbols]
        else:
            partials = [sympy.diff(expr, symbols[0], problem.order)]
        gradient = sympy.lambdify(symbols, partials, "numpy", cse=cse)

        def function() -> Callable[[Any], Any]:
            f = sympy.lambdify(symbols, expr, "numpy", cse=cse)
            return lambda xs: f(*xs)

        return Built(gradient=lambda xs: gradient(*xs), function=function)

    return build


def _symengine(backend: str) -> Callable[[Problem, Graph], Built]:
    def build(problem: Problem, graph: Graph) -> Built:
        import symengine

        symbols = [symengine.Symbol(name) for name in problem.variables]
        lookup = dict(zip(problem.variables, symbols, strict=True))

        def constant(value: float) -> Any:
            number = integral_or_float(value)
            return symengine.Integer(number) if isinstance(number, int) else symengine.RealDouble(number)

        (expr,) = convert(graph, lookup.__getitem__, constant, python_table(symengine))
        if problem.order == 1:
            partials = [expr.diff(s) for s in symbols]
        else:
            partial = expr
            for _ in range(problem.order):
                partial = partial.diff(symbols[0])
            partials = [partial]
        gradient = symengine.Lambdify(symbols, partials, backend=backend, cse=True)

        def function() -> Callable[[Any], Any]:
            f = symengine.Lambdify(symbols, [expr], backend=backend, cse=True)
            return lambda xs: f(xs)

        return Built(
            gradient=lambda xs: gradient(xs),
            function=function,
            prepare=lambda xs: np.column_stack(xs),  # Lambdify takes points x variables
            to_numpy=lambda out: [np.asarray(out)[..., i] for i in range(np.asarray(out).shape[-1])],
        )

    return build


# --- CasADi ----------------------------------------------------------------------------------------


def _casadi(jit: bool) -> Callable[[Problem, Graph], Built]:
    def build(problem: Problem, graph: Graph) -> Built:
        import casadi

        symbols = [casadi.SX.sym(name) for name in problem.variables]
        lookup = dict(zip(problem.variables, symbols, strict=True))
        (expr,) = convert(graph, lookup.__getitem__, integral_or_float, python_table(casadi))
        if problem.order == 1:
            column = casadi.gradient(expr, casadi.vertcat(*symbols))
            partials = [column[i] for i in range(len(symbols))]
        else:
            partial = expr
            for _ in range(problem.order):
                partial = casadi.jacobian(partial, symbols[0])
            partials = [partial]
        options: dict[str, Any] = {}
        if jit:
            options = {"jit": True, "compiler": "shell", "jit_options": {"flags": ["-O3"], "verbose": False}}
        gradient = _mapped(casadi.Function("gradient", symbols, partials, options))

        def function() -> Callable[[Any], Any]:
            return _mapped(casadi.Function("function", symbols, [expr], options))

        return Built(gradient=gradient, function=function)

    return build


def _mapped(function: Any) -> Callable[[Any], Any]:
    """Evaluate a scalar CasADi Function on a batch: its ``map`` over the batch size (made once per size)."""
    maps: dict[int, Any] = {}

    def call(xs: list[np.ndarray]) -> list[np.ndarray]:
        points = len(xs[0])
        mapped = maps.get(points)
        if mapped is None:
            mapped = maps[points] = function.map(points)
        result = mapped(*(x.reshape(1, -1) for x in xs))
        return [np.asarray(r).ravel() for r in _as_list(result)]

    return call


# --- PyTensor and JAX ------------------------------------------------------------------------------


def _pytensor(problem: Problem, graph: Graph) -> Built:
    import pytensor
    import pytensor.tensor as pt

    symbols = [pt.dvector(name) for name in problem.variables]
    lookup = dict(zip(problem.variables, symbols, strict=True))
    (expr,) = convert(graph, lookup.__getitem__, integral_or_float, python_table(pt))
    if problem.order == 1:
        partials = pytensor.grad(expr.sum(), symbols)
    else:
        partial = expr
        for _ in range(problem.order):
            partial = pytensor.grad(partial.sum(), symbols[0])
        partials = [partial]
    gradient = pytensor.function(symbols, partials, on_unused_input="ignore")

    def function() -> Callable[[Any], Any]:
        f = pytensor.function(symbols, expr, on_unused_input="ignore")
        return lambda xs: f(*xs)

    return Built(gradient=lambda xs: gradient(*xs), function=function)


def _jax(problem: Problem, graph: Graph) -> Built:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    table = python_table(jnp)
    position = {name: i for i, name in enumerate(problem.variables)}

    def f(*args: Any) -> Any:
        (out,) = convert(graph, lambda name: args[position[name]], integral_or_float, table)
        return out

    if problem.order == 1:
        derivative = jax.grad(f, argnums=tuple(range(len(problem.variables))))
    else:
        derivative = f
        for _ in range(problem.order):
            derivative = jax.grad(derivative)
    gradient = jax.jit(jax.vmap(derivative))

    def function() -> Callable[[Any], Any]:
        batch = jax.jit(jax.vmap(f))
        return lambda xs: jax.block_until_ready(batch(*xs))

    return Built(
        gradient=lambda xs: jax.block_until_ready(gradient(*xs)),
        function=function,
        prepare=lambda xs: [jax.device_put(x) for x in xs],
    )


# --- hand-written C (B1 only) ----------------------------------------------------------------------

C_ROSENBROCK = r"""
#define D 10
/* The gradient of sum_i (1 - x_i)^2 + 100 (x_{i+1} - x_i^2)^2: one pass per term over the points,
   with restrict pointers so that gcc vectorises each pass. */
void rosenbrock_grad(const double *const *x, double *const *g, long n) {
    for (long p = 0; p < n; p++) g[0][p] = 0.0;
    for (int i = 0; i + 1 < D; i++) {
        const double *restrict a = x[i], *restrict b = x[i + 1];
        double *restrict ga = g[i], *restrict gb = g[i + 1];
        for (long p = 0; p < n; p++) {
            double t = b[p] - a[p] * a[p];
            ga[p] += -2.0 * (1.0 - a[p]) - 400.0 * a[p] * t;
            gb[p] = 200.0 * t;
        }
    }
}

void rosenbrock(const double *const *x, double *f, long n) {
    for (long p = 0; p < n; p++) {
        double s = 0.0;
        for (int i = 0; i + 1 < D; i++) {
            double a = x[i][p], t = x[i + 1][p] - a * a;
            s += (1.0 - a) * (1.0 - a) + 100.0 * t * t;
        }
        f[p] = s;
    }
}
"""


def _hand_c(problem: Problem, graph: Graph) -> Built:
    directory = tempfile.mkdtemp(prefix="graphc-bench-c-")
    source, library = os.path.join(directory, "rosenbrock.c"), os.path.join(directory, "rosenbrock.so")
    with open(source, "w") as file:
        file.write(C_ROSENBROCK)
    command = ["gcc", "-O3", "-march=native", "-shared", "-fPIC", source, "-o", library]
    subprocess.run(command, check=True, capture_output=True)
    lib = ctypes.CDLL(library)
    for name in ("rosenbrock_grad", "rosenbrock"):
        getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
    dimension = len(problem.variables)

    def pointers(arrays: list[np.ndarray]) -> np.ndarray:
        return np.array([a.ctypes.data for a in arrays], dtype=np.uintp)

    def gradient(xs: list[np.ndarray]) -> list[np.ndarray]:
        outputs = list(np.empty((dimension, len(xs[0]))))  # fresh outputs (one block), as every system
        inputs, results = pointers(xs), pointers(outputs)  # held until the call returns
        lib.rosenbrock_grad(inputs.ctypes.data, results.ctypes.data, len(xs[0]))
        return outputs

    def function() -> Callable[[Any], Any]:
        def f(xs: list[np.ndarray]) -> np.ndarray:
            out, inputs = np.empty(len(xs[0])), pointers(xs)
            lib.rosenbrock(inputs.ctypes.data, out.ctypes.data, len(xs[0]))
            return out

        return f

    return Built(gradient=gradient, function=function)


SYSTEMS: dict[str, System] = {
    system.name: system
    for system in (
        System("graphc-numpy", "graphc, dp gradient, NumPy backend", _graphc("numpy"), peer=False),
        System(
            "graphc-llvm",
            "graphc, dp gradient, LLVM backend (1 thread)",
            _graphc("llvm"),
            ("llvmlite.binding",),  # imported before the clock, as every peer's modules are
            peer=False,
        ),
        System("sympy", "SymPy diff + lambdify (numpy)", _sympy(False), ("sympy",), versions=("sympy",)),
        System("sympy-cse", "SymPy diff + lambdify(cse=True)", _sympy(True), ("sympy",)),
        System(
            "symengine-lambda",
            "SymEngine diff + Lambdify(backend='lambda', cse=True)",
            _symengine("lambda"),
            ("symengine",),
            versions=("symengine",),
        ),
        System(
            "symengine-llvm",
            "SymEngine diff + Lambdify(backend='llvm', cse=True)",
            _symengine("llvm"),
            ("symengine",),
        ),
        System(
            "casadi-sx",
            "CasADi SX gradient, Function.map (virtual machine)",
            _casadi(False),
            ("casadi",),
            versions=("casadi",),
        ),
        System(
            "casadi-sx-jit",
            "CasADi SX gradient, jit=True (gcc -O3), Function.map",
            _casadi(True),
            ("casadi",),
            needs_gcc=True,
        ),
        System(
            "pytensor",
            "PyTensor grad of the batch sum, pytensor.function",
            _pytensor,
            ("pytensor",),
            versions=("pytensor",),
        ),
        System(
            "jax",
            "JAX jit(vmap(grad)), float64, CPU",
            _jax,
            ("jax", "jaxlib"),
            versions=("jax", "jaxlib"),
        ),
        System(
            "c-hand",
            "hand-written C gradient, gcc -O3 -march=native, ctypes",
            _hand_c,
            needs_gcc=True,
            problems=("B1",),
            peer=False,
        ),
    )
}


def _reference(problem: Problem, graph: Graph) -> Built:
    from reference import dual_gradient

    if problem.order > 1:
        return _graphc("numpy", "forward")(problem, graph)
    return Built(gradient=lambda xs: dual_gradient(graph, xs), function=lambda: lambda xs: None)


# The reference gradient every system's error is measured against (see reference.py).
REFERENCE = System(
    "reference",
    "forward-mode dual numbers over graphc's parsed function graph in NumPy's extended precision "
    "(np.longdouble), rounded to float64 (bench/reference.py; "
    "independent of graphc's differentiation); for B6's 10th derivative, graphc's forward method on NumPy",
    _reference,
)
