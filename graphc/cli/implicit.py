"""``graphc implicit``: dz/dx of the unknowns z defined by g(x, z) = 0."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from graphc.backends import check_backend, compile_graph
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
from graphc.diff import METHODS
from graphc.implicit import compile_implicit, derivative_name, implicit_graph
from graphc.parse import parse
from graphc.printing import formula
from graphc.values import json_number


def add_parser(commands: Any) -> None:
    command = commands.add_parser(
        "implicit",
        help="implicit differentiation: dz/dx of z defined by g(x, z) = 0",
        description="Differentiate the unknowns z defined implicitly by g(x, z) = 0 (one output per "
        "equation): dz/dx = -(∂g/∂x)/(∂g/∂z) for one equation, -(∂g/∂z)^-1 ∂g/∂x for a system. Without "
        "--at, print the formulas; with --at (a point on the solution set), their values.",
        epilog='examples:\n  graphc implicit "x^2 + z^2 - 1" --solve-for z\n'
        '  graphc implicit "x^2 + z^2 - 1" --solve-for z --at x=0.6,z=0.8 --json\n'
        '  graphc implicit "x + y + z, x - y + 2*z" --solve-for y,z --at x=3,y=-1,z=-2',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    command.add_argument("expr", metavar="EXPR", help="the equations g = 0, comma-separated outputs")
    command.add_argument(
        "--solve-for", required=True, metavar="NAMES", help="the unknowns z, comma-separated"
    )
    command.add_argument(
        "--wrt", metavar="NAMES", help="differentiate by these inputs (default: every other variable)"
    )
    add_at(command)
    command.add_argument(
        "--method", default="dp", choices=list(METHODS), help="how the partials of g are computed"
    )
    add_backend(command)
    add_json(command)
    add_max_nodes(command)
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    g = parse(args.expr, args.max_nodes)
    point = read_point(args, g.variables, required=False, arrays=False)
    check_backend(args.backend)
    graph = implicit_graph(g, args.solve_for, args.wrt, args.method)
    unknowns, inputs = graph.info["solve_for"], graph.info["wrt"]
    names = [derivative_name(z, x) for z in unknowns for x in inputs]
    record: dict[str, Any] = {"expr": args.expr, "solve_for": unknowns, "wrt": inputs, "method": args.method}
    if not args.at:
        system = len(unknowns) > 1
        shown = graph.outputs if system else graph.outputs[: len(inputs)]
        labels = graph.output_names if system else names
        texts = [formula(graph, node) for node in shown]
        if args.json:
            record["partials" if system else "derivative"] = dict(zip(labels, texts, strict=True))
            print_json(record)
            return 0
        if system:
            blocks = f"d({','.join(unknowns)})/d({','.join(inputs)}) = -(∂g/∂z)⁻¹ ∂g/∂x"
            print(f"# a system: {blocks}, solved numerically at a point (give it with --at)")
        for label, text in zip(labels, texts, strict=True):
            print(f"{label} = {text}")
        return 0
    residual = compile_graph(g, args.backend)(**point)
    residuals = [float(v) for v in (residual if isinstance(residual, tuple) else (residual,))]
    values = [float(v) for v in np.ravel(np.asarray(compile_implicit(graph, args.backend)(**point)))]
    if args.json:
        record["backend"] = args.backend
        record["value"] = numbers(residuals)
        record["derivative"] = {name: json_number(v) for name, v in zip(names, values, strict=True)}
        print_json(record)
        return 0
    for name, v in zip(g.output_names, residuals, strict=True):
        print(f"{name} = {show(v)}")
    for name, v in zip(names, values, strict=True):
        print(f"{name} = {show(v)}")
    return 0
