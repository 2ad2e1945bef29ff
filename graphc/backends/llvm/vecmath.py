"""graphc's own exp, exp2, expm1, log, log2, log10, log1p, tanh, sin, cos, asinh, acosh, atanh, cbrt,
erf, erfc and hypot as LLVM IR over vectors of doubles.

A call of the C library's ``exp`` computes one point; a kernel computing a vector of points per
instruction (AVX-512: 8, AVX: 4) needs functions of vectors. These are straight-line IR (range
reduction, a polynomial, integer operations on the bits and ``select`` for the special values),
written for any number of lanes by :class:`Body`. A kernel calls them from a library (without
passes: already straight-line vector code; part of graphc's runtime, kept on disk) or, when it
calls them only a few times, has them defined ``linkonce_odr`` and ``alwaysinline`` in its module.
The C library functions graphc has no vector code for (atan, pow...) are applied lane by lane.

sin and cos reduce their argument by pi/2 in four parts (Cody and Waite), exact to about 2^-70
of it up to :data:`TRIG_BOUND`, as a double and the rounding error it leaves (the polynomials
take that tail in to first order); where a lane's argument is larger (rare: one branch per call,
not taken on ordinary arguments), that lane gets the C library's value.

The special values are the C library's: ``exp(-inf) = 0``, ``exp(inf) = inf``, ``exp(710) = inf``,
``log(0) = -inf``, ``log(-1) = nan``, ``log(-0.0) = -inf``, ``expm1(-0.0) = -0.0``, ``tanh(±inf) = ±1``,
NaN in, NaN out, subnormal inputs and results. Accuracy (``bench/llvm_vecmath.py`` measures it
against mpmath): :data:`ULPS`, within 1 ulp for exp, log, log2, log10, sin, cos, cbrt and hypot, 1.1 for
exp2, 1.5 for expm1, log1p, asinh and erf, 2 for tanh, acosh and atanh, 3 for erfc, away from
subnormal results (there, one rounding more than the C library's: at most one subnormal step;
erfc's, two).

The polynomial coefficients come from ``bench/vecmath_coefficients.py`` (Chebyshev interpolation
in 60-digit arithmetic, near-minimax); the reductions are the textbook ones (Cody and Waite for
exp; ``log(1+f) = 2 atanh(f / (2 + f))`` after splitting off the exponent, as in fdlibm); erf and
erfc fit ``erf(t)/t`` in ``t^2`` below 1 and ``a erfc(a) exp(a^2)`` in ``1/a`` on four intervals
above 1/2, with ``exp(-a^2)`` of ``a^2`` split exactly in two (Dekker).
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Callable

from graphc.backends.llvm.text import (
    TextEmitter,
    aligned_stack,
    double,
    intrinsic_name,
    libm_applied,
    libm_name,
    own_name,
    splat,
    vector,
)
from graphc.ops import OPS

# exp(r) = 1 + r + r^2 Q(r) on |r| <= ln2/2 (relative error of the polynomial < 0.01 ulp)
EXP_Q = (
    0.5, 0.1666666666666667, 0.04166666666666667, 0.008333333333326141, 0.0013888888888883752,
    0.00019841269874800493, 2.4801587325533363e-05, 2.7557255425746435e-06, 2.7557273661348637e-07,
    2.510520637395701e-08, 2.0914679376583935e-09,
)  # fmt: skip
# log(1+f) = f - f^2/2 + s (f^2/2 + z P(z)), s = f/(2+f), z = s^2 <= (3-2 sqrt 2)^2
LOG_P = (
    0.6666666666666666, 0.4000000000000088, 0.28571428570803614, 0.22222222391713917,
    0.18181795640132906, 0.15386239702814658, 0.13268773138656886, 0.130866261478401,
)  # fmt: skip

# sin(r) = r + r^3 S(r^2), cos(r) = 1 - r^2/2 + r^4 C(r^2) on |r| <= pi/4
SIN_S = (
    -0.16666666666666666, 0.008333333333333331, -0.00019841269841265065, 2.7557319219339167e-06,
    -2.5052106232447578e-08, 1.6058531618986147e-10, -7.586697117706918e-13,
)  # fmt: skip
COS_C = (
    0.041666666666666664, -0.0013888888888887398, 2.480158729876569e-05, -2.7557317271729793e-07,
    2.08761462684032e-09, -1.1382632425521717e-11,
)  # fmt: skip
# erf(t) = t P(t^2) on |t| < 1 (bench/vecmath_coefficients.py: 0.14 units of 2^-53)
ERF_P = (
    1.1283791670955126, -0.3761263890318375, 0.11283791670954879, -0.026866170645076792, 0.0052239776248180145, -0.000854832698083379, 0.0001205533111164271, -1.4925595266831182e-05, 1.6461000484121368e-06, -1.6350312701054695e-07, 1.4659775274047436e-08, -1.1372848856791674e-09, 5.957176147748911e-11,
)  # fmt: skip
# erfc(a) = exp(-a^2) G(1/a - centre) / a from each interval's lower end of a up: a erfc(a) exp(a^2),
# fitted in 1/a, centred on the interval (bench/vecmath_coefficients.py: at most 0.54 units of 2^-53)
ERFC_G = (
    (0.5, 1.5, (0.35952293862040013, -0.11839802134553719, 0.03315695095403091, -0.005933200786461322, -0.001164736999185005, 0.002063703190470996, -0.0014927625238869433, 0.0008465767862363844, -0.00041474251636387284, 0.00017781696584802568, -6.387431886687924e-05, 1.5639695787254598e-05, 1.4832333194322635e-06, -5.581370569976715e-06, 5.108297739255293e-06, -3.5678994203648626e-06, 2.1629922167910403e-06, -1.1761301781089776e-06, 6.087585765747952e-07, -3.1228569027479764e-07, 1.0573851701109638e-07,)),
    (1.0, 0.75, (0.46817959203854037, -0.16908097778547482, 0.019347872628691625, 0.04029319974253184, -0.05046573525276596, 0.037688720011335074, -0.018116937753375948, 0.000560811038250715, 0.011128906792626122, -0.016227455416039403, 0.01577213082610866, -0.011588228907642398, 0.00562928762149836, 0.0003739482730826179, -0.005040716162282651, 0.008134458544602933, -0.010556802375723954, 0.008500423284605204,)),
    (2.0, 0.375, (0.530860349316975, -0.1515855295741559, -0.0920399877115904, 0.17726803412603342, -0.11628192691540726, -0.03780807552001429, 0.19624233327733054, -0.25568449553357386, 0.1361157959410219, 0.17028459045753772, -0.5550789473705771, 0.7810755768996006, -0.5351176118495296, -0.42746790158144526, 2.0551140850741656, -3.657202172027533, 3.3371831812874344,)),
    (4.0, 0.1431818181818182, (0.5585756770964229, -0.07616250206293912, -0.23593543803754594, 0.19067046942365917, 0.18293821970876067, -0.48590769892182895, 0.10284320978519657, 1.0856021465017924, -1.6988913730824984, -1.0023506896774992, 7.488867480764278, -8.816062981861489, -14.808709704668765, 67.37092688651474, -64.1909245623529, -211.08503318462522, 633.3272993942934,)),
)  # fmt: skip
ERFC_ZERO = 27.5  # erfc(x) rounds to 0 beyond
PIO2 = (1.5707963267341256, 6.077100506303966e-11, 2.0222662487111665e-21, 8.4784276603689e-32)  # sum: pi/2
TWO_OVER_PI = 0.6366197723675814
TRIG_BOUND = 2.0**17  # |x| up to here: reduced by PIO2 to about 2^-70 of x; beyond, the C library's

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # ln 2 to 32 bits: k * LN2_HI is exact for |k| < 2^21
LN2_LO = 1.90821492927058770002e-10  # ln 2 - LN2_HI
SHIFT = 6755399441055744.0  # 1.5 * 2^52: t = y + SHIFT rounds y to an integer held in t's low bits
SHIFT_BITS = struct.unpack("<q", struct.pack("<d", SHIFT))[0]
SQRT_HALF_BITS = 0x3FE6A09E667F3BCD  # the bits of sqrt(1/2): splits x into 2^e * m, m in [sqrt(1/2), sqrt(2))
SMALLEST_NORMAL = 2.2250738585072014e-308
EXP_HIGH = 710.0  # exp overflows above 709.78; clamping keeps the integer arithmetic in range
EXP_LOW = -746.0  # exp underflows to 0 below -745.13
EXPM1_LOW = -40.0  # expm1(x) rounds to -1 below
EXPM1_AS_EXP = 40.0  # above, expm1(x) rounds to exp(x)
TANH_ONE = 20.0  # tanh(x) rounds to 1 above
# 1/ln 2, 1/ln 10 and log10(2) as a head of 33 (40) bits and a tail: a product of the head with
# a 21-bit head of log(m) (with the exponent, 11 bits) is exact (fdlibm's e_log2.c, e_log10.c)
IVLN2_HI, IVLN2_LO = 1.4426950407214463, 1.6751713164886512e-10
IVLN10_HI, IVLN10_LO = 0.4342944818781689, 2.5082946711645275e-11
LOG10_2_HI, LOG10_2_LO = 0.30102999566361177, 3.694239077158931e-13
HIGH_WORD = -(2**32)  # the mask keeping a double's top 21 significant bits
EXP2_HIGH = 1025.0  # exp2 overflows at 1024
EXP2_LOW = -1080.0  # exp2 underflows to 0 below -1075


class Body:
    """Straight-line IR text of one function over ``lanes`` points at once (a vector of doubles per
    value): each method appends an instruction and returns its register; literal operands (``double``
    constants, integers) are splatted across the lanes."""

    def __init__(self, fma: bool, lanes: int = 1) -> None:
        self.lines: list[str] = []
        self.fma = fma  # fuse multiply-adds (the host has FMA): deterministic per host, never per call site
        self.lanes = lanes
        self.types = {k: vector(k, lanes) for k in ("double", "i64", "i1")}
        self._count = 0

    def emit(self, text: str) -> str:
        name = f"%r{self._count}"
        self._count += 1
        self.lines.append(f"  {name} = {text}")
        return name

    def operand(self, value: str, kind: str = "double") -> str:
        return splat(value, kind, self.lanes)

    def binary(self, op: str, a: str, b: str, kind: str = "double") -> str:
        return self.emit(f"{op} {self.types[kind]} {self.operand(a, kind)}, {self.operand(b, kind)}")

    def fadd(self, a: str, b: str) -> str:
        return self.binary("fadd", a, b)

    def fsub(self, a: str, b: str) -> str:
        return self.binary("fsub", a, b)

    def fmul(self, a: str, b: str) -> str:
        return self.binary("fmul", a, b)

    def fdiv(self, a: str, b: str) -> str:
        return self.binary("fdiv", a, b)

    def mad(self, a: str, b: str, c: str) -> str:
        """a * b + c."""
        if self.fma:
            return self.intrinsic("fma", a, b, c)
        return self.fadd(self.fmul(a, b), c)

    def horner(self, coefficients: tuple[float, ...], t: str) -> str:
        value = double(coefficients[-1])
        for c in reversed(coefficients[:-1]):
            value = self.mad(value, t, double(c))
        return value

    def split_horner(self, coefficients: tuple[float, ...], t: str, square: str) -> str:
        """The polynomial as E(t^2) + t O(t^2) (``square`` is t^2): two chains of multiply-adds
        half as long as Horner's one, in the same count, which the vector units overlap."""
        even, odd = self.horner(coefficients[0::2], square), self.horner(coefficients[1::2], square)
        return self.mad(t, odd, even)

    def fcmp(self, predicate: str, a: str, b: str) -> str:
        return self.binary(f"fcmp {predicate}", a, b)

    def icmp(self, predicate: str, a: str, b: str | int) -> str:
        return self.binary(f"icmp {predicate}", a, str(b), "i64")

    def both(self, a: str, b: str) -> str:
        """a and b, for the booleans of comparisons."""
        return self.binary("and", a, b, "i1")

    def select(self, condition: str, a: str, b: str, kind: str = "double") -> str:
        t = self.types[kind]
        return self.emit(
            f"select {self.types['i1']} {condition}, {t} {self.operand(a, kind)}, {t} {self.operand(b, kind)}"
        )

    def intrinsic(self, name: str, *args: str) -> str:
        d = self.types["double"]
        operands = ", ".join(f"{d} {self.operand(a)}" for a in args)
        return self.emit(f"call {d} @{intrinsic_name(name, self.lanes)}({operands})")

    def bits(self, a: str) -> str:
        return self.emit(f"bitcast {self.types['double']} {a} to {self.types['i64']}")

    def real(self, a: str) -> str:
        return self.emit(f"bitcast {self.types['i64']} {a} to {self.types['double']}")

    def odd(self, a: str) -> str:
        """The lowest bit of integers, as booleans."""
        return self.emit(f"trunc {self.types['i64']} {self.int('and', a, 1)} to {self.types['i1']}")

    def int(self, op: str, a: str, b: str | int) -> str:
        return self.binary(op, a, str(b), "i64")


