"""A coverage-guided fuzz target for graphc (atheris): text and token sequences into the parser,
every differentiation method, every backend and the command line.

The only exceptions allowed out of the Python API are GraphcErrors; the command line must exit
with 0, 1 or 2 and print no traceback and no "internal error". Run (not part of CI)::

    pip install -e '.[fuzz]'
    python fuzz/fuzz_graphc.py -max_total_time=600 -rss_limit_mb=4096 fuzz/corpus

(an empty directory starts from nothing; crashing inputs are written as ``crash-*`` files).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile

import atheris

os.environ.setdefault("GRAPHC_CACHE_DIR", tempfile.mkdtemp(prefix="graphc-fuzz-cache-"))

with atheris.instrument_imports(include=["graphc"]):
    import numpy as np

    import graphc
    import graphc.backends.numpy
    import graphc.dot
    from graphc.backends import BACKENDS, UNAVAILABLE
    from graphc.cli import main

# Grammar-aware vocabulary: a token sequence drawn from it is often almost a program.
# fmt: off
TOKENS = [
    "x", "y", "z", "u", "x0", "_", "np", "out", "def", "lambda", "__class__", "é", "ﬁ", "x\u0301",
    "0", "1", "2", "0.5", "1e308", "1e-320", "1e999", ".5", "3.", "pi", "e",
    "+", "-", "*", "/", "**", "^", "(", ")", ",", "=", ";", "\n", " ", "#",
    "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "exp", "log", "sqrt",
    "abs", "sign", "sigmoid", "relu", "softplus", "max", "min", "pow", "atan2", "sin(", "max(",
    "//", "%", "[", "'", "\x00", "\u200b", "∂", "…",
]
METHODS = ["dp", "forward", "paths", "numeric", "symbolic"]
# fmt: on
BACKEND_NAMES = [name for name in BACKENDS if name not in UNAVAILABLE]
if "llvm" in BACKEND_NAMES:
    with atheris.instrument_imports(include=["graphc"]):
        import graphc.backends.llvm
# fmt: off
CLI_WORDS = ["grad", "eval", "check", "trace", "report", "implicit", "--at", "--wrt", "--method",
             "--backend", "--json", "--emit", "--order", "--max-paths", "--mode", "x=1", "x=0,y=0",
             "y=2", "x", "numpy", "llvm", "paths", "dp", "sympy", "--", "-x", "--help", "0"]
# fmt: on


def _tokens(fdp: atheris.FuzzedDataProvider, words: list[str], count: int) -> list[str]:
    return [words[fdp.ConsumeIntInRange(0, len(words) - 1)] for _ in range(count)]


def _api(text: str, fdp: atheris.FuzzedDataProvider) -> None:
    try:
        graph = graphc.parse(text)
    except graphc.GraphcError:
        return
    if len(graph) > 60:
        return
    point = {name: fdp.ConsumeFloat() for name in graph.variables}
    method = METHODS[fdp.ConsumeIntInRange(0, len(METHODS) - 1)]
    if method == "symbolic" and len(graph) > 25:
        method = "dp"
    backend = BACKEND_NAMES[fdp.ConsumeIntInRange(0, len(BACKEND_NAMES) - 1)]
    try:
        kernel = graphc.compile(graph, backend=backend)
        kernel(**point)
        kernel(**{name: np.full(3, value) for name, value in point.items()})
        if len(graph.outputs) == 1 and graph.variables:
            graphc.grad(graph, method=method, backend=backend)(**point)
            graphc.check(graph, at=point, method=method, backend=backend)
    except graphc.GraphcError:
        pass


def _cli(argv: list[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # --help and --version
            code = exit_.code if isinstance(exit_.code, int) else 2
    message = err.getvalue()
    if code not in (0, 1, 2) or "Traceback" in message or "internal error" in message:
        raise AssertionError(f"graphc {argv!r}: exit {code}, stderr {message!r}")
    if message and not message.startswith("graphc: error:"):
        raise AssertionError(f"graphc {argv!r}: stderr {message!r}")


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 3)
    if mode == 0:
        _api(fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 120)), fdp)
    elif mode == 1:
        _api("".join(_tokens(fdp, TOKENS, fdp.ConsumeIntInRange(0, 30))), fdp)
    elif mode == 2:
        expr = "".join(_tokens(fdp, TOKENS, fdp.ConsumeIntInRange(0, 12)))
        if "report" in (words := _tokens(fdp, CLI_WORDS, fdp.ConsumeIntInRange(0, 6))):
            return  # report runs for seconds: covered by its own tests
        _cli([*words[:1], expr, *words[1:]])
    else:
        words = [fdp.ConsumeUnicodeNoSurrogates(20) for _ in range(fdp.ConsumeIntInRange(0, 5))]
        if "report" not in words:
            _cli(words)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
