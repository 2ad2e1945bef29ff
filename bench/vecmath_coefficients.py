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
    erf()


# erfc(a) = exp(-a^2) g(1/a) / a for a >= 1/2, g(u) = erfcx(1/u) / u = a erfc(a) exp(a^2) (smooth,
# near 1/sqrt(pi), so a relative error stays relative as u goes to 0), fitted
# on each interval of a in the variable s = 1/a - mid (centred: rounding the coefficients of an
# uncentred fit cost up to hundreds of units); the degrees are the lowest near 0.5 units.
ERFC_INTERVALS = [(0.5, 1.0, 20), (1.0, 2.0, 17), (2.0, 4.0, 16), (4.0, 27.5, 16)]


def erf() -> None:
    # erf(t) = t P(t^2) on |t| < 1
    p = lambda z: mp.erf(mp.sqrt(z)) / mp.sqrt(z) if z != 0 else 2 / mp.sqrt(mp.pi)
    erf_p = chebyshev_fit(p, 0.0, 1.0, 12)
    print("ERF_P =", erf_p)
    print("  error (2^-53 units):", worst(erf_p, p, lambda z: 1 / p(z), 0.0, 1.0, 500))
    print("ERFC_G = [")
    for low, high, degree in ERFC_INTERVALS:
        mid, half = (1 / low + 1 / high) / 2, (1 / low - 1 / high) / 2
        g = lambda s, mid=mid: mp.erfc(1 / (s + mid)) * mp.exp(1 / (s + mid) ** 2) / (s + mid)
        coefficients = chebyshev_fit(g, -half, half, degree)
        error = worst(coefficients, g, lambda s, g=g: 1 / g(s), -half, half, 500)
        print(f"    ({low}, {mid!r}, {coefficients}),  # error {error:.2f} units of 2^-53")
    print("]")


if __name__ == "__main__":
    main()