# --- the functions, as emitters over a Body ---------------------------------------------------------


def _reduce_exp(b: Body, x: str, low: float, high: float) -> tuple[str, str, str]:
    """x clamped to [low, high] (NaN to 0) as k ln2 + r, |r| <= ln2/2: (k as i64, r, the clamped x)."""
    clamped = b.select(b.fcmp("ogt", x, double(high)), double(high), x)
    clamped = b.select(b.fcmp("olt", clamped, double(low)), double(low), clamped)
    clamped = b.select(b.fcmp("uno", x, x), double(0.0), clamped)
    k, r = _reduce_ln2(b, clamped)
    return k, r, clamped


def _reduce_ln2(b: Body, x: str) -> tuple[str, str]:
    """x as k ln2 + r, |r| <= ln2/2, for |x| up to about 2^51 ln2: (k as i64, r)."""
    t = b.mad(x, double(LOG2E), double(SHIFT))
    kd = b.fsub(t, double(SHIFT))  # an integer nearest x / ln2
    r = b.mad(kd, double(-LN2_HI), x)  # exact
    r = b.mad(kd, double(-LN2_LO), r)
    return b.int("sub", b.bits(t), SHIFT_BITS), r


def _power_of_two(b: Body, k: str) -> str:
    """2^k as a double, for -1022 <= k <= 1023."""
    return b.real(b.int("shl", b.int("add", k, 1023), 52))


