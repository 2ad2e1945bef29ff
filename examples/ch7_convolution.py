"""Chapter 7 — backpropagation through a convolution and through pooling.

Seed 004 (and the CNN part of seed 000): a 3×3 input X and a 2×2 filter F give a 2×2 output O,
    O_11 = X_11 F_11 + X_12 F_12 + X_21 F_21 + X_22 F_22, ... (a cross-correlation, stride 1),
and for a loss L with upstream gradient ∂L/∂O:
    ∂L/∂F = Convolution(X, ∂L/∂O)                   (valid, 2×2)
    ∂L/∂X = Full convolution(rot180(F), ∂L/∂O)       (3×3)
Max pooling routes the gradient to the winning input; average pooling over an N×N block gives each
input 1/(N·N) of it (seed 004; seed 000's "multiplied by m = N×N" reads as a slip: the gradient of
a mean is 1/m). Everything here is unrolled into scalar formulas and differentiated by graphc.

Run: python examples/ch7_convolution.py
"""

import numpy as np

import graphc

np.set_printoptions(precision=6, suppress=True)
rng = np.random.default_rng(11)
X = rng.normal(size=(3, 3)).round(3)
F = rng.normal(size=(2, 2)).round(3)
T = rng.normal(size=(2, 2)).round(3)  # a target for the loss L = ½ Σ (O − T)²


