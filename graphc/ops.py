"""The op table: every primitive of graphc's language, defined once.

Each :class:`Op` holds everything every stage needs: how it is written (infix symbol or function
name), its arity, whether it commutes, its NumPy expression template (used by the NumPy backend
and, compiled once here, for constant folding, so folded constants equal computed values), its
SymPy constructor (and the SymPy class that converts back), its build-time rewrite, its local
derivative rule per operand slot, its hard points (``policy`` rows: what every method gives at a
kink or a singular point, or ``smooth``: why it has none) and the domain its tests sample from. The
rewrites are identities
of the reals, graphc's algebra: ``x*0 -> 0`` and ``x + 0 -> x`` are not IEEE-exact at every input
(``inf*0`` is NaN, ``-0.0 + 0`` is ``0.0``); each entry's ``algebra`` rows state what they give.

A local derivative rule is ``rule(b, args, out) -> node | None``: given the graph builder ``b``,
the operand nodes and the op's own result node, it builds ``∂out/∂args[slot]`` from graph nodes
and returns it, or ``None`` where the partial is structurally zero. Non-smooth points follow the
policy of JAX and PyTorch: ``relu'(0) = 0``, ``abs'(0) = 0``, a ``max``/``min`` tie splits evenly.

Two tables, one entry type. ``OPS`` holds the elementwise ops (scalar ops applied to every
element, NumPy broadcasting their operands); ``BLOCK_OPS`` the block ops (``block=True``: matmul,
the reductions sum/logsumexp/amax/amin and count, and the structural reshape, transpose,
broadcast, index and its adjoint unindex, and shift, the constant a softmax subtracts, through
which no derivative flows); ``ALL_OPS`` is both, by name. Every other index of the ops that a
stage reads (``FUNCTIONS``, ``BINARY_INFIX``, ``RESERVED``, ``GATES``...) is :class:`Derived` from
the entries and rebuilt whenever a table changes, so an op added at run time is found everywhere.
The contract of a block op's entry, which every stage relies on:

- ``shape(operand_shapes, params) -> shape``, raising :class:`~graphc.shapes.ShapeError` that
  names both shapes (``cannot matmul [3, 4] by [5]: 4 != 5``);
- ``emit(operand_sources, operand_shapes, params) -> str``: the NumPy expression of the op,
  obeying the batch rule (an operand may carry extra leading axes: axes are written counted from
  the end, a vector operand of ``@`` is made a matrix with ``[..., None]``, ``x[..., i]``); the
  helpers it calls are BLOCK_HELPERS. :meth:`Op.evaluate` runs exactly this source, so it is the
  reference any transformation (scalarisation) is checked against;
- ``vjp(b, args, out, params, g)``: one adjoint node (or None) per operand slot, ``g`` shaped
  like ``out``; ``jvp(b, args, out, params, tangents)``: the result's tangent from the operands'
  (each shaped like its operand, or None for zero), both built from graph nodes;
- ``paths(counts, params, shape)``: the number of scalar paths reaching each element of the
  result from those reaching each operand's elements (exact path counts at block level: a
  reduction sums them, matmul multiplies them by the other operand's extent): the paths of the
  op's scalarisation, so the count is that of the graph the ``paths`` method enumerates;
- ``spell(operands, shapes, params)``: the node as text of the language, which parses back to
  the same node (``sum(x, axis=0)``, ``x[1, ::2]``, ``sum(e, axis=1, keepdims=1)``); an op the
  language has no function for (``shift``, ``count``, ``broadcast``, the layers' adjoints) is
  spelled as a call of its own name with its params as keywords (``shift(x, axis=1)``,
  ``broadcast(x, shape=[3, n])``), which the parser reads back through the op's ``call``;
- ``scalarise(b, operands, params)``: the op on scalar nodes (graphc.scalarise): each operand an
  object array of node ids of its concrete shape, the result one of the node's shape, built with
  scalar ops only (matmul as sums of products, a reduction as a chain of ``add``/``max``/``min``,
  logsumexp max-shifted); a structural op only re-wires (reshape, transpose, index: no node);
- params, by op: ``sum``/``logsumexp``/``amax``/``amin``: ``(axes, keepdims)``, axes a sorted
  tuple in ``0..rank-1``; ``shift``: the axes (kept as 1s); ``count``: the axes (the number of elements along them, a scalar);
  ``reshape``/``broadcast``: the target shape; ``transpose``: the permutation; ``index``: one item
  per leading axis, an int in ``0..dim-1``, a ``(start, stop, step)`` triple (stop None: past the
  front for a negative step) or None for ``:``; ``unindex``: ``(index params, operand shape)``.

An elementwise op's VJP and JVP follow from its local partials (``g * z`` summed over the axes it
was broadcast along: :func:`reduce_to`). COMPOSITES (``mean``, ``softmax``, ``log_softmax``,
``outer``) are functions of the language built from the ops, with no rules of their own.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from graphc import convolution as cv
from graphc import masked as mk
from graphc import masked_conv as mc
from graphc import user_blocks as ub
from graphc.shapes import Shape, ShapeError, broadcast, size
from graphc.shapes import source as shape_source
from graphc.shapes import text as shape_text

if TYPE_CHECKING:
    from graphc.graph import Graph

Rule = Callable[["Graph", tuple[int, ...], int], "int | None"]
Rewrite = Callable[["Graph", tuple[int, ...]], "int | None"]
# A block op's rules. ``params`` is the node's params tuple (see graphc.graph), shapes are declared.
ShapeRule = Callable[[tuple["Shape", ...], Any], "Shape"]  # operand shapes, params -> shape (or ShapeError)
Emit = Callable[[tuple[str, ...], tuple["Shape", ...], Any], str]  # NumPy source of the op, batch rule
# vjp(b, args, out, params, g): the adjoint contribution to each operand slot (None: none)
Vjp = Callable[["Graph", tuple[int, ...], int, Any, int], tuple["int | None", ...]]
# jvp(b, args, out, params, tangents): the result's tangent from the operands' (None: zero)
Jvp = Callable[["Graph", tuple[int, ...], int, Any, tuple["int | None", ...]], "int | None"]
# paths(counts, params, shape): per element of the result, the scalar paths reaching it, from the
# paths reaching each operand's elements (object arrays of Python ints; exact, never enumerated)
PathRule = Callable[[list[Any], Any, tuple[int, ...]], Any]
# scalarise(b, operands, params): the op on scalar nodes, one per element: each operand an object
# array of node ids of its (concrete) shape, the result one of the node's shape (graphc.scalarise)
ScalarRule = Callable[["Graph", tuple[Any, ...], Any], Any]
# stacked(b, operands, which, params, lead): the op applied to its operands when those marked in
# ``which`` carry extra leading axes ``lead`` (graphc.diff.stacked), giving ``lead + its shape``
Stacked = Callable[["Graph", tuple[int, ...], tuple[bool, ...], Any, "Shape"], int]
# stacked_jvp(b, args, out, params, tangents, lead): the JVP with tangents carrying ``lead``
StackedJvp = Callable[["Graph", tuple[int, ...], int, Any, tuple["int | None", ...], "Shape"], "int | None"]
# stacked_diagonal(b, d, operand_shape, source_shape, params): the stacked tangent of the op when its
# operand's is diagonal (``E * d``, E the stacked identity of a source), built without E; None
# when it is not cheaper than the op on the full stack
StackedDiagonal = Callable[["Graph", int, "Shape", "Shape", Any], "int | None"]
# spell(operands, shapes, params): the node in the language (operands already atoms), for printing
Spell = Callable[[tuple[str, ...], tuple["Shape", ...], Any], str]


class Emitter(Protocol):
    """What an LLVM lowering is given (graphc.backends.llvm provides it): a builder and two helpers."""

    # The IR-text builder of graphc.backends.llvm.text, with the methods of llvmlite.ir.IRBuilder a
    # lowering may use (fadd, fsub, fmul, fdiv, fneg, fcmp_ordered, fcmp_unordered, or_, and_, select);
    # its values are vectors of doubles, one lane per point, but a lowering need not know it.
    builder: Any

    def call(self, symbol: str, *args: Any) -> Any:
        """A call of a libm function (``"atan"``), graphc's own (``"graphc_sin"``) or an LLVM
        intrinsic (``"llvm.fabs.f64"``) on doubles; the emitter calls its vector form."""

    def const(self, value: float) -> Any:
        """A double constant (in every lane)."""


Lowering = Callable[[Emitter, tuple[Any, ...]], Any]  # (emitter, operand values) -> result value

# The functions NumPy lacks, as the elementwise templates call them: the C library's (the LLVM
# backend calls the same functions, so both backends give the same values); and an op's form for
# writing into an existing array (``numpy_into``) where NumPy's own is slow. Every generated NumPy
# module includes this source.
ELEMENT_HELPERS = """\
_erf = np.vectorize(math.erf, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _sign(x, out=None):
    # np.sign(x) into out (which may be x): np.sign written into its own operand runs a branching
    # loop, slow where the signs mix; these passes are vectorised. Any nonzero x times 2**1074 is
    # 1 or more in magnitude (or inf), clipped to 1; 0, inf and NaN stay; +0.0 makes -0.0 0.0.
    if out is None:
        return np.sign(x)
    np.multiply(x, 2.0**1023, out=out)
    np.multiply(out, 2.0**51, out=out)
    np.clip(out, -1.0, 1.0, out=out)
    return np.add(out, 0.0, out=out)
"""
_ELEMENT_SCOPE: dict[str, Any] = {"np": np, "math": math}
exec(ELEMENT_HELPERS, _ELEMENT_SCOPE)  # noqa: S102 - this module's own constant source

# Binding powers of the infix and prefix operators, Python's order (higher binds tighter; a
# bracket's is 0, so every operator's is at least 1).
OR, AND, NOT, COMPARE, ADD, MUL, NEG, POW = range(1, 9)

# gate(b, args, slot, g): for an op that selects among its operands (``where``), what carries the
# adjoint or tangent ``g`` through operand ``slot``: ``(select, condition)``, a node equal to ``g``
# where the slot is selected and exactly 0 elsewhere, and the node (nonzero: true) saying where
# it is selected; None for a slot nothing passes through (the condition).
Gate = Callable[["Graph", tuple[int, ...], int, int], "tuple[int, int] | None"]

VAR = "var"  # leaf: attribute ``name``
CONST = "const"  # leaf: attribute ``value`` (a float)


@dataclass(frozen=True)
class Point:
    """A hard point of an op: ``expr`` at ``at`` (``"x=0,y=1"``, the CLI's ``--at`` text) has
    ``value`` and ``gradient`` (one entry per variable, in sorted order) in every exact method and
    backend, exactly (signed zeros included; NaN where NaN is written), for the reason ``why``."""

    expr: str
    at: str
    value: float
    gradient: tuple[Any, ...]
    why: str


# an entry is equal only to itself (hashed by identity) and shown by its name (not its ~60 fields)
@dataclass(frozen=True, eq=False, repr=False)
class Op:
    name: str
    arity: int
    numpy: str  # expression template over {0}, {1}: one statement of generated source
    sympy: Callable[..., Any]  # builds the op's SymPy expression (imports SymPy when first called)
    llvm: Lowering  # the op as LLVM IR, matching the NumPy template (NaN, signed zeros, ties)
    partials: tuple[Rule | None, ...]  # one local-derivative rule per operand slot
    infix: str | None = None  # binary operator symbol ("+"), or "-" for unary minus
    # the name of Python's special method for the infix operator (``add``: ``__add__`` and
    # ``__radd__``; ``and`` is ``&``, ``or`` is ``|``), through which it applies to traced values
    python: str = ""
    ufunc: str = ""  # the NumPy ufunc an ndarray calls for that operator (``add``, ``negative``)
    precedence: int = 0  # for infix and prefix printing; higher binds tighter
    function: str | None = None  # name when called as a function: sin(x), pow(x, y)
    commutative: bool = False
    rewrite: Rewrite | None = None  # a build-time identity of graphc's algebra (``algebra`` rows)
    sympy_class: str | None = None  # the name of the SymPy class that converts back to this op
    # the name of graphc.sympy_bridge's SymPy function for this op whose derivative is the op's own
    # rule (graphc's policy at kinks, singular points and overflow), built for the symbolic method
    # (``to_sympy(policy=True)``); it converts back to this op too
    sympy_policy: str | None = None
    domain: tuple[tuple[float, float], ...] = ()  # where tests sample each operand
    plain: bool = False  # the template on Python floats is exactly IEEE and never raises
    c: str = ""  # the op as a C99 expression over {0}, {1} (operands are names), libm only
    # the op written into an existing array ``{out}`` (maybe an operand), where NumPy's own
    # ``out=`` form of ``numpy`` is slow ("": that form); ``{out}`` may be None: allocate
    numpy_into: str = ""
    # templates by the source of a literal last operand, where NumPy has a faster exact form
    # (``x ** 2.0`` as ``np.square(x)``: np.power calls pow per element, square multiplies)
    numpy_literals: tuple[tuple[str, str], ...] = ()
    # constant last operands the LLVM lowering treats specially (``x**2`` as ``x*x``): the LLVM
    # backend's tape gives a row with one of them an opcode of its own with the constant built in
    specialised: frozenset[float] = frozenset()
    aliases: tuple[str, ...] = ()  # other infix spellings ("^" for "**")
    right: bool = False  # a right-associative infix operator
    chains: bool = False  # a comparison: ``a < b < c`` is ``(a < b) and (b < c)``, as in Python
    names: tuple[str, ...] = ()  # other function spellings (NumPy's ``arcsin`` for ``asin``)
    gate: Gate | None = None  # a selecting op's rule for what passes through each operand
    # a selecting op's operand slots its value depends on, given the operands' values (``where``:
    # the condition and the branch it selects); graphc check follows only these
    picks: Callable[[Sequence[float]], tuple[int, ...]] | None = None
    # The op's hard points (kinks, singular points, domain edges, overflow): what every exact method
    # and backend gives there, which tests/test_policy.py checks and the manual's policy table shows
    # (graphc/policy.py); an elementwise op without one says in ``smooth`` why it needs none.
    policy: tuple[Point, ...] = ()
    smooth: str = ""
    algebra: tuple[Point, ...] = ()  # its ``rewrite`` at the points where it differs from IEEE arithmetic
    kink: bool = False  # not differentiable at some finite input: central differences may straddle it
    # Block ops (block=True): the value of the node is not elementwise in its operands.
    block: bool = False
    shape: ShapeRule | None = None
    emit: Emit | None = None  # replaces the ``numpy`` template, which is then ""
    vjp: Vjp | None = None
    jvp: Jvp | None = None
    paths: PathRule | None = None
    scalarise: ScalarRule | None = None
    spell: Spell | None = None  # a block op called as a function; ``@`` is spelled by ``infix``
    postfix: bool = False  # spelled after its operand (``x[0]``), which must then be an atom
    view: bool = False  # its NumPy result may be a view of its operand's array (never written into)
    # A block op called with integer literals after its tensor operands (``maxpool2d(X, 2)``) and
    # keywords (``stride=2``, ``size=[5, 5]``: an integer or a list of integers and dimension names):
    # how many literals, which keywords, and the params they make. An op without a ``function``
    # that has a ``call`` is read back under its own name (INTERNAL_CALLS): what ``spell`` prints.
    literals: int = 0
    keywords: tuple[str, ...] = ()
    call: Callable[[tuple[int, ...], dict[str, Any]], Any] | None = None
    variadic: bool = False  # takes ``arity`` or more operands (a user block's ``custom`` node)
    # the scalar multiplications the op performs per point, from its operand and result shapes
    # (counted in Jacobian kernels' ``info``; None: none counted)
    multiplies: Callable[[tuple[Shape, ...], Shape], int] | None = None
    # a block op applied to operands with extra leading axes (graphc.diff.stacked carries an
    # input's elements on them); None: no rule
    stacked: Stacked | None = None
    # a block op linear in each operand: its JVP is the sum over slots of the op with the slot's
    # tangent in place of the operand (``stacked`` on the stacked tangents)
    linear: bool = False
    stacked_jvp: StackedJvp | None = None  # the JVP on stacked tangents, for an op not ``linear``
    stacked_diagonal: StackedDiagonal | None = None
    # a block op the LLVM backend computes by a loop nest of its own (a step of a tensor kernel): the
    # name of that step's writer (graphc.backends.llvm.tensor_ir.STEPS); "": none (views and
    # reductions are part of other loops; an op with neither is scalarised)
    loop: str = ""
    # the operand slots no derivative flows through (a where's condition, a comparison's operands,
    # a masked product's mask): paths through them are neither counted nor enumerated. An
    # elementwise op's are the slots without a local rule (set here); a block op declares its own.
    inert: tuple[int, ...] = ()
    # a block op whose sums a flag can mask (graphc.masked): its VJP for an adjoint live where a
    # flag is, its JVP for tangents with flags, and its stacked rule for a stacked tangent with
    # structural zeros (None: it has none); None: the op's own rules serve flags too
    masked: tuple[mk.MaskedVjp, mk.MaskedJvp, mk.MaskedStacked | None] | None = None
    # the matrix product ``x @ y``: its Jacobian in one operand is the other (graphc.chain brackets
    # chains of such links)
    product: bool = False

    def __post_init__(self) -> None:
        assert len(self.partials) == self.arity, self.name
        if not self.block:
            assert not self.inert, f"{self.name}: an elementwise op's inert slots are those without a rule"
            object.__setattr__(
                self, "inert", tuple(i for i, rule in enumerate(self.partials) if rule is None)
            )

    def __repr__(self) -> str:
        return f"<op {self.name}>"

    @functools.cached_property
    def impl(self) -> Callable[..., Any]:
        """The op as a Python function of NumPy values: the NumPy template, compiled when first used
        (most programs use a few ops, and compiling every template would slow ``import graphc``)."""
        if self.block:
            return self.evaluate
        names = ", ".join(f"a{i}" for i in range(self.arity))
        body = self.numpy.format(*(f"a{i}" for i in range(self.arity)))
        # The template is this module's own constant text, never user input.
        code = compile(f"lambda {names}: {body}", f"<graphc.ops:{self.name}>", "eval")
        return eval(code, dict(_ELEMENT_SCOPE))  # type: ignore[no-any-return]  # the template: never user text

    def numpy_of(self, operands: Sequence[str]) -> str:
        """The NumPy template for operands with these sources: ``numpy``, or the form a literal
        last operand picks (``numpy_literals``)."""
        for text, template in self.numpy_literals:
            if operands and operands[-1] == text:
                return template
        return self.numpy

    def evaluate(self, *values: Any, params: Any = None) -> Any:
        """The op on NumPy arrays (of the declared shapes, or with leading batch axes), through the
        same source the NumPy backend emits: the reference that scalarisation is checked against."""
        if not self.block:
            with np.errstate(all="ignore"):
                return self.impl(*(np.asarray(v, dtype=np.float64) for v in values))
        assert self.emit is not None
        arrays = [np.asarray(v, dtype=np.float64) for v in values]
        shapes = tuple(a.shape for a in arrays)
        names = tuple(f"a{i}" for i in range(self.arity))
        # declared shapes: the caller's arrays without batch axes are exactly their own
        code = self.emit(names, shapes, params)
        scope = {**block_helpers(), **dict(zip(names, arrays, strict=True)), "dims": {}}
        with np.errstate(all="ignore"):
            return eval(code, scope)

    def fold(self, *values: float) -> float:
        """The op applied to constant operands, with NumPy's float64 semantics (nan/inf, no warnings)."""
        if self.plain:  # + - * and negation of Python floats: the same IEEE results, much faster
            return float(self.impl(*values))
        with np.errstate(all="ignore"):
            return float(self.impl(*(np.float64(v) for v in values)))


class Table(dict[str, Op]):
    """An op table (OPS, BLOCK_OPS): a dict that rebuilds every index derived from its entries
    (:class:`Derived`) when an op is added, replaced or removed, at import or at run time."""

    def __setitem__(self, name: str, op: Op) -> None:
        super().__setitem__(name, op)
        Derived.rebuild_all()

    def __delitem__(self, name: str) -> None:
        super().__delitem__(name)
        Derived.rebuild_all()

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        Derived.rebuild_all()


class Derived(dict[str, Any]):
    """An index computed from the op tables' entries (``FUNCTIONS``: each spelling to its op), a
    plain dict to read (as fast as one), built again whenever a table changes: no stage holds a
    snapshot of the table taken at import, so an op added at run time is found by every stage.
    Like the frozensets some of them replace, ``RESERVED | names`` and ``names & RESERVED`` are
    sets of names."""

    every: ClassVar[list[Derived]] = []  # in creation order: an index built from another comes after it

    def __init__(self, build: Callable[[], Mapping[str, Any]]) -> None:
        super().__init__(build())
        self._build = build
        Derived.every.append(self)

    @classmethod
    def rebuild_all(cls) -> None:
        for index in cls.every:
            fresh = index._build()
            index.clear()
            index.update(fresh)

    def __or__(self, other: Any) -> frozenset[str]:  # type: ignore[override]
        return frozenset(self) | frozenset(other)

    def __and__(self, other: Any) -> frozenset[str]:
        return frozenset(self) & frozenset(other)

    def __sub__(self, other: Any) -> frozenset[str]:
        return frozenset(self) - frozenset(other)

    def __rsub__(self, other: Any) -> frozenset[str]:
        return frozenset(other) - frozenset(self)

    __ror__, __rand__ = __or__, __and__  # type: ignore[assignment]


# --- rewrites: only x+0, x-0, x*1, x*0 -> 0, --x, x**1, x**0 -------------------------------------
# Identities of the reals, graphc's algebra rather than float64 arithmetic: x*0 -> 0 differs from
# IEEE at x = inf or NaN (NaN there) and at negative x (-0.0), x + 0 -> x at x = -0.0 (0.0 there).
# The entries' ``algebra`` rows state each, and tests/test_policy.py holds every method to them.


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


def _and(e: Emitter, a: tuple[Any, ...]) -> Any:
    b = e.builder
    both = b.and_(_nonzero(e, a[0]), _nonzero(e, a[1]))
    return b.select(both, e.const(1.0), e.const(0.0))


def _or(e: Emitter, a: tuple[Any, ...]) -> Any:
    b = e.builder
    either = b.or_(_nonzero(e, a[0]), _nonzero(e, a[1]))
    return b.select(either, e.const(1.0), e.const(0.0))


def _nonzero(e: Emitter, x: Any) -> Any:
    """True where ``x`` is nonzero (NaN included), as ``x != 0`` in NumPy."""
    return e.builder.fcmp_unordered("!=", x, e.const(0.0))


def _not(e: Emitter, a: tuple[Any, ...]) -> Any:
    return e.builder.select(_nonzero(e, a[0]), e.const(0.0), e.const(1.0))


def _comparison(order: str) -> Lowering:
    """``1.0 * (a < b)`` and the like: ordered (NaN compares false), but ``!=`` unordered (true)."""

    def lower(e: Emitter, a: tuple[Any, ...]) -> Any:
        b = e.builder
        test = b.fcmp_unordered(order, a[0], a[1]) if order == "!=" else b.fcmp_ordered(order, a[0], a[1])
        return b.select(test, e.const(1.0), e.const(0.0))

    return lower


def _where(e: Emitter, a: tuple[Any, ...]) -> Any:
    return e.builder.select(_nonzero(e, a[0]), a[1], a[2])


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


def _bridged(name: str) -> Callable[..., Any]:
    """graphc.sympy_bridge's SymPy function ``name`` (``"Floor"``: SymPy's own ``floor`` leaves
    its derivative unevaluated), looked up when called."""

    def construct(*args: Any) -> Any:
        return getattr(importlib.import_module("graphc.sympy_bridge"), name)(*args)

    construct.__name__ = construct.__qualname__ = f"graphc.sympy_bridge.{name}"
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


def _extreme_partial(slot: int) -> Rule:
    """A ``max``/``min`` partial: a tie splits evenly among the tied operands, counting the tied
    leaves of a nested chain of the same op, so ``max(max(a, b), c)`` at a three-way tie gives 1/3
    to each, as the reduction ``max(x)`` does (its scalar form is such a chain): ``(a == o)`` times
    the operand's tied leaves over the result's. Equality, not the sign of a difference, so an
    infinite tie splits too (``-inf - -inf`` is NaN); a NaN operand gives 0/0, NaN."""

    def rule(b: Graph, a: tuple[int, ...], o: int) -> int:
        name = b.op(o)
        return b.div(b.mul(b.apply("eq", a[slot], o), _tied(b, a[slot], name)), _tied(b, o, name))

    return rule


def _tied(b: Graph, node: int, name: str) -> int:
    """How many leaves of the chain of ``name`` (max or min) under ``node`` equal its value, as a
    node: 1 for a node of another op; an iterative post-order walk, each nested node's count built
    once per graph (kept in ``b.derived``: a chain's every link asks for the counts below it)."""
    count = b.derived
    stack = [node]
    while stack:
        top = stack[-1]
        if b.op(top) != name:
            count["tied", top] = b.const(1.0)
        else:
            pending = [arg for arg in b.args(top) if ("tied", arg) not in count]
            if pending:
                stack.extend(pending)
                continue
            terms = [b.mul(b.apply("eq", arg, top), count["tied", arg]) for arg in b.args(top)]
            count["tied", top] = b.add(terms[0], terms[1])
        stack.pop()
    return count["tied", node]


def _sq(b: Graph, x: int) -> int:
    return b.pow(x, b.const(2.0))


def _indicator(condition: Any) -> Any:
    """A SymPy condition as graphc's value of it: 1 where it holds, else 0."""
    sp = _sp()
    return sp.Piecewise((sp.Integer(1), condition), (sp.Integer(0), True))


def _holds(value: Any) -> Any:
    """A graphc value as a SymPy condition (nonzero: true); a comparison's indicator gives back its
    own condition, so ``where(x > 0, ...)`` is ``Piecewise((..., x > 0), ...)``."""
    sp = _sp()
    if isinstance(value, sp.Piecewise) and len(value.args) == 2:
        (one, condition), (zero, otherwise) = value.args
        if one == 1 and zero == 0 and otherwise == sp.true:
            return condition
    return sp.Ne(value, 0)


def _relation(name: str) -> Callable[..., Any]:
    """A comparison for SymPy: the indicator of SymPy's relation ``name`` (``"Lt"``)."""

    def construct(x: Any, y: Any) -> Any:
        return _indicator(getattr(_sp(), name)(x, y))

    construct.__name__ = construct.__qualname__ = f"sympy.{name}"
    return construct


def _sympy_where(c: Any, x: Any, y: Any) -> Any:
    return _sp().Piecewise((x, _holds(c)), (y, True))


def _where_gate(b: Graph, a: tuple[int, ...], slot: int, g: int) -> tuple[int, int] | None:
    """``where(c, g, 0)`` into the first branch, selected where ``c`` holds; ``where(c, 0, g)``
    into the second, selected where ``not c``; nothing into the condition."""
    if slot == 0:
        return None
    zero = b.const(0.0)
    if slot == 1:
        return b.apply("where", a[0], g, zero), a[0]
    return b.apply("where", a[0], zero, g), b.apply("not", a[0])


def _where_picks(values: Sequence[float]) -> tuple[int, ...]:
    """The condition, and the first branch where it is nonzero (NaN included), else the second."""
    return (0, 1) if values[0] != 0.0 else (0, 2)


def _rewrite_where(b: Graph, a: tuple[int, ...]) -> int | None:
    """``where(c, u, u)`` is ``u``; a constant condition picks its branch (NaN is nonzero)."""
    if a[1] == a[2]:
        return a[1]
    c = b.const_value(a[0])
    if c is None:
        return None
    return a[1] if c != 0.0 else a[2]


_TWO_OVER_ROOT_PI = 2.0 / math.sqrt(math.pi)


def _erf_partial(b: Graph, a: tuple[int, ...], scale: float) -> int:
    """``scale * 2/sqrt(pi) * exp(-x^2)``: erf' (scale 1) and erfc' (scale -1)."""
    return b.mul(b.const(scale * _TWO_OVER_ROOT_PI), b.apply("exp", b.neg(_sq(b, a[0]))))


def _cmp(name: str, symbol: str, sympy_name: str, **kw: Any) -> Op:
    """A comparison: 1.0 or 0.0, derivative 0 in both operands (no partial is built)."""
    return _op(
        name,
        f"1.0 * ({{0}} {symbol} {{1}})",
        _relation(sympy_name),
        _comparison(symbol),
        None,
        None,
        infix=symbol,
        python=name,  # Python's special methods of comparisons have the ops' names: __lt__
        precedence=COMPARE,
        sympy_class=sympy_name,
        chains=True,
        domain=(_ANY, _ANY),
        c=f"{{0}} {symbol} {{1}}",
        **kw,
    )


# fmt: off
OPS: Table = Table({
    op.name: op
    for op in [
        _op("add", "{0} + {1}", lambda x, y: x + y, _instruction("fadd"), _one, _one,
            infix="+", python="add", ufunc="add", precedence=ADD, commutative=True, rewrite=_rewrite_add, domain=(_ANY, _ANY),
            algebra=(Point("x + 0", "x=-0.0", -0.0, (1.0,), "graphc's algebra: x + 0 = x (IEEE: -0.0 + 0 = 0.0)"),),
            smooth="smooth everywhere (inf - inf = nan in values only)",
            plain=True, c="{0} + {1}"),
        _op("sub", "{0} - {1}", lambda x, y: x - y, _instruction("fsub"),
            _one, lambda b, a, o: b.const(-1.0),
            algebra=(Point("x - 0", "x=-0.0", -0.0, (1.0,), "x - 0 = x, IEEE-exact (-0.0 - 0 = -0.0)"),),
            smooth="smooth everywhere",
            infix="-", python="sub", ufunc="subtract", precedence=ADD, rewrite=_rewrite_sub, domain=(_ANY, _ANY), plain=True, c="{0} - {1}"),
        _op("mul", "{0} * {1}", lambda x, y: x * y, _instruction("fmul"),
            lambda b, a, o: a[1], lambda b, a, o: a[0],
            infix="*", python="mul", ufunc="multiply", precedence=MUL, commutative=True, rewrite=_rewrite_mul, domain=(_ANY, _ANY),
            algebra=(
                Point("x*0", "x=inf", 0.0, (0.0,), "graphc's algebra: x*0 = 0 (IEEE: inf*0 = nan)"),
                Point("x*0", "x=nan", 0.0, (0.0,), "graphc's algebra: x*0 = 0 (IEEE: nan)"),
                Point("x*0", "x=-1", 0.0, (0.0,), "graphc's algebra: x*0 = 0 (IEEE: -1*0 = -0.0)"),
                Point("0*x + y", "x=inf,y=1", 1.0, (0.0, 1.0), "a constant operand is put second, then x*0 = 0"),
                Point("x*1", "x=nan", math.nan, (1.0,), "x*1 = x, IEEE-exact (NaN stays NaN)"),
            ),
            smooth="smooth everywhere; 0*inf = nan in values only",
            plain=True, c="{0} * {1}", multiplies=lambda shapes, shape: math.prod(shape)),
        _op("div", "{0} / {1}", lambda x, y: x / y, _instruction("fdiv"),
            lambda b, a, o: b.div(b.const(1.0), a[1]),
            lambda b, a, o: b.neg(b.div(o, a[1])),
            policy=(
                Point("1/x", "x=0", math.inf, (-math.inf,), "-(1/0)/0"),
                Point("1/x", "x=-0.0", -math.inf, (-math.inf,), "-(1/-0.0)/-0.0"),
                Point("x/y", "x=1,y=0", math.inf, (math.inf, -math.inf), "1/0; -(1/0)/0"),
                Point("x/y", "x=0,y=0", math.nan, (math.inf, math.nan), "0/0 = nan; 1/0; -(nan)/0"),
            ),
            infix="/", python="truediv", ufunc="divide", precedence=MUL, domain=(_ANY, _POS), c="{0} / {1}"),
        _op("neg", "-{0}", lambda x: -x, _instruction("fneg"), lambda b, a, o: b.const(-1.0),
            algebra=(Point("-(-x)", "x=-0.0", -0.0, (1.0,), "--x = x, IEEE-exact"),),
            smooth="smooth everywhere",
            infix="-", ufunc="negative", precedence=NEG, rewrite=_rewrite_neg, domain=(_ANY,), plain=True, c="-{0}"),
        _op("pow", "{0} ** {1}", lambda x, y: x**y, _pow,
            lambda b, a, o: b.mul(a[1], b.pow(a[0], b.sub(a[1], b.const(1.0)))),
            lambda b, a, o: b.mul(o, b.apply("log", a[0])),
            infix="**", python="pow", ufunc="power", precedence=POW, function="pow", rewrite=_rewrite_pow, sympy_policy="Power", domain=(_POS, _ANY),
            policy=(
                Point("x^2", "x=0", 0.0, (0.0,), "2*x^1 = 2*x: no log term for a constant exponent"),
                Point("x^3", "x=0", 0.0, (0.0,), "3*x^2"),
                Point("x^2", "x=-2", 4.0, (-4.0,), "integer exponent: negative base is fine"),
                Point("x^1.5", "x=0", 0.0, (0.0,), "1.5*0^0.5"),
                Point("x^0.5", "x=0", 0.0, (math.inf,), "0.5*0^-0.5"),
                Point("x^0.5", "x=-1", math.nan, (math.nan,), "real exponent, negative base: outside the domain"),
                Point("x^(-1)", "x=0", math.inf, (-math.inf,), "-1*0^-2"),
                Point("x^0", "x=0", 1.0, (0.0,), "x**0 is rewritten to 1 (0**0 = 1)"),
                Point("x^y", "x=0,y=0", 1.0, (math.nan, -math.inf), "0**0 = 1; 0*0^-1 = nan; 1*log(0)"),
                Point("x^y", "x=0,y=2", 0.0, (0.0, math.nan), "0*log(0) = nan (exactly 0: a run-time zero)"),
                Point("x^y", "x=0,y=0.5", 0.0, (math.inf, math.nan), "0.5*0^-0.5; 0*log(0)"),
                Point("x^y", "x=0,y=-1", math.inf, (-math.inf, -math.inf), "-1*0^-2; inf*log(0)"),
                Point("x^y", "x=-2,y=2", 4.0, (-4.0, math.nan), "log(-2) = nan: not differentiable in y"),
                Point("x^y", "x=-8,y=0.3333333333333333", math.nan, (math.nan, math.nan), "negative base, real exponent"),
            ),
            algebra=(
                Point("x^1", "x=-0.0", -0.0, (1.0,), "x**1 = x, IEEE-exact"),
                Point("x^0", "x=nan", 1.0, (0.0,), "x**0 = 1, IEEE-exact (pow(nan, 0) = 1)"),
            ),
            specialised=frozenset({2.0, -1.0}), aliases=("^",), right=True, c="pow({0}, {1})",
            numpy_literals=(("2.0", "np.square({0})"), ("(-1.0)", "np.reciprocal({0})"))),
        _op("sin", "np.sin({0})", _sympy("sin"), _call("graphc_sin"), lambda b, a, o: b.apply("cos", a[0]),
            smooth="smooth everywhere",
            function="sin", sympy_class="sin", domain=(_ANY,), c="sin({0})"),
        _op("cos", "np.cos({0})", _sympy("cos"), _call("graphc_cos"), lambda b, a, o: b.neg(b.apply("sin", a[0])),
            smooth="smooth everywhere",
            function="cos", sympy_class="cos", domain=(_ANY,), c="cos({0})"),
        _op("tan", "np.tan({0})", _sympy("tan"), _call("tan"), lambda b, a, o: b.add(b.const(1.0), _sq(b, o)),
            policy=(Point("tan(x)", "x=1.5707963267948966", 1.633123935319537e16, (2.6670937881135714e32,), "float π/2 is not the pole: 1 + tan^2"),),
            function="tan", sympy_class="tan", domain=((-1.2, 1.2),), c="tan({0})"),
        _op("asin", "np.arcsin({0})", _sympy("asin"), _call("asin"),
            lambda b, a, o: b.div(b.const(1.0), b.apply("sqrt", b.sub(b.const(1.0), _sq(b, a[0])))),
            policy=(
                Point("asin(x)", "x=1", math.pi / 2, (math.inf,), "1/sqrt(1 - 1)"),
                Point("asin(x)", "x=-1", -math.pi / 2, (math.inf,), "1/sqrt(1 - 1)"),
                Point("asin(x)", "x=2", math.nan, (math.nan,), "outside the domain"),
            ),
            function="asin", sympy_class="asin", names=("arcsin",), domain=(_UNIT,), c="asin({0})"),
        _op("acos", "np.arccos({0})", _sympy("acos"), _call("acos"),
            lambda b, a, o: b.div(b.const(-1.0), b.apply("sqrt", b.sub(b.const(1.0), _sq(b, a[0])))),
            policy=(
                Point("acos(x)", "x=1", 0.0, (-math.inf,), "-1/sqrt(1 - 1)"),
                Point("acos(x)", "x=-1", math.pi, (-math.inf,), "-1/sqrt(1 - 1)"),
            ),
            function="acos", sympy_class="acos", names=("arccos",), domain=(_UNIT,), c="acos({0})"),
        _op("atan", "np.arctan({0})", _sympy("atan"), _call("atan"),
            lambda b, a, o: b.div(b.const(1.0), b.add(b.const(1.0), _sq(b, a[0]))),
            smooth="smooth everywhere",
            function="atan", sympy_class="atan", names=("arctan",), domain=(_ANY,), c="atan({0})"),
        _op("sinh", "np.sinh({0})", _sympy("sinh"), _call("sinh"), lambda b, a, o: b.apply("cosh", a[0]),
            smooth="smooth; overflows to ±inf beyond |x| ≈ 710, with derivative cosh = inf",
            function="sinh", sympy_class="sinh", domain=(_ANY,), c="sinh({0})"),
        _op("cosh", "np.cosh({0})", _sympy("cosh"), _call("cosh"), lambda b, a, o: b.apply("sinh", a[0]),
            smooth="smooth; overflows to inf beyond |x| ≈ 710, with derivative sinh = ±inf",
            function="cosh", sympy_class="cosh", domain=(_ANY,), c="cosh({0})"),
        _op("tanh", "np.tanh({0})", _sympy("tanh"), _call("graphc_tanh"),
            lambda b, a, o: b.sub(b.const(1.0), _sq(b, o)),
            smooth="smooth; 1 - tanh^2 saturates to exactly 0",
            function="tanh", sympy_class="tanh", domain=(_ANY,), c="tanh({0})"),
        _op("exp", "np.exp({0})", _sympy("exp"), _call("graphc_exp"), lambda b, a, o: o,
            policy=(Point("exp(x)", "x=800", math.inf, (math.inf,), "overflow"),),
            function="exp", sympy_class="exp", domain=(_ANY,), c="exp({0})"),
        _op("log", "np.log({0})", _sympy("log"), _call("graphc_log"), lambda b, a, o: b.div(b.const(1.0), a[0]),
            policy=(
                Point("log(x)", "x=0", -math.inf, (math.inf,), "1/0"),
                Point("log(x)", "x=-0.0", -math.inf, (-math.inf,), "1/-0.0"),
                Point("log(x)", "x=-1", math.nan, (-1.0,), "outside the domain the rule 1/x still evaluates"),
            ),
            function="log", sympy_class="log", domain=(_POS,), names=("ln",), c="log({0})"),
        _op("sqrt", "np.sqrt({0})", _sympy("sqrt"), _call("llvm.sqrt.f64"), lambda b, a, o: b.div(b.const(0.5), o),
            policy=(
                Point("sqrt(x)", "x=0", 0.0, (math.inf,), "0.5/sqrt(0)"),
                Point("sqrt(x)", "x=-0.0", -0.0, (-math.inf,), "IEEE sqrt(-0.0) = -0.0, so 0.5/-0.0"),
                Point("sqrt(x)", "x=-1", math.nan, (math.nan,), "outside the domain"),
                Point("sqrt(x^2 + y^2)", "x=0,y=1", 1.0, (0.0, 1.0), "no singularity: exact, by construction"),
                Point("sqrt(x*x + y*y)", "x=0,y=1", 1.0, (0.0, 1.0), "no singularity: exact, by construction"),
                Point("sqrt(pow(x, 2) + y^2)", "x=0,y=1", 1.0, (0.0, 1.0), "no singularity: exact, by construction"),
                Point("sqrt(x^n + y^2)", "n=2,x=0,y=1", 1.0, (math.nan, 0.0, 1.0), "∂/∂n = 0.5*0*log(0): a run-time zero (exactly 0); ∂/∂x = n*x^(n-1), no 0/0"),
                Point("sqrt(x^2 + y^2)", "x=0,y=0", 0.0, (math.nan, math.nan), "a cone's tip: undefined (inf*0)"),
                Point("y*sqrt(x)", "x=0,y=0", 0.0, (math.nan, 0.0), "0*inf at run time: nan (exactly 0)"),
            ),
            function="sqrt", domain=(_POS,), c="sqrt({0})"),
        _op("abs", "np.abs({0})", _sympy("Abs"), _call("llvm.fabs.f64"), lambda b, a, o: b.apply("sign", a[0]),
            policy=(
                Point("abs(x)", "x=0", 0.0, (0.0,), "the midpoint of [-1, 1]"),
                Point("abs(x)", "x=-0.0", 0.0, (0.0,), "sign(-0.0) is 0"),
            ),
            function="abs", sympy_class="Abs", sympy_policy="Absolute", kink=True, domain=(_ANY,), c="fabs({0})"),
        _op("sign", "np.sign({0})", _sympy("sign"), _sign, None,
            function="sign", sympy_class="sign", kink=True, domain=(_ANY,), numpy_into="_sign({0}, out={out})",
            policy=(Point("sign(x)", "x=0", 0.0, (0.0,), "sign' is 0 wherever it exists; 0 at the jump"),),
            c="{0} > 0.0 ? 1.0 : {0} < 0.0 ? -1.0 : {0} != {0} ? {0} : 0.0"),
        _op("sigmoid", "1.0 / (1.0 + np.exp(-{0}))", lambda x: 1 / (1 + _sp().exp(-x)), _sigmoid,
            lambda b, a, o: b.mul(o, b.sub(b.const(1.0), o)),
            policy=(
                Point("sigmoid(x)", "x=-800", 0.0, (0.0,), "s*(1 - s), not exp(-x)/(1 + exp(-x))^2 = inf/inf"),
                Point("sigmoid(x)", "x=800", 1.0, (0.0,), "s*(1 - s)"),
            ),
            function="sigmoid", sympy_policy="Sigmoid", domain=(_ANY,), c="1.0 / (1.0 + exp(-{0}))"),
        _op("relu", "np.maximum({0}, 0.0)", lambda x: _sp().Max(x, 0), _relu,
            lambda b, a, o: b.apply("sign", o),
            policy=(
                Point("relu(x)", "x=0", 0.0, (0.0,), "JAX/PyTorch: relu'(0) = 0"),
                Point("relu(x)", "x=-0.0", 0.0, (0.0,), "np.maximum(-0.0, 0.0) is 0.0"),
            ),
            function="relu", sympy_policy="Relu", kink=True, domain=(_ANY,), c="{0} > 0.0 || {0} != {0} ? {0} : 0.0"),
        _op("softplus", "np.logaddexp(0.0, {0})", lambda x: _sp().log(1 + _sp().exp(x)), _softplus,
            lambda b, a, o: b.apply("sigmoid", a[0]),
            policy=(
                Point("softplus(x)", "x=800", 800.0, (1.0,), "sigmoid(x), not exp(x)/(1 + exp(x)) = inf/inf"),
                Point("softplus(x)", "x=-800", 0.0, (0.0,), "sigmoid(x)"),
            ),
            function="softplus", sympy_policy="Softplus", domain=(_ANY,), c="({0} > 0.0 ? {0} : 0.0) + log1p(exp(-fabs({0})))"),
        _op("max", "np.maximum({0}, {1})", _sympy("Max"), _max,
            _extreme_partial(0), _extreme_partial(1),
            function="max", commutative=True, sympy_class="Max", sympy_policy="Maximum", kink=True, domain=(_ANY, _ANY),
            policy=(
                Point("max(x, 0)", "x=0", 0.0, (0.5,), "a tie splits evenly; max(0, x) is the same node"),
                Point("(x + abs(x))/2", "x=0", 0.0, (0.5,), "(1 + abs'(0))/2: equal to max(x, 0), not relu"),
                Point("max(x, y)", "x=1,y=1", 1.0, (0.5, 0.5), "a tie splits evenly"),
                Point("max(x, y)", "x=0,y=-0.0", -0.0, (0.5, 0.5), "0.0 and -0.0 tie; np.maximum gives the second"),
                Point("max(x, x)", "x=2", 2.0, (1.0,), "the halves add up"),
                Point("max(x, y)", "x=-inf,y=-inf", -math.inf, (0.5, 0.5), "an infinite tie splits evenly: x == max(x, y), not the sign of inf - inf"),
                Point("max(x, y)", "x=nan,y=1", math.nan, (math.nan, math.nan), "NaN: neither operand equals the max, 0/0"),
                Point("max(max(x, y), z)", "x=1,y=1,z=1", 1.0, (1 / 3, 1 / 3, 1 / 3),
                      "nested maxima split a tie evenly among the tied leaves, as max of a vector does"),
            ),
            c="{0} > {1} || {0} != {0} ? {0} : {1}"),
        _op("min", "np.minimum({0}, {1})", _sympy("Min"), _min,
            _extreme_partial(0), _extreme_partial(1),
            function="min", commutative=True, sympy_class="Min", sympy_policy="Minimum", kink=True, domain=(_ANY, _ANY),
            policy=(
                Point("min(x, y)", "x=1,y=1", 1.0, (0.5, 0.5), "a tie splits evenly"),
                Point("min(x, 0)", "x=0", 0.0, (0.5,), "equal to (x - abs(x))/2"),
                Point("min(x, y)", "x=inf,y=inf", math.inf, (0.5, 0.5), "an infinite tie splits evenly"),
            ),
            c="{0} < {1} || {0} != {0} ? {0} : {1}"),
        _op("atan2", "np.arctan2({0}, {1})", _sympy("atan2"), _call("atan2"),
            lambda b, a, o: b.div(a[1], b.add(_sq(b, a[0]), _sq(b, a[1]))),
            lambda b, a, o: b.neg(b.div(a[0], b.add(_sq(b, a[0]), _sq(b, a[1])))),
            policy=(
                Point("atan2(x, y)", "x=0,y=0", 0.0, (math.nan, math.nan), "0/(0^2 + 0^2): undefined"),
                Point("atan2(x, y)", "x=0,y=-1", math.pi, (-1.0, -0.0), "the branch cut: finite, as the formula"),
                Point("atan2(x, y)", "x=-0.0,y=-1", -math.pi, (-1.0, 0.0), "the other side of the cut"),
            ),
            function="atan2", sympy_class="atan2", domain=(_POS, _POS), names=("arctan2",), c="atan2({0}, {1})"),
        _op("hypot", "np.hypot({0}, {1})", lambda x, y: _sp().sqrt(x**2 + y**2), _call("graphc_hypot"),
            lambda b, a, o: b.div(a[0], o), lambda b, a, o: b.div(a[1], o),
            policy=(
                Point("hypot(x, y)", "x=0,y=0", 0.0, (math.nan, math.nan), "x/hypot(x, y) = 0/0: a cone's tip"),
                Point("hypot(x, y)", "x=0,y=-2", 2.0, (0.0, -1.0), "no singularity"),
            ),
            function="hypot", commutative=True, domain=(_ANY, _POS), c="hypot({0}, {1})"),
        _op("erf", "_erf({0})", _sympy("erf"), _call("graphc_erf"), lambda b, a, o: _erf_partial(b, a, 1.0),
            smooth="smooth; 2/sqrt(pi)*exp(-x^2) underflows to exactly 0",
            function="erf", sympy_class="erf", domain=(_ANY,), c="erf({0})"),
        _op("erfc", "_erfc({0})", _sympy("erfc"), _call("graphc_erfc"), lambda b, a, o: _erf_partial(b, a, -1.0),
            smooth="smooth; its derivative underflows to exactly -0",
            function="erfc", sympy_class="erfc", domain=(_ANY,), c="erfc({0})"),
        _op("log10", "np.log10({0})", lambda x: _sp().log(x, 10), _call("graphc_log10"),
            lambda b, a, o: b.div(b.const(1.0 / math.log(10.0)), a[0]), function="log10", domain=(_POS,), c="log10({0})",
            policy=(Point("log10(x)", "x=0", -math.inf, (math.inf,), "(1/ln 10)/0"),)),
        _op("log2", "np.log2({0})", lambda x: _sp().log(x, 2), _call("graphc_log2"),
            lambda b, a, o: b.div(b.const(1.0 / math.log(2.0)), a[0]), function="log2", domain=(_POS,), c="log2({0})",
            policy=(Point("log2(x)", "x=0", -math.inf, (math.inf,), "(1/ln 2)/0"),)),
        _op("exp2", "np.exp2({0})", lambda x: 2**x, _call("graphc_exp2"),
            lambda b, a, o: b.mul(o, b.const(math.log(2.0))), function="exp2", domain=(_ANY,), c="exp2({0})",
            smooth="smooth; overflows to inf beyond x = 1024"),
        _op("expm1", "np.expm1({0})", lambda x: _sp().exp(x) - 1, _call("graphc_expm1"),
            lambda b, a, o: b.apply("exp", a[0]), function="expm1", domain=(_ANY,), c="expm1({0})",
            smooth="smooth; overflows to inf beyond x ≈ 709.8, with derivative exp = inf"),
        _op("log1p", "np.log1p({0})", lambda x: _sp().log(1 + x), _call("graphc_log1p"),
            lambda b, a, o: b.div(b.const(1.0), b.add(b.const(1.0), a[0])), function="log1p",
            policy=(Point("log1p(x)", "x=-1", -math.inf, (math.inf,), "1/(1 + -1)"),),
            domain=((-0.5, 3.0),), c="log1p({0})"),
        _op("cbrt", "np.cbrt({0})", _sympy("cbrt"), _call("graphc_cbrt"),
            lambda b, a, o: b.div(b.const(1.0), b.mul(b.const(3.0), _sq(b, o))), function="cbrt", sympy_policy="Cbrt",
            policy=(
                Point("cbrt(x)", "x=0", 0.0, (math.inf,), "1/(3*0^2)"),
                Point("cbrt(x)", "x=-8", -2.0, (1.0 / 12.0,), "the real cube root of a negative number"),
            ),
            domain=(_POS,), c="cbrt({0})"),
        _op("asinh", "np.arcsinh({0})", _sympy("asinh"), _call("graphc_asinh"),
            lambda b, a, o: b.div(b.const(1.0), b.apply("sqrt", b.add(_sq(b, a[0]), b.const(1.0)))),
            smooth="smooth everywhere",
            function="asinh", sympy_class="asinh", domain=(_ANY,), names=("arcsinh",), c="asinh({0})"),
        _op("acosh", "np.arccosh({0})", _sympy("acosh"), _call("graphc_acosh"),
            lambda b, a, o: b.div(b.const(1.0), b.apply("sqrt", b.sub(_sq(b, a[0]), b.const(1.0)))),
            policy=(
                Point("acosh(x)", "x=1", 0.0, (math.inf,), "1/sqrt(1 - 1)"),
                Point("acosh(x)", "x=0.5", math.nan, (math.nan,), "outside the domain"),
            ),
            function="acosh", sympy_class="acosh", domain=((1.2, 4.0),), names=("arccosh",), c="acosh({0})"),
        _op("atanh", "np.arctanh({0})", _sympy("atanh"), _call("graphc_atanh"),
            lambda b, a, o: b.div(b.const(1.0), b.sub(b.const(1.0), _sq(b, a[0]))),
            policy=(Point("atanh(x)", "x=1", math.inf, (math.inf,), "1/(1 - 1)"),),
            function="atanh", sympy_class="atanh", domain=(_UNIT,), names=("arctanh",), c="atanh({0})"),
        _op("floor", "np.floor({0})", _bridged("Floor"), _call("llvm.floor.f64"), None,
            policy=(Point("floor(x)", "x=1", 1.0, (0.0,), "derivative 0, also at the jump"),),
            function="floor", sympy_class="floor", sympy_policy="Floor", domain=(_ANY,), c="floor({0})"),
        _op("ceil", "np.ceil({0})", _bridged("Ceil"), _call("llvm.ceil.f64"), None,
            policy=(Point("ceil(x)", "x=-0.5", -0.0, (0.0,), "np.ceil(-0.5) is -0.0; derivative 0"),),
            function="ceil", sympy_class="ceiling", sympy_policy="Ceil", domain=(_ANY,), c="ceil({0})"),
        _cmp("lt", "<", "Lt", ufunc="less",
            policy=(
                Point("x < y", "x=1,y=1", 0.0, (0.0, 0.0), "a comparison is 1 or 0: derivative 0, also at the jump"),
                Point("x < 1", "x=nan", 0.0, (0.0,), "NaN compares false"),
                Point("x < y < z", "x=1,y=2,z=3", 1.0, (0.0, 0.0, 0.0), "Python's chaining: (x < y) and (y < z)"),
            ),
        ),
        _cmp("le", "<=", "Le", ufunc="less_equal",
            policy=(Point("x <= y", "x=1,y=1", 1.0, (0.0, 0.0), "derivative 0"),),
        ),
        _cmp("gt", ">", "Gt", ufunc="greater",
            policy=(Point("x > y", "x=1,y=1", 0.0, (0.0, 0.0), "derivative 0"),),
        ),
        _cmp("ge", ">=", "Ge", ufunc="greater_equal",
            policy=(Point("x >= 0", "x=-0.0", 1.0, (0.0,), "-0.0 equals 0"),),
        ),
        _cmp("eq", "==", "Eq", ufunc="equal", commutative=True,
            policy=(Point("x == y", "x=1,y=1", 1.0, (0.0, 0.0), "derivative 0"),),
        ),
        _cmp("ne", "!=", "Ne", ufunc="not_equal", commutative=True,
            policy=(Point("x != 1", "x=nan", 1.0, (0.0,), "NaN != anything is true"),),
        ),
        _op("and", "1.0 * (({0} != 0) & ({1} != 0))", lambda x, y: _indicator(_sp().And(_holds(x), _holds(y))),
            _and, None, None, infix="and", python="and", ufunc="logical_and", precedence=AND, sympy_class="And", commutative=True, domain=(_ANY, _ANY), c="({0} != 0.0) && ({1} != 0.0)",
            policy=(Point("x and y", "x=2,y=-0.0", 0.0, (0.0, 0.0), "nonzero is true; -0.0 is false"),)),
        _op("or", "1.0 * (({0} != 0) | ({1} != 0))", lambda x, y: _indicator(_sp().Or(_holds(x), _holds(y))),
            _or, None, None, infix="or", python="or", ufunc="logical_or", precedence=OR, sympy_class="Or", commutative=True, domain=(_ANY, _ANY), c="({0} != 0.0) || ({1} != 0.0)",
            policy=(Point("x or y", "x=nan,y=0", 1.0, (0.0, 0.0), "NaN is nonzero: true"),)),
        _op("not", "1.0 * ({0} == 0)", lambda x: _indicator(_sp().Not(_holds(x))), _not, None,
            policy=(Point("not x", "x=nan", 0.0, (0.0,), "NaN is true, so not NaN is 0"),),
            infix="not", precedence=NOT, sympy_class="Not", domain=(_ANY,), c="{0} == 0.0"),
        _op("where", "np.where(({0}) != 0, {1}, {2})", _sympy_where, _where,
            None, lambda b, a, o: b.apply("ne", a[0], b.const(0.0)), lambda b, a, o: b.apply("eq", a[0], b.const(0.0)),
            policy=(
                Point("where(x > 0, sqrt(x), 0)", "x=0", 0.0, (0.0,), "an unselected branch contributes exactly 0: sqrt'(0) = inf is never multiplied"),
                Point("where(x > 0, sqrt(x), 0)", "x=-1", 0.0, (0.0,), "sqrt(-1) = nan is not selected"),
                Point("where(x != 0, sin(x)/x, 1)", "x=0", 1.0, (0.0,), "0/0 is not selected"),
                Point("where(x > 0, x*log(x), 0)", "x=0", 0.0, (0.0,), "0*log(0) is not selected"),
                Point("where(x > -10, sqrt(x), 0)", "x=-1", math.nan, (math.nan,), "a NaN in the selected branch propagates"),
                Point("sqrt(where(x > 0, x, 0))", "x=0", 0.0, (0.0,), "the selected branch (0) has no path from x: sqrt'(0) = inf meets no run-time zero"),
                Point("where(x > 0, x, 2*x)", "x=0", 0.0, (2.0,), "at the switch, the selected branch's derivative"),
                Point("where(c, x, y)", "c=nan,x=1,y=2", 1.0, (0.0, 1.0, 0.0), "NaN is nonzero, so true (NumPy's where); nothing passes to the condition"),
                Point("clip(x, 0, 1)", "x=0", 0.0, (1.0,), "clip is where of its pieces: at a bound, the inside's"),
                Point("clip(x, 0, 1)", "x=1", 1.0, (1.0,), "at a bound, the inside's"),
                Point("clip(x, 0, 1)", "x=2", 1.0, (0.0,), "outside: the bound, a constant"),
            ),
            function="where", sympy_class="ITE", rewrite=_rewrite_where, gate=_where_gate, picks=_where_picks, domain=(_ANY, _ANY, _ANY), c="{0} != 0.0 ? {1} : {2}"),
    ]
})
# fmt: on


# --- block ops -----------------------------------------------------------------------------------
#
# A block op's value is not elementwise in its operands: ``@``, the reductions, the structural ops.
# Its entry holds its shape rule, its NumPy source (``emit``: an expression over the operand
# names, obeying the batch rule: an operand may carry extra leading axes, so an axis is written
# counted from the end and a vector operand of ``@`` is made a matrix explicitly), and its VJP and
# JVP, built from graph nodes. The helpers the emitted source calls are defined once, in
# BLOCK_HELPERS, which every generated module includes.

BLOCK_HELPERS = (
    ELEMENT_HELPERS
    + """
def _reshape(a, rank, shape):
    return a.reshape(a.shape[: a.ndim - rank] + shape)


def _transpose(a, perm):
    lead = a.ndim - len(perm)
    return a.transpose(tuple(range(lead)) + tuple(lead + p for p in perm))


def _broadcast(a, rank, shape):
    a = a[(Ellipsis,) + (None,) * (len(shape) - rank) + (slice(None),) * rank]
    return np.broadcast_to(a, a.shape[: a.ndim - len(shape)] + shape)


def _logsumexp(a, axes, keepdims):
    top = np.max(a, axis=axes, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    total = np.log(np.sum(np.exp(a - top), axis=axes, keepdims=True)) + top
    return total if keepdims else np.squeeze(total, axis=axes)


def _unindex(g, index, rank, shape):
    out = np.zeros(g.shape[: g.ndim - rank] + shape)
    out[index] = g
    return out


def _shift(a, axes):
    top = np.max(a, axis=axes, keepdims=True)
    return np.where(np.isfinite(top), top, 0.0)


def _count(a, axes):
    return np.float64(math.prod(a.shape[k] for k in axes))


def _sum_rows(a, keepdims):
    # np.sum(a, axis=-1) of short rows, as a matrix-vector product: BLAS sums them several times
    # faster than NumPy's reduction, which runs its loop once per row
    total = a @ np.ones(a.shape[-1])
    return total[..., None] if keepdims else total


def _sum_columns(a, keepdims):
    # np.sum(a, axis=-2) of a stack of matrices, as a vector-matrix product: NumPy's own sum adds
    # one row after another (not pairwise); BLAS, with partial sums down each column, is faster
    total = np.ones(a.shape[-2]) @ a
    return total[..., None, :] if keepdims else total
"""
)


BLOCK_HELPERS += "\n\n" + cv.HELPERS + "\n\n" + mk.HELPERS


def block_helpers() -> dict[str, Any]:
    """The helpers of BLOCK_HELPERS, defined in a namespace with ``np`` and ``math`` (once)."""
    if not _HELPERS:
        import math

        _HELPERS.update(np=np, math=math)
        exec(BLOCK_HELPERS, _HELPERS)  # noqa: S102 - this module's own constant source
    return _HELPERS


_HELPERS: dict[str, Any] = {}


def _negative(axes: tuple[int, ...], rank: int) -> str:
    """Axes 0..rank-1 as the source of a tuple of negative axes (batch axes come before)."""
    return "(" + "".join(f"{a - rank}, " for a in axes).rstrip(" ") + ")"


def _axes_params(shape: Shape, axis: int | tuple[int, ...] | None, keepdims: bool = False) -> Any:
    """A reduction's params from an ``axis`` argument (None: all axes; negative from the end)."""
    from graphc.shapes import axis as one_axis

    if axis is None:
        axes = tuple(range(len(shape)))
    else:
        items = axis if isinstance(axis, tuple) else (axis,)
        axes = tuple(sorted({one_axis(k, len(shape), shape) for k in items}))
    return (axes, keepdims)


def _reduced_shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
    (shape,) = shapes
    axes, keepdims = params
    for a in axes:
        if not 0 <= a < len(shape):
            raise ShapeError(f"axis {a} is out of range for shape {shape_text(shape)}")
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _kept(b: Graph, node: int, shape: Shape, params: Any) -> int:
    """A reduction's result ``node`` with its reduced axes back as 1s (keepdims), for broadcasting
    against the operand of shape ``shape``."""
    axes, keepdims = params
    if keepdims or not axes:
        return node
    return b.apply("reshape", node, params=tuple(1 if i in axes else d for i, d in enumerate(shape)))


def reduce_to(b: Graph, g: int, shape: Shape) -> int:
    """``g`` summed over the axes it was broadcast along to reach it from ``shape``: the adjoint of
    an operand of an elementwise op (PyTensor's Elemwise pattern)."""
    have = b.shape(g)
    if have == shape:
        return g
    lead = len(have) - len(shape)
    if lead > 0:
        g = b.apply("sum", g, params=(tuple(range(lead)), False))
    ones = tuple(i for i, d in enumerate(shape) if d == 1 and b.shape(g)[i] != 1)
    if ones:
        g = b.apply("sum", g, params=(ones, True))
    return g


def broadcast_to(b: Graph, node: int, shape: Shape) -> int:
    """``node`` broadcast to ``shape`` (itself when it has that shape already)."""
    return node if b.shape(node) == shape else b.apply("broadcast", node, params=shape)


def _summed(b: Graph, terms: list[int | None]) -> int | None:
    total = None
    for term in terms:
        if term is not None:
            total = term if total is None else b.add(total, term)
    return total


def _weighted_jvp(weights: Callable[[Graph, tuple[int, ...], int, Any], int]) -> StackedJvp:
    """The JVP of a reduction that is the sum of the tangent times ``weights`` along its axes (a
    logsumexp's softmax, a max's 1/k on its ties), on tangents with leading axes ``lead``."""

    def jvp(
        b: Graph, args: tuple[int, ...], out: int, params: Any, t: tuple[int | None, ...], lead: Shape
    ) -> int | None:
        if t[0] is None:
            return None
        return b.apply(
            "sum", b.mul(t[0], weights(b, args, out, params)), params=_stacked_reduction(params, lead)
        )

    return jvp


def _unstacked_jvp(jvp: StackedJvp) -> Jvp:
    """A JVP on plain tangents: the stacked one with no leading axes."""
    return lambda b, args, out, params, t: jvp(b, args, out, params, t, ())


# matmul: NumPy's matmul on 1-D and 2-D operands -------------------------------------------------


def _matmul_shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
    a, b = shapes
    if not a or not b or len(a) > 2 or len(b) > 2:
        raise ShapeError(f"cannot matmul {shape_text(a)} by {shape_text(b)}: '@' takes 1-D and 2-D operands")
    inner = b[0] if len(b) == 1 else b[-2]
    if a[-1] != inner:
        raise ShapeError(f"cannot matmul {shape_text(a)} by {shape_text(b)}: {a[-1]} != {inner}")
    return a[:-1] + (b[-1:] if len(b) == 2 else ())


def _matmul_emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    ranks = (len(shapes[0]), len(shapes[1]))
    if ranks == (2, 2):
        return f"{a[0]} @ {a[1]}"
    if ranks == (2, 1):
        return f"({a[0]} @ {a[1]}[..., None])[..., 0]"
    if ranks == (1, 2):
        return f"({a[0]}[..., None, :] @ {a[1]})[..., 0, :]"
    return f"np.einsum('...i,...i->...', {a[0]}, {a[1]})"


def _outer(b: Graph, x: int, y: int) -> int:
    """``x[:, None] * y`` for vectors x and y."""
    return b.mul(b.apply("reshape", x, params=(*b.shape(x), 1)), y)


def _matmul_vjp(b: Graph, args: tuple[int, ...], out: int, params: Any, g: int) -> tuple[int | None, ...]:
    x, y = args
    ranks = (len(b.shape(x)), len(b.shape(y)))
    if ranks == (2, 2):
        return _matmul(b, g, _transposed(b, y)), _matmul(b, _transposed(b, x), g)
    if ranks == (2, 1):
        return _outer(b, g, y), _matmul(b, g, x)
    if ranks == (1, 2):
        return _matmul(b, y, g), _outer(b, x, g)
    return b.mul(g, y), b.mul(g, x)


def _matmul_jvp(
    b: Graph, args: tuple[int, ...], out: int, params: Any, t: tuple[int | None, ...]
) -> int | None:
    x, y = args
    return _summed(b, [t[0] and _matmul(b, t[0], y), t[1] and _matmul(b, x, t[1])])


def _matmul(b: Graph, x: int, y: int) -> int:
    return b.apply("matmul", x, y)


def _transposed(b: Graph, x: int) -> int:
    return b.apply("transpose", x, params=tuple(range(len(b.shape(x)) - 1, -1, -1)))


# reductions -------------------------------------------------------------------------------------


# A row at most this long is summed by BLAS (_sum_rows): NumPy's sum of it is then not yet
# pairwise, but runs eight partial sums, as BLAS's dot product does.
SHORT_ROW = 128


def _sum_emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    """A sum over the last axis of rows of a known, short length, or over the second-to-last axis
    of matrices of at least two columns (where NumPy's own sum runs down each column, not pairwise):
    a product with a vector of ones; any other as ``np.sum``."""
    axes, keepdims = params
    shape = shapes[0]
    if axes == (len(shape) - 1,) and isinstance(shape[-1], int) and shape[-1] <= SHORT_ROW:
        return f"_sum_rows({a[0]}, {keepdims})"
    if len(shape) >= 2 and axes == (len(shape) - 2,) and isinstance(shape[-1], int) and shape[-1] >= 2:
        return f"_sum_columns({a[0]}, {keepdims})"
    return f"np.sum({a[0]}, axis={_negative(axes, len(shape))}{', keepdims=True' * keepdims})"


def _sum_vjp(b: Graph, args: tuple[int, ...], out: int, params: Any, g: int) -> tuple[int | None, ...]:
    shape = b.shape(args[0])
    kept = g if b.shape(g) == () else _kept(b, g, shape, params)  # a scalar broadcasts as it is
    return (broadcast_to(b, kept, shape),)


def _sum_jvp(b: Graph, args: tuple[int, ...], out: int, params: Any, t: tuple[int | None, ...]) -> int | None:
    return None if t[0] is None else b.apply("sum", t[0], params=params)


def _logsumexp_emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    axes, keepdims = params
    return f"_logsumexp({a[0]}, {_negative(axes, len(shapes[0]))}, {keepdims})"


def _softmax_of(b: Graph, args: tuple[int, ...], out: int, params: Any) -> int:
    """``exp(x - logsumexp(x))``: the weights of a logsumexp's operand in its derivative. Where
    every element is -inf the logsumexp is -inf and the weights are 0 (``exp(-inf - 0)``), not
    ``exp(-inf + inf) = nan``: each element stays -inf under any finite change, and so does the
    logsumexp. Where an element is +inf the logsumexp is +inf, the max, and the weights are the
    max's (1/k on each of the k infinite elements; ``exp(inf - inf)`` would be NaN); a NaN makes
    them NaN. The scalar form (``_logsumexp_chain``) takes the same branches."""
    x = args[0]
    top = _kept(b, out, b.shape(x), params)
    shift = b.apply("where", b.apply("eq", top, b.const(-math.inf)), b.const(0.0), top)
    finite = b.apply("exp", b.sub(x, shift))
    infinite = _extreme_weights(b, args, out, params)
    return b.apply("where", b.apply("eq", top, b.const(math.inf)), infinite, finite)


def _logsumexp_vjp(b: Graph, args: tuple[int, ...], out: int, params: Any, g: int) -> tuple[int | None, ...]:
    x = args[0]
    return (b.mul(_kept(b, g, b.shape(x), params), _softmax_of(b, args, out, params)),)


_logsumexp_stacked_jvp = _weighted_jvp(_softmax_of)
_logsumexp_jvp = _unstacked_jvp(_logsumexp_stacked_jvp)


def _extreme_emit(function: str) -> Emit:
    def emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
        axes, keepdims = params
        return f"np.{function}({a[0]}, axis={_negative(axes, len(shapes[0]))}{', keepdims=True' * keepdims})"

    return emit


def _extreme_weights(b: Graph, args: tuple[int, ...], out: int, params: Any) -> int:
    """1/k on each of the k elements equal to the max (or min) ``out``, else 0: ties split evenly,
    as the two-operand ``max``'s partials do, infinite ties too; a NaN makes them 0/0, NaN."""
    x = args[0]
    mask = b.apply("eq", x, _kept(b, out, b.shape(x), params))
    count = b.apply("sum", mask, params=(params[0], True))
    return b.div(mask, count)


def _extreme_vjp(b: Graph, args: tuple[int, ...], out: int, params: Any, g: int) -> tuple[int | None, ...]:
    x = args[0]
    return (b.mul(_kept(b, g, b.shape(x), params), _extreme_weights(b, args, out, params)),)


_extreme_stacked_jvp = _weighted_jvp(_extreme_weights)
_extreme_jvp = _unstacked_jvp(_extreme_stacked_jvp)


def _shift_shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
    return _reduced_shape(shapes, (params, True))


def _shift_emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    return f"_shift({a[0]}, {_negative(params, len(shapes[0]))})"


def _count_shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
    _reduced_shape(shapes, (params, False))
    return ()


def _count_emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    return f"_count({a[0]}, {_negative(params, len(shapes[0]))})"


# structure --------------------------------------------------------------------------------------


def _same_size(a: Shape, b: Shape) -> bool:
    def key(shape: Shape) -> tuple[int, list[str]]:
        return math.prod(d for d in shape if isinstance(d, int)), sorted(
            d for d in shape if isinstance(d, str)
        )

    return key(a) == key(b)


def _reshape_shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
    if not _same_size(shapes[0], params):
        raise ShapeError(f"cannot reshape {shape_text(shapes[0])} to {shape_text(params)}: the sizes differ")
    return tuple(params)


def _reshape_emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    return f"_reshape({a[0]}, {len(shapes[0])}, {shape_source(params)})"


def _linear_vjp(inverse: Callable[[Graph, int, int, Any], int]) -> Vjp:
    """The VJP of a linear op of one operand, from a rule building its transpose on ``g``."""

    def vjp(b: Graph, args: tuple[int, ...], out: int, params: Any, g: int) -> tuple[int | None, ...]:
        return (inverse(b, g, args[0], params),)

    return vjp


# stacked rules (graphc.diff.stacked) ----------------------------------------------------------------


def _stacked_reduction(params: Any, lead: Shape) -> Any:
    axes, keepdims = params
    return (tuple(a + len(lead) for a in axes), keepdims)


def _stacked_transpose(
    b: Graph, a: tuple[int, ...], which: tuple[bool, ...], params: Any, lead: Shape
) -> int:
    """The transpose of each slice. A reversal of the axes (the one the language spells) is built
    from reversals: the whole stack's, then the stacked axis brought back to the front as a 2-D
    transpose; another permutation is one transpose that leaves the stacked axes in place."""
    x, rank = a[0], len(params)
    if rank <= 1:
        return x
    if tuple(params) != tuple(range(rank - 1, -1, -1)) or len(lead) != 1:
        return b.apply("transpose", x, params=tuple(range(len(lead))) + tuple(p + len(lead) for p in params))
    shape = b.shape(x)[1:]
    whole = _transposed(b, x)  # reversed slices, the stacked axis last
    flat = b.apply("reshape", whole, params=(size(shape), lead[0]))
    return b.apply("reshape", _transposed(b, flat), params=lead + shape[::-1])


def _restacked(name: str, rule: Callable[[Any, Shape], Any]) -> Stacked:
    """The stacked rule of a one-operand op that is itself on the stacked operand, with the params
    ``rule`` gives."""

    def stacked(b: Graph, a: tuple[int, ...], which: tuple[bool, ...], params: Any, lead: Shape) -> int:
        return b.apply(name, a[0], params=rule(params, lead))

    return stacked


def _stacked_broadcast(
    b: Graph, a: tuple[int, ...], which: tuple[bool, ...], params: Any, lead: Shape
) -> int:
    """The operand given 1s after ``lead`` up to the target's rank, then broadcast to ``lead + params``."""
    shape = b.shape(a[0])[len(lead) :]
    lined = (1,) * (len(params) - len(shape)) + shape
    x = a[0] if lined == shape else b.apply("reshape", a[0], params=lead + lined)
    return broadcast_to(b, x, lead + tuple(params))


def _stacked_unindex(params: Any, lead: Shape) -> Any:
    index, shape = params
    return ((None,) * len(lead) + tuple(index), lead + tuple(shape))


def _stacked_count(b: Graph, a: tuple[int, ...], which: tuple[bool, ...], params: Any, lead: Shape) -> int:
    """The count along the axes, which the stacked axes do not change, once per stacked slice."""
    return broadcast_to(b, b.apply("count", a[0], params=tuple(k + len(lead) for k in params)), lead)


def _stacked_matmul(
    b: Graph, a: tuple[int, ...], which: tuple[bool, ...], params: Any, lead: Shape, flag: int | None = None
) -> int:
    """``x @ y`` on each slice ``i`` of the stacked operands (one leading axis of length n) as one
    2-D matmul: a stacked left operand's rows are the slices' rows laid end to end, a stacked right
    operand's columns its slices' columns; both stacked: the products summed over the inner axis,
    the same multiplications as n matmuls. ``flag`` (one stacked operand only): where that operand
    is live; its dead elements are structural zeros, whose terms the product skips (graphc.masked).
    An operand with a named dimension cannot be laid end to end in a shape: Unstackable (that input
    goes one element at a time)."""
    assert len(lead) == 1, lead
    n = int(lead[0])  # the stacked axis is concrete
    x, y = a
    sx = b.shape(x)[1:] if which[0] else b.shape(x)
    sy = b.shape(y)[1:] if which[1] else b.shape(y)
    out = lead + _matmul_shape((sx, sy), None)
    if not all(isinstance(d, int) for d in sx + sy):
        from graphc.diff.stacked import Unstackable

        raise Unstackable(sx + sy)
    if which[0] and which[1]:
        left = _reshaped(b, x, lead + sx + (1,) * (len(sy) - 1))
        right = _reshaped(b, y, lead + (1,) * (len(sx) - 1) + sy)
        return b.apply("sum", b.mul(left, right), params=((len(sx),), False))
    if which[0]:
        rows = (
            (lambda z: z)
            if len(sx) == 1
            else (lambda z: b.apply("reshape", z, params=(n * int(sx[0]), sx[1])))
        )
        return _reshaped(b, _laid(b, rows, x, flag, y), out)
    if len(sy) == 1:  # the slices are vectors: each row of y's stack times x
        return _laid(b, lambda z: z, y, flag, x if len(sx) == 1 else _transposed(b, x))
    # the slices are matrices k x m: their transposes' rows, laid end to end (j, i) by 2-D
    # transposes only (the ones the language spells), times x's rows, back to (i, ..., j)
    k, m = int(sy[0]), int(sy[1])

    def columns(z: int) -> int:
        return b.apply("reshape", _transposed(b, b.apply("reshape", z, params=(n * k, m))), params=(m * n, k))

    product = _laid(b, columns, y, flag, x if len(sx) == 1 else _transposed(b, x))
    across = b.apply("reshape", product, params=(m, n * math.prod(int(d) for d in sx[:-1])))
    return _reshaped(b, _transposed(b, across), out)


def _laid(b: Graph, lay: Callable[[int], int], stacked: int, flag: int | None, other: int) -> int:
    """``lay(stacked) @ other``, skipping the terms of ``stacked``'s dead elements if it has a flag."""
    if flag is None:
        return _matmul(b, lay(stacked), other)
    return mk.masked(b, lay(stacked), lay(broadcast_to(b, flag, b.shape(stacked))), other)


def _reshaped(b: Graph, x: int, shape: Shape) -> int:
    return x if b.shape(x) == shape else b.apply("reshape", x, params=shape)


def _diagonal_sum(b: Graph, d: int, shape: Shape, source: Shape, params: Any) -> int | None:
    """A sum over every axis of an operand whose stacked tangent is ``E * d``: slice ``i`` sums
    the one nonzero column, so the result is ``d`` summed to the source's shape, flattened (no
    n x n stack, and no 0 * inf off the diagonal)."""
    axes, keepdims = params
    if len(axes) != len(shape):
        return None
    total = reduce_to(b, broadcast_to(b, d, shape), source)
    return b.apply("reshape", total, params=(size(source),) + (1,) * len(shape) * keepdims)


def _linear_jvp(name: str) -> Jvp:
    """The JVP of a linear op of one operand: the op itself on the tangent."""

    def jvp(b: Graph, args: tuple[int, ...], out: int, params: Any, t: tuple[int | None, ...]) -> int | None:
        return None if t[0] is None else b.apply(name, t[0], params=params)

    return jvp


def _transpose_shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
    (shape,) = shapes
    if sorted(params) != list(range(len(shape))):
        raise ShapeError(f"cannot transpose {shape_text(shape)} by axes {list(params)}")
    return tuple(shape[p] for p in params)


def _transpose_emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    if tuple(params) == (1, 0):
        return f"np.swapaxes({a[0]}, -1, -2)"
    return f"_transpose({a[0]}, {tuple(params)!r})"


def _broadcast_shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
    if broadcast([shapes[0], params], "broadcast") != tuple(params) or len(shapes[0]) > len(params):
        raise ShapeError(f"cannot broadcast {shape_text(shapes[0])} to {shape_text(params)}")
    return tuple(params)


def _broadcast_emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    return f"_broadcast({a[0]}, {len(shapes[0])}, {shape_source(params)})"


def _index_shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
    (shape,) = shapes
    if len(params) > len(shape):
        raise ShapeError(f"too many indices ({len(params)}) for shape {shape_text(shape)}")
    out: list[Any] = []
    for item, dim in zip(params, shape, strict=False):
        if isinstance(item, tuple):
            out.append(len(range(*item)) if item[1] is not None else len(range(item[0], -1, item[2])))
        elif item is None:
            out.append(dim)
    return tuple(out) + shape[len(params) :]


def index_params(shape: Shape, items: list[int | tuple[int | None, int | None, int | None] | None]) -> Any:
    """An ``index`` node's params from the text's items (an int, a slice's ``(start, stop, step)``
    with None where omitted, or None for ``:``), checked against ``shape`` and normalised."""
    if len(items) > len(shape):
        raise ShapeError(f"too many indices ({len(items)}) for shape {shape_text(shape)}")
    out: list[Any] = []
    for item, dim in zip(items, shape, strict=False):
        if item is None or (isinstance(item, tuple) and item == (None, None, None)):
            out.append(None)
            continue
        if isinstance(dim, str):
            raise ShapeError(f"cannot index the named dimension '{dim}' of {shape_text(shape)} (only ':')")
        if isinstance(item, int):
            if not -dim <= item < dim:
                raise ShapeError(
                    f"index {item} is out of range for a dimension of {dim} in {shape_text(shape)}"
                )
            out.append(item % dim)
            continue
        if item[2] == 0:
            raise ShapeError("a slice step cannot be zero")
        r = range(*slice(*item).indices(dim))
        out.append((r.start, r.stop if r.stop >= 0 else None, r.step))
    return tuple(out)


def _index_source(params: Any, rank: int) -> str:
    parts = ["..."]
    for item in params:
        if item is None:
            parts.append(":")
        elif isinstance(item, tuple):
            start, stop, step = item
            parts.append(f"{start}:{'' if stop is None else stop}:{step}")
        else:
            parts.append(str(item))
    parts += [":"] * (rank - len(params))
    return ", ".join(parts)


def _index_emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    return f"{a[0]}[{_index_source(params, len(shapes[0]))}]"


def _slice_object(params: Any, rank: int) -> str:
    parts = ["Ellipsis"]
    for item in params:
        if item is None:
            parts.append("slice(None)")
        elif isinstance(item, tuple):
            parts.append(f"slice{item!r}")
        else:
            parts.append(str(item))
    parts += ["slice(None)"] * (rank - len(params))
    return "(" + ", ".join(parts) + ")"


def _unindex_shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
    index, shape = params
    if _index_shape((shape,), index) != shapes[0]:
        raise ShapeError(f"cannot place {shape_text(shapes[0])} at an index of {shape_text(shape)}")
    return tuple(shape)


def _unindex_emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    index, shape = params
    return f"_unindex({a[0]}, {_slice_object(index, len(shape))}, {len(shapes[0])}, {shape_source(shape)})"


# path counts ------------------------------------------------------------------------------------


def _index_tuple(params: Any) -> tuple[Any, ...]:
    return tuple(slice(*i) if isinstance(i, tuple) else slice(None) if i is None else i for i in params)


def _paths_matmul(c: list[Any], params: Any, shape: tuple[int, ...]) -> Any:
    a, b = c
    ones_a, ones_b = np.ones(a.shape, dtype=object), np.ones(b.shape, dtype=object)
    return np.asarray(np.matmul(a, ones_b) + np.matmul(ones_a, b), dtype=object).reshape(shape)


def _paths_reduced(c: list[Any], params: Any, shape: tuple[int, ...]) -> Any:
    return np.asarray(np.sum(c[0], axis=params[0], keepdims=params[1]), dtype=object).reshape(shape)


def _paths_logsumexp(c: list[Any], params: Any, shape: tuple[int, ...]) -> Any:
    # the scalarisation where(m finite, m + log(sum(exp(x_i - m))), where(m == -inf, -inf, m)):
    # with C the paths reaching the n reduced elements, the max m has C, the sum (n + 1) C, the
    # finite branch (n + 2) C, the other C (the conditions carry no derivative): (n + 3) C
    n = math.prod(c[0].shape[a] for a in params[0])
    return (n + 3) * _paths_reduced(c, params, shape)


def _paths_shift(c: list[Any], params: Any, shape: tuple[int, ...]) -> Any:
    # its scalarisation's paths (a max chain): the paths method enumerates them, though every
    # product through them sums to zero, so max_paths must count them
    return _paths_reduced(c, (params, True), shape)


def _paths_none(c: list[Any], params: Any, shape: tuple[int, ...]) -> Any:
    return np.zeros(shape, dtype=object)  # count: no derivative, so no path


def _paths_moved(c: list[Any], params: Any, shape: tuple[int, ...]) -> Any:
    return c[0].reshape(shape)  # reshape: each element's paths go where its value goes


def _paths_transposed(c: list[Any], params: Any, shape: tuple[int, ...]) -> Any:
    return np.transpose(c[0], params)


def _paths_broadcast(c: list[Any], params: Any, shape: tuple[int, ...]) -> Any:
    part = c[0].reshape((1,) * (len(shape) - c[0].ndim) + c[0].shape)
    return np.broadcast_to(part, shape).copy()


def _paths_index(c: list[Any], params: Any, shape: tuple[int, ...]) -> Any:
    return np.asarray(c[0][_index_tuple(params)], dtype=object).reshape(shape)


def _paths_unindex(c: list[Any], params: Any, shape: tuple[int, ...]) -> Any:
    out = np.zeros(shape, dtype=object)
    out[_index_tuple(params[0])] = c[0]
    return out


def paths_elementwise(c: list[Any], shape: tuple[int, ...]) -> Any:
    """An elementwise op: one edge per slot, so the operands' counts add (broadcast)."""
    total = np.zeros(shape, dtype=object)
    for part in c:
        total = total + part
    return total


# scalarisation ---------------------------------------------------------------------------------
#
# Each rule works on object arrays of scalar node ids (NumPy indexing does the re-wiring) and builds
# scalar nodes through the builder, left to right, so equal elements hash-cons to one node.


def _chain(b: Graph, name: str, nodes: list[int]) -> int:
    """``nodes`` combined left to right by the elementwise op ``name``: a sum or a max chain."""
    spec = OPS[name]
    total = nodes[0]
    for node in nodes[1:]:
        total = b.applied(spec, (total, node))
    return total


def _scalar_matmul(b: Graph, a: tuple[Any, ...], params: Any) -> Any:
    x, y = a
    left = x.reshape(1, -1) if x.ndim == 1 else x
    right = y.reshape(-1, 1) if y.ndim == 1 else y
    out = np.empty((left.shape[0], right.shape[1]), dtype=object)
    for i, j in np.ndindex(out.shape):
        out[i, j] = _chain(b, "add", [b.mul(p, q) for p, q in zip(left[i], right[:, j], strict=True)])
    return out.reshape(_matmul_shape((x.shape, y.shape), params))


def _logsumexp_chain(b: Graph, nodes: list[int]) -> int:
    """``m + log(sum(exp(x - m)))`` with ``m`` the max, where ``m`` is finite: no overflow at 1000.
    Where it is not, the block rules' values and derivatives, with no ``inf - inf`` taken: at
    -inf (every element -inf) the constant -inf (derivative 0), else ``m`` itself (+inf: the max's
    derivative, 1/k on its k infinite elements; NaN: NaN). The conditions carry no derivative, so
    the paths are the max's and the shifted terms' (``_paths_logsumexp``)."""
    top = _chain(b, "max", nodes)
    terms = [b.apply("exp", b.sub(node, top)) for node in nodes]
    shifted = b.add(top, b.apply("log", _chain(b, "add", terms)))
    largest = b.const(_LARGEST)
    infinite = b.apply("where", b.apply("lt", top, b.neg(largest)), b.const(-math.inf), top)
    return b.apply("where", _finite(b, top), shifted, infinite)


# The largest float64. The scalar forms test for infinities against it (``x < -_LARGEST`` is
# ``x == -inf``), not against inf: SymPy, whose real symbols are finite, would decide ``x == -inf``
# false and drop the test, and the symbolic method works on these forms too.
_LARGEST = float(np.finfo(np.float64).max)


def _finite(b: Graph, x: int) -> int:
    """``abs(x) <= _LARGEST``: 1 where ``x`` is finite, 0 at an infinity or NaN (NumPy's isfinite)."""
    return b.apply("le", b.apply("abs", x), b.const(_LARGEST))


def _scalar_reduction(fold: Callable[[Graph, list[int]], int]) -> ScalarRule:
    """A reduction's scalarisation: ``fold`` over the reduced axes' elements, for every element
    kept."""

    def rule(b: Graph, a: tuple[Any, ...], params: Any) -> Any:
        (x,) = a
        axes = params[0]
        kept = [i for i in range(x.ndim) if i not in axes]
        moved = np.transpose(x, kept + list(axes))
        rows = moved.reshape(moved.shape[: len(kept)] + (-1,))
        out = np.empty(rows.shape[:-1], dtype=object)
        for index in np.ndindex(out.shape):
            out[index] = fold(b, list(rows[index]))
        return out.reshape(_reduced_shape((x.shape,), params))

    return rule


def _scalar_shift(b: Graph, a: tuple[Any, ...], params: Any) -> Any:
    # the max along the axes (0 where not finite, as ``_shift``), kept as 1s: to ``dp`` and
    # ``forward`` a constant (no VJP or JVP), but in a scalar graph it is built from the elements,
    # so its paths exist (``_paths_shift``; the where's condition carries none)
    def fold(b: Graph, nodes: list[int]) -> int:
        top = _chain(b, "max", nodes)
        return b.apply("where", _finite(b, top), top, b.const(0.0))

    return _scalar_reduction(fold)(b, a, (params, True))


def _scalar_count(b: Graph, a: tuple[Any, ...], params: Any) -> Any:
    return np.asarray(b.const(float(math.prod(a[0].shape[k] for k in params))), dtype=object)


def _scalar_unindex(b: Graph, a: tuple[Any, ...], params: Any) -> Any:
    out = np.full(params[1], b.const(0.0), dtype=object)
    out[(*_index_tuple(params[0]), Ellipsis)] = a[0]  # with ..., an element takes a 0-d's content
    return out


# spellings --------------------------------------------------------------------------------------


def _literal(value: Any) -> str:
    """A keyword's value as the language writes it: ``2``, or a list ``[0, 2]``, ``[3, n]``."""
    return f"[{', '.join(map(str, value))}]" if isinstance(value, tuple) else str(value)


def _axes_text(axes: tuple[int, ...]) -> str:
    return str(axes[0]) if len(axes) == 1 else _literal(tuple(axes))


def _spell_reduced(function: str) -> Spell:
    def spell(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
        axes, keepdims = params
        every = tuple(axes) == tuple(range(len(shapes[0])))
        axis = "" if every else f", axis={_axes_text(axes)}"
        return f"{function}({a[0]}{axis}{', keepdims=1' * bool(keepdims)})"

    return spell


def _keywords_spell(name: str, keys: tuple[str, ...], whole: bool) -> Spell:
    """The spelling of an op the language has no function for: ``name(operands, key=value...)``,
    the params' fields by ``keys`` in order (``whole``: the params are the one key's value)."""

    def spell(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
        values = (params,) if whole else params
        fields = ", ".join(
            f"{key}={_axes_text(v) if key == 'axis' else _literal(v)}"
            for key, v in zip(keys, values, strict=True)
        )
        return f"{name}({', '.join(a)}, {fields})"

    return spell


# what each keyword of a spelled op holds: axes (an integer or a list of them), an integer, or a
# list of dimensions (integers >= 1 and names)
_KEYWORD_VALUES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "axis": ("an integer or a list of integers", lambda v: all(type(d) is int for d in v)),
    "stride": ("a whole number >= 1", lambda v: type(v) is int and v >= 1),
    "window": ("a whole number >= 1", lambda v: type(v) is int and v >= 1),
    "padding": ("a whole number >= 0", lambda v: type(v) is int and v >= 0),
    "shape": ("a list of dimensions", lambda v: isinstance(v, tuple) and all(_dimension(d) for d in v)),
    "at": ("a list of indices and slices", lambda v: isinstance(v, tuple) and all(_index_item(i) for i in v)),
    "size": (
        "a list of two whole numbers",
        lambda v: isinstance(v, tuple) and len(v) == 2 and all(type(d) is int and d >= 1 for d in v),
    ),
}


def _index_item(item: Any) -> bool:
    """Whether ``item`` is an index item as the parser reads it: an int, a slice's bounds, or None."""
    if isinstance(item, tuple):
        return len(item) == 3 and all(b is None or type(b) is int for b in item)
    return item is None or type(item) is int


def _unindex_call(literals: tuple[int, ...], keywords: dict[str, Any]) -> Any:
    """``unindex(g, at=[1:3:1, :], shape=[4, 3])``: the index into a tensor of ``shape``, normalised."""
    at, shape = _keywords_call("unindex", ("at", "shape"), False)(literals, keywords)
    return index_params(shape, list(at)), shape


def _spell_unindex(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    at = ", ".join(_index_source(params[0], len(params[0])).split(", ")[1:])
    return f"unindex({a[0]}, at=[{at}], shape={_literal(tuple(params[1]))})"


def _dimension(d: Any) -> bool:
    return isinstance(d, str) or (type(d) is int and d >= 1)


def _keywords_call(name: str, keys: tuple[str, ...], whole: bool) -> Any:
    """The inverse of :func:`_keywords_spell`: the params from a call's keywords, each checked."""

    def call(literals: tuple[int, ...], keywords: dict[str, Any]) -> Any:
        values = []
        for key in keys:
            if key not in keywords:
                raise ShapeError(f"{name}() needs {key}=")
            value = keywords[key]
            if key == "axis" and not isinstance(value, tuple):
                value = (value,)
            what, valid = _KEYWORD_VALUES[key]
            if not valid(value):
                raise ShapeError(f"{name}()'s {key}= takes {what}")
            values.append(value)
        return values[0] if whole else tuple(values)

    return call


def _spelled(name: str, *keys: str, whole: bool = False) -> dict[str, Any]:
    """The fields of an op the language calls only by its own name: its spelling and its reading."""
    return {
        "spell": _keywords_spell(name, keys, whole),
        "call": _keywords_call(name, keys, whole),
        "keywords": keys,
    }


def _spell_index(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    items = _index_source(params, len(params)).split(", ")[1:]
    return f"{a[0]}[{', '.join(items)}]"


def _spell_call(function: str, shape_of: Callable[[Any], Any] | None = None) -> Spell:
    def spell(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
        extra = "" if shape_of is None else f", {shape_of(params)}"
        return f"{function}({a[0]}{extra})"

    return spell


def _block_op(name: str, arity: int, shape: ShapeRule, emit: Emit, vjp: Vjp, jvp: Jvp, **kw: Any) -> Op:
    return Op(
        name,
        arity,
        "",
        _no_sympy(name),
        _scalarised,
        (None,) * arity,
        block=True,
        shape=shape,
        emit=emit,
        vjp=vjp,
        jvp=jvp,
        **kw,
    )


def _no_sympy(name: str) -> Callable[..., Any]:
    def construct(*args: Any) -> Any:
        raise ShapeError(f"{name} is a block op: scalarise the graph before converting it to SymPy")

    return construct


def _scalarised(e: Emitter, a: tuple[Any, ...]) -> Any:
    raise ShapeError("a block op has no scalar LLVM lowering: the graph is scalarised first")


_NO_ADJOINT: Vjp = lambda b, args, out, params, g: (None,)
NO_TANGENT: Jvp = lambda b, args, out, params, t: None  # a constant to differentiation

# fmt: off
_BLOCKS = [
    _block_op("matmul", 2, _matmul_shape, _matmul_emit, _matmul_vjp, _matmul_jvp,
              infix="@", python="matmul", ufunc="matmul", precedence=MUL, function="dot", domain=(_ANY, _ANY), paths=_paths_matmul,
              multiplies=lambda shapes, shape: math.prod(shape) * shapes[0][-1],
              stacked=_stacked_matmul, linear=True, scalarise=_scalar_matmul, loop="matmul", masked=mk.MATMUL, product=True),
    _block_op("sum", 1, _reduced_shape, _sum_emit, _sum_vjp, _sum_jvp, function="sum", domain=(_ANY,), paths=_paths_reduced, spell=_spell_reduced("sum"), keywords=("axis", "keepdims"),
              stacked=_restacked("sum", _stacked_reduction), linear=True, stacked_diagonal=_diagonal_sum,
              scalarise=_scalar_reduction(lambda b, nodes: _chain(b, "add", nodes))),
    _block_op("logsumexp", 1, _reduced_shape, _logsumexp_emit, _logsumexp_vjp, _logsumexp_jvp,
              function="logsumexp", domain=(_ANY,), policy=(
                  Point("x: [2]; logsumexp(x)", "x=[1000, 0]", 1000.0, ((1.0, 0.0),), "stable: the max is subtracted before exp, no overflow"),
                  Point("x: [3]; logsumexp(x)", "x=[-inf, -inf, -inf]", -math.inf, ((0.0, 0.0, 0.0),), "all -inf: stays -inf under any finite change, so 0 (never exp(-inf + inf) = nan)"),
                  Point("x: [3]; logsumexp(x)", "x=[-inf, 1, -inf]", 1.0, ((0.0, 1.0, 0.0),), "a -inf element has weight exp(-inf - 1) = 0"),
                  Point("x: [3]; logsumexp(x)", "x=[inf, 1, -inf]", math.inf, ((1.0, 0.0, 0.0),), "a +inf element: the logsumexp is the max, with the max's derivative"),
                  Point("x: [3]; logsumexp(x)", "x=[inf, inf, 1]", math.inf, ((0.5, 0.5, 0.0),), "+inf ties split evenly, as the max's"),
                  Point("x: [3]; logsumexp(x)", "x=[nan, 1, 2]", math.nan, ((math.nan, math.nan, math.nan),), "a NaN element makes every weight NaN"),
                  Point("x: [2, 3]; sum(logsumexp(x, axis=1))", "x=[[-inf, -inf, -inf], [-inf, 0, inf]]", math.nan, (((0.0, 0.0, 0.0), (0.0, 0.0, 1.0)),), "each row by its own rule (-inf + inf = nan is the value's)"),
              ), paths=_paths_logsumexp, spell=_spell_reduced("logsumexp"), keywords=("axis", "keepdims"),
              stacked=_restacked("logsumexp", _stacked_reduction), stacked_jvp=_logsumexp_stacked_jvp,
              scalarise=_scalar_reduction(_logsumexp_chain)),
    _block_op("amax", 1, _reduced_shape, _extreme_emit("max"), _extreme_vjp, _extreme_jvp,
              function="max", domain=(_ANY,), kink=True, paths=_paths_reduced, spell=_spell_reduced("max"), keywords=("axis", "keepdims"),
              stacked=_restacked("amax", _stacked_reduction), stacked_jvp=_extreme_stacked_jvp,
              scalarise=_scalar_reduction(lambda b, nodes: _chain(b, "max", nodes)),
              policy=(
                  Point("x: [3]; max(x)", "x=[1, 3, 3]", 3.0, ((0.0, 0.5, 0.5),), "a tie splits evenly among the k maxima (1/k each)"),
                  Point("x: [3]; max(x)", "x=[2, 2, 2]", 2.0, ((1 / 3, 1 / 3, 1 / 3),), "three maxima: 1/3 each (the scalar form's chain too)"),
                  Point("x: [3]; max(x)", "x=[-inf, -inf, -inf]", -math.inf, ((1 / 3, 1 / 3, 1 / 3),), "an infinite tie splits too: x == max, not the sign of inf - inf"),
                  Point("x: [3]; max(x)", "x=[inf, 1, inf]", math.inf, ((0.5, 0.0, 0.5),), "two +inf maxima: 1/2 each"),
                  Point("x: [3]; max(x)", "x=[nan, 1, 2]", math.nan, ((math.nan, math.nan, math.nan),), "the max is NaN, which no element equals: 0/0"),
                  Point("x: [2, 3]; sum(max(x, axis=1))", "x=[[-inf, -inf, -inf], [1, inf, 2]]", math.nan, (((1 / 3, 1 / 3, 1 / 3), (0.0, 1.0, 0.0)),), "each row by its own rule"),
              )),
    _block_op("amin", 1, _reduced_shape, _extreme_emit("min"), _extreme_vjp, _extreme_jvp,
              function="min", domain=(_ANY,), kink=True, paths=_paths_reduced, spell=_spell_reduced("min"), keywords=("axis", "keepdims"),
              stacked=_restacked("amin", _stacked_reduction), stacked_jvp=_extreme_stacked_jvp,
              scalarise=_scalar_reduction(lambda b, nodes: _chain(b, "min", nodes)),
              policy=(
                  Point("x: [3]; min(x)", "x=[3, 1, 1]", 1.0, ((0.0, 0.5, 0.5),), "a tie splits evenly among the k minima (1/k each)"),
                  Point("x: [3]; min(x)", "x=[1, 1, 1]", 1.0, ((1 / 3, 1 / 3, 1 / 3),), "three minima: 1/3 each (the scalar form's chain too)"),
                  Point("x: [3]; min(x)", "x=[inf, inf, inf]", math.inf, ((1 / 3, 1 / 3, 1 / 3),), "an infinite tie splits too"),
              )),
    # the max (0 where not finite) a softmax subtracts: a constant to dp and forward, as the functions
    # using it do not depend on it (its scalar form is the max chain: see _scalar_shift)
    _block_op("shift", 1, _shift_shape, _shift_emit, _NO_ADJOINT, NO_TANGENT, domain=(_ANY,),
              paths=_paths_shift, **_spelled("shift", "axis", whole=True), scalarise=_scalar_shift,
              stacked=_restacked("shift", lambda p, lead: tuple(a + len(lead) for a in p)),
              policy=(
                  Point("x: [3]; log_softmax(x)[1]", "x=[-inf, 1, -inf]", 0.0, ((0.0, 0.0, 0.0),), "a -inf element's weight is exp(-inf - 1) = 0; no inf - inf is taken"),
                  Point("x: [3]; softmax(x)[1]", "x=[-inf, -inf, -inf]", math.nan, ((math.nan, math.nan, math.nan),), "all -inf: 0/0, undefined in value and derivative"),
              )),
    _block_op("count", 1, _count_shape, _count_emit, _NO_ADJOINT, NO_TANGENT, domain=(_ANY,), paths=_paths_none, **_spelled("count", "axis", whole=True),
              stacked=_stacked_count, scalarise=_scalar_count, loop="count"),
    _block_op("reshape", 1, _reshape_shape, _reshape_emit,
              _linear_vjp(lambda b, g, x, p: b.apply("reshape", g, params=b.shape(x))), _linear_jvp("reshape"),
              function="reshape", domain=(_ANY,), paths=_paths_moved, spell=_spell_call("reshape", shape_text), view=True,
              stacked=_restacked("reshape", lambda p, lead: lead + p), linear=True,
              scalarise=lambda b, a, p: a[0].reshape(p)),
    _block_op("transpose", 1, _transpose_shape, _transpose_emit,
              _linear_vjp(lambda b, g, x, p: b.apply("transpose", g, params=tuple(_inverse(p)))),
              _linear_jvp("transpose"), function="transpose", domain=(_ANY,), paths=_paths_transposed, spell=_spell_call("transpose"), view=True,
              stacked=_stacked_transpose, linear=True,
              scalarise=lambda b, a, p: np.transpose(a[0], p)),
    _block_op("broadcast", 1, _broadcast_shape, _broadcast_emit,
              _linear_vjp(lambda b, g, x, p: _unbroadcast(b, g, b.shape(x))), _linear_jvp("broadcast"),
              domain=(_ANY,), paths=_paths_broadcast, **_spelled("broadcast", "shape", whole=True), view=True,
              stacked=_stacked_broadcast, linear=True,
              scalarise=lambda b, a, p: np.broadcast_to(a[0], p)),
    _block_op("index", 1, _index_shape, _index_emit,
              _linear_vjp(lambda b, g, x, p: b.apply("unindex", g, params=(p, b.shape(x)))),
              _linear_jvp("index"), domain=(_ANY,), paths=_paths_index, postfix=True, spell=_spell_index, view=True,
              stacked=_restacked("index", lambda p, lead: (None,) * len(lead) + p), linear=True,
              scalarise=lambda b, a, p: np.asarray(a[0][_index_tuple(p)], dtype=object),
              policy=(Point("x: [2]; sqrt(x)[1]", "x=[0, 4]", 2.0, ((0.0, 0.25),),
                            "an element indexing leaves out gets 0, a structural zero, even where its partial is inf (graphc.diff.structure)"),
                      Point("x: [3]; y: [3]; sum(log(x)[0:2] * y[0:2])", "x=[1, 2, 0], y=[3, 4, 5]", 4 * math.log(2.0), ((3.0, 2.0, 0.0), (0.0, math.log(2.0), 0.0)),
                            "indexing's VJP places the adjoint among structural zeros: log'(0) = inf outside the slice gives 0, not NaN"))),
    _block_op("unindex", 1, _unindex_shape, _unindex_emit,
              _linear_vjp(lambda b, g, x, p: b.apply("index", g, params=p[0])), _linear_jvp("unindex"),
              domain=(_ANY,), paths=_paths_unindex, spell=_spell_unindex, call=_unindex_call, keywords=("at", "shape"),
              stacked=_restacked("unindex", _stacked_unindex), linear=True,
              scalarise=_scalar_unindex, loop="unindex"),
    # a matmul skipping the terms a flag marks dead: the VJPs and JVPs of products below a where
    _block_op(mk.NAME, 3, mk.shape, mk.emit, mk.vjp, mk.jvp, domain=(_ANY, _ANY, _ANY), paths=mk.paths, inert=(1,),
              spell=mk.spell, call=mk.call, scalarise=mk.scalarise, masked=mk.SELF,
              multiplies=lambda shapes, shape: math.prod(shape) * shapes[0][-1],
              policy=(Point("a: [1, 2]; f: [1, 2]; b: [2, 1]; sum(masked_matmul(a, f, b))", "a=[[1, 2]], f=[[1, 0]], b=[[3], [inf]]",
                            3.0, (((3.0, 0.0),), ((1.0,), (0.0,)), ((0.0, 0.0),)),
                            "a term whose mask is 0 is never taken: 0, even where the other factor is inf or NaN"),)),
]
# fmt: on
# the 004 lecture's layers and their adjoints (graphc/convolution.py: rules, helpers, why closed)
_POOL = {"literals": 1, "keywords": ("stride",), "call": cv.pool_call}
_sum_paths, _scatter_paths = cv.window_paths("_window_sum", 0), cv.window_paths("_window_scatter", -1)


def _masked_layer(name: str, point: Point) -> Op:
    """A masked form of conv2d or of one of its adjoints (graphc/masked_conv.py)."""
    rules = (mc.shape_rule(name), mc.emit_rule(name), mc.masked_vjp(name), mc.masked_jvp(name))
    return _block_op(
        name,
        3,
        *rules,
        domain=(_ANY, _ANY, _ANY),
        paths=mc.paths_rule(name),
        inert=(2,),
        spell=mc.spell_rule(name),
        call=mc.call_rule(name),
        keywords=mc.keywords(name),
        scalarise=mc.scalarise_rule(name),
        loop=name,
        masked=mc.RULES[name],
        policy=(point,),
    )


# fmt: off
_LAYERS = [
    _block_op("conv2d", 2, cv.conv2d_shape, cv.conv2d_emit, cv.conv2d_vjp, cv.conv2d_jvp, function="conv2d",
              domain=(_ANY, _ANY), keywords=("stride", "padding"), call=cv.conv_call, spell=cv.spell_conv,
              paths=cv.bilinear_paths("_conv2d", cv.conv_params), scalarise=cv.conv2d_scalar, loop="conv2d",
              stacked=cv.conv2d_stacked, linear=True, masked=mc.RULES["conv2d"]),
    _block_op("conv2d_input", 2, cv.conv2d_input_shape, cv.conv2d_input_emit, cv.conv2d_input_vjp,
              cv.conv2d_input_jvp, domain=(_ANY, _ANY), **_spelled("conv2d_input", "stride", "padding", "size"),
              paths=cv.bilinear_paths("_conv2d_input", cv.adjoint_params), scalarise=cv.conv2d_input_scalar,
              loop="conv2d_input", stacked=cv.conv2d_input_stacked, linear=True, masked=mc.RULES["conv2d_input"]),
    _block_op("conv2d_filter", 2, cv.conv2d_filter_shape, cv.conv2d_filter_emit, cv.conv2d_filter_vjp,
              cv.conv2d_filter_jvp, domain=(_ANY, _ANY), **_spelled("conv2d_filter", "stride", "padding", "size"),
              paths=cv.bilinear_paths("_conv2d_filter", cv.filter_params), scalarise=cv.conv2d_filter_scalar,
              loop="conv2d_filter", stacked=cv.conv2d_filter_stacked, linear=True,
              masked=mc.RULES["conv2d_filter"]),
    _block_op("maxpool2d", 1, cv.pool_shape("maxpool2d"), cv.pool_emit("_maxpool2d"), cv.maxpool2d_vjp,
              cv.maxpool2d_jvp, function="maxpool2d", domain=(_ANY,), kink=True, spell=cv.spell_pool("maxpool2d"),
              paths=_sum_paths,
              policy=(Point("X: [1, 2, 2]; sum(maxpool2d(X, 2))", "X=[[[1, 1], [1, 1]]]", 1.0, ((((0.25, 0.25), (0.25, 0.25)),),),
                            "a tie in a window splits evenly among its k maxima (1/k each)"),),
              scalarise=cv.maxpool2d_scalar, loop="maxpool2d", **_POOL,
              stacked=cv.windows_stacked("maxpool2d"), stacked_jvp=cv.maxpool2d_stacked_jvp, masked=mc.RULES["maxpool2d"]),
    _block_op("maxpool2d_select", 2, cv.maxpool2d_select_shape, cv.pool_emit("_maxpool2d_select"),
              cv.maxpool2d_select_vjp, cv.maxpool2d_select_jvp, domain=(_ANY, _ANY),
              **_spelled("maxpool2d_select", "window", "stride"), paths=cv.window_paths("_window_sum", 1),
              scalarise=cv.maxpool2d_select_scalar, loop="maxpool2d_select",
              stacked=cv.windows_stacked("maxpool2d_select"), stacked_jvp=cv.routed_stacked_jvp("maxpool2d_select")),
    _block_op("maxpool2d_route", 2, cv.unpooled_shape("maxpool2d_route", True), cv.pool_emit("_maxpool2d_route"),
              cv.maxpool2d_route_vjp, cv.maxpool2d_route_jvp, domain=(_ANY, _ANY),
              **_spelled("maxpool2d_route", "window", "stride"), paths=cv.route_paths, scalarise=cv.maxpool2d_route_scalar,
              loop="maxpool2d_route",
              stacked=cv.windows_stacked("maxpool2d_route"), stacked_jvp=cv.routed_stacked_jvp("maxpool2d_route")),
    _block_op("avgpool2d", 1, cv.pool_shape("avgpool2d"), cv.pool_emit("_avgpool2d"), cv.avgpool2d_vjp,
              cv.avgpool2d_jvp, function="avgpool2d", domain=(_ANY,), spell=cv.spell_pool("avgpool2d"),
              paths=_sum_paths, scalarise=cv.avgpool2d_scalar, loop="avgpool2d", **_POOL,
              stacked=cv.windows_stacked("avgpool2d"), linear=True),
    _block_op("avgpool2d_adjoint", 1, cv.unpooled_shape("avgpool2d_adjoint", False),
              cv.pool_emit("_avgpool2d_adjoint"), cv.avgpool2d_adjoint_vjp, cv.avgpool2d_adjoint_jvp,
              domain=(_ANY,), **_spelled("avgpool2d_adjoint", "window", "stride", "size"), paths=_scatter_paths,
              scalarise=cv.avgpool2d_adjoint_scalar, loop="avgpool2d_adjoint",
              stacked=cv.windows_stacked("avgpool2d_adjoint"), linear=True),
    # conv2d and its adjoints skipping the terms a flag marks dead: their VJPs and JVPs below a where
    _masked_layer("masked_conv2d", Point(
        "X: [1, 1, 2]; K: [1, 1, 1, 2]; F: [1, 1, 2]; sum(masked_conv2d(X, K, F, stride=1, padding=0, masked=0))",
        "X=[[[1, 2]]], K=[[[[3, inf]]]], F=[[[1, 0]]]", 3.0, ((((0.0, 0.0),),), ((((1.0, 0.0),),),), (((3.0, 0.0),),)),
        "a term whose flagged element is 0 is never taken: 0, even where the other factor is inf or NaN")),
    _masked_layer("masked_conv2d_input", Point(
        "G: [2, 1, 1]; K: [2, 1, 1, 1]; F: [2, 1, 1, 1]; sum(masked_conv2d_input(G, K, F, stride=1, padding=0, size=[1, 1], masked=1))",
        "G=[[[2]], [[inf]]], K=[[[[3]]], [[[4]]]], F=[[[[1]]], [[[0]]]]", 6.0,
        (((((0.0,),),), (((0.0,),),)), (((3.0,),), ((0.0,),)), ((((2.0,),),), (((0.0,),),))),
        "a term whose flagged element is 0 is never taken: 0, even where the other factor is inf or NaN")),
    _masked_layer("masked_conv2d_filter", Point(
        "X: [1, 1, 2]; G: [1, 1, 2]; F: [1, 1, 2]; sum(masked_conv2d_filter(X, G, F, stride=1, padding=0, size=[1, 1], masked=1))",
        "X=[[[3, inf]]], G=[[[1, 2]]], F=[[[1, 0]]]", 3.0, ((((0.0, 0.0),),), (((3.0, 0.0),),), (((1.0, 0.0),),)),
        "a term whose flagged element is 0 is never taken: 0, even where the other factor is inf or NaN")),
    _block_op(mc.ROUTE, 3, mc.route_shape, mc.route_emit, mc.route_vjp, mc.route_jvp, domain=(_ANY, _ANY, _ANY),
              **_spelled(mc.ROUTE, "window", "stride"), paths=mc.route_paths, inert=(2,), scalarise=cv.maxpool2d_route_scalar,
              loop=mc.ROUTE,
              policy=(Point("X: [1, 2, 3]; G: [1, 1, 2]; F: [1, 1, 2]; sum(masked_maxpool2d_route(X, G, F, window=2, stride=1))",
                            "X=[[[nan, 1, 2], [0, 3, 1]]], G=[[[5, 2]]], F=[[[0, 1]]]", 2.0,
                            ((((0.0, 0.0),),), (((0.0, 1.0),),), (((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),)),
                            "a dead window's share is 0, never 0 / 0 (a window holding a NaN has no maximum)"),)),
    # a user block with its own VJP (graphc/user_blocks.py): its arguments, then its body's result;
    # dp uses the user's VJP, forward mode differentiates the body
    _block_op("custom", 2, ub.custom_shape, ub.custom_emit, ub.custom_vjp, ub.custom_jvp, domain=(_ANY, _ANY),
              variadic=True, view=True, paths=ub.custom_paths, spell=ub.custom_spell, scalarise=ub.custom_scalarise,
              stacked=ub.custom_stacked, stacked_jvp=ub.custom_stacked_jvp),
]
# fmt: on
BLOCK_OPS: Table = Table({op.name: op for op in _BLOCKS + _LAYERS})
# every op by name: a live view of both tables (an op added to OPS later is found here too)
ALL_OPS: ChainMap[str, Op] = ChainMap(OPS, BLOCK_OPS)


def _inverse(perm: tuple[int, ...]) -> list[int]:
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return inverse


def _unbroadcast(b: Graph, g: int, shape: Shape) -> int:
    """The adjoint of a ``broadcast`` to ``g``'s shape from ``shape``: summed back, reshaped."""
    summed = reduce_to(b, g, shape)
    return summed if b.shape(summed) == shape else b.apply("reshape", summed, params=shape)


# --- composites: functions of the language defined through the ops above -------------------------
#
# Like micrograd's ``a/b = a * b**-1``: no rules of their own, so their derivatives are the ops'.
# Each takes the builder, the operand nodes and the ``axis`` argument (None if not given).


def _mean(b: Graph, x: int, axis: Any) -> int:
    params = _axes_params(b.shape(x), axis)
    sizes = [b.shape(x)[a] for a in params[0]]
    if all(isinstance(d, int) for d in sizes):
        count = b.const(float(math.prod(sizes)))  # type: ignore[arg-type]
    else:
        count = b.apply("count", x, params=params[0])
    return b.div(b.apply("sum", x, params=params), count)


def _shifted(b: Graph, x: int, axis: Any) -> tuple[int, int, int]:
    """``d = x - max(x)`` (the max held constant), ``e = exp(d)`` and ``s = sum(e)`` along ``axis``
    (default: the last), kept for broadcasting: what softmax and log_softmax share. The exp is one
    node, which the derivative reuses: no second pass of exp."""
    axes, keepdims = _axes_params(b.shape(x), -1 if axis is None else axis, keepdims=True)
    d = b.sub(x, b.apply("shift", x, params=axes))
    e = b.apply("exp", d)
    return d, e, b.apply("sum", e, params=(axes, keepdims))


def _log_softmax(b: Graph, x: int, axis: Any) -> int:
    d, _, s = _shifted(b, x, axis)
    return b.sub(d, b.apply("log", s))


def _softmax(b: Graph, x: int, axis: Any) -> int:
    _, e, s = _shifted(b, x, axis)
    return b.div(e, s)


def _outer_composite(b: Graph, x: int, y: int, axis: Any) -> int:
    for v in (x, y):
        if len(b.shape(v)) != 1:
            raise ShapeError(
                f"outer takes two vectors, got {shape_text(b.shape(x))} and {shape_text(b.shape(y))}"
            )
    return _outer(b, x, y)


def _clip(b: Graph, x: int, lo: int, hi: int, axis: Any) -> int:
    """``where(x < lo, lo, where(x > hi, hi, x))``: NumPy's clip (NaN stays NaN); at a bound the
    derivative is the inside's, 1 in ``x``."""
    inside = b.apply("where", b.apply("gt", x, hi), hi, x)
    return b.apply("where", b.apply("lt", x, lo), lo, inside)


@dataclass(frozen=True)
class Composite:
    """A function of the language built from ops: ``arity`` tensors and an optional ``axis=``."""

    name: str
    arity: int
    build: Callable[..., int]  # (b, *operands, axis) -> node
    axis: bool = True  # takes ``axis=k``


COMPOSITES: dict[str, Composite] = {
    c.name: c
    for c in [
        Composite("mean", 1, _mean),
        Composite("softmax", 1, _softmax),
        Composite("log_softmax", 1, _log_softmax),
        Composite("outer", 2, _outer_composite, axis=False),
        Composite("clip", 3, _clip, axis=False),
    ]
}
# the reductions: block ops the language calls with ``axis=`` (sum, logsumexp, max, min)
REDUCTIONS = Derived(
    lambda: {op.name: op for op in BLOCK_OPS.values() if op.function and "axis" in op.keywords}
)


def reduction_params(shape: Shape, axis: Any, keepdims: bool = False) -> Any:
    """A reduction node's params for ``axis`` (None: every axis), checked against ``shape``."""
    return _axes_params(shape, axis, keepdims)


# The indexes the parser, the printer and the tracer read, derived from the entries (see Derived):
# every function spelling of an elementwise op (``asin``, NumPy's ``arcsin``) to its op
FUNCTIONS = Derived(lambda: {s: op for op in OPS.values() if op.function for s in (op.function, *op.names)})
BLOCK_FUNCTIONS = Derived(lambda: {op.function: op for op in BLOCK_OPS.values() if op.function})
# the block ops the language calls only by their own names, as the printer spells them
# (``shift(x, axis=1)``): not reserved, so a variable may still be named ``count``
INTERNAL_CALLS = Derived(
    lambda: {op.name: op for op in BLOCK_OPS.values() if op.function is None and op.call is not None}
)
BINARY_INFIX = Derived(
    lambda: {
        spelling: op
        for op in ALL_OPS.values()
        if op.infix and op.arity == 2
        for spelling in (op.infix, *op.aliases)
    }
)
# the operators spelled as words (``and``, ``or``, ``not``): reserved, like the function names
WORD_OPERATORS = Derived(lambda: {op.infix: op for op in OPS.values() if op.infix and op.infix.isalpha()})
# the ops Python's operators apply to traced values: a special method's name (``add``, for
# ``__add__`` and ``__radd__``) to its op (graphc.tracing)
PYTHON_OPERATORS = Derived(lambda: {op.python: op for op in ALL_OPS.values() if op.python})
# the block ops whose sums a flag masks: their (VJP, JVP, stacked rule) for flags (graphc.diff.blocks,
# graphc.diff.stacked)
MASKED = Derived(lambda: {op.name: op.masked for op in ALL_OPS.values() if op.masked is not None})
# the selecting ops (``where``): each one's rule for what passes through its operands (graphc.diff)
GATES = Derived(lambda: {name: op.gate for name, op in OPS.items() if op.gate is not None})
# the ops with slots no derivative flows through, and those slots (paths neither counts nor takes them)
INERT = Derived(lambda: {op.name: op.inert for op in ALL_OPS.values() if op.inert})
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}  # the same doubles as NumPy's
# the names a variable may not take: every function and word operator, and the constants
RESERVED = Derived(
    lambda: dict.fromkeys([*FUNCTIONS, *BLOCK_FUNCTIONS, *COMPOSITES, *CONSTANTS, *WORD_OPERATORS])
)
