"""The parser: Python's precedence, programs, positions in errors, hostile input, scale."""

from __future__ import annotations

import math
import re
import time

import pytest
import sympy
from hypothesis import event, given, settings
from hypothesis import strategies as st

import graphc
from graphc import ArityError, GraphcError, ParseError, UnknownFunctionError
from graphc.parse import Tokens, _scan_fast, _scan_full, scan, tokenize

X, Y, Z = 1.7, -0.6, 2.3


def value(text: str, **point: float) -> float:
    kernel = graphc.compile(text)
    return float(
        kernel(**{name: point.get(name, {"x": X, "y": Y, "z": Z}.get(name)) for name in kernel.variables})
    )


# Expected values written out by hand, in Python's own precedence.
@pytest.mark.parametrize(
    "text, expected",
    [
        ("-x**2", -(X**2)),
        ("(-x)**2", (-X) ** 2),
        ("2**3**2", 2 ** (3**2)),
        ("2^3^2", 2 ** (3**2)),
        ("2^-1", 0.5),
        ("2**-x**2", 2 ** (-(X**2))),
        ("x - y - z", X - Y - Z),
        ("x / y / z", X / Y / Z),
        ("x - y + z", X - Y + Z),
        ("x / y * z", X / Y * Z),
        ("-x*y", -X * Y),
        ("x*-y", X * -Y),
        ("x**-y*z", X**-Y * Z),
        ("--x", X),
        ("+x", X),
        ("- - -x", -X),
        ("x + y*z**2", X + Y * Z**2),
        ("(x + y)*z", (X + Y) * Z),
        ("x**z**y / 2", X ** (Z**Y) / 2),
        ("2.5E2 + .5 + 0.5 + 1e-3 + 2.", 250 + 0.5 + 0.5 + 1e-3 + 2.0),
        ("pi*e", math.pi * math.e),
        ("pow(x, 2) - x^2", 0.0),
    ],
)
def test_precedence_and_associativity_match_python(text, expected):
    assert value(text) == pytest.approx(expected, rel=1e-14)


def test_programs_with_bindings_and_several_outputs():
    k = graphc.compile("u = x*y; v = sin(u)\nv + u**2")
    u = X * Y
    assert float(k(x=X, y=Y)) == pytest.approx(math.sin(u) + u**2)
    k = graphc.compile("x*y, sin(x)")
    assert k.outputs == ("f1", "f2")
    assert [float(v) for v in k(X, Y)] == pytest.approx([X * Y, math.sin(X)])


def test_outputs_named_by_their_bindings():
    g = graphc.parse("area = w*h; perimeter = 2*(w + h); area, perimeter")
    assert g.output_names == ["area", "perimeter"]
    assert graphc.parse("w*h").output_names == ["f"]


def test_rebinding_comments_blank_lines_and_continuation_lines():
    text = """
    # a comment line
    u = x + 1   # trailing comment
    u = u * u;;

    max(u,
        y)
    """
    assert value(text) == pytest.approx(max((X + 1) ** 2, Y))


def test_unicode_names_follow_pythons_identifier_rule():
    assert graphc.parse("θ*α + β_2").variables == ["α", "β_2", "θ"]
    with pytest.raises(ParseError):
        graphc.parse("x² + 1")  # superscript two is not an identifier character


def test_agrees_with_sympys_reading_of_the_same_formula():
    formulas = [
        "sin(x*y) + exp(x)",
        "x1*x2 + exp(x1*x2) - sin(x2)",
        "(1 - x)**2 + 100*(y - x**2)**2",
        "(x**2 + y - 11)**2 + (x + y**2 - 7)**2",
        "atan2(y, x) + sqrt(x**2 + y**2) - log(abs(x) + 1)",
        "tanh(cosh(x)/sinh(y)) + asin(x/4) * acos(y/4) / atan(x)",
    ]
    rng = [(0.7, 1.3), (1.9, -0.4), (0.3, 0.8)]
    for text in formulas:
        ours = graphc.parse(text).to_sympy()
        theirs = sympy.parse_expr(text.replace("^", "**"))  # our own test text, never user input
        for xv, yv in rng:
            subs = {"x": xv, "y": yv, "x1": xv, "x2": yv}
            a = complex(ours.evalf(subs={s: subs[s.name] for s in ours.free_symbols}))
            b = complex(theirs.evalf(subs={s: subs[s.name] for s in theirs.free_symbols}))
            assert a == pytest.approx(b, rel=1e-12), text


