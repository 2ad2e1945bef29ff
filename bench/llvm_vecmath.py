"""graphc's vectorisable exp/exp2/log/log2/log10/tanh/sin/cos/asinh/acosh/atanh/cbrt in LLVM kernels: accuracy, and speed before/after.

    python bench/llvm_vecmath.py [--points N] [--exact M] [--batch B] [--skip-speed] [--skip-networks] [--only F...]

Accuracy: each of graphc's own functions (graphc/backends/llvm/vecmath.py) on N random points spread
over its whole range (random exponents, so tiny, huge and subnormal values are drawn as often as
ordinary ones) plus the special points, compared with the C library (Python's ``math``, glibc)
in ulps (units in the last place of the C library's result), and on M of the points with mpmath
(60 digits): the true error in ulps of the exact value. Speed (one thread, best of 5, a batch of B
points): each function alone against the C library's lane by lane; a 2-16-1 tanh network's squared error (function and gradient wrt the 2 inputs) and the
1,000-op random DAG of ``graphc.families`` (sin, cos, tanh, sigmoid, + - *), each compiled
with graphc's functions ("own") and with C library calls ("libm", the lowering before this change).
"""

from __future__ import annotations

import argparse
import math
import os
import random
from collections.abc import Callable
from typing import Any

import mpmath as mp
import numpy as np
from llvm_speed import best  # bench/ is the script's directory: on the path

import graphc
from graphc.backends import llvm as backend
from graphc.backends.llvm import text as llvm_text
from graphc.backends.llvm import vecmath as llvm_math
from graphc.families import family

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, math.inf, -math.inf, math.nan, 5e-324, -5e-324, 1e-310,
           2.2250738585072014e-308, 1e-300, 1e300, 1.7976931348623157e308, 709.782712893384, 709.79, 710.0,
           -708.4, -745.13, -745.14, -746.0, 20.0, 22.0, -0.34657359027997264, 0.34657359027997264,
           0.7071067811865476, 1.4142135623730951, 1e-17, -1e-17, 1 - 2**-53, 1 + 2**-52,
           -1 + 2**-53]  # fmt: skip

MP = {
    "exp": mp.exp, "expm1": mp.expm1, "log": mp.log, "log1p": mp.log1p, "tanh": mp.tanh, "sin": mp.sin,
    "cos": mp.cos, "exp2": lambda x: mp.power(2, x), "log2": lambda x: mp.log(x, 2), "log10": mp.log10,
    "asinh": mp.asinh, "acosh": mp.acosh, "atanh": mp.atanh, "cbrt": lambda x: mp.sign(x) * mp.cbrt(abs(x)),
    "erf": lambda x: mp.erf(x) if abs(x) < 30 else mp.sign(x),  # (mpmath overflows far out)
    "erfc": lambda x: mp.erfc(x) if abs(x) < 30 else mp.mpf(1) - mp.sign(x),
}  # fmt: skip


def _libm(name: str) -> Callable[[float], float]:
    function = getattr(math, name)

    def safe(x: float) -> float:
        try:
            return function(x)
        except OverflowError:
            return math.inf
        except ValueError:  # a domain error: the C library returns ±inf at a pole, else nan
            pole = (name in ("log", "log2", "log10") and x == 0) or (name == "log1p" and x == -1)
            if name == "atanh" and abs(x) == 1:
                return math.copysign(math.inf, x)
            return -math.inf if pole else math.nan

    return safe


def random_points(name: str, count: int, rng: np.random.Generator) -> np.ndarray:
    """Points over the function's whole range: random signs and exponents, and ordinary values."""
    magnitude = 10.0 ** rng.uniform(-320, 308.2, count)
    sign = np.where(rng.random(count) < 0.5, -1.0, 1.0)
    wide = sign * magnitude
    if name == "exp":
        ordinary = rng.uniform(-746, 710, count)
    elif name == "exp2":
        ordinary = rng.uniform(-1080, 1025, count)
    elif name == "expm1":
        ordinary = rng.uniform(-50, 50, count)
    elif name in ("log", "log2", "log10"):
        wide = magnitude
        ordinary = rng.uniform(0, 4, count)
    elif name == "log1p":
        wide = np.where(sign > 0, magnitude, -(10.0 ** rng.uniform(-320, 0, count)))
        ordinary = rng.uniform(-1, 4, count)
    elif name == "acosh":
        ordinary = rng.uniform(1, 5, count)
    elif name == "atanh":
        ordinary = rng.uniform(-1, 1, count)
    elif name in ("erf", "erfc"):
        ordinary = rng.uniform(-6, 6 if name == "erf" else 28, count)
    elif name in ("sin", "cos"):  # the vectorised range, and beyond it (the C library's)
        ordinary = np.where(
            rng.random(count) < 0.8, rng.uniform(-10, 10, count), rng.uniform(-2e5, 2e5, count)
        )
    else:
        ordinary = rng.uniform(-25, 25, count)
    return np.where(rng.random(count) < 0.5, wide, ordinary)


