"""Property-based tests (hypothesis): random formulas against SymPy and Python, hostile text, hash-consing.

One strategy section builds random expression trees iteratively (a pool of leaves, combined until
one tree is left). Every tree node carries its program text (minimal parentheses under Python's
precedence, plus random extra parentheses and spaces), an independent SymPy expression built from
the tree (never by parsing the text) and enough structure for a float "shadow" evaluation used
only to skip ill-conditioned points.
"""

from __future__ import annotations

import math
import operator
import random
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import networkx as nx
import pytest
import sympy
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from sympy.codegen.cfunctions import expm1

import graphc
from graphc.ops import FUNCTIONS, OPS
from graphc.sympy_bridge import Ceil, Floor

# --- strategies ----------------------------------------------------------------------------------

ADD, MUL, NEG, POW, ATOM = 1, 2, 3, 4, 5  # Python's precedence levels; higher binds tighter
BINARY_PREC = {"+": ADD, "-": ADD, "*": MUL, "/": MUL, "**": POW, "^": POW}
VARIABLES = ("x", "y", "z")
SYMBOLS = {name: sympy.Symbol(name, real=True) for name in VARIABLES}
LITERALS = (
    "0",
    "1",
    "2",
    "3",
    "7",
    "10",
    "0.5",
    ".5",
    "2.",
    "1.25",
    "0.1",
    "0.75",
    "2.5E-1",
    "5e-1",
    "1e1",
    "1E0",
    "3.5e+0",
    "25e-2",
)
FLOAT_LITERALS = ("0.5", ".5", "1.5", "2.0", "3.", "0.25", "2.5E-1", "1e1", "1.25", "0.1", "7.0")
SPACE = st.sampled_from(["", "", " ", "  ", "\t"])


@dataclass(frozen=True, repr=False)
class Formula:
    """One node of a random expression tree, with the text and SymPy expression of its subtree."""

    op: str  # "var", "num", or an operator / function name ("neg" is unary minus)
    args: tuple[Formula, ...]
    text: str
    prec: int  # precedence of ``text`` as written (ATOM once bracketed)
    sym: Any  # SymPy expression, unevaluated (evaluate=False), so building it never hangs
    leaf: str | float | None = None  # a variable's name or a number's float value

    def __repr__(self) -> str:  # str() of an unevaluated SymPy tree may evaluate it: keep it out
        return f"Formula({self.text!r})"

    def describe(self) -> str:
        # The text only: printing the unevaluated SymPy twin evaluates parts of it (sstr negates an
        # Add under a power, srepr sorts a Mul's factors numerically), for minutes on some trees
        # (hypothesis seeds 34 and 45). The twin is built from the same tree as the text.
        return f"text {self.text!r}"


def _as_given(cls: Any, *args: Any) -> Any:
    """``cls(*args)`` unevaluated and unsorted: Max and Min sort their arguments even with
    evaluate=False, and sorting evaluates constant parts numerically (slowly, or with endless
    recursion in SymPy's evalf for some complex-valued trees)."""
    return sympy.Expr.__new__(cls, *args)


