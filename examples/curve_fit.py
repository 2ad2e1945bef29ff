"""A 20-parameter model fitted to 10,000 points with scipy.optimize.least_squares.

The model is a sum of ten Gaussian bumps, y(t) = Σ a_k·exp(-((t - m_k)/w)²), with amplitudes a_k and
centres m_k to find. graphc.residuals turns the model text and the data arrays into SciPy's
convention: r.fun(p) is the 10,000 residuals, r.jac(p) their 10,000 × 20 Jacobian, computed from
one compiled gradient over all points at once. The alternative SciPy offers without derivatives is
finite differences (jac="2-point"): 21 residual evaluations per Jacobian, and less accurate.

Run: python examples/curve_fit.py
"""

import time

import numpy as np
from scipy.optimize import least_squares

import graphc

BUMPS, WIDTH, POINTS = 10, 0.05, 10_000

model = " + ".join(f"a{k}*exp(-((t - m{k})/{WIDTH})**2)" for k in range(BUMPS))
parameters = [f"a{k}" for k in range(BUMPS)] + [f"m{k}" for k in range(BUMPS)]

rng = np.random.default_rng(7)
true = np.concatenate([rng.uniform(0.5, 2.0, BUMPS), (np.arange(BUMPS) + 0.5) / BUMPS])
t = np.linspace(0.0, 1.0, POINTS)
y = graphc.compile(model)(**dict(zip(parameters, true, strict=True)), t=t)
start = np.concatenate([np.ones(BUMPS), true[BUMPS:] + rng.normal(0.0, 0.01, BUMPS)])

began = time.perf_counter()
r = graphc.residuals(f"{model} - y", parameters, backend="llvm", data={"t": t, "y": y})
print(f"{len(parameters)} parameters, {POINTS:,} points: compiled in {time.perf_counter() - began:.2f} s")
assert r.jac(start).shape == (POINTS, len(parameters))

began = time.perf_counter()
fit = least_squares(r.fun, start, jac=r.jac, xtol=1e-14, ftol=1e-14, gtol=1e-14)
exact = time.perf_counter() - began
print(f"least_squares with graphc's Jacobian: {fit.nfev} evaluations, {fit.njev} Jacobians, {exact:.3f} s")
assert fit.success
np.testing.assert_allclose(fit.x, true, rtol=1e-9)

began = time.perf_counter()
approximate = least_squares(r.fun, start, jac="2-point", xtol=1e-14, ftol=1e-14, gtol=1e-14)
finite = time.perf_counter() - began
error = np.abs(approximate.x - true).max()
print(
    f"least_squares with finite differences: {approximate.nfev} evaluations, {finite:.3f} s, error {error:.1e}"
)
print(f"largest parameter error with graphc's Jacobian: {np.abs(fit.x - true).max():.1e}")
