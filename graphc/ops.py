"""The op table: every primitive of graphc's language, defined once.

Each :class:`Op` holds everything every stage needs: how it is written (infix symbol or function
name), its arity, whether it commutes, its NumPy expression template (used by the NumPy backend
and, compiled once here, for constant folding, so folded constants equal computed values), its
SymPy constructor (and the SymPy class that converts back), its build-time rewrite, its local
derivative rule per operand slot, and the domain its tests sample from. The rewrites are identities
of the reals, graphc's algebra: ``x*0 -> 0`` and ``x + 0 -> x`` are not IEEE-exact at every input
(``inf*0`` is NaN, ``-0.0 + 0`` is ``0.0``); :data:`graphc.policy.REWRITES` states what they give.

A local derivative rule is ``rule(b, args, out) -> node | None``: given the graph builder ``b``,
the operand nodes and the op's own result node, it builds ``∂out/∂args[slot]`` from graph nodes
and returns it, or ``None`` where the partial is structurally zero. Non-smooth points follow the
policy of JAX and PyTorch: ``relu'(0) = 0``, ``abs'(0) = 0``, a ``max``/``min`` tie splits evenly.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from graphc.graph import Graph

Rule = Callable[["Graph", tuple[int, ...], int], "int | None"]
Rewrite = Callable[["Graph", tuple[int, ...]], "int | None"]


class Emitter(Protocol):
    """What an LLVM lowering is given (graphc.backends.llvm provides it): a builder and two helpers."""

    # The IR-text builder of graphc.backends.llvm.text, with the methods of llvmlite.ir.IRBuilder a
    # lowering may use (fadd, fsub, fmul, fdiv, fneg, fcmp_ordered, fcmp_unordered, or_, select);
    # its values are vectors of doubles, one lane per point, but a lowering need not know it.
    builder: Any

    def call(self, symbol: str, *args: Any) -> Any:
        """A call of a libm function (``"atan"``), graphc's own (``"graphc_sin"``) or an LLVM
        intrinsic (``"llvm.fabs.f64"``) on doubles; the emitter calls its vector form."""

    def const(self, value: float) -> Any:
        """A double constant (in every lane)."""


Lowering = Callable[[Emitter, tuple[Any, ...]], Any]  # (emitter, operand values) -> result value

VAR = "var"  # leaf: attribute ``name``
CONST = "const"  # leaf: attribute ``value`` (a float)


@dataclass(frozen=True)
class Op:
    name: str
    arity: int
    numpy: str  # expression template over {0}, {1}: one statement of generated source
    sympy: Callable[..., Any]  # builds the op's SymPy expression (imports SymPy when first called)
    llvm: Lowering  # the op as LLVM IR, matching the NumPy template (NaN, signed zeros, ties)
    partials: tuple[Rule | None, ...]  # one local-derivative rule per operand slot
    infix: str | None = None  # binary operator symbol ("+"), or "-" for unary minus
    precedence: int = 0  # for infix and prefix printing; higher binds tighter
    function: str | None = None  # name when called as a function: sin(x), pow(x, y)
    commutative: bool = False
    rewrite: Rewrite | None = None  # a build-time identity of graphc's algebra (policy.REWRITES), or None
    sympy_class: str | None = None  # the name of the SymPy class that converts back to this op
    domain: tuple[tuple[float, float], ...] = ()  # where tests sample each operand
    plain: bool = False  # the template on Python floats is exactly IEEE and never raises
    c: str = ""  # the op as a C99 expression over {0}, {1} (operands are names), libm only
    # constant last operands the LLVM lowering treats specially (``x**2`` as ``x*x``): the LLVM
    # backend's tape gives a row with one of them an opcode of its own with the constant built in
    specialised: frozenset[float] = frozenset()
    impl: Callable[..., Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        assert len(self.partials) == self.arity, self.name
        names = ", ".join(f"a{i}" for i in range(self.arity))
        body = self.numpy.format(*(f"a{i}" for i in range(self.arity)))
        # The template is this module's own constant text, never user input.
        code = compile(f"lambda {names}: {body}", f"<graphc.ops:{self.name}>", "eval")
        object.__setattr__(self, "impl", eval(code, {"np": np}))  # the template above: never user text

    def fold(self, *values: float) -> float:
        """The op applied to constant operands, with NumPy's float64 semantics (nan/inf, no warnings)."""
        if self.plain:  # + - * and negation of Python floats: the same IEEE results, much faster
            return float(self.impl(*values))
        with np.errstate(all="ignore"):
            return float(self.impl(*(np.float64(v) for v in values)))


