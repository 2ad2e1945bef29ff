"""The ``graphc`` command line.

Every failure is one line on stderr starting ``graphc: error:`` (a parse error adds the source
line and a caret) and exit status 2; Ctrl-C exits with status 130. No tracebacks, unless
``GRAPHC_DEBUG=1`` asks for them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from graphc import __version__
from graphc.backends import BACKENDS, compile_graph
from graphc.errors import GraphcError, ParseError
from graphc.parse import parse


class UsageError(GraphcError):
    """A command line that graphc cannot act on."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _split_top_level(text: str) -> list[str]:
    """Split at commas that are not inside brackets: ``x=atan2(1,2),y=3`` has two parts."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_assignments(items: Sequence[str]) -> dict[str, float]:
    """``--at`` values: ``name=value`` pairs separated by commas; a value is a constant expression."""
    values: dict[str, float] = {}
    for item in items:
        for part in _split_top_level(item):
            name, eq, value_text = part.partition("=")
            name = name.strip()
            if not eq or not name or not value_text.strip():
                raise UsageError(f"--at expects name=value pairs separated by commas, got {part.strip()!r}")
            if not name.isidentifier():
                raise UsageError(f"--at: {name!r} is not a variable name")
            if name in values:
                raise UsageError(f"--at: variable '{name}' is given twice")
            try:
                graph = parse(value_text)
            except ParseError as err:
                raise UsageError(f"--at: the value of '{name}' is not a number: {err}") from None
            value = graph.const_value(graph.outputs[0]) if len(graph.outputs) == 1 else None
            if value is None:
                raise UsageError(f"--at: the value of '{name}' must be a number, got {value_text.strip()!r}")
            values[name] = value
    return values


def _check_point(variables: Sequence[str], point: dict[str, float]) -> None:
    unknown = [name for name in point if name not in variables]
    if unknown:
        listed = ", ".join(variables) or "none"
        raise UsageError(f"--at: unknown variable '{unknown[0]}' (the variables are: {listed})")
    missing = [name for name in variables if name not in point]
    if missing:
        example = ",".join(f"{name}=..." for name in missing)
        raise UsageError(f"missing value for {', '.join(missing)}: give it with --at {example}")


def json_number(value: Any) -> Any:
    """A float for JSON: non-finite values become the strings "nan", "inf", "-inf"."""
    value = float(value)
    return value if math.isfinite(value) else str(value)


def _cmd_eval(args: argparse.Namespace) -> int:
    graph = parse(args.expr)
    point = parse_assignments(args.at)
    _check_point(graph.variables, point)
    kernel = compile_graph(graph, args.backend)
    result = kernel(**point)
    values = list(result) if len(graph.outputs) > 1 else [result]
    if args.json:
        value: Any = [json_number(v) for v in values] if len(values) > 1 else json_number(values[0])
        print(json.dumps({"expr": args.expr, "backend": args.backend, "value": value}))
    elif len(values) == 1:
        print(repr(float(values[0])))
    else:
        for name, v in zip(graph.output_names, values):
            print(f"{name} = {float(v)!r}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="graphc",
        description="graphc: a symbolic computational-graph compiler. Formulas in, compiled functions out.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"graphc {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    evaluate = commands.add_parser(
        "eval",
        help="evaluate a formula at a point",
        description="Evaluate a formula (or a program with bindings and several outputs) at a point.",
        epilog='example: graphc eval "sin(x*y) + exp(x)" --at x=1.5,y=2',
        allow_abbrev=False,
    )
    evaluate.add_argument("expr", metavar="EXPR", help="the formula, e.g. 'u = x*y; sin(u) + u**2'")
    evaluate.add_argument(
        "--at",
        action="append",
        default=[],
        metavar="NAME=VALUE,...",
        help="the point: name=value pairs separated by commas (repeatable); values may be "
        "constant expressions such as pi/4",
    )
    evaluate.add_argument(
        "--backend", default="numpy", choices=list(BACKENDS), help="compiler backend (default: numpy)"
    )
    evaluate.add_argument("--json", action="store_true", help='print {"expr", "backend", "value"} as JSON')
    evaluate.set_defaults(run=_cmd_eval)
    parser.commands = dict(commands.choices)  # type: ignore[attr-defined]
    return parser


def _reorder(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """Let EXPR start with '-' (``graphc eval "-x**2" --at x=1``), which argparse takes for an option.

    Such an argument that is no option of the command is moved behind ``--``, where argparse
    reads it as the positional EXPR.
    """
    command = getattr(parser, "commands", {}).get(argv[0]) if argv else None
    if command is None or "--" in argv:
        return argv
    options = command._option_string_actions  # argparse's table of the command's option strings
    rest, expr, i = [argv[0]], None, 1
    while i < len(argv):
        item = argv[i]
        action = options.get(item)
        if action is not None:
            rest.append(item)
            if action.nargs != 0 and i + 1 < len(argv):
                rest.append(argv[i + 1])
                i += 1
        elif expr is None and len(item) > 1 and item.startswith("-") and item.split("=", 1)[0] not in options:
            expr = item
        else:
            rest.append(item)
        i += 1
    return argv if expr is None else [*rest, "--", expr]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(_reorder(parser, args_list))
        return int(args.run(args))
    except ParseError as err:
        print(f"graphc: error: {err.render()}", file=sys.stderr)
        return 2
    except GraphcError as err:
        print(f"graphc: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("graphc: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("graphc: error: out of memory", file=sys.stderr)
        return 2
    except Exception as err:  # a bug in graphc: say so in one line unless debugging
        if os.environ.get("GRAPHC_DEBUG"):
            raise
        print(
            f"graphc: internal error: {type(err).__name__}: {err} (set GRAPHC_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 1
