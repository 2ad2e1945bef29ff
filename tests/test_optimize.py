"""SciPy's calling convention (graphc.optimize): minimize, least_squares and root take graphc's
functions of one flat vector as they take hand-written ones."""

from __future__ import annotations

import numpy as np
import pytest

import graphc

optimize = pytest.importorskip("scipy.optimize")
scipy_sparse = pytest.importorskip("scipy.sparse")
pytest.importorskip("scipy.sparse.linalg")

N = 10
ROSENBROCK = " + ".join(f"100*(x{i + 1} - x{i}**2)**2 + (1 - x{i})**2" for i in range(N - 1))
WRT = [f"x{i}" for i in range(N)]


def bratu_text(n: int, lam: float = 1.0) -> str:
    h2 = (1.0 / (n + 1)) ** 2
    rows = []
    for i in range(n):
        left = f"x{i - 1} - " if i else "-"
        right = f" + x{i + 1}" if i < n - 1 else ""
        rows.append(f"{left}2*x{i}{right} + {h2 * lam!r}*exp(x{i})")
    return ", ".join(rows)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_minimize_rosenbrock_with_value_and_grad(backend: str) -> None:
    obj = graphc.objective(ROSENBROCK, WRT, backend=backend)
    result = optimize.minimize(
        obj.value_and_grad, np.full(N, -0.5), jac=True, method="BFGS", options={"gtol": 1e-9}
    )
    assert result.success
    np.testing.assert_allclose(result.x, np.ones(N), atol=1e-6)


def test_fun_and_jac_agree_with_value_and_grad_and_share_one_evaluation() -> None:
    obj = graphc.objective(ROSENBROCK, WRT)
    x = np.linspace(-1, 1, N)
    value, gradient = obj.value_and_grad(x)
    assert obj.fun(x) == value
    np.testing.assert_array_equal(obj.jac(x), gradient)
    obj.jac(x)[0] = 123.0  # the caller's copy: the cached gradient is untouched
    np.testing.assert_array_equal(obj.jac(x), gradient)
    dense = graphc.grad(ROSENBROCK, WRT)(**dict(zip(WRT, x, strict=True)))
    np.testing.assert_array_equal(gradient, dense)


@pytest.mark.parametrize("sparse", [False, True])
def test_minimize_with_a_hessian(sparse: bool) -> None:
    obj = graphc.objective(ROSENBROCK, WRT, sparse=sparse)
    method = "trust-constr" if sparse else "trust-exact"  # trust-exact wants a dense Hessian
    result = optimize.minimize(obj.fun, np.full(N, -0.5), jac=obj.jac, hess=obj.hess, method=method)
    np.testing.assert_allclose(result.x, np.ones(N), atol=1e-5)
    hessian = obj.hess(result.x)
    if sparse:
        assert isinstance(hessian, scipy_sparse.csr_matrix) and hessian.nnz == 3 * N - 2  # tridiagonal
        hessian = hessian.toarray()
    np.testing.assert_allclose(hessian, graphc.hessian(ROSENBROCK, WRT)(*result.x), rtol=1e-14)


def test_data_fixes_the_variables_outside_wrt() -> None:
    obj = graphc.objective("a*(x - b)**2", ["x"], data={"a": 2.0, "b": 3.0})
    result = optimize.minimize(obj.value_and_grad, [0.0], jac=True)
    np.testing.assert_allclose(result.x, [3.0])
    assert obj.value_and_grad(np.array([1.0])) == (8.0, pytest.approx(np.array([-8.0])))


def test_objective_errors() -> None:
    with pytest.raises(graphc.GraphcError, match="one output"):
        graphc.objective("x, y")
    with pytest.raises(graphc.GraphcError, match="neither in wrt nor given in data"):
        graphc.objective("a*x", ["x"])
    with pytest.raises(graphc.GraphcError, match="not a variable"):
        graphc.objective("x**2", ["x"], data={"q": 1.0})
    with pytest.raises(graphc.GraphcError, match="use residuals"):
        graphc.objective("a*x**2", ["x"], data={"a": np.ones(3)})
    with pytest.raises(graphc.EvaluationError, match="flat vector of 2 values"):
        graphc.objective("x*y").fun(np.ones(3))