# --- rewrites: only x+0, x-0, x*1, x*0 -> 0, --x, x**1, x**0 -------------------------------------
# Identities of the reals, graphc's algebra rather than float64 arithmetic: x*0 -> 0 differs from
# IEEE at x = inf or NaN (NaN there) and at negative x (-0.0), x + 0 -> x at x = -0.0 (0.0 there).
# graphc/policy.py's REWRITES states each, and tests/test_policy.py holds every method to it.


def _rewrite_add(b: Graph, a: tuple[int, ...]) -> int | None:
    # a constant operand of a commutative op comes second (and two are folded before)
    return a[0] if b.const_value(a[1]) == 0.0 else None


def _rewrite_sub(b: Graph, a: tuple[int, ...]) -> int | None:
    return a[0] if b.const_value(a[1]) == 0.0 else None


def _rewrite_mul(b: Graph, a: tuple[int, ...]) -> int | None:
    value = b.const_value(a[1])
    if value == 1.0:
        return a[0]
    if value == 0.0:
        return b.const(0.0)
    return None


def _rewrite_neg(b: Graph, a: tuple[int, ...]) -> int | None:
    return b.args(a[0])[0] if b.op(a[0]) == "neg" else None


def _rewrite_pow(b: Graph, a: tuple[int, ...]) -> int | None:
    exponent = b.const_value(a[1])
    if exponent == 1.0:
        return a[0]
    if exponent == 0.0:
        return b.const(1.0)
    return None


# --- LLVM lowerings: the NumPy semantics, instruction for instruction -----------------------------


def _instruction(name: str) -> Lowering:
    """An IRBuilder instruction on the operands: ``fadd``, ``fmul``, ``fneg``..."""
    return lambda e, a: getattr(e.builder, name)(*a)


def _call(symbol: str) -> Lowering:
    """A call of a C library function (``cosh``; NumPy's own SIMD ufuncs may differ from it in the
    last bit), of an exact LLVM intrinsic, or of graphc's own vectorisable function (``graphc_exp``:
    see graphc.backends.llvm.vecmath)."""
    return lambda e, a: e.call(symbol, *a)


def _pow(e: Emitter, a: tuple[Any, ...]) -> Any:
    """The C library's ``pow``, but ``x**2`` as ``x*x`` and ``x**-1`` as ``1/x``: the same value
    (each is one correctly rounded operation, as ``pow`` is for these exponents), and what
    LLVM itself makes of a scalar ``pow`` call by a constant 2 or -1; a vector call it cannot see into."""
    if a[1] == e.const(2.0):
        return e.builder.fmul(a[0], a[0])
    if a[1] == e.const(-1.0):
        return e.builder.fdiv(e.const(1.0), a[0])
    return e.call("pow", *a)


def _picks_first(e: Emitter, a: tuple[Any, ...], order: str) -> Any:
    """True where np.maximum (order ">") or np.minimum ("<") returns its first operand.

    NumPy returns the first operand when it wins strictly or is NaN, else the second: NaN
    propagates from either side, and a tie (including 0.0 against -0.0) gives the second.
    """
    b = e.builder
    return b.or_(b.fcmp_ordered(order, a[0], a[1]), b.fcmp_unordered("uno", a[0], a[0]))