def _exp_times(b: Body, k: str, p: str) -> str:
    """p * 2^k in two steps (2^k alone may overflow or be subnormal): one rounding, at the end."""
    half = b.int("ashr", k, 1)
    return b.fmul(b.fmul(p, _power_of_two(b, half)), _power_of_two(b, b.int("sub", k, half)))


def _expm1_reduced(b: Body, r: str) -> str:
    """expm1(r) = r + r^2 Q(r) for |r| <= ln2/2 (Q in two halves: a shorter chain of dependent operations)."""
    z = b.fmul(r, r)
    return b.mad(z, b.split_horner(EXP_Q, r, z), r)


def _expm1_scaled(b: Body, scale: str, em: str) -> str:
    """expm1(k ln2 + r) = 2^k expm1(r) + (2^k - 1), given 2^k and expm1(r); exact for k = 0."""
    return b.mad(scale, em, b.fsub(scale, double(1.0)))


def exp(b: Body, x: str) -> str:
    k, r, _ = _reduce_exp(b, x, EXP_LOW, EXP_HIGH)
    p = b.fadd(double(1.0), _expm1_reduced(b, r))
    return b.select(b.fcmp("uno", x, x), x, _exp_times(b, k, p))


def expm1(b: Body, x: str) -> str:
    k, r, _ = _reduce_exp(b, x, EXPM1_LOW, EXP_HIGH)
    em = _expm1_reduced(b, r)
    scale = _power_of_two(b, b.select(b.icmp("sgt", k, 1000), "0", k, "i64"))
    small = _expm1_scaled(b, scale, em)
    large = _exp_times(b, k, b.fadd(double(1.0), em))
    value = b.select(b.fcmp("ogt", x, double(EXPM1_AS_EXP)), large, small)
    value = b.select(b.fcmp("olt", x, double(EXPM1_LOW)), double(-1.0), value)
    return b.select(b.fcmp("ueq", x, double(0.0)), x, value)  # NaN, and the sign of a zero


