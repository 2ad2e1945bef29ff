"""The 1-D Bratu problem, u'' + λ·exp(u) = 0 on (0, 1) with u(0) = u(1) = 0, solved with SciPy and
graphc's sparse Jacobian.

Central differences on n interior points give n residuals, one per line of program text,

    r_i = u_{i-1} - 2 u_i + u_{i+1} + h²·λ·exp(u_i),    h = 1/(n + 1),

whose Jacobian is tridiagonal: graphc reads that pattern off the graph, colours it with 3 colours,
and computes the whole matrix in 3 passes instead of n. Solved three ways: Newton's method with a
sparse LU solve per step, scipy.optimize.root's Newton-Krylov preconditioned by the Jacobian, and
(the dense alternative) root's hybr with the dense Jacobian, at a size where that is affordable.

Run: python examples/bratu.py [--n 20000] [--dense]   (--dense: the dense solve at n, not at 100)
"""

import argparse
import math
import time

import numpy as np
from scipy import optimize
from scipy.sparse.linalg import LinearOperator, splu, spsolve

import graphc

LAMBDA = 1.0


def bratu_text(n: int, lam: float = LAMBDA) -> str:
    """The residuals as one program: a comma-separated output line, one output per point."""
    h2 = (1.0 / (n + 1)) ** 2
    rows = []
    for i in range(n):
        left = f"u{i - 1} - " if i else "-"
        right = f" + u{i + 1}" if i < n - 1 else ""
        rows.append(f"{left}2*u{i}{right} + {h2 * lam!r}*exp(u{i})")
    return ", ".join(rows)


def exact_midpoint(lam: float = LAMBDA) -> float:
    """u(1/2) on the lower branch: u(x) = -2 log(cosh((x - 1/2)θ/2) / cosh(θ/4)), θ = √(2λ) cosh(θ/4)."""
    theta = optimize.brentq(lambda t: t - math.sqrt(2 * lam) * math.cosh(t / 4), 0.0, 4.0)
    return 2 * math.log(math.cosh(theta / 4))


def newton(r: graphc.optimize.Residuals, x: np.ndarray, tol: float = 1e-12) -> tuple[np.ndarray, int]:
    for step in range(1, 20):
        value, jacobian = r.fun_and_jac(x)
        x = x - spsolve(jacobian.tocsc(), value)
        if np.abs(value).max() < tol:
            return x, step
    raise AssertionError("Newton did not converge")


def solve_sparse(n: int) -> np.ndarray:
    wrt = [f"u{i}" for i in range(n)]
    start = time.perf_counter()
    text = bratu_text(n)
    r = graphc.residuals(text, wrt, backend="llvm", sparse=True)
    jacobian = r.jac(np.zeros(n))
    built = time.perf_counter() - start
    info = r.jacobian_kernel.info
    print(
        f"n = {n:,}: text -> sparse Jacobian in {built:.2f} s ({info['colors']} colours, {info['nnz']:,} nonzeros)"
    )
    assert info["colors"] == 3 and jacobian.nnz == 3 * n - 2
    repeat = 20
    start = time.perf_counter()
    for _ in range(repeat):
        r.jac(np.zeros(n))
    print(f"  one evaluation of the sparse Jacobian: {(time.perf_counter() - start) / repeat * 1e3:.2f} ms")

    start = time.perf_counter()
    u, steps = newton(r, np.zeros(n))
    print(f"  Newton with a sparse LU solve: {steps} steps, {time.perf_counter() - start:.3f} s")
    assert np.abs(r.fun(u)).max() < 1e-12

    start = time.perf_counter()
    lu = splu(jacobian.tocsc())  # the Jacobian at the start, as Newton-Krylov's preconditioner
    preconditioner = LinearOperator((n, n), lu.solve)
    solution = optimize.root(
        r.fun,
        np.zeros(n),
        method="krylov",
        options={"jac_options": {"inner_M": preconditioner}, "fatol": 1e-12},
    )
    print(
        f"  scipy.optimize.root (krylov, preconditioned by the sparse Jacobian): {time.perf_counter() - start:.3f} s"
    )
    assert solution.success
    np.testing.assert_allclose(solution.x, u, atol=1e-9)

    midpoint = u[(n - 1) // 2] if n % 2 else 0.5 * (u[n // 2 - 1] + u[n // 2])
    print(f"  u(1/2) = {midpoint:.8f} (exact {exact_midpoint():.8f})")
    assert abs(midpoint - exact_midpoint()) < 10 / (n + 1) ** 2  # central differences: O(h²)
    return u


def solve_dense(n: int, sparse_solution: np.ndarray | None) -> None:
    wrt = [f"u{i}" for i in range(n)]
    start = time.perf_counter()
    r = graphc.residuals(bratu_text(n), wrt, backend="llvm")
    r.jac(np.zeros(n))
    built = time.perf_counter() - start
    start = time.perf_counter()
    solution = optimize.root(r.fun_and_jac, np.zeros(n), jac=True, method="hybr", options={"xtol": 1e-13})
    solved = time.perf_counter() - start
    print(f"dense alternative at n = {n:,}: text -> dense Jacobian {built:.2f} s, root (hybr) {solved:.3f} s")
    assert solution.success
    sparse = graphc.residuals(bratu_text(n), wrt, backend="llvm", sparse=True)
    u, _ = newton(sparse, np.zeros(n))
    np.testing.assert_allclose(solution.x, u, atol=1e-10)
    if sparse_solution is not None:
        np.testing.assert_allclose(solution.x, sparse_solution, atol=1e-10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="interior points (default 2,000; try 20,000)")
    parser.add_argument("--dense", action="store_true", help="also solve densely at n (slow: 35 s at 2,000)")
    args = parser.parse_args()
    u = solve_sparse(args.n)
    if args.dense:
        solve_dense(args.n, u)
    else:
        solve_dense(100, None)


if __name__ == "__main__":
    main()