def cross_correlate(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The 'valid' sliding dot product (what CNNs call convolution)."""
    kh, kw = kernel.shape
    out = np.empty((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for i, j in np.ndindex(*out.shape):
        out[i, j] = (image[i : i + kh, j : j + kw] * kernel).sum()
    return out


def full_convolve(kernel: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """The 'full' cross-correlation: the gradient zero-padded by kernel size − 1 on every side."""
    kh, kw = kernel.shape
    padded = np.pad(gradient, ((kh - 1, kh - 1), (kw - 1, kw - 1)))
    return cross_correlate(padded, kernel)


# 1. The convolution unrolled into scalar formulas, exactly as the slides write them (1-based names).
o_formulas = {
    f"O{i + 1}{j + 1}": " + ".join(
        f"X{i + m + 1}{j + n + 1}*F{m + 1}{n + 1}" for m in range(2) for n in range(2)
    )
    for i in range(2)
    for j in range(2)
}
for name, text in o_formulas.items():
    print(f"{name} = {text}")
assert o_formulas["O11"] == "X11*F11 + X12*F12 + X21*F21 + X22*F22"
assert o_formulas["O22"] == "X22*F11 + X23*F12 + X32*F21 + X33*F22"
program = "\n".join(f"{name} = {text}" for name, text in o_formulas.items())
program += (
    "\n0.5*("
    + " + ".join(f"({name} - ({float(T[i, j])!r}))^2" for (i, j), name in zip(np.ndindex(2, 2), o_formulas))
    + ")"
)

point = {f"X{i + 1}{j + 1}": float(X[i, j]) for i, j in np.ndindex(3, 3)}
point |= {f"F{m + 1}{n + 1}": float(F[m, n]) for m, n in np.ndindex(2, 2)}
value, gradient = graphc.value_and_grad(program)(**point)
by_name = dict(zip(graphc.grad(program).wrt, (float(g) for g in gradient)))
dL_dF = np.array([[by_name[f"F{m + 1}{n + 1}"] for n in range(2)] for m in range(2)])
dL_dX = np.array([[by_name[f"X{i + 1}{j + 1}"] for j in range(3)] for i in range(3)])

O = cross_correlate(X, F)
dL_dO = O - T  # the upstream gradient of L = ½ Σ (O − T)²
assert np.isclose(value, 0.5 * ((O - T) ** 2).sum(), rtol=1e-14)

print(f"\nX =\n{X}\nF =\n{F}\n∂L/∂O = O − T =\n{dL_dO.round(6)}")
print(f"\ngraphc ∂L/∂F =\n{dL_dF.round(6)}\nconv(X, ∂L/∂O) =\n{cross_correlate(X, dL_dO).round(6)}")
np.testing.assert_allclose(dL_dF, cross_correlate(X, dL_dO), rtol=1e-13, atol=1e-15)
rot180 = F[::-1, ::-1]
print(
    f"\ngraphc ∂L/∂X =\n{dL_dX.round(6)}\nfull-conv(rot180(F), ∂L/∂O) =\n{full_convolve(rot180, dL_dO).round(6)}"
)
np.testing.assert_allclose(dL_dX, full_convolve(rot180, dL_dO), rtol=1e-13, atol=1e-15)

# The slides' nine formulas for ∂L/∂X, one by one (G = ∂L/∂O, 0-based indices here).
G = dL_dO
slides = {
    (0, 0): G[0, 0] * F[0, 0],
    (0, 1): G[0, 0] * F[0, 1] + G[0, 1] * F[0, 0],
    (0, 2): G[0, 1] * F[0, 1],
    (1, 0): G[0, 0] * F[1, 0] + G[1, 0] * F[0, 0],
    (1, 1): G[0, 0] * F[1, 1] + G[0, 1] * F[1, 0] + G[1, 0] * F[0, 1] + G[1, 1] * F[0, 0],
    (1, 2): G[0, 1] * F[1, 1] + G[1, 1] * F[0, 1],
    (2, 0): G[1, 0] * F[1, 0],
    (2, 1): G[1, 0] * F[1, 1] + G[1, 1] * F[1, 0],
    (2, 2): G[1, 1] * F[1, 1],
}
for (i, j), expected in slides.items():
    assert np.isclose(dL_dX[i, j], expected, rtol=1e-13, atol=1e-15), (i, j)
print("\nall nine of the slides' ∂L/∂X_ij formulas and four ∂L/∂F_mn formulas hold")

# 2. Pooling on a 4×4 map with 2×2 blocks (stride 2): max routes, average spreads.
P = rng.normal(size=(4, 4)).round(3)
names = {(i, j): f"p{i}{j}" for i, j in np.ndindex(4, 4)}
upstream = rng.normal(size=(2, 2)).round(3)  # ∂L/∂(pooled) for each block
blocks = [
    [(2 * bi + di, 2 * bj + dj) for di in range(2) for dj in range(2)] for bi in range(2) for bj in range(2)
]


def pooled_loss(pool: str) -> str:
    terms = []
    for b, block in enumerate(blocks):
        cells = [names[c] for c in block]
        pooled = (
            f"max(max({cells[0]}, {cells[1]}), max({cells[2]}, {cells[3]}))"
            if pool == "max"
            else (f"({' + '.join(cells)})/4")
        )
        terms.append(f"({float(upstream.flat[b])!r})*{pooled}")
    return " + ".join(terms)


point = {names[c]: float(P[c]) for c in names}
for pool in ("max", "average"):
    kernel = graphc.grad(pooled_loss(pool))
    grads = dict(zip(kernel.wrt, (float(g) for g in kernel(**point))))
    grid = np.array([[grads[names[(i, j)]] for j in range(4)] for i in range(4)])
    expected = np.zeros((4, 4))
    for b, block in enumerate(blocks):
        if pool == "max":
            winner = max(block, key=lambda c: P[c])
            expected[winner] = upstream.flat[b]
        else:
            for c in block:
                expected[c] = upstream.flat[b] / 4
    np.testing.assert_allclose(grid, expected, rtol=1e-15, atol=0)
    print(f"\n{pool} pooling of\n{P}\nwith upstream gradient\n{upstream}\ngives ∂L/∂input =\n{grid + 0.0}")
print("\nmax pooling: the whole gradient to each block's winner; average: 1/4 of it to every input")

# 3. The same layer at block level: one conv2d node, one maxpool2d, one avgpool2d (graphc's op
#    entries, whose VJPs are the lecture's formulas), against the scalar unrollings above.
layer = "X: [1, 3, 3]; F: [1, 1, 2, 2]; T: [1, 2, 2]; 0.5 * sum((conv2d(X, F) - T) ** 2)"
block_value, (block_dF, block_dT, block_dX) = graphc.value_and_grad(layer)(
    X=X[None], F=F[None, None], T=T[None]
)
assert np.isclose(block_value, value, rtol=1e-14)
np.testing.assert_allclose(block_dF[0, 0], dL_dF, rtol=1e-13, atol=1e-15)
np.testing.assert_allclose(block_dX[0], dL_dX, rtol=1e-13, atol=1e-15)
print(
    f"\nconv2d at block level: {len(graphc.parse(layer))} nodes against {len(graphc.parse(program))} unrolled;"
    " its ∂L/∂F and ∂L/∂X equal the unrolled ones"
)
for pool, function in (("max", "maxpool2d"), ("average", "avgpool2d")):
    text = f"P: [4, 4]; U: [2, 2]; sum({function}(P, 2) * U)"
    block_dP = graphc.grad(text, wrt="P")(P=P, U=upstream)[0]
    kernel = graphc.grad(pooled_loss(pool))
    grads = dict(zip(kernel.wrt, (float(g) for g in kernel(**point))))
    np.testing.assert_allclose(
        block_dP, [[grads[names[(i, j)]] for j in range(4)] for i in range(4)], rtol=1e-15
    )
ties = np.array([[1.0, 1.0], [0.0, 1.0]])
tie_dP = graphc.grad("P: [2, 2]; sum(maxpool2d(P, 2))", wrt="P")(P=ties)[0]
np.testing.assert_array_equal(tie_dP, [[1 / 3, 1 / 3], [0.0, 1 / 3]])
print(f"maxpool2d and avgpool2d route as the unrolled pools do; a three-way tie splits evenly:\n{tie_dP}")