def _max(e: Emitter, a: tuple[Any, ...]) -> Any:
    return e.builder.select(_picks_first(e, a, ">"), a[0], a[1])


def _min(e: Emitter, a: tuple[Any, ...]) -> Any:
    return e.builder.select(_picks_first(e, a, "<"), a[0], a[1])


def _relu(e: Emitter, a: tuple[Any, ...]) -> Any:
    return _max(e, (a[0], e.const(0.0)))


def _sign(e: Emitter, a: tuple[Any, ...]) -> Any:
    """np.sign: 1, -1, 0.0 for either zero, NaN for NaN."""
    b, x = e.builder, a[0]
    zero_or_nan = b.select(b.fcmp_unordered("uno", x, x), x, e.const(0.0))
    negative = b.select(b.fcmp_ordered("<", x, e.const(0.0)), e.const(-1.0), zero_or_nan)
    return b.select(b.fcmp_ordered(">", x, e.const(0.0)), e.const(1.0), negative)


def _sigmoid(e: Emitter, a: tuple[Any, ...]) -> Any:
    b = e.builder
    return b.fdiv(e.const(1.0), b.fadd(e.const(1.0), e.call("graphc_exp", b.fneg(a[0]))))


def _softplus(e: Emitter, a: tuple[Any, ...]) -> Any:
    """np.logaddexp(0, u), stable: max(u, 0) + log1p(exp(-|u|)), NaN for NaN."""
    b, u = e.builder, a[0]
    positive = b.select(b.fcmp_ordered(">", u, e.const(0.0)), u, e.const(0.0))
    tail = e.call("graphc_exp", b.fneg(e.call("llvm.fabs.f64", u)))
    return b.fadd(positive, e.call("graphc_log1p", tail))


# --- the table -----------------------------------------------------------------------------------


def _sp() -> Any:
    """SymPy, imported when an op first builds a SymPy expression: importing graphc does not pay
    for it (slow to import, and large), only the symbolic method, ``to_sympy`` and printing do."""
    return importlib.import_module("sympy")


def _sympy(name: str) -> Callable[..., Any]:
    """SymPy's constructor ``name`` (``"sin"``), looked up when called."""

    def construct(*args: Any) -> Any:
        return getattr(_sp(), name)(*args)

    construct.__name__ = construct.__qualname__ = f"sympy.{name}"
    return construct


_ANY = (-3.0, 3.0)
_POS = (0.2, 4.0)
_UNIT = (-0.9, 0.9)


def _op(
    name: str,
    numpy_template: str,
    sympy_fn: Callable[..., Any],
    llvm: Lowering,
    *partials: Rule | None,
    **kw: Any,
) -> Op:
    return Op(name, len(partials), numpy_template, sympy_fn, llvm, tuple(partials), **kw)


def _one(b: Graph, a: tuple[int, ...], o: int) -> int:
    return b.const(1.0)


def _half_sign_diff(b: Graph, a: tuple[int, ...], scale: float) -> int:
    """0.5 + scale*sign(a0 - a1): the max/min partials, splitting a tie evenly."""
    return b.add(b.const(0.5), b.mul(b.const(scale), b.apply("sign", b.sub(a[0], a[1]))))


def _sq(b: Graph, x: int) -> int:
    return b.pow(x, b.const(2.0))


