"""Conversion between graphs and SymPy expressions, both directions, without recursion.

SymPy itself recurses over expression depth in many places; failures of that kind are reported
as a :class:`GraphcError` naming the depth, never as a ``RecursionError``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import sympy

from graphc.errors import GraphcError
from graphc.graph import Graph
from graphc.ops import CONST, OPS, VAR


class Relu(sympy.Function):
    """``relu`` for SymPy with graphc's policy at the kink: ``relu'(0) = 0``.

    ``Max(x, 0)`` would differentiate to ``Heaviside(x)``, which SymPy takes as 1/2 at 0; the
    symbolic method uses this class instead so that it keeps the policy every method follows.
    """

    @classmethod
    def eval(cls, x: Any) -> Any:
        if x.is_extended_nonnegative:
            return x
        if x.is_extended_nonpositive:
            return sympy.Integer(0)
        return None

    def fdiff(self, argindex: int = 1) -> Any:
        return sympy.Heaviside(self.args[0], 0)

    def _eval_is_extended_real(self) -> bool | None:
        return self.args[0].is_extended_real  # so abs(relu(u)) differentiates without re()/im()

    def _eval_is_extended_nonnegative(self) -> bool | None:
        return True if self.args[0].is_extended_real else None

    def _eval_rewrite_as_Max(self, x: Any, **kwargs: Any) -> Any:
        return sympy.Max(x, 0)


class Sigmoid(sympy.Function):
    """``sigmoid`` for SymPy, differentiating as the op table does: ``sigmoid' = s*(1 - s)``.

    The expanded ``1/(1 + exp(-x))`` differentiates to ``exp(-x)/(1 + exp(-x))**2``, which is
    ``inf/inf = nan`` in float64 at x = -800; the op table's rule gives 0 there.
    """

    @classmethod
    def eval(cls, x: Any) -> Any:
        return sympy.Rational(1, 2) if x == 0 else None

    def fdiff(self, argindex: int = 1) -> Any:
        return self * (1 - self)

    def _eval_is_extended_real(self) -> bool | None:
        return self.args[0].is_extended_real

    def _eval_is_extended_positive(self) -> bool | None:
        return True if self.args[0].is_extended_real else None

    def _eval_rewrite_as_exp(self, x: Any, **kwargs: Any) -> Any:
        return 1 / (1 + sympy.exp(-x))


class Softplus(sympy.Function):
    """``softplus`` for SymPy with the op table's derivative ``sigmoid`` (finite at x = 800, where
    the expanded ``exp(x)/(1 + exp(x))`` is ``inf/inf``)."""

    @classmethod
    def eval(cls, x: Any) -> Any:
        return sympy.log(2) if x == 0 else None

    def fdiff(self, argindex: int = 1) -> Any:
        return Sigmoid(self.args[0])

    def _eval_is_extended_real(self) -> bool | None:
        return self.args[0].is_extended_real

    def _eval_is_extended_positive(self) -> bool | None:
        return True if self.args[0].is_extended_real else None

    def _eval_rewrite_as_exp(self, x: Any, **kwargs: Any) -> Any:
        return sympy.log(1 + sympy.exp(x))


class Power(sympy.Function):
    """``u**v`` with a non-constant exponent, differentiating as the op table does:
    ``∂/∂u = v*u**(v - 1)`` and ``∂/∂v = u**v*log(u)``.

    SymPy's own ``d(u**v)/du = v*u**v/u`` is ``0/0 = nan`` at u = 0, where the op table's rule
    gives 0 (v = 2) or inf (v = 1/2): the policy table says which.
    """

    @classmethod
    def eval(cls, u: Any, v: Any) -> Any:
        return u**v if v.is_number else None  # a constant exponent: SymPy's own power

    def fdiff(self, argindex: int = 1) -> Any:
        u, v = self.args
        return v * Power(u, v - 1) if argindex == 1 else self * sympy.log(u)

    def _eval_is_extended_real(self) -> bool | None:
        u, v = self.args
        return True if u.is_extended_positive and v.is_extended_real else None

    def _eval_is_extended_positive(self) -> bool | None:
        u, v = self.args
        return True if u.is_extended_positive and v.is_extended_real else None

    def _eval_rewrite_as_Pow(self, u: Any, v: Any, **kwargs: Any) -> Any:
        return u**v


class _Extremum(sympy.Function):
    """``max``/``min`` for SymPy as the op table has them: unevaluated (SymPy's Max and Min compare
    every pair of arguments symbolically when built, which on large arguments takes minutes: the
    symbolic method hung on 30-op random graphs), each partial the share of a tie."""

    nargs = 2
    _first_wins: int  # +1 for max, -1 for min

    @classmethod
    def eval(cls, a: Any, b: Any) -> Any:
        if a == b:
            return a
        if a.is_Number and b.is_Number:
            return (sympy.Max if cls._first_wins > 0 else sympy.Min)(a, b)
        return None

    def fdiff(self, argindex: int = 1) -> Any:
        # the op table's rule: a tie split evenly among the tied leaves of a nested chain (two
        # operands: 1/2 each), so that an infinite tie splits too; NaN at a NaN operand
        a, b = self.args
        if sympy.nan in self.args:  # no operand equals the max: 0/0 (SymPy would make it zoo)
            return sympy.nan
        if type(a) is not type(self) and type(b) is not type(self):
            # by comparisons of the operands themselves: SymPy may rewrite an equality with the
            # max itself (solving it for a term), and floats then miss it
            own, other = (a, b) if argindex == 1 else (b, a)
            wins, loses = (own > other, own < other) if self._first_wins > 0 else (own < other, own > other)
            tie = sympy.Eq(own, other)
            return sympy.Piecewise((1, wins), (0, loses), (sympy.S.Half, tie), (sympy.nan, True))
        arg = self.args[argindex - 1]
        return _equal(arg, self) * _tied(arg, type(self)) / _tied(self, type(self))

    def _eval_is_extended_real(self) -> bool | None:
        a, b = self.args
        return True if a.is_extended_real and b.is_extended_real else None


def _equal(a: Any, b: Any) -> Any:
    return sympy.Piecewise((sympy.Integer(1), sympy.Eq(a, b)), (sympy.Integer(0), True))


def _tied(expr: Any, cls: Any) -> Any:
    """How many leaves of the chain of ``cls`` under ``expr`` equal its value (graphc.ops._tied),
    by an iterative post-order walk."""
    count: dict[Any, Any] = {}
    stack: list[Any] = [expr]
    while stack:
        top = stack[-1]
        if type(top) is not cls:
            count[top] = sympy.Integer(1)
        else:
            pending = [arg for arg in top.args if arg not in count]
            if pending:
                stack.extend(pending)
                continue
            count[top] = sum((_equal(arg, top) * count[arg] for arg in top.args), sympy.Integer(0))
        stack.pop()
    return count[expr]


class Maximum(_Extremum):
    _first_wins = 1


class Minimum(_Extremum):
    _first_wins = -1


class Absolute(sympy.Function):
    """``abs`` for SymPy as the op table has it: ``abs' = sign`` (0 at 0). SymPy's Abs differentiates
    an argument it cannot prove real (``asin``, ``sqrt`` or ``log`` of anything) through ``re`` and
    ``im``, which took minutes on 30-op random graphs; graphc's values are real."""

    @classmethod
    def eval(cls, u: Any) -> Any:
        return sympy.Abs(u) if u.is_Number else None

    def fdiff(self, argindex: int = 1) -> Any:
        return sympy.sign(self.args[0])

    def _eval_is_extended_real(self) -> bool | None:
        return True if self.args[0].is_extended_real else None

    def _eval_is_extended_nonnegative(self) -> bool | None:
        return True if self.args[0].is_extended_real else None

    def _eval_rewrite_as_Abs(self, u: Any, **kwargs: Any) -> Any:
        return sympy.Abs(u)


