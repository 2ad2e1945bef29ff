"""graphc's own exp, expm1, log, log1p, tanh, sin, cos, the inverse hyperbolics and cbrt in LLVM IR: the C library's special values,
about 1 ulp, as vector code; sin and cos of huge arguments through the C library, lane by lane."""

from __future__ import annotations

import math
import re

import mpmath as mp
import numpy as np
import pytest

import graphc
from graphc.backends import UNAVAILABLE
from graphc.backends.llvm import vecmath as llvm_math

pytestmark = pytest.mark.skipif("llvm" in UNAVAILABLE, reason="the llvm backend is unavailable")

SMALLEST_NORMAL = 2.2250738585072014e-308
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, math.inf, -math.inf, math.nan, 5e-324, -5e-324, 1e-310,
           SMALLEST_NORMAL, 1e-300, 1e300, 1.7976931348623157e308, 709.782712893384, 709.79, 710.0, 1000.0,
           -708.4, -745.13, -745.14, -746.0, -1000.0, 19.0, 20.0, 22.0, 40.0, 41.0, -40.0, -41.0,
           0.34657359027997264, -0.34657359027997264, 0.7071067811865476, 1.4142135623730951, 1e-17, -1e-17,
           1 - 2**-53, 1 + 2**-52, -1 + 2**-53, -1.0 - 2**-52, math.pi / 2, math.pi, 131071.9, 131072.1,
           -1e6, 1e22, 1e300, 3 * math.pi / 4]  # fmt: skip
# the largest error in ulps of the exact value (mpmath), as measured by bench/llvm_vecmath.py
BOUND = {
    name.removeprefix("graphc_"): ulps for name, ulps in llvm_math.ULPS.items() if name not in llvm_math.ARITY
}
MPMATH = {
    "exp": mp.exp, "expm1": mp.expm1, "log": mp.log, "log1p": mp.log1p, "tanh": mp.tanh, "sin": mp.sin,
    "cos": mp.cos, "exp2": lambda x: mp.power(2, x), "log2": lambda x: mp.log(x, 2), "log10": mp.log10,
    "asinh": mp.asinh, "acosh": mp.acosh, "atanh": mp.atanh, "cbrt": lambda x: mp.sign(x) * mp.cbrt(abs(x)),
    "erf": lambda x: mp.erf(x) if abs(x) < 30 else mp.sign(x),  # (mpmath overflows far out)
    "erfc": lambda x: mp.erfc(x) if abs(x) < 30 else mp.mpf(1) - mp.sign(x),
}  # fmt: skip
# the C library's own largest error here where it is above the usual ulp (this glibc's cbrt: 2.8
# ulps of the exact value, 20,000 random points), added to the bound against it
LIBM_ERROR = {"cbrt": 3.0}


def c_library(name: str, x: float) -> float:
    """The C library's value (Python's math module raises where C returns inf, -inf or nan)."""
    try:
        return getattr(math, name)(x)
    except OverflowError:
        return math.inf
    except ValueError:  # a pole (log(0), log1p(-1), atanh(±1)) or outside the domain
        if (name, x) in (("log", 0.0), ("log2", 0.0), ("log10", 0.0), ("log1p", -1.0)):
            return -math.inf
        if name == "atanh" and abs(x) == 1.0:
            return math.copysign(math.inf, x)
        return math.nan


@pytest.fixture(scope="module", params=list(BOUND))
def function(request):
    from graphc.backends import llvm as backend

    return request.param, backend.math_function(f"graphc_{request.param}")


def test_the_functions_are_the_ones_kernels_call():
    assert set(llvm_math.ULPS) == set(llvm_math.FUNCTIONS)
    assert set(BOUND) | {llvm_math.LIBM[name] for name in llvm_math.ARITY} == set(llvm_math.LIBM.values())


