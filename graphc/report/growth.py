"""Growth fits: is a cost exponential in the size (a ratio per step) or a power of it (an exponent)?

Both models are straight lines after taking logarithms, ``log y = a + b·size`` (exponential,
``×e^b`` per step) and ``log y = a + k·log size`` (power law, exponent ``k``), fitted by least
squares. The model is chosen on every point; its rate is fitted on the larger half of the sizes
(at least three points), because growth is about large sizes and small ones carry fixed
overheads (``3·L - 1`` nodes is linear, though its log-log slope over 1..6 is 1.2). Over a few
sizes a slow exponential and a polynomial look alike, so the power law (the more modest claim) is
kept unless the exponential's squared error in ``log y`` is under half of it.

>>> fit([1, 2, 3, 4, 5], [2, 4, 8, 16, 32]).words("layer")
'×2.0 per layer (exponential)'
>>> fit([1, 2, 4, 8, 16], [3, 6, 12, 24, 48]).words("layer")
'exponent 1.0 (linear)'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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


def _line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Least-squares slope, intercept and sum of squared residuals of ``y = intercept + slope·x``."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx if sxx else 0.0
    intercept = mean_y - slope * mean_x
    residual = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    return slope, intercept, residual


def fit(sizes: Sequence[float | None], values: Sequence[float | None]) -> Fit | None:
    """The better-fitting growth model, or None with fewer than 3 usable points.

    Points whose size or value is not positive and finite are left out (logarithms).
    """
    points = [
        (float(s), float(v))
        for s, v in zip(sizes, values, strict=True)
        if s is not None and v is not None and 0 < s < math.inf and 0 < v < math.inf
    ]
    points.sort()
    if len({s for s, _ in points}) < 3:
        return None
    exp_residual, pow_residual = _fit_both(points)[1::2]
    # Which model: decided on every point (a wide range tells the two apart); how fast: fitted on
    # the larger half.
    exponential = exp_residual < 0.5 * pow_residual
    larger = points[min(len(points) // 2, len(points) - 3) :]
    exp_slope, exp_residual, pow_slope, pow_residual = _fit_both(larger)
    if exponential and abs(exp_slope) > 0.07:  # ×0.93..×1.07 per step is about flat
        kind, rate, residual = "exponential", math.exp(exp_slope), exp_residual
    else:
        kind, rate, residual = "power", pow_slope, pow_residual
    log_ys = [math.log(v) for _, v in larger]
    mean = sum(log_ys) / len(log_ys)
    total = sum((y - mean) ** 2 for y in log_ys)
    r2 = 1.0 - residual / total if total > 0 else 1.0
    return Fit(kind, rate, r2, len(larger))


def _fit_both(points: Sequence[tuple[float, float]]) -> tuple[float, float, float, float]:
    """Slope and squared error in ``log y`` of the exponential, then of the power-law model."""
    xs = [s for s, _ in points]
    log_ys = [math.log(v) for _, v in points]
    exp_slope, _, exp_residual = _line(xs, log_ys)
    pow_slope, _, pow_residual = _line([math.log(x) for x in xs], log_ys)
    return exp_slope, exp_residual, pow_slope, pow_residual