class Step(sympy.Function):
    """``floor`` and ``ceil`` for SymPy with the op table's derivative: 0 (SymPy leaves it
    unevaluated)."""

    def fdiff(self, argindex: int = 1) -> Any:
        return sympy.S.Zero

    def _eval_is_extended_real(self) -> bool | None:
        return self.args[0].is_extended_real


class Floor(Step):
    _imp_ = staticmethod(math.floor)  # what lambdify calls

    @classmethod
    def eval(cls, x: Any) -> Any:
        return sympy.floor(x) if x.is_Number else None


class Ceil(Step):
    _imp_ = staticmethod(math.ceil)

    @classmethod
    def eval(cls, x: Any) -> Any:
        return sympy.ceiling(x) if x.is_Number else None


class Cbrt(sympy.Function):
    """``cbrt`` for SymPy: the real cube root (SymPy's ``cbrt`` is ``x**(1/3)``, NaN for a negative
    ``x`` in float64), with the op table's derivative ``1/(3*cbrt(x)**2)``."""

    _imp_ = staticmethod(lambda x: math.copysign(abs(float(x)) ** (1 / 3), float(x)))

    @classmethod
    def eval(cls, x: Any) -> Any:
        return sympy.real_root(x, 3) if x.is_Number else None

    def fdiff(self, argindex: int = 1) -> Any:
        return 1 / (3 * self**2)

    def _eval_is_extended_real(self) -> bool | None:
        return self.args[0].is_extended_real


