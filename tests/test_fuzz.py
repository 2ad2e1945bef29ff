"""Fuzzing with hypothesis: random text and grammar-aware token sequences into parse, grad (every
method), check, every backend and the command line. The only exceptions allowed out of the Python
API are GraphcErrors; the CLI exits 0, 1 or 2 with no traceback and no "internal error".

The budget is small for CI; ``GRAPHC_FUZZ_EXAMPLES=20000 pytest tests/test_fuzz.py`` runs longer.
Inputs that once crashed graphc are kept below as explicit regression tests.
"""

from __future__ import annotations

import io
import os
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc
from graphc.backends import BACKENDS, UNAVAILABLE
from graphc.cli import main
from graphc.ops import FUNCTIONS

SCALE = int(os.environ.get("GRAPHC_FUZZ_EXAMPLES", "0"))
AVAILABLE = [name for name in BACKENDS if name not in UNAVAILABLE]
METHODS = list(graphc.METHODS)


def budget(examples: int) -> settings:
    return settings(
        max_examples=SCALE or examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


NAMES = ["x", "y", "z", "x0", "_", "i", "out", "np", "math", "def", "lambda", "__class__", "é", "ﬁ", "t0"]
NUMBERS = ["0", "1", "2", "0.5", ".5", "3.", "1e308", "1e-320", "1e999", "2.5e-3", "007", "1_0"]
OPERATORS = ["+", "-", "*", "/", "**", "^", "//", "%", "==", "@", ".", "<", "<=", ">", ">=", "!=", "<>", "!"]
OPERATORS += ["and", "or", "not", " and ", " or ", "not ", "where(", "clip("]
PUNCTUATION = ["(", ")", ",", "=", ";", "\n", " ", "\t", "#", "[", "'", "\\\n"]
ODD = ["\x00", "\u200b", "\ufeff", "∂", "…", "\U0001f600", "x\u0301", "\r", "\x1b", "\u2028"]
FUNCTION_TOKENS = sorted(FUNCTIONS) + ["pi", "e", "foo", "sin(", "pow(", "atan2("]
TOKENS = st.sampled_from(NAMES + NUMBERS + OPERATORS + PUNCTUATION + ODD + FUNCTION_TOKENS)
PROGRAMS = st.one_of(
    st.text(max_size=40),
    st.lists(TOKENS, max_size=25).map("".join),
    st.lists(TOKENS, max_size=25).map(" ".join),
)
VALUES = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e308, -1e-310, np.inf, -np.inf, np.nan])


def exercise_api(text: str, method: str, backend: str, value: float) -> None:
    """Parse, compile, call, differentiate and check ``text``: any GraphcError is fine."""
    try:
        graph = graphc.parse(text)
    except graphc.GraphcError:
        return
    if len(graph) > 80:
        return
    point = {name: value for name in graph.variables}
    try:
        kernel = graphc.compile(graph, backend=backend)
        kernel(**point)
        kernel(**{name: np.full(3, value) for name in graph.variables})
        graphc.differentiate(graph, method="dp" if method == "symbolic" and len(graph) > 30 else method)
        if len(graph.outputs) == 1:
            graphc.grad(graph, method=method if len(graph) <= 30 else "dp", backend=backend)(**point)
        graphc.check(graph, at=point, method="forward" if method == "paths" else "dp", backend=backend)
    except graphc.GraphcError:
        pass