# --- bad input: a ParseError with a one-line message and the right column ---------------------------


@pytest.mark.parametrize(
    "text, column, words",
    [
        ("", 0, "empty"),
        ("   \n ; ", 0, "empty"),
        ("x +", 3, "operand"),
        ("* x", 0, "operand"),
        ("x + * y", 4, "operand"),
        ("(x + y", 0, "never closed"),
        ("sin(x + (y", 0, "'sin(' is never closed"),
        ("x + y)", 5, "unmatched ')'"),
        ("()", 1, "operand"),
        ("foo(x)", 0, "unknown function 'foo'"),
        ("sinn(x)", 0, "did you mean 'sin'"),
        ("sin(x, y)", 0, "takes 1 argument (2 given)"),
        ("atan2(x)", 0, "takes 2 arguments (1 given)"),
        ("max()", 0, "(0 given)"),
        ("sin + 1", 0, "'sin' is a function"),
        ("x // y", 2, "floor division"),
        ("x % y", 2, "'%'"),
        ("a @ b", 2, "'@'"),
        ("x.real", 1, "attributes"),
        ("lambda: x", 6, "':'"),
        ("lambda x: x", 7, "expected an operator"),
        ("'abc'", 0, "strings"),
        ('"abc"', 0, "strings"),
        ("[x, y]", 0, "lists"),
        ("{x}", 0, "sets"),
        ("x if y else z", 2, "'if' is not part of the language"),
        ("x <> y", 2, "write '!='"),
        ("x ! y", 2, "'!'"),
        ("x < < y", 4, "expected an operand, found '<'"),
        ("x and and y", 6, "expected an operand before 'and'"),
        ("not", 3, "expected an operand before end of input"),
        ("x not y", 2, "expected an operator, found name 'not'"),
        ("where(x, 1)", 0, "where() takes 3 arguments (2 given)"),
        ("where(x > 0, 1, 2, 3)", 0, "(4 given)"),
        ("clip(x, 1)", 0, "clip"),
        ("and = 3; and", 0, "built-in operator"),
        ("x = not; x", 7, "operand"),
        ("v = x + and; v", 8, "expected an operand before 'and'"),  # a binding read in one step
        ("v = and + x; v", 4, "expected an operand before 'and'"),
        ("v = sin(not); v", 11, "expected an operand, found ')'"),
        ("x\x00", 1, "control character U+0000"),
        ("x\x1b[0m", 1, "control character U+001B"),
        ("2x", 1, "invalid number '2x'"),
        ("1e", 1, "invalid number"),
        ("1.2.3", 3, "invalid number"),
        ("0x10", 1, "invalid number"),
        ("1e999", 0, "too large"),
        ("x(y)", 0, "unknown function 'x' (to multiply, write '*')"),
        ("x + x(y)", 4, "'x' is not a function"),
        ("u = 1; u(2)", 7, "'u' is not a function"),
        ("x = 1, 2", 5, "one value"),
        ("x, y; z", 1, "last statement"),
        ("x = ", 4, "no value after '='"),
        ("sin = 3; sin", 0, "built-in function"),
        ("pi = 3; pi", 0, "built-in constant"),
        ("y = x; x = 2; x", 7, "already used as an input variable"),
        ("x + = 1", 4, "operand"),
        ("(x, y)", 2, "tuples"),
        ("f(x,)", 0, "unknown function"),
        ("max(x,)", 6, "operand"),
        ("x y", 2, "expected an operator"),
    ],
)
def test_bad_input_names_the_problem_and_its_position(text, column, words):
    with pytest.raises(ParseError) as info:
        graphc.parse(text)
    err = info.value
    assert words in str(err)
    assert err.column == column, str(err)
    assert "\n" not in str(err)
    rendered = err.render().splitlines()
    assert len(rendered) == 3 and rendered[2].index("^") - 2 == column