def _sympy_of(op: str, args: list[Any]) -> Any:
    """The SymPy expression of ``op`` applied to ``args``, straight from the brief's definitions."""
    u = args[0]
    table: dict[str, Callable[[], Any]] = {
        "+": lambda: u + args[1],
        "-": lambda: u - args[1],
        "*": lambda: u * args[1],
        "/": lambda: u / args[1],
        "**": lambda: sympy.Pow(u, args[1]),
        "^": lambda: sympy.Pow(u, args[1]),
        "pow": lambda: sympy.Pow(u, args[1]),
        "neg": lambda: -u,
        "sin": lambda: sympy.sin(u),
        "cos": lambda: sympy.cos(u),
        "tan": lambda: sympy.tan(u),
        "asin": lambda: sympy.asin(u),
        "acos": lambda: sympy.acos(u),
        "atan": lambda: sympy.atan(u),
        "sinh": lambda: sympy.sinh(u),
        "cosh": lambda: sympy.cosh(u),
        "tanh": lambda: sympy.tanh(u),
        "exp": lambda: sympy.exp(u),
        "log": lambda: sympy.log(u),
        "sqrt": lambda: sympy.sqrt(u),
        "abs": lambda: sympy.Abs(u),
        "sign": lambda: sympy.sign(u),
        "sigmoid": lambda: 1 / (1 + sympy.exp(-u)),
        "relu": lambda: _as_given(sympy.Max, u, sympy.Integer(0)),
        "softplus": lambda: sympy.log(1 + sympy.exp(u)),
        "max": lambda: _as_given(sympy.Max, u, args[1]),
        "min": lambda: _as_given(sympy.Min, u, args[1]),
        "atan2": lambda: sympy.atan2(u, args[1]),
        "hypot": lambda: sympy.sqrt(u**2 + args[1] ** 2),
        "erf": lambda: sympy.erf(u),
        "erfc": lambda: sympy.erfc(u),
        "log10": lambda: sympy.log(u) / sympy.log(10),
        "log2": lambda: sympy.log(u) / sympy.log(2),
        "exp2": lambda: sympy.Pow(2, u),
        # accurate near 0 at 30 digits, where exp(u) - 1 and log(1 + u) cancel to 0
        "expm1": lambda: expm1(u),
        "log1p": lambda: 2 * sympy.atanh(u / (2 + u)),
        "cbrt": lambda: sympy.Pow(u, sympy.Rational(1, 3)),  # complex, so skipped, below 0
        "asinh": lambda: sympy.asinh(u),
        "acosh": lambda: sympy.acosh(u),
        "atanh": lambda: sympy.atanh(u),
        "floor": lambda: Floor(u),  # SymPy's floor with derivative 0 (its own leaves it unevaluated)
        "ceil": lambda: Ceil(u),
    }
    table |= {alias: table[op.function] for op in OPS.values() if op.function for alias in op.names}
    with sympy.evaluate(False):
        return table[op]()


def _bracket(child: Formula, need: bool, extra: bool) -> str:
    return f"({child.text})" if need or extra else child.text


def _binary(op: str, a: Formula, b: Formula, extra_a: bool, extra_b: bool, sp: str) -> Formula:
    """``a op b`` with the fewest brackets Python needs (plus the extra ones asked for)."""
    p = BINARY_PREC[op]
    if p == POW:  # right-associative; the exponent may be a unary minus: 2**-x
        left, right = _bracket(a, a.prec <= POW, extra_a), _bracket(b, b.prec < NEG, extra_b)
    else:
        left, right = _bracket(a, a.prec < p, extra_a), _bracket(b, b.prec <= p, extra_b)
    return Formula(op, (a, b), f"{left}{sp}{op}{sp}{right}", p, _sympy_of(op, [a.sym, b.sym]))


def _neg(a: Formula, extra: bool, sp: str) -> Formula:
    return Formula("neg", (a,), f"-{sp}{_bracket(a, a.prec < NEG, extra)}", NEG, _sympy_of("neg", [a.sym]))


def _call(name: str, args: tuple[Formula, ...], extras: tuple[bool, ...], sp: str) -> Formula:
    inner = f",{sp}".join(_bracket(a, False, x) for a, x in zip(args, extras))
    return Formula(name, args, f"{name}{sp}({sp}{inner})", ATOM, _sympy_of(name, [a.sym for a in args]))


def _number(text: str) -> Formula:
    exact = Fraction(text)
    return Formula("num", (), text, ATOM, sympy.Rational(exact.numerator, exact.denominator), float(text))


def _variable(name: str) -> Formula:
    return Formula("var", (), name, ATOM, SYMBOLS[name], name)


CONSTANT_LEAVES = (
    Formula("num", (), "pi", ATOM, sympy.pi, math.pi),
    Formula("num", (), "e", ATOM, sympy.E, math.e),
)