def test_hypot_is_within_its_bound_and_keeps_the_c_library_s_special_values():
    """hypot, the one vector function of two operands, through a kernel: random magnitudes over
    the whole range (no overflow or underflow in between), against mpmath; inf beats NaN."""
    kernel = graphc.compile("hypot(x, y)", backend="llvm")
    rng = np.random.default_rng(3)
    x = np.concatenate([10.0 ** rng.uniform(-310, 308, 300), rng.uniform(-4, 4, 100)])
    y = np.concatenate(
        [10.0 ** rng.uniform(-310, 308, 300) * rng.choice([1e-8, 1, 1e8], 300), rng.uniform(-4, 4, 100)]
    )
    got = kernel(x, y)
    worst = 0.0
    for xi, yi, gi in zip(x.tolist(), y.tolist(), got.tolist(), strict=True):
        with mp.workdps(50):
            exact = mp.sqrt(mp.mpf(xi) ** 2 + mp.mpf(yi) ** 2)
            if SMALLEST_NORMAL <= exact <= 1.7976931348623157e308:
                worst = max(worst, float(abs(mp.mpf(gi) - exact)) / math.ulp(float(exact)))
    assert worst <= BOUND_HYPOT, worst
    special = [(math.inf, math.nan), (math.nan, -math.inf), (math.nan, 1.0), (0.0, -0.0), (3.0, 4.0),
               (1e300, 1e300), (5e-324, 5e-324), (-5.0, 12.0), (1.7976931348623157e308, 1e308)]  # fmt: skip
    a, b = np.array(special).T
    np.testing.assert_array_equal(kernel(a, b), [math.hypot(p, q) for p, q in special])


BOUND_HYPOT = llvm_math.ULPS["graphc_hypot"]


def test_special_values_are_the_c_librarys_to_the_bit(function):
    name, own = function
    x = np.array(SPECIAL)
    got = own(x)
    for xi, gi in zip(SPECIAL, got.tolist(), strict=True):
        expected = c_library(name, xi)
        if math.isnan(expected):
            assert math.isnan(gi), (name, xi, gi)
        elif expected == 0.0 or math.isinf(expected) or xi == 0.0 or math.isinf(xi):
            assert gi == expected and math.copysign(1, gi) == math.copysign(1, expected), (name, xi, gi)
        elif abs(expected) < SMALLEST_NORMAL:  # a subnormal result: one rounding more, one step at most
            assert abs(gi - expected) <= 5e-324, (name, xi, gi, expected)
        else:
            assert abs(gi - expected) <= 2 * math.ulp(expected), (name, xi, gi, expected)


