"""``graphc check``: the value and gradient at a point, and where nan or inf first arises."""

from __future__ import annotations

import argparse
from typing import Any

from graphc.check import check
from graphc.cli.common import add_at, add_backend, add_json, add_max_nodes, print_json, read_point
from graphc.diff import METHODS
from graphc.parse import parse


def add_parser(commands: Any) -> None:
    command = commands.add_parser(
        "check",
        help="evaluate a formula and its gradient at a point; name where nan or inf first arises",
        description="Evaluate the function and its partials at a point node by node, and name each node "
        "that produces nan or ±inf from operands that do not force it: its subexpression, op and operand "
        "values, in the forward pass (the function) or the backward pass (the partials, related back to "
        "the function's nodes). Exit status 0 when every value is finite, 1 when a non-finite value is "
        "reported, 2 for bad input.",
        epilog='examples:\n  graphc check "sqrt(x^2 + y^2)" --at x=0,y=0\n'
        '  graphc check "log(x) * y" --at x=0,y=1 --json',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    command.add_argument("expr", metavar="EXPR", help="the formula")
    add_at(command)
    command.add_argument(
        "--wrt", metavar="NAMES", help="differentiate by these variables, comma-separated (default: all)"
    )
    command.add_argument("--method", default="dp", choices=list(METHODS), help="default: dp")
    add_backend(command)
    add_json(command)
    add_max_nodes(command)
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    function = parse(args.expr, args.max_nodes)
    point = read_point(args, function.variables, arrays=False)
    result = check(function, point, args.wrt, args.method, args.backend)
    if args.json:
        print_json({"expr": args.expr, **result.as_json()})
    else:
        print(result)
    return 0 if result.finite else 1
