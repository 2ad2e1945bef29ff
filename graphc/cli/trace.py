"""``graphc trace``: the evaluation trace at a point, with tangents or adjoints."""

from __future__ import annotations

import argparse
from typing import Any

from graphc.cli.common import add_at, add_json, add_max_nodes, print_json, read_point
from graphc.parse import parse
from graphc.values import json_number


def add_parser(commands: Any) -> None:
    command = commands.add_parser(
        "trace",
        help="the evaluation trace at a point: primal values with tangents or adjoints",
        description="Print the evaluation trace of a one-output formula at a point: one row per input "
        "and operation (v1 ... vN, or the program's own name where a binding names the node) with its "
        "definition, primal value, and tangent (forward mode) or adjoint (reverse mode).",
        epilog='example: graphc trace "x1*x2 + exp(x1*x2) - sin(x2)" --at x1=1.5,x2=0.5 --mode reverse',
        allow_abbrev=False,
    )
    command.add_argument("expr", metavar="EXPR", help="the formula")
    add_at(command)
    command.add_argument("--mode", default="forward", choices=["forward", "reverse"], help="default: forward")
    command.add_argument(
        "--wrt", metavar="NAME", help="forward mode: the input to differentiate by (default: the first)"
    )
    add_json(command, "print the rows as JSON")
    add_max_nodes(command)
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from graphc.trace import trace

    graph = parse(args.expr, args.max_nodes)
    point = read_point(args, graph.variables, arrays=False)
    result = trace(graph, point, args.mode, args.wrt)  # type: ignore[arg-type]  # numbers only
    derivative = "tangent" if args.mode == "forward" else "adjoint"
    if args.json:
        rows = [
            {
                "node": r.name,
                "definition": r.definition,
                "value": json_number(r.value),
                derivative: json_number(r.derivative),
            }
            for r in result.rows
        ]
        gradient = {k: json_number(v) for k, v in result.gradient.items()}
        print_json(
            {"expr": args.expr, "mode": args.mode, "wrt": result.wrt, "rows": rows, "gradient": gradient}
        )
        return 0
    if args.mode == "forward":
        title = f"forward mode: primal v and tangent ∂v/∂{result.wrt}"
        column = f"tangent ∂v/∂{result.wrt}"
    else:
        title = f"reverse mode: primal v and adjoint ∂{result.output}/∂v"
        column = f"adjoint ∂{result.output}/∂v"
    table = [("node", "definition", "value", column)]
    table += [(r.name, r.definition, repr(r.value), repr(r.derivative)) for r in result.rows]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    print(title)
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    for name, value in result.gradient.items():
        print(f"∂{result.output}/∂{name} = {value!r}")
    return 0