def test_errors_on_later_lines_give_line_and_column():
    with pytest.raises(ParseError) as info:
        graphc.parse("u = x*y\nv = sin(u)\nu + foo(v)")
    err = info.value
    assert (err.line, err.column) == (3, 4)
    assert "line 3, column 5" in str(err)
    assert err.render().splitlines()[1].strip() == "u + foo(v)"


def test_error_classes():
    with pytest.raises(UnknownFunctionError):
        graphc.parse("bar(1)")
    with pytest.raises(ArityError):
        graphc.parse("pow(1)")
    assert issubclass(ParseError, GraphcError) and issubclass(ParseError, ValueError)
    with pytest.raises(ParseError):
        graphc.parse(b"x + 1")  # type: ignore[arg-type]


def test_python_is_never_reached(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.chdir(tmp_path)
    attacks = [
        "__import__('os').system('touch pwned')",
        '__import__("os").system("touch pwned")',
        "exec(open)",
        "eval(x)",
        "globals()",
        "().__class__.__bases__[0].__subclasses__()",
        "x.__class__",
        "open('pwned', 'w')",
        "lambda: 1",
        "[c for c in ()]",
        "__builtins__",
    ]
    for text in attacks:
        try:
            graph = graphc.parse(text)
        except GraphcError:
            continue
        # Parsed as ordinary names (e.g. "__builtins__" is just a variable): evaluation is harmless.
        graphc.compile(graph)(*[1.0] * len(graph.variables))
    assert not marker.exists()


def test_hostile_names_are_ordinary_variables():
    names = [
        "np",
        "def",
        "lambda",
        "__class__",
        "out",
        "i",
        "shape",
        "t0",
        "_shaped",
        "match",
        "print",
        "None",
    ]
    text = " + ".join(names)
    k = graphc.compile(text)
    assert set(k.variables) == set(names)
    assert float(k(**{n: 1.0 for n in names})) == len(names)


# --- the scanner: its fast path against the full scanner -----------------------------------------


def _comparable(tokens: Tokens) -> tuple[object, ...]:
    error = tokens.error
    return (tokens.kinds, tokens.words, tokens.starts, error and (type(error), str(error), error.position))


# Pieces of text, glued together with no separator: "1" and "e5" make a number, "2" and "x" a bad
# one, "x" and "1" a name, "/" and "/" floor division, "=" and "=" a comparison, "#" a comment up
# to the next newline, ... A third of the texts have only ordinary pieces (the fast path takes most
# of them), a third one odd piece among them, a third any mix.
ORDINARY = st.sampled_from(
    [
        *["x", "y1", "_t", "sin", "pi", "e", "E", "0", "2", "3.", ".5", "1e5", "1E-3", "1.e3", "2.5e+2"],
        *["+", "-", "*", "/", "**", "^", "=", "(", ")", ",", ";", " ", "  ", "\t", "\r", "\n", "# c\n"],
    ]
)
ODD_PIECES = [
    *["==", "//", "2x", "1.2.3", "1e", "1e+", "0x1", "1_0", "x²", "xé", "x\u0301", "é", "变量", "ⅸ", "²"],
    *[".", "#", "# é // 2x\n", "\\\n", "$", "?", "!", "%", "'", "[", "\x00", "\x0b", "\x0c", "\x1b"],
    *["\x85", "\xa0", "\u2028", "\ufeff", "\U0001f600"],
]
ODD = st.one_of(st.sampled_from(ODD_PIECES), st.characters())
ODD_PLACES = [("", ""), ("x", ""), ("x = ", " + 1"), ("2", "y"), ("1.", "\n"), ("(", ")"), ("/", "=")]
ORDINARY_TEXT = st.lists(ORDINARY, max_size=15).map("".join)
SCAN_TEXT = st.one_of(
    ORDINARY_TEXT,
    st.tuples(ORDINARY_TEXT, ODD, ORDINARY_TEXT).map("".join),
    st.lists(st.one_of(ORDINARY, ORDINARY, ORDINARY, ODD), max_size=30).map("".join),
)


@settings(max_examples=1000, deadline=None)
@given(SCAN_TEXT)
def test_the_fast_scan_gives_the_full_scanners_tokens_or_declines(text):
    # (the fast path's starts are the full scanner's, found on first use: its kinds and words are
    # what is tested)
    fast = _scan_fast(text)
    full = _scan_full(text)
    event("the fast path" if fast is not None else "the full scanner only")
    if fast is not None:
        assert _comparable(fast) == _comparable(full)
        assert fast.error is None
    assert _comparable(scan(text)) == _comparable(full)


@pytest.mark.parametrize("odd", ODD_PIECES)
def test_the_fast_scan_gives_the_full_scanners_tokens_around_each_odd_piece(odd):
    for before, after in ODD_PLACES:
        text = before + odd + after
        fast = _scan_fast(text)
        assert fast is None or _comparable(fast) == _comparable(_scan_full(text)), text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  \t",
        "v27 = v25 + v25\ntanh(x5)",
        "# a comment\nx = .5e3 * 1.e3 + 3. # é, '//', 2x, 1.2.3\r\n  y**x^2 / (x - 1),\t-x;",
        "max(u,\n  y)  # continued",
    ],
)
def test_the_fast_scan_takes_ordinary_text(text):
    fast = _scan_fast(text)
    assert fast is not None and _comparable(fast) == _comparable(_scan_full(text))