def run_cli(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # --help, --version
            code = exit_.code
    return code, err.getvalue()


def assert_clean_exit(argv: list[str]) -> None:
    code, err = run_cli(argv)
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err and "internal error" not in err, (argv, err)
    if err:
        assert err.startswith("graphc: error:"), (argv, err)
        # one line, or (a parse error) the line, the source line and a caret
        assert len(err.splitlines()) in (1, 3), (argv, err)
    if code == 1:
        assert argv[0] == "check" and err == "", (argv, err)


@budget(60)
@given(PROGRAMS, st.sampled_from(METHODS), st.sampled_from(AVAILABLE), VALUES)
def test_api_raises_only_graphc_errors(text: str, method: str, backend: str, value: float) -> None:
    exercise_api(text, method, backend, value)


COMMANDS = ["grad", "eval", "check", "trace", "implicit", "nope", "--version", "-h"]
# fmt: off
OPTIONS = [
    "--at", "--wrt", "--method", "--backend", "--json", "--emit", "--order", "--max-paths", "--mode",
    "--solve-for", "--cse", "--", "-", "--at=x=1", "--max-nodes",
]
VALUES_TEXT = ["x=1", "x=0,y=0", "y=2", "x", "x,y", "numpy", "llvm", "paths", "symbolic", "sympy", "dot",
               "numpy", "0", "-1", "1e999", "x=1/0", "x=(", "reverse", "z"]
# fmt: on


@budget(60)
@given(
    st.sampled_from(COMMANDS),
    PROGRAMS,
    st.lists(st.one_of(st.sampled_from(OPTIONS + VALUES_TEXT), st.text(max_size=8)), max_size=6),
)
def test_cli_exits_cleanly(command: str, expr: str, words: list[str]) -> None:
    if "--help" in words or "-h" in words:
        return  # prints the whole help text: covered once below
    assert_clean_exit([command, expr, *words])


@budget(30)
@given(st.lists(st.text(max_size=12), max_size=5))
def test_cli_random_argv(argv: list[str]) -> None:
    if "report" in argv[:1]:
        return  # report runs measurements for seconds; its arguments are tested in test_report.py
    assert_clean_exit(argv)


def test_cli_help_exits_0():
    assert run_cli(["--help"])[0] == 0
    assert run_cli(["check", "--help"])[0] == 0


# --- inputs that crashed graphc once, kept as regression tests -----------------------------------

REGRESSIONS: list[str] = [
    "0",  # grad of a function of no variables: the numpy backend emitted `return (,)`
]


@pytest.mark.parametrize("backend", AVAILABLE)
def test_functions_of_no_variables(backend: str) -> None:
    assert graphc.grad("0", backend=backend)() == ()
    assert graphc.value_and_grad("3", backend=backend)() == (3.0, ())  # was an IndexError


@pytest.mark.parametrize("text", REGRESSIONS)
@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("method", METHODS)
def test_regressions(text: str, method: str, backend: str) -> None:
    for value in (0.0, 1.0, np.inf, np.nan):
        exercise_api(text, method, backend, value)


# Arguments of the wrong type or value: each once escaped as a TypeError or OverflowError.
BAD_CALLS = {
    "wrt not a name": lambda: graphc.grad("x", wrt=5),
    "huge int argument, numpy": lambda: graphc.compile("x")(10**400),
    "huge int in a list": lambda: graphc.compile("x")([10**400]),
    "max_paths not a number": lambda: graphc.grad("x", method="paths", max_paths="a"),
    "unknown option to grad": lambda: graphc.grad("x", foo=1),
    "unknown option to value_and_grad": lambda: graphc.value_and_grad("x", foo=1),
    "unknown option to hessian": lambda: graphc.hessian("x", foo=1),
    "solve_for None": lambda: graphc.implicit("x*z - 1", solve_for=None),
    "solve_for a number": lambda: graphc.implicit("x*z - 1", solve_for=3),
    "check at None": lambda: graphc.check("x", at=None),
    "max_nodes not a number": lambda: graphc.grad("x", max_nodes="many"),
}


@pytest.mark.parametrize("call", list(BAD_CALLS.values()), ids=list(BAD_CALLS))
def test_bad_arguments_raise_graphc_errors(call):
    with pytest.raises(graphc.GraphcError):
        call()


@pytest.mark.parametrize("backend", AVAILABLE)
def test_huge_int_argument(backend):
    with pytest.raises(graphc.EvaluationError, match="cannot convert int to float64"):
        graphc.compile("x*y", backend=backend)(10**400, 1.0)
