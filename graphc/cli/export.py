"""``graphc export``: a formula, its gradient or its Jacobian as C99 source (and a shared library)."""

from __future__ import annotations

import argparse
from typing import Any

from graphc.backends.c import build_shared, export
from graphc.cli.common import UsageError, add_max_nodes
from graphc.diff import METHODS, differentiate
from graphc.diff.common import resolve_wrt
from graphc.errors import GraphcError
from graphc.parse import parse


def add_parser(commands: Any) -> None:
    command = commands.add_parser(
        "export",
        help="write a formula (or its gradient, or Jacobian) as portable C99 source",
        description="Write DIR/NAME.h and DIR/NAME.c: C99 needing only libm, with NAME(n, inputs..., "
        "outputs...) over n points and NAME_point(in, out) for one. Inputs are the variables in sorted "
        "order; outputs the function's values, then with --grad the partials in --wrt order, with "
        "--jacobian the Jacobian entries row by row. NAME.h documents every argument.",
        epilog='example:\n  graphc export "sin(x*y) + exp(x)/(1 + y*y)" --grad --name model -o out\n'
        "  cc -O2 -std=c99 -shared -fPIC out/model.c -o libmodel.so -lm",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    command.add_argument("expr", metavar="EXPR", help="the formula, e.g. 'u = x*y; sin(u) + u**2'")
    what = command.add_mutually_exclusive_group()
    what.add_argument("--grad", action="store_true", help="the value, then the partials (one output)")
    what.add_argument("--jacobian", action="store_true", help="the values, then the Jacobian row by row")
    command.add_argument("--wrt", metavar="NAMES", help="the variables to differentiate by (default: all)")
    command.add_argument(
        "--method",
        choices=list(METHODS),
        help="how to differentiate (default: dp; forward for a Jacobian with fewer variables than outputs)",
    )
    command.add_argument("--name", required=True, help="the C function's name (a C identifier)")
    command.add_argument("-o", "--out", required=True, metavar="DIR", help="the directory to write into")
    command.add_argument(
        "--shared", action="store_true", help="also build DIR/libNAME.so with the system's cc"
    )
    add_max_nodes(command)
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    graph = parse(args.expr, args.max_nodes)
    if (args.wrt or args.method) and not (args.grad or args.jacobian):
        raise UsageError("--wrt and --method need --grad or --jacobian")
    if args.grad or args.jacobian:
        if args.grad and len(graph.outputs) != 1:
            raise GraphcError(
                f"--grad needs a function with one output; this one has {len(graph.outputs)}: use --jacobian"
            )
        wrt = resolve_wrt(graph, args.wrt.split(",") if args.wrt else None)
        method = args.method or ("forward" if args.jacobian and len(wrt) < len(graph.outputs) else "dp")
        graph = differentiate(graph, wrt, method)
    paths = export(graph, args.out, args.name, source=args.expr)
    if args.shared:
        paths.append(build_shared(paths, args.name))
    for path in paths:
        print(path)
    return 0
