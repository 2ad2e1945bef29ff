"""Derive the polynomial coefficients of graphc's vectorisable exp/expm1, log and sin/cos.

    python bench/vecmath_coefficients.py

Each polynomial interpolates its target at Chebyshev nodes in 60-digit arithmetic (mpmath), which
is within a small factor of the minimax polynomial, then is rounded to doubles. Printed: the
coefficients (as graphc/backends/llvm/vecmath.py holds them) and the largest relative error of the
rounded polynomial on a fine grid, in units of 2^-53.
"""

from __future__ import annotations

import math

import mpmath as mp

mp.mp.dps = 60


def chebyshev_fit(target, low: float, high: float, degree: int) -> list[float]:
    """Coefficients c0..c_degree (as doubles) of the polynomial interpolating target at Chebyshev nodes."""
    n = degree + 1
    low, high = mp.mpf(low), mp.mpf(high)
    nodes = [(low + high) / 2 + (high - low) / 2 * mp.cos(mp.pi * (2 * k + 1) / (2 * n)) for k in range(n)]
    matrix = mp.matrix([[t**j for j in range(n)] for t in nodes])
    values = mp.matrix([exact(target, t) for t in nodes])
    solution = mp.lu_solve(matrix, values)
    return [float(solution[j]) for j in range(n)]


def exact(target, t) -> mp.mpf:
    """target(t) without cancellation near t = 0 (the targets divide by powers of t)."""
    with mp.workdps(400):
        return +target(t)


def horner(coefficients: list[float], t) -> mp.mpf:
    value = mp.mpf(0)
    for c in reversed(coefficients):
        value = value * t + mp.mpf(c)
    return value


def worst(coefficients, target, scale, low: float, high: float, points: int = 2000) -> float:
    """max |poly - target| * scale(t) over a grid, in units of 2^-53."""
    error = 0.0
    for i in range(points + 1):
        t = mp.mpf(low) + (mp.mpf(high) - mp.mpf(low)) * i / points
        if t == 0:
            continue
        error = max(error, float(abs(horner(coefficients, t) - exact(target, t)) * scale(t)))
    return error / 2.0**-53


def main() -> None:
    half_ln2 = math.log(2) / 2
    # exp(r) = 1 + r + r^2 q(r) on |r| <= ln2/2; error of r^2 q relative to exp(r)
    q = lambda r: (mp.exp(r) - 1 - r) / r**2 if r != 0 else mp.mpf(0.5)
    exp_q = chebyshev_fit(q, -half_ln2, half_ln2, 10)
    print("EXP_Q =", exp_q)
    print("  error (2^-53 units):", worst(exp_q, q, lambda r: r**2 / mp.exp(r), -half_ln2, half_ln2))

    # log(1+f) = f - f^2/2 + s (f^2/2 + R(z)), s = f/(2+f), z = s^2, R(z) = z P(z) on s <= 3-2sqrt2
    s_max = 3 - 2 * math.sqrt(2)
    p = lambda z: (2 * mp.atanh(mp.sqrt(z)) - 2 * mp.sqrt(z)) / (mp.sqrt(z) * z) if z != 0 else mp.mpf(2) / 3
    log_p = chebyshev_fit(p, 0.0, s_max**2, 7)
    print("LOG_P =", log_p)
    print("  error (2^-53 units):", worst(log_p, p, lambda z: mp.sqrt(z) * z / 0.34, 0.0, s_max**2))

    # sin(r) = r + r^3 S(r^2), cos(r) = 1 - r^2/2 + r^4 C(r^2) on |r| <= pi/4
    quarter = (math.pi / 4) ** 2
    sp = lambda z: (mp.sin(mp.sqrt(z)) - mp.sqrt(z)) / (mp.sqrt(z) * z) if z != 0 else -mp.mpf(1) / 6
    cp = lambda z: (mp.cos(mp.sqrt(z)) - 1 + z / 2) / z**2 if z != 0 else mp.mpf(1) / 24
    sin_s = chebyshev_fit(sp, 0.0, quarter, 6)
    cos_c = chebyshev_fit(cp, 0.0, quarter, 5)
    print("SIN_S =", sin_s)
    print("  error (2^-53 units):", worst(sin_s, sp, lambda z: z, 0.0, quarter))
    print("COS_C =", cos_c)
    print("  error (2^-53 units):", worst(cos_c, cp, lambda z: z**2 / 0.7, 0.0, quarter))

    # pi/2 as P1 + P2 + P3 + P3T: the first three of 32 significant bits, so k * Pi is exact for
    # |k| < 2^21 (Cody and Waite's reduction), the last the rounded rest
    rest = mp.pi / 2
    parts = []
    for _ in range(3):
        exponent = int(mp.floor(mp.log(rest, 2)))
        part = float(mp.floor(rest / mp.mpf(2) ** (exponent - 31)) * mp.mpf(2) ** (exponent - 31))
        parts.append(part)
        rest -= mp.mpf(part)
    parts.append(float(rest))
    print("PIO2 =", parts)


if __name__ == "__main__":
    main()
