"""Chapter 6 — softmax and cross-entropy, backward.

Seed 003: y = softmax(a), y_j = exp(a_j) / Σ_i exp(a_i), and for any upstream gradient J_y = ∂L/∂y
    J_a = J_y (Diag(y) − y yᵀ) = J_y ⊙ y − (J_y · y) yᵀ;
with the cross-entropy L = −tᵀ log y, J_y = −t / y, so J_a = y − t (for Σ t = 1). Here softmax is
written as scalar formulas and graphc's gradients are checked element by element against these.

Run: python examples/ch6_softmax_cross_entropy.py
"""

import numpy as np

import graphc

K = 4
a = np.array([0.3, -1.2, 2.0, 0.7])
names = [f"a{j}" for j in range(K)]
args = dict(zip(names, a))
denominator = " + ".join(f"exp({n})" for n in names)
softmax_program = f"s = {denominator}\n" + ", ".join(f"exp({n})/s" for n in names)

y = np.exp(a) / np.exp(a).sum()
values = np.array(graphc.compile(softmax_program)(**args))
np.testing.assert_allclose(values, y, rtol=1e-15)
print(f"a = {a.tolist()}\ny = softmax(a) = {y.round(6).tolist()}")

# 1. The softmax Jacobian: ∂y_j/∂a_i = y_j([i = j] − y_i) = Diag(y) − y yᵀ.
jacobian = graphc.jacobian(softmax_program, wrt=names)(**args)
np.testing.assert_allclose(jacobian, np.diag(y) - np.outer(y, y), rtol=1e-14, atol=1e-16)
print("graphc's Jacobian of softmax equals Diag(y) − y yᵀ (16 entries)")

# 2. Any upstream gradient: L = Σ c_j y_j has J_y = c, so J_a should be c ⊙ y − (c·y) y.
rng = np.random.default_rng(4)
c = rng.normal(size=K)
loss = f"s = {denominator}\n" + " + ".join(f"({float(c[j])!r})*exp({n})/s" for j, n in enumerate(names))
J_a = np.array(graphc.grad(loss, wrt=names)(**args))
expected = c * y - (c @ y) * y
print("\n  j   graphc ∂L/∂a_j        J_y ⊙ y − (J_y·y) y")
for j in range(K):
    print(f"  {j}   {J_a[j]: .15f}   {expected[j]: .15f}")
    assert abs(J_a[j] - expected[j]) <= 1e-15 + 1e-14 * abs(expected[j]), j

# 3. Cross-entropy with a one-hot target and with soft targets: J_y = −t/y and J_a = y − t.
for t in (np.array([0.0, 0.0, 1.0, 0.0]), np.array([0.1, 0.2, 0.3, 0.4])):
    cross_entropy = (
        f"s = {denominator}\n-("
        + " + ".join(f"{float(t[j])!r}*log(exp({n})/s)" for j, n in enumerate(names))
        + ")"
    )
    value, gradient = graphc.value_and_grad(cross_entropy, wrt=names)(**args)
    assert np.isclose(value, -(t * np.log(y)).sum(), rtol=1e-14)
    J_y = -t / y
    np.testing.assert_allclose(gradient, J_y * y - (J_y @ y) * y, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(gradient, y - t, rtol=1e-13, atol=1e-15)
    print(f"\ncross-entropy with t = {t.tolist()}: L = {float(value):.6f}")
    print(
        f"  graphc ∂L/∂a = {np.round(gradient, 12).tolist()}\n  y − t        = {np.round(y - t, 12).tolist()}"
    )

# 4. The vector view (seed 003's MySoftmax.backward): da = y ⊙ dy − y (y·dy), the same thing.
dy = rng.normal(size=K)
np.testing.assert_allclose(y * dy - y * (y * dy).sum(), jacobian.T @ dy, rtol=1e-14)
print("\nthe custom autograd function's backward, y*dy − y*(y*dy).sum(), equals Jᵀ dy from graphc")