# fmt: off
OPS: dict[str, Op] = {
    op.name: op
    for op in [
        _op("add", "{0} + {1}", lambda x, y: x + y, _instruction("fadd"), _one, _one,
            infix="+", precedence=1, commutative=True, rewrite=_rewrite_add, domain=(_ANY, _ANY),
            plain=True, c="{0} + {1}"),
        _op("sub", "{0} - {1}", lambda x, y: x - y, _instruction("fsub"),
            _one, lambda b, a, o: b.const(-1.0),
            infix="-", precedence=1, rewrite=_rewrite_sub, domain=(_ANY, _ANY), plain=True, c="{0} - {1}"),
        _op("mul", "{0} * {1}", lambda x, y: x * y, _instruction("fmul"),
            lambda b, a, o: a[1], lambda b, a, o: a[0],
            infix="*", precedence=2, commutative=True, rewrite=_rewrite_mul, domain=(_ANY, _ANY),
            plain=True, c="{0} * {1}"),
        _op("div", "{0} / {1}", lambda x, y: x / y, _instruction("fdiv"),
            lambda b, a, o: b.div(b.const(1.0), a[1]),
            lambda b, a, o: b.neg(b.div(o, a[1])),
            infix="/", precedence=2, domain=(_ANY, _POS), c="{0} / {1}"),
        _op("neg", "-{0}", lambda x: -x, _instruction("fneg"), lambda b, a, o: b.const(-1.0),
            infix="-", precedence=3, rewrite=_rewrite_neg, domain=(_ANY,), plain=True, c="-{0}"),
        _op("pow", "{0} ** {1}", lambda x, y: x**y, _pow,
            lambda b, a, o: b.mul(a[1], b.pow(a[0], b.sub(a[1], b.const(1.0)))),
            lambda b, a, o: b.mul(o, b.apply("log", a[0])),
            infix="**", precedence=4, function="pow", rewrite=_rewrite_pow, domain=(_POS, _ANY),
            specialised=frozenset({2.0, -1.0}), c="pow({0}, {1})"),
        _op("sin", "np.sin({0})", _sympy("sin"), _call("graphc_sin"), lambda b, a, o: b.apply("cos", a[0]),
            function="sin", sympy_class="sin", domain=(_ANY,), c="sin({0})"),
        _op("cos", "np.cos({0})", _sympy("cos"), _call("graphc_cos"), lambda b, a, o: b.neg(b.apply("sin", a[0])),
            function="cos", sympy_class="cos", domain=(_ANY,), c="cos({0})"),
        _op("tan", "np.tan({0})", _sympy("tan"), _call("tan"), lambda b, a, o: b.add(b.const(1.0), _sq(b, o)),
            function="tan", sympy_class="tan", domain=((-1.2, 1.2),), c="tan({0})"),
        _op("asin", "np.arcsin({0})", _sympy("asin"), _call("asin"),
            lambda b, a, o: b.div(b.const(1.0), b.apply("sqrt", b.sub(b.const(1.0), _sq(b, a[0])))),
            function="asin", sympy_class="asin", domain=(_UNIT,), c="asin({0})"),
        _op("acos", "np.arccos({0})", _sympy("acos"), _call("acos"),
            lambda b, a, o: b.div(b.const(-1.0), b.apply("sqrt", b.sub(b.const(1.0), _sq(b, a[0])))),
            function="acos", sympy_class="acos", domain=(_UNIT,), c="acos({0})"),
        _op("atan", "np.arctan({0})", _sympy("atan"), _call("atan"),
            lambda b, a, o: b.div(b.const(1.0), b.add(b.const(1.0), _sq(b, a[0]))),
            function="atan", sympy_class="atan", domain=(_ANY,), c="atan({0})"),
        _op("sinh", "np.sinh({0})", _sympy("sinh"), _call("sinh"), lambda b, a, o: b.apply("cosh", a[0]),
            function="sinh", sympy_class="sinh", domain=(_ANY,), c="sinh({0})"),
        _op("cosh", "np.cosh({0})", _sympy("cosh"), _call("cosh"), lambda b, a, o: b.apply("sinh", a[0]),
            function="cosh", sympy_class="cosh", domain=(_ANY,), c="cosh({0})"),
        _op("tanh", "np.tanh({0})", _sympy("tanh"), _call("graphc_tanh"),
            lambda b, a, o: b.sub(b.const(1.0), _sq(b, o)),
            function="tanh", sympy_class="tanh", domain=(_ANY,), c="tanh({0})"),
        _op("exp", "np.exp({0})", _sympy("exp"), _call("graphc_exp"), lambda b, a, o: o,
            function="exp", sympy_class="exp", domain=(_ANY,), c="exp({0})"),
        _op("log", "np.log({0})", _sympy("log"), _call("graphc_log"), lambda b, a, o: b.div(b.const(1.0), a[0]),
            function="log", sympy_class="log", domain=(_POS,), c="log({0})"),
        _op("sqrt", "np.sqrt({0})", _sympy("sqrt"), _call("llvm.sqrt.f64"), lambda b, a, o: b.div(b.const(0.5), o),
            function="sqrt", domain=(_POS,), c="sqrt({0})"),
        _op("abs", "np.abs({0})", _sympy("Abs"), _call("llvm.fabs.f64"), lambda b, a, o: b.apply("sign", a[0]),
            function="abs", sympy_class="Abs", domain=(_ANY,), c="fabs({0})"),
        _op("sign", "np.sign({0})", _sympy("sign"), _sign, None,
            function="sign", sympy_class="sign", domain=(_ANY,),
            c="{0} > 0.0 ? 1.0 : {0} < 0.0 ? -1.0 : {0} != {0} ? {0} : 0.0"),
        _op("sigmoid", "1.0 / (1.0 + np.exp(-{0}))", lambda x: 1 / (1 + _sp().exp(-x)), _sigmoid,
            lambda b, a, o: b.mul(o, b.sub(b.const(1.0), o)),
            function="sigmoid", domain=(_ANY,), c="1.0 / (1.0 + exp(-{0}))"),
        _op("relu", "np.maximum({0}, 0.0)", lambda x: _sp().Max(x, 0), _relu,
            lambda b, a, o: b.apply("sign", o),
            function="relu", domain=(_ANY,), c="{0} > 0.0 || {0} != {0} ? {0} : 0.0"),
        _op("softplus", "np.logaddexp(0.0, {0})", lambda x: _sp().log(1 + _sp().exp(x)), _softplus,
            lambda b, a, o: b.apply("sigmoid", a[0]),
            function="softplus", domain=(_ANY,), c="({0} > 0.0 ? {0} : 0.0) + log1p(exp(-fabs({0})))"),
        _op("max", "np.maximum({0}, {1})", _sympy("Max"), _max,
            lambda b, a, o: _half_sign_diff(b, a, 0.5), lambda b, a, o: _half_sign_diff(b, a, -0.5),
            function="max", commutative=True, sympy_class="Max", domain=(_ANY, _ANY),
            c="{0} > {1} || {0} != {0} ? {0} : {1}"),
        _op("min", "np.minimum({0}, {1})", _sympy("Min"), _min,
            lambda b, a, o: _half_sign_diff(b, a, -0.5), lambda b, a, o: _half_sign_diff(b, a, 0.5),
            function="min", commutative=True, sympy_class="Min", domain=(_ANY, _ANY),
            c="{0} < {1} || {0} != {0} ? {0} : {1}"),
        _op("atan2", "np.arctan2({0}, {1})", _sympy("atan2"), _call("atan2"),
            lambda b, a, o: b.div(a[1], b.add(_sq(b, a[0]), _sq(b, a[1]))),
            lambda b, a, o: b.neg(b.div(a[0], b.add(_sq(b, a[0]), _sq(b, a[1])))),
            function="atan2", sympy_class="atan2", domain=(_POS, _POS), c="atan2({0}, {1})"),
    ]
}
# fmt: on

FUNCTIONS: dict[str, Op] = {op.function: op for op in OPS.values() if op.function}
BINARY_INFIX: dict[str, Op] = {op.infix: op for op in OPS.values() if op.infix and op.arity == 2}
CONSTANTS: dict[str, float] = {"pi": float(np.pi), "e": float(np.e)}
RESERVED: frozenset[str] = frozenset(FUNCTIONS) | frozenset(CONSTANTS)
