"""``graphc grad``: partials as formulas, or their values at a point; or the gradient as source."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from graphc.api import derivatives
from graphc.backends import check_backend, compile_graph
from graphc.cli.common import (
    UsageError,
    add_at,
    add_backend,
    add_max_nodes,
    numbers,
    positive,
    print_json,
    read_point,
    show,
)
from graphc.diff import MAX_PATHS, METHODS, count_paths
from graphc.diff.common import resolve_wrt
from graphc.errors import GraphcError
from graphc.graph import Graph
from graphc.parse import parse
from graphc.printing import formula
from graphc.values import json_number


def add_parser(commands: Any) -> None:
    command = commands.add_parser(
        "grad",
        help="differentiate a formula: partials as formulas, or their values at a point",
        description="Differentiate a formula (or a program with bindings and several outputs). "
        "Without --at, print each partial as a formula; with --at, print the value and each partial "
        "at that point.",
        epilog='examples:\n  graphc grad "sin(x*y) + exp(x)"\n'
        '  graphc grad "sin(x*y) + exp(x)" --at x=1.5,y=2 --json\n'
        '  graphc grad "a1 = w*w; a2 = a1*a1; a2*a2" --method paths\n'
        '  graphc grad "sin(x)*exp(x)" --wrt x --order 3 --at x=0\n'
        '  graphc grad "(1-x)^2 + 100*(y-x^2)^2" --emit numpy > rosenbrock.py',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    command.add_argument("expr", metavar="EXPR", help="the formula, e.g. 'u = x*y; sin(u) + u**2'")
    command.add_argument(
        "--wrt", metavar="NAMES", help="differentiate by these variables, comma-separated (default: all)"
    )
    command.add_argument(
        "--method",
        default="dp",
        choices=list(METHODS),
        help="dp: reverse mode, linear (default); forward: one pass per input; paths: sum over "
        "all paths, exponential; symbolic: SymPy; numeric: central differences",
    )
    add_backend(command)
    add_at(command)
    command.add_argument(
        "--order",
        type=positive,
        default=1,
        metavar="N",
        help="the N-th derivative in each variable of --wrt (default: 1)",
    )
    command.add_argument(
        "--emit",
        choices=["sympy", "numpy", "dot", "llvm"],
        help="print the gradient as SymPy formulas, a standalone NumPy module, Graphviz DOT or LLVM IR",
    )
    command.add_argument(
        "--json",
        action="store_true",
        help='print {"expr", "method", "backend", "value", "gradient": {name: number}} as JSON '
        '(with --method paths also "paths": {name: count})',
    )
    command.add_argument(
        "--max-paths",
        type=positive,
        metavar="N",
        help=f"with --method paths: refuse graphs with more paths than this (default: {MAX_PATHS:,})",
    )
    command.add_argument("--cse", action="store_true", help="with --method symbolic: run sympy.cse")
    add_max_nodes(command)
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    graph = parse(args.expr, args.max_nodes)
    if args.emit and args.json:
        raise UsageError("--emit and --json cannot be combined: --emit prints source, --json prints results")
    if args.emit and args.at:
        raise UsageError("--emit prints code for every point; leave out --at")
    point = read_point(args, graph.variables, required=False)
    check_backend(args.backend)
    derivative = _gradient_graph(args, graph)
    if args.emit:
        sys.stdout.write(_emit(args.emit, derivative))
        return 0
    first = derivative.info["function_outputs"]
    wrt = derivative.info["wrt"]
    record: dict[str, Any] = {"expr": args.expr, "method": args.method}
    paths = {"paths": count_paths(graph, wrt)} if args.method == "paths" else {}
    if not args.at:
        texts = [formula(derivative, node) for node in derivative.outputs[first:]]
        if args.json:
            print_json({**record, "gradient": _by_output(graph, wrt, texts), **paths})
        else:
            for name, text in zip(derivative.output_names[first:], texts, strict=True):
                print(f"{name} = {text}")
        return 0
    result = compile_graph(derivative, args.backend)(**point)
    values = list(result) if isinstance(result, tuple) else [result]
    if args.json:
        record["backend"] = args.backend
        record["value"] = numbers(values[:first])
        record["gradient"] = _by_output(graph, wrt, [json_number(v) for v in values[first:]])
        if args.order != 1:
            record["order"] = args.order
        print_json({**record, **paths})
    else:
        for name, v in zip(derivative.output_names, values, strict=True):
            print(f"{name} = {show(v)}")
    return 0


def _gradient_graph(args: argparse.Namespace, graph: Graph) -> Graph:
    if args.max_paths is not None and args.method != "paths":
        raise UsageError(f"--max-paths applies to --method paths, not to --method {args.method}")
    if args.cse and args.method != "symbolic":
        raise UsageError(f"--cse applies to --method symbolic, not to --method {args.method}")
    options: dict[str, Any] = {}
    if args.method == "paths":
        options["max_paths"] = MAX_PATHS if args.max_paths is None else args.max_paths
    if args.method == "symbolic":
        options["cse"] = args.cse
    if not graph.variables:  # the API's empty gradient would print nothing here
        raise UsageError("the function has no variables: there is nothing to differentiate")
    return derivatives(graph, resolve_wrt(graph, args.wrt), args.order, args.method, **options)


def _by_output(graph: Graph, wrt: list[str], entries: list[Any]) -> dict[str, Any]:
    """``{variable: entry}`` for one output; ``{output: {variable: entry}}`` for several."""
    rows = [
        dict(zip(wrt, entries[i * len(wrt) : (i + 1) * len(wrt)], strict=True))
        for i in range(len(graph.outputs))
    ]
    return rows[0] if len(rows) == 1 else dict(zip(graph.output_names, rows, strict=True))


def _emit(kind: str, derivative: Graph) -> str:
    """The gradient graph as a standalone NumPy module, LLVM IR, Graphviz DOT, or SymPy formulas."""
    first = derivative.info["function_outputs"]
    if kind == "numpy":
        from graphc.backends.numpy import generate_module

        functions = {"f": range(first), "grad": range(first, len(derivative.outputs))}
        return generate_module(derivative, functions, tuples=["grad"])
    if kind == "dot":
        from graphc.dot import to_dot

        return to_dot(derivative)
    if kind == "llvm":
        check_backend("llvm")
        from graphc.backends.llvm import optimized_ir

        return optimized_ir(derivative)
    return _sympy_text(derivative)


def _sympy_text(derivative: Graph) -> str:
    import sympy

    from graphc.sympy_bridge import to_sympy

    expressions = to_sympy(derivative)
    expressions = expressions if isinstance(expressions, tuple) else (expressions,)
    taken = {str(symbol) for e in expressions for symbol in e.free_symbols}
    taken |= {*derivative.variables, *derivative.names.values()}  # also those the partials lost
    names = (f"t{i}" for i in range(1, 10**9) if f"t{i}" not in taken)
    try:
        replacements, reduced = sympy.cse(list(expressions), symbols=(sympy.Symbol(n) for n in names))
        lines = [f"{symbol} = {sympy.sstr(value)}" for symbol, value in replacements]
        lines += [f"{n} = {sympy.sstr(e)}" for n, e in zip(derivative.output_names, reduced, strict=True)]
    except RecursionError:
        depth = derivative.stats()["depth"]
        raise GraphcError(
            f"SymPy cannot print an expression this deep (depth {depth}); try --emit numpy"
        ) from None
    return "\n".join(lines) + "\n"
