"""Growth fits: is a cost exponential in the size (a ratio per step) or a power of it (an exponent)?

The two models are ``y = c + a·r^size`` (exponential, ``×r`` per step) and ``y = c + a·size^k``
(power law, exponent ``k``). The offset ``c`` (left out below six points) is a fixed overhead (``3·L - 1`` nodes is
linear, though its log-log slope over sizes 1..6 is 1.2; a timing has a fixed cost per call).
For every candidate rate on a fine grid, ``c`` and ``a`` are fitted by least squares in relative
error; the rate whose fit has the least squared error in ``log y`` wins. Then the two models'
errors (weighted squared errors in ``log y``) are compared; the rule is:

- the exponential wins when its error is under half the power law's (over a few sizes a slow
  exponential and a polynomial look alike, so the power law, the more modest claim, needs only
  to be about as good);
- it also wins when the best power has an exponent above 4 and the exponential's error is at
  most twice the power law's: an exponent that high is what an exponential looks like over a
  narrow range of sizes (timings under a millisecond are not fitted, which leaves few sizes);
- a ratio of ×1.07 per step or less is never called exponential (about flat).

>>> fit([1, 2, 3, 4, 5], [2, 4, 8, 16, 32]).words("layer")
'×2.0 per layer (exponential)'
>>> fit([1, 2, 4, 8, 16], [3, 6, 12, 24, 48]).words("layer")
'exponent 1.0 (linear)'
>>> fit(range(1, 13), [2 * n + 11 for n in range(1, 13)]).words("layer")
'exponent 1.0 (linear)'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

_POWER_NAMES = ((0.0, "about constant"), (1.0, "linear"), (2.0, "quadratic"), (3.0, "cubic"))


@dataclass(frozen=True)
class Fit:
    """The better of the two models: ``kind`` is "exponential" (``rate`` = ratio per step) or
    "power" (``rate`` = exponent); ``r2`` is the coefficient of determination in log space."""

    kind: str
    rate: float
    r2: float
    points: int

    def words(self, unit: str) -> str:
        """The growth in words: "×2.0 per layer (exponential)", "exponent 1.0 (linear)"."""
        if self.kind == "exponential":
            return f"×{self.rate:.1f} per {unit} (exponential)"
        rate = 0.0 if abs(self.rate) < 0.05 else self.rate  # no "-0.0"
        for exponent, name in _POWER_NAMES:
            if abs(rate - exponent) < 0.15:
                return f"exponent {rate:.1f} ({name})"
        return f"exponent {rate:.1f} (polynomial)"

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "rate": round(self.rate, 4),
            "r2": round(self.r2, 4),
            "points": self.points,
        }


# The rates tried: exponents 0..16 for the power law, ratios ×1.001..×e^12 per step for the
# exponential (log-spaced, so a ratio is found to within 0.5%).
_EXPONENTS = np.linspace(0.0, 16.0, 3201)
_LOG_RATIOS = np.geomspace(1e-3, 12.0, 2000)


def _best(terms: np.ndarray, xs: np.ndarray, ys: np.ndarray, offset: bool) -> tuple[int, float]:
    """For each row of ``terms`` (one candidate rate), the best ``y ≈ c + a·term`` with ``a >= 0``
    (least squares in relative error); the row whose fit has the least squared error in ``log y``.
    Both errors weigh each point by its size: growth is about the large sizes.
    A fit predicting a value <= 0 anywhere is out. Without ``offset``, ``c = 0``."""
    w = xs / ys**2  # relative error, the larger sizes counting more: growth is about them
    s, st, stt = w.sum(), terms @ w, (terms**2) @ w
    sy, sty = (w * ys).sum(), terms @ (w * ys)
    det = s * stt - st**2
    with np.errstate(divide="ignore", invalid="ignore"):
        solvable = (det > 1e-12 * s * stt) & offset
        c = np.where(solvable, (sy * stt - st * sty) / det, 0.0)
        a = np.where(solvable, (s * sty - st * sy) / det, sty / stt)
        c = np.where(a < 0, sy / s, c)  # a falling fit: the best constant instead
        a = np.where(a < 0, 0.0, a)
        predicted = c[:, None] + a[:, None] * terms
        residual = ((np.log(predicted) - np.log(ys)) ** 2 * xs).sum(axis=1) / xs.mean()
    residual = np.where(np.isfinite(residual), residual, np.inf)
    best = int(np.argmin(residual))
    return best, float(residual[best])


def _search(
    grid: np.ndarray, terms: Callable[[np.ndarray], np.ndarray], xs: np.ndarray, ys: np.ndarray, offset: bool
) -> tuple[float, float]:
    """The best rate on ``grid``, refined on a 100 times finer grid around it; and its error."""
    best, _ = _best(terms(grid), xs, ys, offset)
    fine = np.linspace(grid[max(0, best - 1)], grid[min(len(grid) - 1, best + 1)], 201)
    index, residual = _best(terms(fine), xs, ys, offset)
    return float(fine[index]), residual


def fit(sizes: Sequence[float | None], values: Sequence[float | None]) -> Fit | None:
    """The better-fitting growth model, or None with fewer than 3 usable points.

    Points whose size or value is not positive and finite are left out (logarithms).
    """
    points = sorted(
        (float(s), float(v))
        for s, v in zip(sizes, values, strict=True)
        if s is not None and v is not None and 0 < s < math.inf and 0 < v < math.inf
    )
    if len({s for s, _ in points}) < 3:
        return None
    xs = np.array([s for s, _ in points])
    ys = np.array([v for _, v in points])
    if ys.max() < 1.5 * ys.min():  # under ×1.5 over the whole range: flat, whatever a model says
        return Fit("power", 0.0, 1.0, len(points))
    scaled = xs / xs.max()  # terms stay within [0, 1]: no overflow at large sizes
    offset = len(points) >= 6  # with few points, three parameters fit anything (noise included)
    exponent, power_residual = _search(_EXPONENTS, lambda k: scaled[None, :] ** k[:, None], xs, ys, offset)
    steps = xs - xs.max()
    log_ratio, exp_residual = _search(
        _LOG_RATIOS, lambda r: np.exp(r[:, None] * steps[None, :]), xs, ys, offset
    )
    log_ys = np.log(ys)
    mean = float((log_ys * xs).sum() / xs.sum())
    total = float(((log_ys - mean) ** 2 * xs).sum() / xs.mean())  # weighted as the residuals are
    ratio = math.exp(log_ratio)
    # the rule of the module docstring
    likelier = exp_residual < 0.5 * power_residual or (exponent > 4 and exp_residual <= 2 * power_residual)
    if likelier and ratio > 1.07:  # ×1.07 or less per step is about flat
        kind, rate, residual = "exponential", ratio, exp_residual
    else:
        kind, rate, residual = "power", exponent, power_residual
    r2 = 1.0 - residual / total if total > 0 else 1.0
    return Fit(kind, rate, r2, len(points))
