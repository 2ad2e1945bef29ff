"""Speed of LLVM kernels on a batch: the cheap-gradient ratio, against NumPy and against C.

    python bench/llvm_speed.py [POINTS]          (default: 1,000,000 points)

The function is the 10-variable Rosenbrock function. Reported (best of several runs, seconds):
- the LLVM function and its dp gradient on one thread, and the ratio gradient / function, both
  returning fresh arrays and written into reused ones (``Kernel.into``);
- the same gradient from the NumPy backend;
- hand-written C gradients (the same arrays in, the same arrays out; one loop over the points,
  and one with the loops swapped so gcc vectorises it) compiled with ``gcc -O3 -march=native``
  and called through ctypes (into preallocated outputs: no page faults counted);
- the LLVM gradient on every core, and the call overhead of the gradient on one point.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import graphc

N_VARIABLES = 10
NAMES = [f"x{i:02d}" for i in range(N_VARIABLES)]  # zero-padded: sorted order is numeric order
ROSENBROCK = " + ".join(f"(1 - {a})^2 + 100*({b} - {a}^2)^2" for a, b in itertools.pairwise(NAMES))

C_SOURCE = r"""
void rosenbrock_grad(const double *const *x, double *const *g, long n, int d) {
    for (long p = 0; p < n; p++) {
        for (int i = 0; i < d; i++) g[i][p] = 0.0;
        for (int i = 0; i + 1 < d; i++) {
            double a = x[i][p], b = x[i + 1][p];
            double t = b - a * a;
            g[i][p] += -2.0 * (1.0 - a) - 400.0 * a * t;
            g[i + 1][p] += 200.0 * t;
        }
    }
}

/* The same, loops swapped so that gcc vectorises over the points (one pass per variable). */
void rosenbrock_grad_by_variable(const double *const *x, double *const *g, long n, int d) {
    for (int i = 0; i < d; i++)
        for (long p = 0; p < n; p++) g[i][p] = 0.0;
    for (int i = 0; i + 1 < d; i++) {
        const double *restrict a = x[i], *restrict b = x[i + 1];
        double *restrict ga = g[i], *restrict gb = g[i + 1];
        for (long p = 0; p < n; p++) {
            double t = b[p] - a[p] * a[p];
            ga[p] += -2.0 * (1.0 - a[p]) - 400.0 * a[p] * t;
            gb[p] += 200.0 * t;
        }
    }
}
"""


def best(run: Callable[[], Any], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def c_gradient(points: int, xs: list[np.ndarray], name: str) -> tuple[float, list[np.ndarray]] | None:
    """Time a hand-written C gradient; None if there is no C compiler."""
    if shutil.which("gcc") is None:
        return None
    with tempfile.TemporaryDirectory() as directory:
        source = os.path.join(directory, "rosenbrock.c")
        library = os.path.join(directory, "rosenbrock.so")
        with open(source, "w") as file:
            file.write(C_SOURCE)
        subprocess.run(["gcc", "-O3", "-march=native", "-shared", "-fPIC", source, "-o", library], check=True)
        lib = ctypes.CDLL(library)
    function = getattr(lib, name)
    function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long, ctypes.c_int]
    gs = [np.empty(points) for _ in range(N_VARIABLES)]
    x_pointers = np.array([a.ctypes.data for a in xs], dtype=np.uintp)
    g_pointers = np.array([a.ctypes.data for a in gs], dtype=np.uintp)

    def run() -> None:
        function(x_pointers.ctypes.data, g_pointers.ctypes.data, points, N_VARIABLES)

    return best(run), gs


def main(points: int) -> None:
    rng = np.random.default_rng(0)
    xs = [rng.uniform(-2, 2, points) for _ in range(N_VARIABLES)]
    start = time.perf_counter()
    function = graphc.compile(ROSENBROCK, backend="llvm", threads=1)
    gradient = graphc.grad(ROSENBROCK, backend="llvm", threads=1)
    compiled = time.perf_counter() - start
    parallel = graphc.grad(ROSENBROCK, backend="llvm")
    numpy_gradient = graphc.grad(ROSENBROCK)

    t_function = best(lambda: function(*xs))
    t_gradient = best(lambda: gradient(*xs))
    value_out = np.empty(points)
    gradient_out = tuple(np.empty(points) for _ in range(N_VARIABLES))
    t_function_into = best(lambda: function.into(value_out, *xs))
    t_gradient_into = best(lambda: gradient.into(gradient_out, *xs))
    t_numpy = best(lambda: numpy_gradient(*xs), repeat=3)
    t_parallel = best(lambda: parallel(*xs))
    expected = numpy_gradient(*xs)
    assert all(np.allclose(a, b, rtol=1e-12) for a, b in zip(gradient(*xs), expected, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(gradient_out, gradient(*xs), strict=True))

    print(f"Rosenbrock, {N_VARIABLES} variables, {points:,} points (compile: {compiled:.2f} s)")
    print(f"  llvm function, 1 thread      {t_function:8.4f} s")
    print(
        f"  llvm gradient, 1 thread      {t_gradient:8.4f} s   gradient/function = {t_gradient / t_function:.2f}"
    )
    t_fault = best(lambda: np.empty((N_VARIABLES, points)).fill(0.0))
    print(f"  (of which fresh outputs: allocating and first touching {N_VARIABLES} arrays {t_fault:.4f} s)")
    print(f"  llvm function into reused out {t_function_into:8.4f} s")
    ratio = t_gradient_into / t_function_into
    print(f"  llvm gradient into reused out {t_gradient_into:8.4f} s   gradient/function = {ratio:.2f}")
    print(f"  numpy gradient               {t_numpy:8.4f} s   llvm is {t_numpy / t_gradient:.1f}x faster")
    for name, label in (("rosenbrock_grad", "point by point"), ("rosenbrock_grad_by_variable", "vectorised")):
        c = c_gradient(points, xs, name)
        if c is not None:
            t_c, gs = c
            assert all(np.allclose(a, b, rtol=1e-10, atol=1e-9) for a, b in zip(gs, expected, strict=True))
            print(
                f"  C gradient, gcc -O3, {label:<15} {t_c:8.4f} s   llvm / C = {t_gradient / t_c:.2f}"
                f" (into reused out: {t_gradient_into / t_c:.2f})"
            )
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"  llvm gradient, {cores} threads     {t_parallel:8.4f} s")
    one = [0.5] * N_VARIABLES
    calls = 20000
    start = time.perf_counter()
    for _ in range(calls):
        gradient(*one)
    per_call = (time.perf_counter() - start) / calls
    print(f"  llvm gradient at one point   {per_call * 1e6:8.1f} µs per call")


if __name__ == "__main__":
    main(int(float(sys.argv[1])) if len(sys.argv) > 1 else 1_000_000)
