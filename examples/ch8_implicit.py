"""Chapter 8 — implicit differentiation: layers defined by equations, g(x, z) = 0.

Seed 003 ("Implicit Layer"): where ∂g/∂z is invertible, g(x, z) = 0 defines z(x) locally, and
differentiating g(x, z(x)) = 0 gives ∂g/∂x + ∂g/∂z · dz/dx = 0, so
    dz/dx = −(∂g/∂z)⁻¹ ∂g/∂x
(the slide drops the minus sign; the example x² + z² = 1 below shows it is needed). graphc.implicit
builds this from the graph of g: a formula for one equation, a linear solve per point for systems.

Run: python examples/ch8_implicit.py
"""

import math

import numpy as np

import graphc
from graphc.cli import main as graphc_cli
from graphc.implicit import implicit_graph
from graphc.printing import formula

# 1. The circle x² + z² = 1: dz/dx = −x/z.
circle = "x^2 + z^2 - 1"
d = implicit_graph(graphc.parse(circle), solve_for="z")
print(f"g = {circle}: {d.output_names[0]} = {formula(d, d.outputs[0])}")
assert formula(d, d.outputs[0]) == "-x/z"
print(f"$ graphc implicit {circle!r} --solve-for z --at x=0.6,z=0.8")
assert graphc_cli(["implicit", circle, "--solve-for", "z", "--at", "x=0.6,z=0.8"]) == 0

kernel = graphc.implicit(circle, solve_for="z")
x = np.linspace(-0.9, 0.9, 19)
for branch in (+1, -1):  # both halves of the circle: z = ±sqrt(1 − x²)
    z = branch * np.sqrt(1 - x**2)
    (implicit_dz,) = kernel(x=x, z=z)
    (explicit_dz,) = graphc.grad(f"{branch}*sqrt(1 - x^2)")(x)
    np.testing.assert_allclose(implicit_dz, explicit_dz, rtol=1e-12, atol=1e-15)
print("on both branches z = ±sqrt(1 − x²), dz/dx equals the derivative of the explicit solution")

# Without the minus sign (as the slide writes it) the sign is wrong: at (0.6, 0.8) the upper
# half-circle falls with slope −0.75.
(slope,) = kernel(x=0.6, z=0.8)
d_g = graphc.grad(circle)(x=0.6, z=0.8)  # (∂g/∂x, ∂g/∂z)
print(f"at (0.6, 0.8): dz/dx = {float(slope):.15f}; (∂g/∂z)⁻¹ ∂g/∂x alone = {float(d_g[0] / d_g[1]):.15f}")
assert math.isclose(slope, -0.75, rel_tol=1e-15) and math.isclose(d_g[0] / d_g[1], 0.75, rel_tol=1e-15)

# Where ∂g/∂z = 0 (x = ±1, z = 0) z is not a function of x: a clear error, not inf.
try:
    kernel(x=1.0, z=0.0)
except graphc.SingularError as err:
    print(f"at (1, 0): SingularError: {err}")
else:
    raise AssertionError("∂g/∂z = 0 must raise SingularError")

# 2. A system: y + z = 3x, y·z = 2x². On the branch y = x, z = 2x: dy/dx = 1, dz/dx = 2.
system = "y + z - 3*x, y*z - 2*x^2"
print(f"\nsystem g = ({system}) = 0, unknowns y, z")
assert graphc_cli(["implicit", system, "--solve-for", "y,z"]) == 0
jac = graphc.implicit(system, solve_for="y,z")
xs = np.array([0.5, 1.0, 2.0])
dyz = jac(x=xs, y=xs, z=2 * xs)  # shape (3 points, 2 unknowns, 1 input): batch axes first
print(
    f"at x = {xs.tolist()} on y = x, z = 2x: dy/dx = {dyz[:, 0, 0].round(12).tolist()}, "
    f"dz/dx = {dyz[:, 1, 0].round(12).tolist()}"
)
np.testing.assert_allclose(dyz[..., 0], [[1, 2], [1, 2], [1, 2]], rtol=1e-13)
try:  # y + z = 2x, y·z = x² has the double root y = z = x, where ∂g/∂(y, z) is singular
    graphc.implicit("y + z - 2*x, y*z - x^2", solve_for="y,z")(x=1.0, y=1.0, z=1.0)
except graphc.SingularError as err:
    print(f"double root: SingularError: {err}")
else:
    raise AssertionError("a singular ∂g/∂z must raise SingularError")

# 3. A fixed-point layer (seed 003: "limit of fixed point iteration", deep equilibrium models):
# z* = tanh(w·z* + x), i.e. g = z − tanh(w·z + x) = 0. Solve by iteration; differentiate implicitly.


def solve(x: float, w: float) -> float:
    z = 0.0
    for _ in range(200):  # |w| < 1 makes the iteration a contraction
        z = math.tanh(w * z + x)
    return z


x0, w0 = 0.5, 0.6
z0 = solve(x0, w0)
fixed_point = graphc.implicit("z - tanh(w*z + x)", solve_for="z")
dz_dw, dz_dx = fixed_point(w=w0, x=x0, z=z0)  # in fixed_point.wrt order: w, x
assert fixed_point.wrt == ("w", "x")
h = 1e-6
numeric_dx = (solve(x0 + h, w0) - solve(x0 - h, w0)) / (2 * h)
numeric_dw = (solve(x0, w0 + h) - solve(x0, w0 - h)) / (2 * h)
print(f"\nfixed point z* = tanh(w z* + x) at x = {x0}, w = {w0}: z* = {z0:.12f}")
print(f"  implicit:             dz/dx = {float(dz_dx):.10f}, dz/dw = {float(dz_dw):.10f}")
print(f"  differencing solver:  dz/dx = {numeric_dx:.10f}, dz/dw = {numeric_dw:.10f}")
assert math.isclose(dz_dx, numeric_dx, rel_tol=1e-8) and math.isclose(dz_dw, numeric_dw, rel_tol=1e-8)
# Backprop through the layer (seed 003: J_z L · dz/dx) for L = (z* − 0.2)²: no need to unroll 200 steps.
dL_dw = 2 * (z0 - 0.2) * dz_dw
numeric_L = ((solve(x0, w0 + h) - 0.2) ** 2 - (solve(x0, w0 - h) - 0.2) ** 2) / (2 * h)
print(f"  L = (z* − 0.2)²: dL/dw = {float(dL_dw):.10f} (central differences {numeric_L:.10f})")
assert math.isclose(dL_dw, numeric_L, rel_tol=1e-7)
