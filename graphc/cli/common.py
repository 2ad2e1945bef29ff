"""What every ``graphc`` command shares: its options (``--at``, ``--max-nodes``, ``--backend``,
``--json``), reading the point, printing results and errors."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphc.backends import BACKENDS
from graphc.errors import GraphcError, ParseError
from graphc.graph import MAX_NODES
from graphc.values import Value, check_point, json_number, parse_assignments


class UsageError(GraphcError):
    """A command line that graphc cannot act on."""


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number of at least ``minimum``, with a one-line error otherwise."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return convert


positive = whole_number(1)


def add_max_nodes(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--max-nodes",
        type=positive,
        default=MAX_NODES,
        metavar="N",
        help=f"stop with an error if a graph would have more than N nodes (default: {MAX_NODES:,})",
    )


def add_at(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--at",
        action="append",
        default=[],
        metavar="NAME=VALUE,...",
        help="the point: name=value pairs separated by commas (repeatable); a value is a constant "
        "expression such as pi/4, a list such as [1, 2, 3] (nested for a matrix: [[1,2],[3,4]]; "
        "an array computes a batch) or @FILE.npy",
    )


def add_backend(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--backend", default="numpy", choices=list(BACKENDS), help="compiler backend (default: numpy)"
    )


def add_json(command: argparse.ArgumentParser, what: str = "print the result as one JSON object") -> None:
    command.add_argument("--json", action="store_true", help=what)


def read_point(
    args: argparse.Namespace, variables: Sequence[str], required: bool = True, arrays: bool = True
) -> dict[str, Value]:
    """The point of ``--at``, checked against the function's variables; empty when not
    ``required`` and not given. Without ``arrays``, every value must be one number."""
    point = parse_assignments(args.at)
    if required or args.at:
        point = check_point(variables, point, "--at")
    if not arrays:
        for name, value in point.items():
            if isinstance(value, np.ndarray):
                raise UsageError(
                    f"--at: graphc {args.command} takes one number per variable; '{name}' is an array"
                )
    return point


def show(value: Any) -> str:
    """A result for the terminal: ``repr`` of a float, nested lists for an array."""
    array = np.asarray(value, dtype=float)
    return repr(float(array)) if array.ndim == 0 else repr(array.tolist())


def print_json(record: dict[str, Any]) -> None:
    print(json.dumps(record, ensure_ascii=False))


def numbers(values: Sequence[Any]) -> Any:
    """One JSON number (or array) for one value, a list of them for several."""
    converted = [json_number(v) for v in values]
    return converted[0] if len(converted) == 1 else converted


def read_expression(expr: str) -> str:
    """EXPR as given, or the text of standard input for ``-``, or of a file for ``@FILE``.

    Neither can start a formula, and a long program (over the 128 KB a single command-line argument
    may have on Linux) can only come this way.
    """
    if expr == "-":
        try:
            if sys.stdin is None:  # no standard input at all (file descriptor 0 closed)
                raise OSError("there is none")
            return sys.stdin.read()
        except (OSError, UnicodeDecodeError, ValueError) as err:  # ValueError: a closed file
            raise UsageError(f"cannot read the formula from standard input: {err}") from None
    if expr.startswith("@"):
        path = expr[1:]
        try:
            with open(path, encoding="utf-8") as file:
                return file.read()
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise UsageError(f"cannot read the formula from {path!r}: {reason}") from None
    return expr


def one_line(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped, so an error stays one line."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def print_error(err: GraphcError) -> None:
    """``graphc: error: ...`` on stderr; a parse error adds its source line and a caret."""
    if isinstance(err, ParseError):
        first, _, caret = err.render().partition("\n")
        print(f"graphc: error: {one_line(first)}\n{caret}", file=sys.stderr)
    else:
        print(f"graphc: error: {one_line(str(err))}", file=sys.stderr)