def _log_parts(b: Body, x: str) -> tuple[str, str, str, str]:
    """x = 2^e m, m in [sqrt(1/2), sqrt(2)), f = m - 1: (e as a double, f, hfsq = f^2/2, and
    s (hfsq + R), so that log(m) = f - hfsq + s (hfsq + R)), as fdlibm splits it."""
    subnormal = b.fcmp("olt", x, double(SMALLEST_NORMAL))
    scaled = b.select(subnormal, b.fmul(x, double(2.0**54)), x)
    bits = b.bits(scaled)
    e = b.int("ashr", b.int("sub", bits, SQRT_HALF_BITS), 52)
    m = b.real(b.int("sub", bits, b.int("shl", e, 52)))  # in [sqrt(1/2), sqrt(2))
    e = b.int("add", e, b.select(subnormal, "-54", "0", "i64"))
    dk = b.fsub(b.real(b.int("add", e, SHIFT_BITS)), double(SHIFT))  # e as a double
    f = b.fsub(m, double(1.0))
    hfsq = b.fmul(double(0.5), b.fmul(f, f))
    s = b.fdiv(f, b.fadd(double(2.0), f))
    z = b.fmul(s, s)
    return dk, f, hfsq, b.fmul(s, b.fadd(hfsq, b.fmul(z, b.horner(LOG_P, z))))


def _log_special(b: Body, x: str, value: str) -> str:
    """The C library's log at inf, below 0 (-nan), 0 (-inf) and NaN; ``value`` elsewhere."""
    value = b.select(b.fcmp("oeq", x, double(math.inf)), x, value)
    value = b.select(b.fcmp("olt", x, double(0.0)), double(-math.nan), value)
    value = b.select(b.fcmp("oeq", x, double(0.0)), double(-math.inf), value)
    return b.select(b.fcmp("uno", x, x), x, value)


def _log_scaled(b: Body, x: str, inverse: tuple[float, float], exponent: tuple[float, float]) -> str:
    """log(x) / ln(base) for base 2 or 10: ``inverse`` is 1/ln(base) as head and tail, ``exponent``
    log_base(2) (the head exact times e). log(m) is split as hi + lo, hi its top 21 bits, so that
    hi times the head of 1/ln(base) is exact; the rounding errors gather in the small terms
    (fdlibm's e_log2.c and e_log10.c)."""
    dk, f, hfsq, tail = _log_parts(b, x)
    hi = b.real(b.int("and", b.bits(b.fsub(f, hfsq)), HIGH_WORD))
    lo = b.fadd(b.fsub(b.fsub(f, hi), hfsq), tail)
    val_hi = b.fmul(hi, double(inverse[0]))
    val_lo = b.mad(b.fadd(lo, hi), double(inverse[1]), b.fmul(lo, double(inverse[0])))
    y = b.fmul(dk, double(exponent[0]))  # exact
    val_lo = b.mad(dk, double(exponent[1]), val_lo)
    w = b.fadd(y, val_hi)
    val_lo = b.fadd(val_lo, b.fadd(b.fsub(y, w), val_hi))
    return _log_special(b, x, b.fadd(val_lo, w))


def log2(b: Body, x: str) -> str:
    return _log_scaled(b, x, (IVLN2_HI, IVLN2_LO), (1.0, 0.0))


def log10(b: Body, x: str) -> str:
    return _log_scaled(b, x, (IVLN10_HI, IVLN10_LO), (LOG10_2_HI, LOG10_2_LO))


def exp2(b: Body, x: str) -> str:
    """2^x = 2^k exp(r ln 2), k the integer nearest x (clamped), r = x - k exact, |r| <= 1/2."""
    clamped = b.select(b.fcmp("ogt", x, double(EXP2_HIGH)), double(EXP2_HIGH), x)
    clamped = b.select(b.fcmp("olt", clamped, double(EXP2_LOW)), double(EXP2_LOW), clamped)
    clamped = b.select(b.fcmp("uno", x, x), double(0.0), clamped)
    t = b.fadd(clamped, double(SHIFT))
    r = b.fsub(clamped, b.fsub(t, double(SHIFT)))
    k = b.int("sub", b.bits(t), SHIFT_BITS)
    y = b.fmul(r, double(math.log(2.0)))  # |y| <= ln2/2: expm1_reduced's range
    p = b.fadd(double(1.0), _expm1_reduced(b, y))
    return b.select(b.fcmp("uno", x, x), x, _exp_times(b, k, p))


def log(b: Body, x: str) -> str:
    dk, f, hfsq, tail = _log_parts(b, x)
    # dk ln2_hi - ((hfsq - (s (hfsq + R) + dk ln2_lo)) - f), as fdlibm orders it
    inner = b.mad(dk, double(LN2_LO), tail)
    value = b.mad(dk, double(LN2_HI), b.fsub(f, b.fsub(hfsq, inner)))  # dk ln2_hi is exact
    return _log_special(b, x, value)  # the C library's values at inf, below 0 (-nan), 0 and NaN


def log1p(b: Body, x: str) -> str:
    """log(u) + (x - (u - 1)) / u with u = 1 + x: the rounding of u, corrected to first order."""
    u = b.fadd(double(1.0), x)
    correction = b.fdiv(b.fsub(x, b.fsub(u, double(1.0))), u)
    finite = b.both(b.fcmp("ogt", u, double(0.0)), b.fcmp("olt", u, double(math.inf)))
    value = b.fadd(log(b, u), b.select(finite, correction, double(0.0)))
    return b.select(b.fcmp("ueq", x, double(0.0)), x, value)  # NaN, and the sign of a zero


def tanh(b: Body, x: str) -> str:
    """expm1(2|x|) / (expm1(2|x|) + 2), with the sign of x (no cancellation near 0).

    2|x| is clamped to [0, 2 TANH_ONE], where :func:`expm1` takes its ``2^k expm1(r) + (2^k - 1)``
    branch: computed alone, without expm1's clamps, its exp branch (a vector computes both sides of
    a select) and its special values, it gives the same bits (a NaN stays NaN) in less time.
    """
    a = b.intrinsic("fabs", x)
    a = b.select(b.fcmp("ogt", a, double(TANH_ONE)), double(TANH_ONE), a)
    k, r = _reduce_ln2(b, b.fadd(a, a))
    e = _expm1_scaled(b, _power_of_two(b, k), _expm1_reduced(b, r))
    return b.intrinsic("copysign", b.fdiv(e, b.fadd(e, double(2.0))), x)