@pytest.mark.parametrize(
    "text", ["2x", "1.2.3", "1e", "x // y", "x == y", "θ + 1", "x\u0301", "x. y", "x $", "x\x0c", "\xa0x"]
)
def test_the_fast_scan_leaves_the_rest_to_the_full_scanner(text):
    assert _scan_fast(text) is None


def test_scan_and_tokenize():
    tokens = scan("sin(x)  # a comment")
    assert _comparable(tokens) == (
        ["name", "(", "name", ")", "end"],
        ["sin", "(", "x", ")", ""],
        [0, 3, 4, 5, 19],
        None,
    )
    tokens = scan("x + 2y")
    assert (tokens.kinds, tokens.words, tokens.starts) == (["name", "op"], ["x", "+"], [0, 2])
    assert (str(tokens.error), tokens.error.position) == ("invalid number '2y' (at column 6)", 5)
    assert list(tokenize("x\n")) == [("name", "x", 0), ("sep", "\n", 1), ("end", "", 2)]
    with pytest.raises(ParseError, match="invalid number"):
        list(tokenize("x + 2y"))


# --- scale: no recursion on depth -----------------------------------------------------------------


def test_a_200k_term_sum_parses_and_evaluates():
    text = "x" + "+x" * 199_999
    start = time.perf_counter()
    k = graphc.compile(text)
    assert float(k(x=0.5)) == 100_000.0
    assert time.perf_counter() - start < 60  # generous: the point is that it finishes, not how fast


def test_10000_nested_calls_parse_and_evaluate():
    k = graphc.compile("sin(" * 10_000 + "x" + ")" * 10_000)
    expected = 0.3
    for _ in range(10_000):
        expected = math.sin(expected)
    assert float(k(x=0.3)) == pytest.approx(expected, rel=1e-12)
    deep_minus = graphc.compile("-(" * 10_001 + "x" + ")" * 10_001)
    assert float(deep_minus(x=2.0)) == -2.0
    brackets = graphc.compile("(" * 50_000 + "x" + ")" * 50_000)
    assert float(brackets(x=2.0)) == 2.0


@pytest.mark.parametrize(
    "text",
    [
        "1" * 200_000 + "x",  # a number run into a letter, from the first digit (and every other one)
        "." + "1" * 200_000 + ".",
        "x" + " " * 200_000 + "$",  # blanks before a character the fast path does not know
        "x" * 200_000 + "é",
        "1e" * 100_000,
    ],
)
def test_scanning_a_long_run_takes_linear_time(text):
    start = time.perf_counter()
    scan(text)
    assert time.perf_counter() - start < 10  # ~0.02 s; quadratic, minutes


