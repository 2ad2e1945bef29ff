"""``graphc eval``: a formula's value at a point."""

from __future__ import annotations

import argparse
from typing import Any

from graphc.backends import compile_graph
from graphc.cli.common import (
    add_at,
    add_backend,
    add_json,
    add_max_nodes,
    numbers,
    print_json,
    read_point,
    show,
)
from graphc.parse import parse


def add_parser(commands: Any) -> None:
    command = commands.add_parser(
        "eval",
        help="evaluate a formula at a point",
        description="Evaluate a formula (or a program with bindings and several outputs) at a point.",
        epilog='example: graphc eval "sin(x*y) + exp(x)" --at x=1.5,y=2',
        allow_abbrev=False,
    )
    command.add_argument("expr", metavar="EXPR", help="the formula, e.g. 'u = x*y; sin(u) + u**2'")
    add_at(command)
    add_backend(command)
    add_json(command, 'print {"expr", "backend", "value"} as JSON')
    add_max_nodes(command)
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    graph = parse(args.expr, args.max_nodes)
    point = read_point(args, graph.variables)
    result = compile_graph(graph, args.backend)(**point)
    values = list(result) if len(graph.outputs) > 1 else [result]
    if args.json:
        print_json({"expr": args.expr, "backend": args.backend, "value": numbers(values)})
    elif len(values) == 1:
        print(show(values[0]))
    else:
        for name, v in zip(graph.output_names, values, strict=True):
            print(f"{name} = {show(v)}")
    return 0