# --- the inverse hyperbolics and cbrt: identities over log, log1p and sqrt -----------------------------
#
# Each is written in the form that keeps its digits in each range (fdlibm's s_asinh.c, e_acosh.c,
# e_atanh.c): near 0 through log1p of a small argument, in the middle through log of an argument
# built without cancellation, and far out as log(|x|) + ln 2, where x^2 would overflow.

LN2 = 0.6931471805599453
HYPERBOLIC_FAR = 2.0**28  # beyond, sqrt(x^2 + 1) rounds to |x|: asinh(x) = log(2|x|) = log|x| + ln 2
HYPERBOLIC_NEAR = 2.0**-28  # below, asinh(x) rounds to x


def _log_of_ranges(b: Body, a: str, near: str, middle: str, split: float) -> str:
    """log1p(near) where a <= ``split``, log(middle) up to 2^28, log(a) + ln 2 beyond, with one
    log: log1p(u) is log(1 + u) plus the rounding of 1 + u to first order, as :func:`log1p`."""
    is_far = b.fcmp("ogt", a, double(HYPERBOLIC_FAR))
    is_near = b.fcmp("ole", a, double(split))
    u = b.fadd(double(1.0), near)
    logged = log(b, b.select(is_near, u, b.select(is_far, a, middle)))
    finite = b.both(b.fcmp("ogt", u, double(0.0)), b.fcmp("olt", u, double(math.inf)))
    correction = b.fdiv(b.fsub(near, b.fsub(u, double(1.0))), u)
    value = b.fadd(logged, b.select(b.both(is_near, finite), correction, double(0.0)))
    return b.select(is_far, b.fadd(logged, double(LN2)), value)


def asinh(b: Body, x: str) -> str:
    """sign(x) log(|x| + sqrt(x^2 + 1)): log1p(|x| + x^2 / (1 + sqrt(1 + x^2))) up to |x| = 2,
    log(2|x| + 1 / (|x| + sqrt(x^2 + 1))) beyond, x itself below 2^-28."""
    a = b.intrinsic("fabs", x)
    square = b.fmul(a, a)
    root = b.intrinsic("sqrt", b.fadd(square, double(1.0)))
    near = b.fadd(a, b.fdiv(square, b.fadd(double(1.0), root)))
    middle = b.fadd(b.fadd(a, a), b.fdiv(double(1.0), b.fadd(a, root)))
    value = _log_of_ranges(b, a, near, middle, 2.0)
    value = b.select(b.fcmp("olt", a, double(HYPERBOLIC_NEAR)), a, value)  # and 0, keeping its sign
    return b.intrinsic("copysign", value, x)


def acosh(b: Body, x: str) -> str:
    """log(x + sqrt(x^2 - 1)) for x >= 1: log1p(t + sqrt(2t + t^2)), t = x - 1 (exact), up to
    x = 2, log(2x - 1 / (x + sqrt(x^2 - 1))) beyond; NaN below 1."""
    t = b.fsub(x, double(1.0))
    near = b.fadd(t, b.intrinsic("sqrt", b.mad(t, t, b.fadd(t, t))))
    root = b.intrinsic("sqrt", b.fsub(b.fmul(x, x), double(1.0)))
    middle = b.fsub(b.fadd(x, x), b.fdiv(double(1.0), b.fadd(x, root)))
    value = _log_of_ranges(b, x, near, middle, 2.0)
    return b.select(b.fcmp("olt", x, double(1.0)), double(math.nan), value)


def atanh(b: Body, x: str) -> str:
    """sign(x) log((1 + |x|) / (1 - |x|)) / 2, as log1p(2a + 2a^2 / (1 - a)) / 2 below a = 1/2
    and log1p(2a / (1 - a)) / 2 above (a = |x|; inf at 1, NaN beyond: log1p's)."""
    a = b.intrinsic("fabs", x)
    twice = b.fadd(a, a)
    rest = b.fsub(double(1.0), a)
    small = b.fadd(twice, b.fdiv(b.fmul(twice, a), rest))
    argument = b.select(b.fcmp("olt", a, double(0.5)), small, b.fdiv(twice, rest))
    value = b.fmul(double(0.5), log1p(b, argument))
    return b.intrinsic("copysign", value, x)


CBRT_GUESS = 682 << 52  # bits(x) / 3 + this: the bits of about cbrt(x) (the exponent divided by 3)
CBRT_STEPS = 4  # Newton steps from a guess within about 5%: 5% -> 3e-3 -> 8e-6 -> 6e-11 -> rounding


def cbrt(b: Body, x: str) -> str:
    """The real cube root: a guess from the exponent's bits divided by 3 (subnormals scaled by
    2^54 first, the root back by 2^-18), then Newton's y - (y^3 - a) / (3 y^2); the sign of x;
    0, inf and NaN are themselves."""
    a = b.intrinsic("fabs", x)
    subnormal = b.fcmp("olt", a, double(SMALLEST_NORMAL))
    scaled = b.select(subnormal, b.fmul(a, double(2.0**54)), a)
    y = b.real(b.int("add", b.int("sdiv", b.bits(scaled), 3), CBRT_GUESS))
    for _ in range(CBRT_STEPS):
        square = b.fmul(y, y)
        y = b.fsub(y, b.fdiv(b.mad(square, y, b.fsub(double(0.0), scaled)), b.fmul(double(3.0), square)))
    y = b.select(subnormal, b.fmul(y, double(2.0**-18)), y)
    special = b.binary("or", b.fcmp("ueq", a, double(0.0)), b.fcmp("oeq", a, double(math.inf)), "i1")
    return b.select(special, x, b.intrinsic("copysign", y, x))