@st.composite
def formulas(
    draw: st.DrawFn,
    *,
    variables: tuple[str, ...] = VARIABLES,
    literals: tuple[str, ...] = LITERALS,
    constants: bool = True,
    binary: tuple[str, ...] = tuple(BINARY_PREC),
    functions: tuple[str, ...] = tuple(FUNCTIONS),
    extra_parens: bool = True,
    max_leaves: int = 20,
) -> Formula:
    """A random expression tree, built iteratively: draw up to ``max_leaves`` leaves, then apply
    unary operations to pool members and combine pairs until one tree is left. Its text has the
    minimal brackets under Python's precedence (plus random extra ones and spaces)."""
    numbers = st.sampled_from(literals)
    if literals is LITERALS:
        numbers = numbers | st.integers(0, 99).map(str)
    names = st.sampled_from(variables).map(_variable)
    leaves = st.one_of(names, names, numbers.map(_number), *[st.sampled_from(CONSTANT_LEAVES)] * constants)
    unary = ["neg"] * 4 + [name for name in functions if FUNCTIONS[name].arity == 1]
    pairs = [*binary, *binary, *(name for name in functions if FUNCTIONS[name].arity == 2)]
    extra = st.booleans() if extra_parens else st.just(False)

    pool = [draw(leaves) for _ in range(draw(st.integers(1, max_leaves)))]
    unary_left = draw(st.integers(0, len(pool)))
    while len(pool) > 1 or unary_left:
        i = draw(st.integers(0, len(pool) - 1))
        if unary_left and (len(pool) == 1 or draw(st.booleans())):
            unary_left -= 1
            op = draw(st.sampled_from(unary))
            if op == "neg":
                pool[i] = _neg(pool[i], draw(extra), draw(SPACE))
            else:
                pool[i] = _call(op, (pool[i],), (draw(extra),), draw(SPACE))
            continue
        a = pool.pop(i)
        b = pool.pop(draw(st.integers(0, len(pool) - 1)))
        op = draw(st.sampled_from(pairs))
        if op in BINARY_PREC:
            pool.append(_binary(op, a, b, draw(extra), draw(extra), draw(SPACE)))
        else:
            pool.append(_call(op, (a, b), (draw(extra), draw(extra)), draw(SPACE)))
    return pool[0]


COMMUTATIVE = frozenset(name for name, op in OPS.items() if op.commutative)
POINTS = st.fixed_dictionaries({name: st.floats(-2.0, 2.0) for name in VARIABLES})

# Characters that the tokenizer's name pattern ([^\W\d]) accepts as a first letter but Python's
# str.isidentifier does not (superscript digits, fractions, a few marks): the edge of its name rule.
NAME_EDGE = [c for c in map(chr, range(0x110000)) if re.match(r"[^\W\d]", c) and not c.isidentifier()]
NAMES = st.text(st.sampled_from("xyzabAB_éπ" + "".join(NAME_EDGE)), min_size=1, max_size=4)
TOKENS = st.one_of(
    st.sampled_from(
        [
            "x",
            "y",
            "z",
            "u",
            "pi",
            "e",
            "sin",
            "pow",
            "max",
            "atan2",
            "sqrt",
            "f",
            "np",
            "shape",
            "t0",
            "0",
            "1",
            "2.5",
            ".5",
            "1e3",
            "1e400",
            "2.5E-1",
            "3.",
            "1e",
            "0x1",
            "1_000",
            "+",
            "-",
            "*",
            "/",
            "**",
            "^",
            "(",
            ")",
            ",",
            "=",
            ";",
            "\n",
            "#",
            "//",
            "%",
            "@",
            ".",
            "[",
            "]",
            "{",
            "}",
            ":",
            "==",
            "!",
            "~",
            "lambda",
            "if",
            "else",
            "not",
            "import",
            "def",
            "None",
            "True",
            "'os'",
            '"x"',
            "__import__",
            "__builtins__",
            "\\",
            "$",
            "\t",
            "\r",
            "\x00",
            "\u2028",
            "\xa0",
        ]
    ),
    NAMES,
    st.integers(0, 10**30).map(str),
)
TOKEN_TEXT = st.lists(st.tuples(TOKENS, st.sampled_from(["", " "])), max_size=25).map(
    lambda pairs: "".join(token + sep for token, sep in pairs)
)
MUTATED_TEXT = st.builds(  # a well-formed formula with one random token inserted: errors deep in the text
    lambda text, token, at: text[: at % (len(text) + 1)] + token + text[at % (len(text) + 1) :],
    formulas(max_leaves=6).map(lambda f: f.text),
    TOKENS,
    st.integers(0, 1000),
)
ANY_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=())),  # all of Unicode: controls, NUL, surrogates
    st.text(alphabet="xy01.e+-*/^(),;=\n sinpowmaxq_"),
    TOKEN_TEXT,
    MUTATED_TEXT,
)