def random_points(name: str, count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    magnitude = 10.0 ** rng.uniform(-320, 308, count)  # every exponent, subnormals included
    ordinary = {"exp": (-746, 710), "expm1": (-45, 45), "log": (0, 4), "log1p": (-1, 4), "sin": (-2e5, 2e5),
                "exp2": (-1080, 1025), "log2": (0, 4), "log10": (0, 4), "acosh": (1, 5), "atanh": (-1, 1),
                "erf": (-6, 6), "erfc": (-6, 28)}  # fmt: skip
    ordinary = ordinary.get(name, ordinary["sin"] if name == "cos" else (-25, 25))
    x = np.where(rng.random(count) < 0.5, magnitude, rng.uniform(*ordinary, count))
    if name not in ("log", "log1p", "log2", "log10"):
        x = np.where(rng.random(count) < 0.5, -x, x)
    return x


def test_within_a_couple_of_ulps_of_the_c_library_everywhere(function):
    name, own = function
    x = random_points(name, 100_000)
    got = own(x)
    with np.errstate(all="ignore"):
        expected = np.array([c_library(name, v) for v in x.tolist()])
    normal = np.isfinite(expected) & (np.abs(expected) >= SMALLEST_NORMAL)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.array_equal(got[~normal & ~np.isnan(got)] != 0, expected[~normal & ~np.isnan(got)] != 0)
    ulps = np.abs(got[normal] - expected[normal]) / np.spacing(np.abs(expected[normal]))
    assert ulps.max() <= BOUND[name] + LIBM_ERROR.get(name, 1.0)  # the C library's own error: ~1 ulp


def test_within_the_measured_ulps_of_the_exact_value(function):
    name, own = function
    x = random_points(name, 400, seed=1)
    got = own(x)
    worst = 0.0
    for xi, gi in zip(x.tolist(), got.tolist(), strict=True):
        with mp.workdps(50):
            exact = MPMATH[name](mp.mpf(xi))
            if (
                isinstance(exact, mp.mpc)
                or not mp.isfinite(exact)
                or exact == 0
                or abs(exact) < SMALLEST_NORMAL
                or abs(exact) > 1e308
            ):
                continue
            worst = max(worst, float(abs(mp.mpf(gi) - exact)) / math.ulp(float(exact)))
    assert worst <= BOUND[name], (name, worst)


def test_a_small_kernel_of_exp_log_tanh_sigmoid_softplus_sin_cos_is_vector_code_without_calls():
    program = "tanh(x)*exp(y) + log(x) + sigmoid(x*y) + softplus(y) + sin(x)*cos(y)"
    kernel = graphc.grad(program, backend="llvm")
    body = re.split(r"define [^\n]*@graphc_kernel\(", kernel.source)[1].split("\n}")[0]
    assert re.search(r"fmul <\d+ x double>", body)
    assert not re.findall(r"call (fast )?<\d+ x double> @(?!llvm\.)", body)  # graphc's functions inlined
    # the C library on one point only for sin and cos beyond their bound, in a block of its own
    assert set(re.findall(r"call double @(\w+)", body)) <= {"sin", "cos"}


def test_a_big_kernel_calls_the_vector_functions_and_gets_the_same_bits(monkeypatch):
    from graphc.backends.llvm import passes

    program = "sin(x)*exp(x), cos(x) + tanh(x) + log(x) + softplus(x) + sigmoid(x)"
    x = np.concatenate([np.linspace(-131072.0, 131072.0, 20_001), np.array(SPECIAL)])
    inlined = graphc.compile(program, backend="llvm")
    monkeypatch.setattr(passes, "INLINE_CALLS", 0)
    monkeypatch.setenv("GRAPHC_NO_CACHE", "1")
    called = graphc.compile(program, backend="llvm")
    assert re.search(r"call <\d+ x double> @graphc_sin_v\d+", called.source)
    assert not re.search(r"call <\d+ x double> @graphc_sin_v\d+", inlined.source)
    for a, b in zip(inlined(x), called(x), strict=True):
        numbers = ~np.isnan(a)  # a NaN's sign bit is not a value (the optimiser may flip it)
        assert np.array_equal(a, b, equal_nan=True) and np.array_equal(
            np.signbit(a[numbers]), np.signbit(b[numbers])
        )


def c_sin_cos(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.array([math.sin(v) for v in x.tolist()]), np.array([math.cos(v) for v in x.tolist()])


@pytest.mark.parametrize("threads", [1, 2])
def test_huge_sin_and_cos_arguments_get_the_c_librarys_value_in_their_lane(threads):
    kernel = graphc.compile("sin(x), cos(x) + y", backend="llvm", threads=threads)
    x = np.linspace(-10.0, 10.0, 200_003)
    x[123_456] = 1e22  # far beyond TRIG_BOUND, in the second thread's half
    x[7] = -3e5
    x[-1] = 2e6  # among the last points, fewer than a vector
    sin, cos = kernel(x, 0.0)
    expected_sin, expected_cos = c_sin_cos(x)
    for got, expected in ((sin, expected_sin), (cos, expected_cos)):
        for i in (123_456, 7, 200_002):
            assert got[i] == expected[i]  # the C library's, to the bit
        assert np.max(np.abs(got - expected) / np.spacing(np.abs(expected))) <= 2
    assert kernel(1e22, 0.0) == (math.sin(1e22), math.cos(1e22))  # one point: the point kernel too


def test_tanh_is_expm1_of_twice_its_argument_over_that_plus_2_to_the_bit():
    """tanh computes expm1's branch for [0, 2 TANH_ONE] by itself: the same bits as the formula."""
    from graphc.backends import llvm as backend

    rng = np.random.default_rng(7)
    x = np.concatenate([
        np.array([v for v in SPECIAL if not math.isnan(v)]), rng.standard_normal(20_000) * 4,
        np.linspace(-25.0, 25.0, 20_001), np.geomspace(1e-310, 30.0, 5_000), -np.geomspace(1e-310, 30.0, 5_000),
    ])  # fmt: skip
    a = np.minimum(np.abs(x), llvm_math.TANH_ONE)
    e = backend.math_function("graphc_expm1")(a + a)
    expected = np.copysign(e / (e + 2.0), x)
    got = backend.math_function("graphc_tanh")(x)
    assert np.array_equal(got.view(np.int64), expected.view(np.int64))
    assert np.isnan(backend.math_function("graphc_tanh")(np.array([math.nan]))).all()