def _erfc_tail(b: Body, a: str) -> str:
    """erfc(a) for a >= 1/2: exp(-a^2) G(1/a) / a, the interval's coefficients chosen per lane,
    and a^2 as hi + lo exactly (Dekker's split of a: no fused multiply-add needed), so that
    exp(-a^2) keeps its digits where a^2 is large (lo joins the reduced argument); 0 beyond
    ERFC_ZERO."""
    u = b.fdiv(double(1.0), a)
    width = max(len(c) for _, _, c in ERFC_G)
    centre = double(ERFC_G[0][1])
    coefficients = [double(c) for c in ERFC_G[0][2]] + [double(0.0)] * (width - len(ERFC_G[0][2]))
    for low, middle, values in ERFC_G[1:]:
        above = b.fcmp("oge", a, double(low))
        centre = b.select(above, double(middle), centre)
        padded = list(values) + [0.0] * (width - len(values))
        coefficients = [b.select(above, double(v), c) for v, c in zip(padded, coefficients, strict=True)]
    s = b.fsub(u, centre)
    g = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        g = b.mad(g, s, c)
    hi = b.fmul(a, a)
    a_hi = b.real(b.int("and", b.bits(a), -(2**27)))  # the top 26 bits: a_hi^2 is exact
    a_lo = b.fsub(a, a_hi)
    lo = b.fadd(b.fadd(b.fsub(b.fmul(a_hi, a_hi), hi), b.fmul(b.fadd(a_hi, a_hi), a_lo)), b.fmul(a_lo, a_lo))
    k, r, _ = _reduce_exp(b, b.fsub(double(0.0), hi), EXP_LOW, EXP_HIGH)
    q = b.fdiv(g, a)
    em = _expm1_reduced(b, b.fsub(r, lo))  # exp(-hi - lo) = 2^k exp(r - lo): lo taken in exactly
    value = _exp_times(b, k, b.mad(q, em, q))  # q exp(r - lo), one rounding
    return b.select(b.fcmp("olt", a, double(ERFC_ZERO)), value, double(0.0))


def erf(b: Body, x: str) -> str:
    """x P(x^2) for |x| < 1; beyond, 1 - erfc(|x|) with the sign of x."""
    a = b.intrinsic("fabs", x)
    near = b.fmul(x, b.horner(ERF_P, b.fmul(x, x)))
    far = b.intrinsic("copysign", b.fsub(double(1.0), _erfc_tail(b, a)), x)
    value = b.select(b.fcmp("olt", a, double(1.0)), near, far)
    return b.select(b.fcmp("uno", x, x), x, value)


def erfc(b: Body, x: str) -> str:
    """The tail for x >= 1/2, 2 minus it for x <= -1, 1 - erf(x) between (no cancellation there:
    erf(x) < 0.53, and 1 - erf(x) for x > -1 is below 2 - 0.15)."""
    a = b.intrinsic("fabs", x)
    tail = _erfc_tail(b, a)
    value = b.fsub(double(1.0), b.fmul(x, b.horner(ERF_P, b.fmul(x, x))))
    value = b.select(b.fcmp("oge", x, double(0.5)), tail, value)
    value = b.select(b.fcmp("ole", x, double(-1.0)), b.fsub(double(2.0), tail), value)
    return b.select(b.fcmp("uno", x, x), x, value)


HYPOT_LARGE, HYPOT_SMALL = 2.0**500, 2.0**-500  # beyond these, x^2 + y^2 is taken scaled by 2^∓600


def hypot(b: Body, x: str, y: str) -> str:
    """sqrt(x^2 + y^2) without overflow or underflow: both scaled by 2^-600 where the larger is
    above 2^500, by 2^600 where it is below 2^-500 (exact: powers of two), the sum of squares
    with one multiply-add; inf if either is infinite (even with a NaN), else NaN if either is."""
    a, c = b.intrinsic("fabs", x), b.intrinsic("fabs", y)
    big = b.select(b.fcmp("ogt", a, c), a, c)
    scale = b.select(b.fcmp("ogt", big, double(HYPOT_LARGE)), double(2.0**600), double(1.0))
    scale = b.select(b.fcmp("olt", big, double(HYPOT_SMALL)), double(2.0**-600), scale)
    inverse = b.fdiv(double(1.0), scale)  # exact
    a, c = b.fmul(a, inverse), b.fmul(c, inverse)
    value = b.fmul(b.intrinsic("sqrt", b.mad(a, a, b.fmul(c, c))), scale)
    value = b.select(b.fcmp("uno", x, y), double(math.nan), value)
    infinite = b.binary("or", b.fcmp("oeq", a, double(math.inf)), b.fcmp("oeq", c, double(math.inf)), "i1")
    return b.select(infinite, double(math.inf), value)


def _reduce_pio2(b: Body, x: str, kd: str) -> tuple[str, str]:
    """x - kd pi/2 as a double r and a tail, r + tail exact to about 2^-70 of x (Cody and Waite).

    kd * PIO2[i] is exact for the first three parts (kd has at most 17 bits below TRIG_BOUND, the
    parts 32 at most) and x - kd PIO2[0] is exact (x is within a factor of two of it); the one
    subtraction that rounds, of kd PIO2[1], keeps its rounding error (Knuth's two-sum, valid for
    operands of any size) in the tail with the smaller parts. The tail is at most half an ulp of r
    plus kd PIO2[2] (2e-16 at the bound): its square is far below r's ulp. Rounding r itself, as
    three subtractions did before, cost sin and cos up to 1.5 ulps of r: 2.3 ulps of the result
    near 10^5 (0.9 on [-4, 4]) and a fifth of the values off the correctly rounded one.
    """
    a = b.mad(kd, double(-PIO2[0]), x)
    p = b.fmul(kd, double(-PIO2[1]))
    s = b.fadd(a, p)
    v = b.fsub(s, a)
    error = b.fadd(b.fsub(a, b.fsub(s, v)), b.fsub(p, v))  # (a + p) - s exactly
    for part in PIO2[2:]:
        error = b.mad(kd, double(-part), error)
    return s, error