# Each op's SymPy forms, from its entry (graphc.ops): the classes that convert back to it (SymPy's
# ``sympy_class``, this module's ``sympy_policy``), and the function built for it with policy=True.
_POLICY: dict[str, Any] = {name: globals()[op.sympy_policy] for name, op in OPS.items() if op.sympy_policy}
_FROM_CLASS: dict[Any, str] = {
    **{getattr(sympy, op.sympy_class): name for name, op in OPS.items() if op.sympy_class},
    **{cls: name for name, cls in _POLICY.items()},
}


def sympy_number(value: float) -> Any:
    """A float as the most exact SymPy number: pi, E, integers and small dyadic fractions."""
    if math.isnan(value):
        return sympy.nan
    if math.isinf(value):
        return sympy.oo if value > 0 else -sympy.oo
    if value == math.pi:
        return sympy.pi
    if value == math.e:
        return sympy.E
    fraction = Fraction(value)
    if fraction.denominator <= 1024 and abs(fraction.numerator) < 2**53:
        return sympy.Rational(fraction.numerator, fraction.denominator)
    return sympy.Float(value)


def to_sympy(graph: Graph, *, policy: bool = False) -> Any:
    """The graph's outputs as SymPy expressions (one, or a tuple for several outputs).

    ``relu`` becomes ``Max(x, 0)``; with ``policy=True``, an op whose entry names a
    ``sympy_policy`` becomes that function of this module (``relu``: :class:`Relu`, ``max``:
    :class:`Maximum`, ``pow``: :class:`Power`, which is SymPy's power for a constant exponent, ...),
    whose derivatives are the op table's rules (graphc's policy at kinks, singular points and
    overflow; see graphc/policy.py).
    """
    if graph.tensor:
        return _tensor_to_sympy(graph, policy)
    keep = graph.reachable()
    built: dict[int, Any] = {}
    try:
        for node in range(len(graph)):
            if not keep[node]:
                continue
            op = graph.op(node)
            if op == VAR:
                built[node] = sympy.Symbol(graph.name(node), real=True)
            elif op == CONST:
                built[node] = sympy_number(graph.const_value(node))  # type: ignore[arg-type]
            elif policy and op in _POLICY:
                built[node] = _POLICY[op](*(built[a] for a in graph.args(node)))
            else:
                built[node] = OPS[op].sympy(*(built[a] for a in graph.args(node)))
    except RecursionError:
        depth = graph.stats()["depth"]
        raise GraphcError(f"SymPy cannot build an expression this deep (depth {depth})") from None
    outputs = tuple(built[o] for o in graph.outputs)
    return outputs[0] if len(outputs) == 1 else outputs