# --- helpers: well-conditioned points, reference values, graph equality --------------------------


class _Unstable(Exception):
    """The shadow evaluation left the region where float and exact arithmetic safely agree."""


SHADOW: dict[str, Callable[..., float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "**": math.pow,
    "^": math.pow,
    "pow": math.pow,
    "neg": operator.neg,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "tanh": math.tanh,
    "exp": math.exp,
    "log": math.log,
    "sqrt": math.sqrt,
    "abs": abs,
    "sign": lambda u: float((u > 0) - (u < 0)),
    "sigmoid": lambda u: 1.0 / (1.0 + math.exp(-u)),
    "relu": lambda u: max(u, 0.0),
    "softplus": lambda u: math.log1p(math.exp(u)),
    "max": max,
    "min": min,
    "atan2": math.atan2,
    "hypot": math.hypot,
    "erf": math.erf,
    "erfc": math.erfc,
    "log10": math.log10,
    "log2": math.log2,
    "exp2": lambda u: 2.0**u,
    "expm1": math.expm1,
    "log1p": math.log1p,
    "cbrt": lambda u: math.copysign(abs(u) ** (1 / 3), u),
    "asinh": math.asinh,
    "acosh": math.acosh,
    "atanh": math.atanh,
    "floor": lambda u: float(math.floor(u)),  # a jump: the antithetic nudges catch a point at one
    "ceil": lambda u: float(math.ceil(u)),
}
SHADOW |= {alias: SHADOW[op.function] for op in OPS.values() if op.function for alias in op.names}


def _shadow(f: Formula, point: dict[str, float], rng: random.Random | None, flip: float) -> float:
    """The tree in Python floats; with ``rng``, every node's value is nudged by ~1e-12 (and 1e-30)."""
    if f.op == "var":
        value = point[f.leaf]  # type: ignore[index]
    elif f.op == "num":
        value = f.leaf  # type: ignore[assignment]
    else:
        args = [_shadow(a, point, rng, flip) for a in f.args]
        if (
            rng is not None
            and f.op in ("**", "^", "pow")
            and args[0] < 0
            and abs(args[1] - round(args[1])) < 1e-9
        ):
            args[1] = float(round(args[1]))  # a negative base had an exact integer exponent: keep it
        value = SHADOW[f.op](*args)
    if rng is not None:
        value = value * (1 + flip * 1e-12 * rng.uniform(-1, 1)) + flip * 1e-30 * rng.uniform(-1, 1)
    if not math.isfinite(value) or abs(value) > 1e6:
        raise _Unstable
    return value


def well_conditioned(f: Formula, point: dict[str, float]) -> bool:
    """Whether ``f`` is safely comparable at ``point``: every intermediate finite and below 1e6, and
    the result insensitive to tiny perturbations of every node (antithetic pairs, so a value that is
    exactly 0, at a jump of sign/atan2, or at the edge of a domain (sqrt(0.1*3 - 0.3)) is caught)."""
    try:
        nominal = _shadow(f, point, None, 1.0)
        runs = [_shadow(f, point, random.Random(seed), flip) for seed in range(3) for flip in (1.0, -1.0)]
    except (_Unstable, ArithmeticError, ValueError):
        return False
    return max(abs(r - nominal) for r in runs) <= 1e-7 * abs(nominal) + 1e-9


def sympy_value(expr: Any, point: dict[str, float]) -> float | None:
    """``expr`` at ``point`` as a float, or None if it is not a finite real: SymPy's own classes
    applied node by node to 30-digit Floats. (``evalf(subs=...)`` would be simpler, but it falls
    back to symbolic ``subs`` for Max/Min, which can take minutes on a tree of unevaluated terms,
    and it says 0**x is 0 at x = 0.0.)"""

    def numeric(e: Any) -> Any:
        if e.is_Symbol:
            return sympy.Float(point[e.name], 30)
        if not e.args:
            return e.evalf(30) if hasattr(e, "evalf") else e  # (true and false have no evalf)
        built = e.func(*(numeric(a) for a in e.args))  # a comparison of numbers is true or false
        return built.evalf(30) if hasattr(built, "evalf") else built

    try:
        value = float(numeric(expr))
    except (TypeError, ValueError, ArithmeticError):  # complex, zoo, comparisons of complex numbers
        return None
    return value if math.isfinite(value) and abs(value) <= 1e12 else None


def graphc_value(text_or_graph: Any, point: dict[str, float]) -> float:
    kernel = graphc.compile(text_or_graph)
    return float(kernel(**{name: point[name] for name in kernel.variables}))


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _bits(value: Any) -> Any:
    """A node's data compared bit for bit: 0.0 and -0.0 differ, nan equals nan."""
    return struct.pack("<d", value) if isinstance(value, float) else value


def node_lists(g: graphc.Graph) -> tuple[Any, ...]:
    return g._op, g._args, [_bits(d) for d in g._data], g.outputs, g.output_names


def structure(g: graphc.Graph) -> list[int]:
    """The outputs as content hashes of their expressions: equal for graphs that differ only in
    node numbering (commutative operands are compared as a set)."""
    content: list[int] = []
    for node in range(len(g)):
        args = [content[a] for a in g.args(node)]
        if g.op(node) in COMMUTATIVE:
            args.sort()
        content.append(hash((g.op(node), _bits(g._data[node]), tuple(args))))
    return [content[o] for o in g.outputs]


def fast(max_examples: int) -> settings:
    """Settings for a quick run: no deadline, no example database written into the repository."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


# --- 1. random formulas agree with SymPy ---------------------------------------------------------


@fast(200)
@given(formulas(), POINTS)
def test_formula_matches_sympy(f: Formula, point: dict[str, float]) -> None:
    """graphc.compile(text) at a random point, and parse(text).to_sympy() there, equal the
    independently built SymPy expression (where it is a finite real and well conditioned)."""
    value = graphc_value(f.text, point)  # must not raise, whatever the point
    assume(well_conditioned(f, point))
    expected = sympy_value(f.sym, point)
    assume(expected is not None and math.isfinite(value))
    assert expected is not None  # for mypy: assume() does not narrow
    assert close(value, expected), f"graphc {value!r} != sympy {expected!r} for {f.describe()}"
    converted = graphc.parse(f.text).to_sympy()
    got = sympy_value(converted, point)
    assert got is not None and close(got, expected), (
        f"to_sympy {sympy.sstr(converted, order='none')} = {got!r}, expected {expected!r}: {f.describe()}"
    )


def assert_round_trip(text: str) -> None:
    """The printed program rebuilds the same graph up to node numbering: the same expressions,
    the same number of nodes (sharing kept), and every variable an output depends on. (Variables
    no output uses cannot be written in the language, which has no declarations; and printing
    may meet operands in another order, so ids can differ.)"""
    g = graphc.parse(text)
    printed = g.to_text()
    h = graphc.parse(printed)
    assert structure(h) == structure(g), f"{text!r} prints as {printed!r}: a different expression"
    used = g.reachable()
    assert h.variables == sorted(v for v in g.variables if used[g.variable(v)]), printed
    assert len(h) == sum(used), f"{text!r} prints as {printed!r}: sharing lost or nodes added"
    again = graphc.parse(h.to_text())
    assert node_lists(again) == node_lists(h), "printing a printed graph is a fixed point"


@fast(200)
@given(st.lists(formulas(max_leaves=10).map(lambda f: f.text), min_size=1, max_size=3).map(", ".join))
def test_to_text_round_trips_to_the_same_graph(text: str) -> None:
    """parse(parse(text).to_text()) rebuilds the same graph (constants bit for bit)."""
    assert_round_trip(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("-0", id="negative-zero"),
        pytest.param("x*0", id="unused-variable-dropped"),
        pytest.param("y*x + x", id="commutative-operands-reordered"),
        pytest.param("sin(x) - cos(x)*cos(x)", id="shared-node-hoisted-first"),
    ],
)
def test_to_text_round_trip_examples(text: str) -> None:
    """Cases the property above found: negative zero, folded-away variables, reordered operands."""
    assert_round_trip(text)


def test_to_text_keeps_the_sign_of_zero() -> None:
    """Why -0.0 matters: atan2(-0.0, -1) is -pi, atan2(0.0, -1) is pi."""
    g = graphc.parse("atan2(-0, x)")
    assert graphc_value(g.to_text(), {"x": -1.0}) == graphc_value(g, {"x": -1.0}) == -math.pi


ARITHMETIC = formulas(
    variables=("x", "y"),
    literals=FLOAT_LITERALS,
    constants=False,
    binary=("+", "-", "*", "/", "**"),
    functions=(),
    extra_parens=False,
)


@fast(300)
@given(ARITHMETIC, st.floats(-2.0, 2.0), st.floats(-2.0, 2.0))
def test_minimal_brackets_follow_python_precedence(f: Formula, x: float, y: float) -> None:
    """Text with only the brackets Python needs means what Python's own eval says it means."""
    note(f"text: {f.text!r}")
    try:
        expected = eval(f.text, {"__builtins__": {}}, {"x": x, "y": y})  # our own text, never user input
    except (ZeroDivisionError, OverflowError):
        assume(False)
    assume(isinstance(expected, float) and math.isfinite(expected))
    kernel = graphc.compile(f.text)
    got = float(kernel(**{name: {"x": x, "y": y}[name] for name in kernel.variables}))
    assert math.isclose(got, expected, rel_tol=1e-12, abs_tol=1e-300), (
        f"graphc {got!r} != Python {expected!r}"
    )


# --- 2. hostile text: only ParseError, one line, sensible column ---------------------------------


@fast(1500)
@given(ANY_TEXT)
def test_parse_raises_only_one_line_parse_errors(text: str) -> None:
    """Any text parses, or raises a ParseError with a one-line message and a column in its line;
    what parses compiles and runs at 0.5 for every variable."""
    try:
        graph = graphc.parse(text)
    except graphc.GraphcError as err:
        assert isinstance(err, graphc.ParseError), type(err)
        message = str(err)
        assert "\n" not in message and len(message.splitlines()) == 1, repr(message)
        assert isinstance(err.column, int) and 0 <= err.column <= len(err.source_line)
        assert err.source_line == text.split("\n")[err.line - 1]
        assert len(err.render().split("\n")) == 3
        return
    kernel = graphc.compile(graph)
    kernel(**{name: 0.5 for name in kernel.variables})


@pytest.mark.parametrize("text", ["\u0e33", "\u1369", "x + \u19da", "\uff9e"])
def test_parse_rejects_name_edge_characters_with_a_parse_error(text: str) -> None:
    """Minimal cases the property above found: a character that regex's \\w accepts as a first letter
    but only str.isidentifier's continuation accepts (Thai SARA AM, Ethiopic digit one...)."""
    with pytest.raises(graphc.ParseError):
        graphc.parse(text)


# --- 3. hash-consing invariants ------------------------------------------------------------------

HASH_CONSING_TEXT = st.lists(formulas(max_leaves=12).map(lambda f: f.text), min_size=1, max_size=3).map(
    ", ".join
)


@fast(200)
@given(HASH_CONSING_TEXT)
def test_hash_consed_graph_invariants(text: str) -> None:
    """Same text, same nodes; the networkx mirror has one keyed edge per operand slot; ids are a
    topological order; no two nodes share (op, operands, data); commutative operands are sorted (constants last)."""
    g = graphc.parse(text)
    assert node_lists(graphc.parse(text)) == node_lists(g)
    mirror = g.nx
    assert isinstance(mirror, nx.MultiDiGraph)
    assert sorted(mirror.nodes) == list(range(len(g)))
    assert mirror.number_of_edges() == sum(len(g.args(n)) for n in range(len(g)))
    seen: set[tuple[Any, ...]] = set()
    for n in range(len(g)):
        args = g.args(n)
        assert all(a < n for a in args), f"node {n} uses a later node: {args}"
        assert sorted(k for _, _, k in mirror.in_edges(n, keys=True)) == list(range(len(args)))
        for k, a in enumerate(args):
            assert mirror.has_edge(a, n, key=k), f"missing edge {a} -> {n} (slot {k})"
        assert mirror.nodes[n]["op"] == g.op(n) and mirror.nodes[n]["args"] == args
        key = (g.op(n), args, _bits(g._data[n]))
        assert key not in seen, f"duplicate node {key}"
        seen.add(key)
        if g.op(n) in COMMUTATIVE:
            order = [(g.op(a) == "const", a) for a in args]
            assert order[0] <= order[1], f"commutative operands out of order at node {n}"
