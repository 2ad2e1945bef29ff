"""The ``graphc`` command line: one module per command, each with ``add_parser`` and ``run``.

Every failure is one line on stderr starting ``graphc: error:`` (a parse error adds the source
line and a caret) and exit status 2; Ctrl-C exits with status 130, a closed output pipe with 141,
``graphc check`` with 1 when it reports a non-finite value. No tracebacks, unless
``GRAPHC_DEBUG=1`` asks for them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from graphc import __version__
from graphc.cli import check, export, grad, implicit, paths, report, trace
from graphc.cli import eval as evaluate
from graphc.cli.common import UsageError, print_error, read_expression
from graphc.errors import GraphcError

COMMANDS = (grad, evaluate, trace, implicit, report, check, paths, export)  # in the order --help lists them


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="graphc",
        description="graphc: a symbolic computational-graph compiler. Formulas in, compiled functions "
        "and their derivatives out. Wherever a command takes EXPR, '-' reads it from standard input "
        "and '@FILE' from a file (UTF-8).",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"graphc {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    for command in COMMANDS:
        command.add_parser(commands)
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
    try:
        parser = build_parser()  # inside: Ctrl-C while it imports the commands is one line too
        args = parser.parse_args(_reorder(parser, args_list))
        if isinstance(getattr(args, "expr", None), str):
            args.expr = read_expression(args.expr)
        return int(args.run(args))
    except GraphcError as err:
        print_error(err)
        return 2
    except KeyboardInterrupt:
        print("graphc: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("graphc: error: out of memory", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of stdout went away (graphc ... | head): stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
        except (OSError, ValueError):
            pass
        return 141  # as a tool killed by SIGPIPE
    except Exception as err:  # a bug in graphc: say so in one line unless debugging
        if os.environ.get("GRAPHC_DEBUG"):
            raise
        print(
            f"graphc: internal error: {type(err).__name__}: {err} (set GRAPHC_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 1


__all__ = ["build_parser", "main"]