def _tensor_to_sympy(graph: Graph, policy: bool) -> Any:
    """A tensor graph's outputs through its scalarised graph (graphc.scalarise): each output a SymPy
    array of its shape, one expression per element (an expression for a scalar output)."""
    from graphc.scalarise import scalarise

    scalar = scalarise(graph, what="conversion to SymPy")
    built = to_sympy(scalar.graph, policy=policy)
    flat = iter(built if len(scalar.graph.outputs) != 1 else (built,))
    outputs = []
    for shape in scalar.outputs:
        if not shape:
            outputs.append(next(flat))
        else:
            elements = [next(flat) for _ in range(math.prod(shape))]
            outputs.append(sympy.ImmutableDenseNDimArray(elements, shape))
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


def _supported(expr: Any) -> bool:
    return bool(
        expr.is_Symbol
        or expr.is_Number
        or expr.is_NumberSymbol
        or expr.is_Add
        or expr.is_Mul
        or expr.is_Pow
        or type(expr) in _FROM_CLASS
        or expr is sympy.true
        or expr is sympy.false
        or isinstance(
            expr, (sympy.Piecewise, sympy.Heaviside, sympy.DiracDelta, sympy.re, sympy.im, sympy.arg)
        )
    )


def _fold(graph: Graph, op: str, nodes: list[int]) -> int:
    """The op on ``nodes``; on more than it takes (SymPy's And, Or, Max, Min), left to right."""
    if len(nodes) == OPS[op].arity:
        return graph.apply(op, *nodes)
    acc = nodes[0]
    for node in nodes[1:]:
        acc = graph.apply(op, acc, node)
    return acc


def _children(expr: Any) -> tuple[Any, ...]:
    """The subexpressions a node is built from: a Piecewise's pieces' values and conditions."""
    if isinstance(expr, sympy.Piecewise):
        return tuple(part for pair in expr.args for part in pair.args)
    return tuple(expr.args)


def _piecewise(graph: Graph, args: list[int]) -> int:
    """``Piecewise((e1, c1), (e2, c2), ...)`` as ``where(c1, e1, where(c2, e2, ...))``; past the last
    piece (a condition that is not True) the value is NaN. A piece ``(1, c)`` before ``(0, True)``
    is the 0/1 value of ``c`` itself."""
    values, conditions = args[0::2], args[1::2]
    one_zero = [graph.const_value(v) for v in values] == [1.0, 0.0]
    if one_zero and graph.const_value(conditions[1]) == 1.0:
        return conditions[0]
    acc = graph.const(math.nan)
    for value, condition in zip(reversed(values), reversed(conditions), strict=True):
        acc = graph.apply("where", condition, value, acc)
    return acc