def ulps(got: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """|got - reference| in units of the last place of the reference; 0 where both are the same
    special value, inf where one is NaN or infinite and the other is not."""
    with np.errstate(all="ignore"):
        error = np.abs(got - reference) / np.spacing(np.abs(reference))
    same = (got == reference) | (np.isnan(got) & np.isnan(reference))
    error[same] = 0.0
    error[~same & ~np.isfinite(error)] = math.inf
    return error


def exact_ulps(name: str, x: np.ndarray, got: np.ndarray) -> float:
    worst = 0.0
    for xi, gi in zip(x.tolist(), got.tolist(), strict=True):
        reference = _libm(name)(xi)
        if not math.isfinite(reference) or reference == 0.0:
            continue  # the special values are compared exactly with the C library
        with mp.workdps(60):
            exact = MP[name](mp.mpf(xi))
        spacing = float(np.spacing(np.abs(np.float64(float(exact)))))
        worst = max(worst, float(abs(mp.mpf(gi) - exact) / spacing))
    return worst


def accuracy(points: int, exact: int, only: list[str] | None = None) -> None:
    print(f"accuracy: {points:,} random points + {len(SPECIAL)} special points per function")
    print("  function   max ulps vs libm   share != libm   max ulps vs mpmath (first "
          f"{exact:,} points)   where libm gives 0, inf or nan")  # fmt: skip
    rng = np.random.default_rng(0)
    for name in only or MP:
        function = backend.math_function(f"graphc_{name}")
        x = np.concatenate([np.array(SPECIAL), random_points(name, points, rng)])
        got = function(x)
        with np.errstate(all="ignore"):
            libm = np.frompyfunc(_libm(name), 1, 1)(x).astype(np.float64)
        error = ulps(got, libm)
        # where the C library's result is 0, inf or nan (or the input is): the same bits; where it
        # is subnormal, at most one subnormal step away
        extreme = (libm == 0) | ~np.isfinite(libm) | (x == 0) | ~np.isfinite(x)
        special = (got == libm) & (np.signbit(got) == np.signbit(libm)) | np.isnan(got) & np.isnan(libm)
        subnormal = (libm != 0) & (np.abs(libm) < 2.2250738585072014e-308)
        steps = np.abs(got[subnormal] - libm[subnormal]) / 5e-324
        special_ok = bool(np.all(special[extreme])) and bool(np.all(steps <= 1))
        true = exact_ulps(
            name, x[len(SPECIAL) : len(SPECIAL) + exact], got[len(SPECIAL) : len(SPECIAL) + exact]
        )
        print(
            f"  {name:<8} {error.max():14.3f} {np.mean(error > 0):15.2%} {true:30.3f}"
            f"   {'identical' if special_ok else 'DIFFERENT'} ({int(extreme.sum()):,} points;"
            f" {int(subnormal.sum()):,} subnormal, max {steps.max(initial=0):.0f} step)"
        )


# --- speed ------------------------------------------------------------------------------------------


def tanh_network(seed: int = 0) -> str:
    """A 2-16-1 tanh network with fixed weights, squared error against a target t, as scalar formulas."""
    rng = random.Random(seed)
    lines = []
    for j in range(16):
        w1, w2, b = (round(rng.uniform(-1, 1), 4) for _ in range(3))
        lines.append(f"h{j} = tanh({w1}*x1 + {w2}*x2 + {b})")
    output = " + ".join(f"{round(rng.uniform(-1, 1), 4)}*h{j}" for j in range(16))
    return "\n".join([*lines, f"y = {output}", "(y - 0.5)^2"])


class LibmCalls:
    """Compile with the C library's functions (applied lane by lane) instead of graphc's vector ones."""

    def __enter__(self) -> None:
        self.saved = llvm_text.TextEmitter.call
        original = self.saved

        def text_call(emitter: Any, symbol: str, *args: Any) -> Any:
            return original(emitter, llvm_math.LIBM.get(symbol, symbol), *args)

        llvm_text.TextEmitter.call = text_call  # type: ignore[method-assign]

    def __exit__(self, *exc: object) -> None:
        llvm_text.TextEmitter.call = self.saved  # type: ignore[method-assign]


def timed(program: str, batch: int) -> dict[str, float]:
    rng = np.random.default_rng(1)
    graph = graphc.parse(program)
    values = [rng.uniform(-2, 2, batch) for _ in graph.variables]
    times = {}
    kernels = {}
    for lowering in ("libm", "own"):
        if lowering == "libm":
            with LibmCalls():
                function = graphc.compile(graph, backend="llvm", threads=1)
                gradient = graphc.grad(graph, backend="llvm", threads=1)
        else:
            function = graphc.compile(graph, backend="llvm", threads=1)
            gradient = graphc.grad(graph, backend="llvm", threads=1)
        value_out = np.empty(batch)
        gradient_out = tuple(np.empty(batch) for _ in gradient.wrt)
        times[f"{lowering} function"] = best(lambda f=function, o=value_out: f.into(o, *values))
        times[f"{lowering} gradient"] = best(lambda g=gradient, o=gradient_out: g.into(o, *values))
        kernels[lowering] = gradient(*values)
    # Relative to each partial's scale: a partial that cancels to near 0 at a point amplifies the
    # last-bit differences of tanh or exp there, whichever library computes them.
    for a, b in zip(kernels["libm"], kernels["own"], strict=True):
        times["difference"] = max(
            times.get("difference", 0.0), float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
        )
    return times


def speed(batch: int) -> None:
    os.environ["GRAPHC_NO_CACHE"] = "1"  # the two lowerings share the cache's key
    problems = {
        "2-16-1 tanh network": tanh_network(),
        "random DAG, 1,000 ops": family("random").generate(1000),
    }
    print(f"\nspeed: one thread, {batch:,} points, best of 5, into reused outputs (seconds)")
    print("  problem                    libm function   own function   libm gradient   own gradient")
    for label, program in problems.items():
        t = timed(program, batch)
        print(
            f"  {label:<24} {t['libm function']:13.4f} {t['own function']:14.4f}"
            f" {t['libm gradient']:15.4f} {t['own gradient']:14.4f}"
            f"   (x{t['libm function'] / t['own function']:.1f},"
            f" x{t['libm gradient'] / t['own gradient']:.1f};"
            f" gradients differ by {t['difference']:.1e} of their scale)"
        )


def function_speed(names: list[str], batch: int) -> None:
    """Each function alone, ``f(x)`` on ``batch`` points of its ordinary range, compiled with
    graphc's vector code ("own") and with the C library's function lane by lane ("libm")."""
    os.environ["GRAPHC_NO_CACHE"] = "1"
    rng = np.random.default_rng(2)
    print(f"\none function: f(x), one thread, {batch:,} points, best of 5 (milliseconds)")
    print("  function      libm      own   libm/own")
    for name in names:
        arity = llvm_math.ARITY.get(f"graphc_{name}", 1)
        points = [random_points(name, batch, rng) for _ in range(arity)]
        program = f"{name}({', '.join('xyz'[:arity])})"
        out = np.empty(batch)
        times = {}
        for lowering in ("libm", "own"):
            if lowering == "libm":
                with LibmCalls():
                    kernel = graphc.compile(program, backend="llvm", threads=1)
            else:
                kernel = graphc.compile(program, backend="llvm", threads=1)
            times[lowering] = best(lambda k=kernel, o=out, v=points: k.into(o, *v))
        print(
            f"  {name:<8} {times['libm'] * 1e3:9.2f} {times['own'] * 1e3:8.2f} {times['libm'] / times['own']:9.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=float, default=2e6, help="random points per function")
    parser.add_argument("--exact", type=int, default=20000, help="of which checked with mpmath")
    parser.add_argument("--batch", type=float, default=1e6, help="points per kernel call")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-networks", action="store_true", help="time the functions alone only")
    parser.add_argument("--only", nargs="*", choices=sorted(MP), help="measure these functions only")
    args = parser.parse_args()
    accuracy(int(args.points), args.exact, args.only)
    if not args.skip_speed:
        function_speed(
            [*(args.only or sorted(MP)), *(n.removeprefix("graphc_") for n in llvm_math.ARITY)],
            int(args.batch),
        )
        if not args.skip_networks:
            speed(int(args.batch))


if __name__ == "__main__":
    main()