def test_100000_unclosed_brackets_are_a_clear_error():
    with pytest.raises(ParseError, match="operand"):
        graphc.parse("(" * 100_000)
    with pytest.raises(ParseError, match=r"never closed \(100000 unclosed\)") as info:
        graphc.parse("(" * 100_000 + "x")
    assert info.value.column == 0


_OPERANDS = ["v1", "v2", "v3", "x", "y", "pi", "sin", "2"]
_RIGHT_SIDES = st.one_of(
    st.tuples(
        st.sampled_from(_OPERANDS),
        st.sampled_from(["+", "-", "*", "/", "**", "^"]),
        st.sampled_from(_OPERANDS),
    ).map(" ".join),
    st.tuples(
        st.sampled_from(["sin", "tanh", "exp", "atan2", "foo", "v1", "pi"]), st.sampled_from(_OPERANDS)
    ).map(lambda call: f"{call[0]}({call[1]})"),
)
_STATEMENTS = st.tuples(st.sampled_from(["v1", "v2", "v3", "x", "sin", "pi"]), _RIGHT_SIDES)


def _outcome(text: str) -> tuple[object, ...]:
    """What parsing gives: the graph, node by node, with its outputs; or the error, its message,
    line and the token it points at."""
    try:
        graph = graphc.parse(text)
    except GraphcError as err:
        assert isinstance(err, ParseError)
        pointed = re.match(r"\w+|\S|$", err.text[err.position :])
        return type(err), err.message, err.line, pointed.group() if pointed else ""
    nodes = tuple(tuple(sorted(graph.attrs(n).items())) for n in range(len(graph)))
    return nodes, tuple(graph.outputs), tuple(graph.output_names)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_STATEMENTS, min_size=1, max_size=6),
    st.sampled_from(["v1", "v1 + v2 * x", "v3, x"]),
    st.sampled_from(["; ", "\n"]),
)
def test_three_address_bindings_parse_as_the_general_path_parses_them(statements, last, separator):
    """``a = b op c`` and ``a = f(b)`` are read at once (the fast path); in brackets, the same
    values take the shunting-yard. Both give the same graph, node for node, or the same error."""
    fast = separator.join([*(f"{target} = {value}" for target, value in statements), last])
    general = separator.join([*(f"{target} = ({value})" for target, value in statements), last])
    assert _outcome(fast) == _outcome(general)


@pytest.mark.parametrize(
    "text",
    [
        "exp(x) + sin(y)*cos(x)",
        "u = x*y; tanh(u) - exp(x)",
        "a = exp(x); b = log(a); sin(b), cos(pi)",
        "exp(x)[0] + 1",  # indexing after the call (a scalar: refused alike)
        "exp(sin)",  # a function where an operand stands
        "exp(not)",  # a word operator
        "max(x)",  # two operands
        "x: [3]; sum(x) + exp(x)[1]",  # a block call beside an elementwise one
        "relu(z) * sign(z)",
        "exp(undefined_function)",
        "nosuch(x)",
    ],
)
def test_a_call_on_one_name_builds_what_the_general_path_builds(text):
    """``f(name)`` is built at once; ``f((name))`` goes through the bracket stack: the same graph,
    or the same error at the same place (counted without the added brackets)."""
    general = re.sub(r"(\w+)\((\w+)\)", r"\1((\2))", text)
    origin = []  # where each character of the general form stands in text
    i = 0
    for ch in general:
        origin.append(i)  # an added bracket stands where the next character of text does
        if i < len(text) and text[i] == ch:
            i += 1
    assert general != text and i == len(text)
    results = []
    for variant in (text, general):
        try:
            graph = graphc.parse(variant)
        except ParseError as error:
            at = error.position if variant is text else origin[error.position]
            results.append((type(error), error.message.replace("((", "(").replace("))", ")"), at))
        else:
            results.append(graph.to_text())
    assert results[0] == results[1]