def _convert(graph: Graph, expr: Any, args: list[int]) -> int:
    if isinstance(expr, sympy.Piecewise):
        return _piecewise(graph, args)
    if expr is sympy.true or expr is sympy.false:
        return graph.const(1.0 if expr is sympy.true else 0.0)
    if expr.is_Symbol:
        return graph.var(expr.name)
    if expr.is_Number or expr.is_NumberSymbol:
        try:
            return graph.const(float(expr))
        except (TypeError, ValueError):
            raise GraphcError(f"cannot convert the SymPy number {expr}") from None
    if expr.is_Add:
        args = sorted(args, key=lambda node: graph.op(node) == "neg")  # stable: positive terms first
        acc = args[0]
        for node in args[1:]:  # x + (-y) reads better as x - y
            acc = graph.sub(acc, graph.args(node)[0]) if graph.op(node) == "neg" else graph.add(acc, node)
        return acc
    if expr.is_Mul:
        negate = expr.args[0] == -1 and len(args) > 1
        factors = args[1:] if negate else args
        acc = factors[0]
        for node in factors[1:]:  # x * (1/y) reads better as x / y
            reciprocal = graph.op(node) == "div" and graph.const_value(graph.args(node)[0]) == 1.0
            acc = graph.div(acc, graph.args(node)[1]) if reciprocal else graph.mul(acc, node)
        return graph.neg(acc) if negate else acc
    if expr.is_Pow:
        if expr.exp == sympy.Rational(1, 2):
            return graph.apply("sqrt", args[0])
        if expr.exp == -1:
            return graph.div(graph.const(1.0), args[0])
        if expr.exp == sympy.Rational(-1, 2):  # as the op table's sqrt' = 0.5/sqrt(u): -inf at -0.0
            return graph.div(graph.const(1.0), graph.apply("sqrt", args[0]))
        return graph.pow(args[0], args[1])
    if isinstance(expr, sympy.Heaviside):
        return _heaviside(graph, args[0], graph.const_value(args[1]) if len(args) > 1 else 0.5)
    # SymPy differentiates |u| and u**v as complex functions (re, im, arg appear); every value
    # graphc computes is a real float64 (or nan where it would be complex), so re(u) = u,
    # im(u) = 0 and arg(u) = atan2(0, u) (0 or pi).
    if isinstance(expr, sympy.re):
        return args[0]
    if isinstance(expr, sympy.im):
        return graph.const(0.0)
    if isinstance(expr, sympy.arg):
        return graph.apply("atan2", graph.const(0.0), args[0])
    if isinstance(expr, sympy.DiracDelta):
        # The derivative of a step (of sign, of Heaviside): zero wherever it is defined, as the op
        # table's rule for sign says; graphc does not represent the distribution.
        return graph.const(0.0)
    # an op's own SymPy class; SymPy's And, Or, Max and Min take any number of arguments: folded
    return _fold(graph, _FROM_CLASS[type(expr)], args)


def _heaviside(graph: Graph, u: int, at_zero: float | None) -> int:
    """The unit step of ``u``, with value ``at_zero`` at 0: ``0.5 + 0.5*sign(u)`` for a half."""
    if at_zero == 0.5:
        return graph.add(graph.const(0.5), graph.mul(graph.const(0.5), graph.apply("sign", u)))
    if at_zero == 0.0:
        return graph.apply("sign", graph.apply("relu", u))
    if at_zero == 1.0:
        return graph.sub(graph.const(1.0), graph.apply("sign", graph.apply("relu", graph.neg(u))))
    raise GraphcError(f"cannot convert a Heaviside step with value {at_zero} at 0")


def build(graph: Graph, roots: list[Any], memo: dict[Any, int] | None = None) -> list[int]:
    """Build SymPy expressions on ``graph``; ``memo`` may map symbols to existing nodes."""
    memo = {} if memo is None else memo
    for root in roots:
        stack: list[tuple[Any, bool]] = [(root, False)]
        while stack:
            item, ready = stack.pop()
            if item in memo:
                continue
            if not ready:
                if not _supported(item):
                    raise GraphcError(f"cannot convert SymPy {type(item).__name__}: {str(item)[:80]}")
                stack.append((item, True))
                stack.extend((arg, False) for arg in reversed(_children(item)) if arg not in memo)
                continue
            memo[item] = _convert(graph, item, [memo[arg] for arg in _children(item)])
    return [memo[root] for root in roots]


def from_sympy(expr: Any) -> Graph:
    """A graph from a SymPy expression, or from a list or tuple of them (several outputs).

    >>> import sympy
    >>> x, y = sympy.symbols("x y")
    >>> from_sympy(sympy.sin(x * y) + sympy.exp(x)).variables
    ['x', 'y']
    """
    items = list(expr) if isinstance(expr, (list, tuple)) else [expr]
    try:  # numbers become SymPy numbers; strict mode refuses text, which would run eval
        roots = [sympy.sympify(item, strict=True) for item in items]
    except sympy.SympifyError:
        raise GraphcError(f"not a SymPy expression: {expr!r:.80}") from None
    graph = Graph()
    graph.set_outputs(build(graph, roots))
    return graph.pruned()
