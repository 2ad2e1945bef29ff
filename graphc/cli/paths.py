"""``graphc paths``: how many input-to-output paths each input has, and below a limit the paths
themselves with the products of their edges' local derivatives (the path-aggregation lemma)."""

from __future__ import annotations

import argparse
from typing import Any

from graphc.cli.common import UsageError, add_json, add_max_nodes, positive, print_json
from graphc.diff import MAX_PATHS
from graphc.diff.paths import Path, count_paths, list_paths
from graphc.graph import Graph
from graphc.ops import VAR
from graphc.parse import parse
from graphc.printing import formula

DEFAULT_LIST = 20


def add_parser(commands: Any) -> None:
    command = commands.add_parser(
        "paths",
        help="count the paths from each input to the output; list them with their products",
        description="Count, exactly, the paths from each input to the outputs: the terms of the "
        "path-aggregation lemma, df/dx = sum over paths from x to f of the product of the local "
        "derivatives on the path's edges. When there are at most --list paths in all, list each one "
        "with its edges' local derivatives and their product.",
        epilog='examples:\n  graphc paths "sin(x*y) + exp(x)"\n'
        '  graphc paths "a1 = w*w; a2 = a1*a1; a2*a2" --list 100\n'
        '  graphc paths "a1 = w*w; a2 = a1*a1; a3 = a2*a2; a3*a3" --json',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    command.add_argument("expr", metavar="EXPR", help="the formula")
    command.add_argument("--wrt", metavar="NAMES", help="count paths from these inputs (default: all)")
    command.add_argument(
        "--list",
        type=positive,
        default=DEFAULT_LIST,
        metavar="N",
        help=f"list the paths when there are at most N in all (default: {DEFAULT_LIST})",
    )
    command.add_argument(
        "--max-paths",
        type=positive,
        default=MAX_PATHS,
        metavar="M",
        help=f"never list more than M paths, whatever --list says (default: {MAX_PATHS:,})",
    )
    add_json(command, 'print {"expr", "paths": {name: count}, "total", "listed", "list": [...]} as JSON')
    add_max_nodes(command)
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    graph = parse(args.expr, args.max_nodes)
    if not graph.variables:
        raise UsageError("the function has no variables: there are no paths to count")
    counts = count_paths(graph, args.wrt)
    total = sum(counts.values())
    limit = min(args.list, args.max_paths)
    reason = None
    if total > limit:
        option = "--list" if args.list <= args.max_paths else "--max-paths"
        reason = f"{total:,} paths in all, more than {option} {limit:,}: not listed"
    listed: list[dict[str, Any]] = []
    if reason is None:
        work, found = list_paths(graph, args.wrt)
        listed = [_describe(work, path) for path in found]
    if args.json:
        record: dict[str, Any] = {
            "expr": args.expr,
            "paths": counts,
            "total": total,
            "listed": reason is None,
        }
        if reason is None:
            record["list"] = listed
        else:
            record["reason"] = reason
        print_json(record)
        return 0
    width = max(len(name) for name in counts) if counts else 0
    for name, count in counts.items():
        print(f"{name.ljust(width)}  {count:,} path{'' if count == 1 else 's'}")
    if reason is not None:
        print(f"{reason} (raise --list to see them)" if "--list" in reason else reason)
        return 0
    several = len(graph.outputs) > 1
    for entry in listed:
        to = f" to {entry['output']}" if several else ""
        route = entry["nodes"][0] + "".join(
            f" →{'' if slot is None else f'[{slot}]'} {node}"
            for node, slot in zip(entry["nodes"][1:], entry["operand"], strict=True)
        )
        factors = " · ".join(f"({factor})" for factor in entry["factors"])
        print(f"{entry['input']}{to}: {route}")
        print(f"    factors {factors} = {entry['product']}")
    return 0


def _describe(work: Graph, path: Path) -> dict[str, Any]:
    """A path as text: node labels (a binding's name where the program gives one), each edge's
    local derivative, and their product."""
    nodes = [
        work.name(node) if work.op(node) == VAR else work.names.get(node, work.op(node))
        for node in path.nodes
    ]
    factors = [formula(work, z) for z in path.factors]
    # the operand an edge enters (1-based), where the node has that operand more than once
    operand = [
        slot + 1 if work.args(node).count(work.args(node)[slot]) > 1 else None
        for node, slot in zip(path.nodes[1:], path.slots, strict=True)
    ]
    node = work.const(1.0)
    for z in path.factors:
        node = work.mul(node, z)
    product = formula(work, node)
    return {
        "input": path.input,
        "output": path.output,
        "nodes": nodes,
        "operand": operand,
        "factors": factors,
        "product": product,
    }