def _sin_cos(b: Body, x: str, cosine: bool) -> str:
    """sin or cos for |x| <= TRIG_BOUND: x = k pi/2 + r, then the polynomial of the quadrant."""
    t = b.mad(x, double(TWO_OVER_PI), double(SHIFT))
    kd = b.fsub(t, double(SHIFT))
    r, tail = _reduce_pio2(b, x, kd)
    quadrant = b.int("sub", b.bits(t), SHIFT_BITS)
    z = b.fmul(r, r)
    half = b.fmul(double(0.5), z)
    w = b.fsub(double(1.0), half)  # 1 - z/2, its rounding error added back as fdlibm does
    # sin(r + tail) = sin(r) + tail cos(r) and cos(r + tail) = cos(r) - tail sin(r) to first order
    # (cos(r) ~ w, sin(r) ~ r: tail is tiny); the small terms are summed first, r or w added last
    sin_r = b.fadd(r, b.mad(b.fmul(r, z), b.horner(SIN_S, z), b.fmul(tail, w)))
    small = b.fsub(b.fsub(b.fsub(double(1.0), w), half), b.fmul(r, tail))
    cos_r = b.fadd(w, b.mad(b.fmul(z, z), b.horner(COS_C, z), small))
    if cosine:
        quadrant = b.int("add", quadrant, 1)  # cos(x) = sin(x + pi/2)
    odd = b.odd(quadrant)
    value = b.select(odd, cos_r, sin_r)
    negative = b.int("shl", b.int("and", quadrant, 2), 62)  # the sign bit where the quadrant is 2 or 3
    return b.real(b.int("xor", b.bits(value), negative))


def sin(b: Body, x: str) -> str:
    return b.select(b.fcmp("oeq", x, double(0.0)), x, _sin_cos(b, x, cosine=False))  # sin(-0.0) = -0.0


def cos(b: Body, x: str) -> str:
    return _sin_cos(b, x, cosine=True)


def beyond(b: Body, x: str) -> str:
    """True (i1) where |x| is finite and above TRIG_BOUND: sin and cos need the C library there."""
    a = b.intrinsic("fabs", x)
    return b.both(b.fcmp("ogt", a, double(TRIG_BOUND)), b.fcmp("olt", a, double(math.inf)))


FUNCTIONS: dict[str, Callable[..., str]] = {
    "graphc_exp": exp,
    "graphc_expm1": expm1,
    "graphc_log": log,
    "graphc_log1p": log1p,
    "graphc_log2": log2,
    "graphc_log10": log10,
    "graphc_exp2": exp2,
    "graphc_tanh": tanh,
    "graphc_sin": sin,
    "graphc_cos": cos,
    "graphc_asinh": asinh,
    "graphc_acosh": acosh,
    "graphc_atanh": atanh,
    "graphc_cbrt": cbrt,
    "graphc_erf": erf,
    "graphc_erfc": erfc,
    "graphc_hypot": hypot,
}
ARITY = {"graphc_hypot": 2}  # of the functions of more than one operand
# the largest error in ulps of the exact value, as bench/llvm_vecmath.py measures it against mpmath
# (2,000,000 random points each, over the whole range; rounded up): tests hold each function to it
ULPS = {
    "graphc_exp": 1.0, "graphc_expm1": 1.5, "graphc_log": 1.0, "graphc_log1p": 1.5, "graphc_log2": 1.0,
    "graphc_log10": 1.0, "graphc_exp2": 1.1, "graphc_tanh": 2.0, "graphc_sin": 1.0, "graphc_cos": 1.0,
    "graphc_asinh": 1.5, "graphc_acosh": 2.0, "graphc_atanh": 2.0, "graphc_cbrt": 1.0,
    "graphc_erf": 1.5, "graphc_erfc": 3.0, "graphc_hypot": 1.0,
}  # fmt: skip
GUARDED = frozenset({"graphc_sin", "graphc_cos"})  # exact only where ``beyond`` is false
LIBM = {name: name.removeprefix("graphc_") for name in FUNCTIONS}  # the C function each one replaces


@functools.cache
def libm_arity() -> dict[str, int]:
    """The C library functions a kernel may call, with their arity: those the ops' lowerings call
    (read by lowering each op of :data:`graphc.ops.OPS` once), and those :data:`LIBM` names."""
    emitter = TextEmitter(1)
    for op in OPS.values():
        op.llvm(emitter, tuple(f"%a{k}" for k in range(op.arity)))
    called = {symbol: arity for symbol, (target, arity) in emitter.called.items() if libm_applied(target, 1)}
    return {symbol: ARITY.get(name, 1) for name, symbol in LIBM.items()} | called


def _lanes_calling(symbol: str, arguments: list[str], lanes: int) -> tuple[list[str], str]:
    """IR lines calling the C library's ``symbol`` on each lane of ``arguments`` (vectors of
    doubles), and the register of the vector of results."""
    d = vector("double", lanes)
    lines, previous = [], "poison"
    for lane in range(lanes):
        names = []
        for a, argument in enumerate(arguments):
            lines.append(f"  %a{lane}_{a} = extractelement {d} {argument}, i64 {lane}")
            names.append(f"double %a{lane}_{a}")
        lines.append(f"  %c{lane} = call double @{symbol}({', '.join(names)})")
        lines.append(f"  %lanes{lane} = insertelement {d} {previous}, double %c{lane}, i64 {lane}")
        previous = f"%lanes{lane}"
    return lines, previous