def test_least_squares_over_data_points() -> None:
    t = np.linspace(0.0, 2.0, 200)
    y = 1.5 * np.exp(-0.7 * t) + 0.3
    r = graphc.residuals("a*exp(b*t) + c - y", ["a", "b", "c"], data={"t": t, "y": y})
    fit = optimize.least_squares(r.fun, [1.0, 0.0, 0.0], jac=r.jac)
    np.testing.assert_allclose(fit.x, [1.5, -0.7, 0.3], rtol=1e-8)
    assert r.jac(fit.x).shape == (200, 3)


def test_residuals_with_several_outputs_over_data_are_point_by_point() -> None:
    t = np.array([0.0, 1.0, 2.0])
    r = graphc.residuals("a*t, b*t**2", ["a", "b"], data={"t": t})
    np.testing.assert_array_equal(r.fun([2.0, 3.0]), [0.0, 0.0, 2.0, 3.0, 4.0, 12.0])
    np.testing.assert_array_equal(r.jac([2.0, 3.0]), [[0, 0], [0, 0], [1, 0], [0, 1], [2, 0], [0, 4]])
    sparse = graphc.residuals("a*t, b*t**2", ["a", "b"], data={"t": t}, sparse=True)
    np.testing.assert_array_equal(sparse.jac([2.0, 3.0]).toarray(), r.jac([2.0, 3.0]))


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_root_solves_bratu_and_the_sparse_jacobian_equals_the_dense(backend: str) -> None:
    n = 60
    wrt = [f"x{i}" for i in range(n)]
    dense = graphc.residuals(bratu_text(n), wrt, backend=backend)
    solution = optimize.root(dense.fun_and_jac, np.zeros(n), jac=True, method="hybr")  # hybr: dense only
    assert solution.success
    # the lower Bratu branch at lambda = 1 peaks at u(1/2) = 0.1404
    assert solution.x.max() == pytest.approx(0.1404, abs=2e-4)
    np.testing.assert_allclose(dense.fun(solution.x), 0.0, atol=1e-12)
    sparse = graphc.residuals(bratu_text(n), wrt, backend=backend, sparse=True)
    jacobian = sparse.jac(solution.x)
    assert isinstance(jacobian, scipy_sparse.csr_matrix) and jacobian.nnz == 3 * n - 2
    np.testing.assert_allclose(jacobian.toarray(), dense.jac(solution.x), rtol=1e-15)
    x = np.zeros(n)  # Newton's method with a sparse solve: what root cannot do with a sparse jac
    for _ in range(6):
        value, jacobian = sparse.fun_and_jac(x)
        x -= scipy_sparse.linalg.spsolve(jacobian.tocsc(), value)
    np.testing.assert_allclose(x, solution.x, atol=1e-12)


def test_least_squares_takes_the_sparse_jacobian() -> None:
    n = 40
    r = graphc.residuals(bratu_text(n), [f"x{i}" for i in range(n)], sparse=True)
    fit = optimize.least_squares(
        r.fun, np.zeros(n), jac=r.jac, method="trf", tr_solver="lsmr", ftol=1e-15, xtol=1e-15, gtol=1e-15
    )
    np.testing.assert_allclose(r.fun(fit.x), 0.0, atol=1e-10)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_point_into_takes_one_flat_vector(backend: str) -> None:
    kernel = graphc.compile("x*y, x + y, exp(z)", backend=backend)
    out = np.empty(3)
    assert kernel.point_into(np.array([2.0, 3.0, 0.0]), out) is out
    np.testing.assert_array_equal(out, [6.0, 5.0, 1.0])
    single = graphc.compile("x*y", backend=backend)
    np.testing.assert_array_equal(single.point_into(np.array([2.0, 4.0]), np.empty(1)), [8.0])
    with pytest.raises(graphc.EvaluationError, match="float64 vector of 3 values"):
        kernel.point_into(np.ones(2), out)
    with pytest.raises(graphc.OutputError, match="writeable float64 vector of 3 values"):
        kernel.point_into(np.ones(3), np.empty(4))
    strided = np.empty(6)[::2]  # not contiguous: written through NumPy instead
    np.testing.assert_array_equal(kernel.point_into(np.array([2.0, 3.0, 0.0]), strided), [6.0, 5.0, 1.0])