def define(name: str, fma: bool, lanes: int, inline: bool = False) -> str:
    """The IR text defining graphc's function ``name`` on a vector of ``lanes`` doubles.

    A :data:`GUARDED` function computes every lane with its polynomial, then, if a lane's
    argument is beyond :data:`TRIG_BOUND` (rare), calls the C library on that lane: exact
    everywhere, one branch per call, never taken on ordinary arguments.
    """
    body = Body(fma, lanes)
    parameters = ["%x", "%y"][: ARITY.get(name, 1)]
    result = FUNCTIONS[name](body, *parameters)
    d = vector("double", lanes)
    if name in GUARDED:
        far = beyond(body, "%x")
        library, exact = _lanes_calling(LIBM[name], ["%x"], lanes)
        reduce = f"llvm.vector.reduce.or.v{lanes}i1" if lanes > 1 else None
        any_far = body.emit(f"call i1 @{reduce}({vector('i1', lanes)} {far})") if reduce else far
        ending = [
            f"  br i1 {any_far}, label %far, label %near",
            "near:",
            f"  ret {d} {result}",
            "far:",  # the C library's value in the lanes beyond the bound
            *library,
            f"  %exact = select {vector('i1', lanes)} {far}, {d} {exact}, {d} {result}",
            f"  ret {d} %exact",
        ]
    else:
        ending = [f"  ret {d} {result}"]
    linkage = "linkonce_odr " if inline else ""
    signature = ", ".join(f"{d} {p}" for p in parameters)
    header = f"define {linkage}{d} @{own_name(name, lanes)}({signature}) #{1 if inline else 0} {{"
    return "\n".join([header, "entry:", *body.lines, *ending, "}"])


def define_libm(symbol: str, arity: int, lanes: int) -> str:
    """The IR text of ``libm_name(symbol)``: the C library's ``symbol`` applied lane by lane (the
    ops graphc has no vector code for: atan, pow...)."""
    d = vector("double", lanes)
    parameters = ", ".join(f"{d} %x{a}" for a in range(arity))
    lines, result = _lanes_calling(symbol, [f"%x{a}" for a in range(arity)], lanes)
    return "\n".join(
        [
            f"define {d} @{libm_name(symbol, lanes)}({parameters}) #0 {{",
            "entry:",
            *lines,
            f"  ret {d} {result}",
            "}",
        ]
    )


def array_loop(name: str, lanes: int) -> str:
    """IR text of ``void graphc_apply(ptr x, ptr y, i64 n)``: ``y = name(x)``, ``n`` a multiple of
    ``lanes`` (for measuring)."""
    d = vector("double", lanes)
    function = own_name(name, lanes)
    return f"""
declare {d} @{function}({d})

define void @graphc_apply(ptr noalias %x, ptr noalias %y, i64 %n) nounwind {{
entry:
  %any = icmp sgt i64 %n, 0
  br i1 %any, label %loop, label %done
loop:
  %i = phi i64 [0, %entry], [%next, %loop]
  %from = getelementptr inbounds double, ptr %x, i64 %i
  %value = load {d}, ptr %from, align 8
  %result = call {d} @{function}({d} %value)
  %to = getelementptr inbounds double, ptr %y, i64 %i
  store {d} %result, ptr %to, align 8
  %next = add i64 %i, {lanes}
  %more = icmp slt i64 %next, %n
  br i1 %more, label %loop, label %done
done:
  ret void
}}
"""


# pure functions (sin's C library call, beyond the bound, sets no errno): LLVM may move and merge calls
ATTRIBUTES = "nounwind willreturn memory(none)"


def module(
    own: list[str],
    libm: dict[str, int],
    triple: str,
    data_layout: str,
    fma: bool,
    lanes: int,
    inline: bool = False,
) -> str:
    """A module defining graphc's functions ``own`` and the lane-by-lane C library wrappers
    ``libm`` (symbol: arity), on vectors of ``lanes`` doubles.

    ``inline``: ``linkonce_odr`` and always inlined, for linking into a small kernel; else external
    and never inlined, for the library that kernels call.
    """
    d = vector("double", lanes)
    intrinsics = [
        f"declare {d} @{intrinsic_name(name, lanes)}({', '.join([d] * arity)})"
        for name, arity in (("fabs", 1), ("copysign", 2), ("fma", 3), ("sqrt", 1))
    ]
    symbols = {LIBM[name]: 1 for name in own if name in GUARDED} | libm
    return "\n".join(
        [
            f'target triple = "{triple}"',
            f'target datalayout = "{data_layout}"',
            *intrinsics,
            *(
                f"declare i1 @llvm.vector.reduce.or.v{lanes}i1({vector('i1', lanes)})"
                for _ in [lanes]
                if lanes > 1
            ),
            *(
                f"declare double @{s}({', '.join(['double'] * arity)}) #2"
                for s, arity in sorted(symbols.items())
            ),
            *(define(name, fma, lanes, inline) for name in sorted(own)),
            *(define_libm(symbol, arity, lanes) for symbol, arity in sorted(libm.items())),
            f"attributes #0 = {{ noinline {ATTRIBUTES} {aligned_stack(lanes)} }}",
            f"attributes #1 = {{ alwaysinline {ATTRIBUTES} }}",
            f"attributes #2 = {{ {ATTRIBUTES} }}",
            "",
        ]
    )
