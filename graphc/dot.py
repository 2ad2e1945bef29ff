"""Graphs as Graphviz DOT text (``graphc grad --emit dot``).

Primal nodes (those of the function) are white ellipses, derivative nodes (built by a
differentiation method: adjoints, tangents, path products) are filled boxes, and each output is a
labelled note pointing at its node. Edges go from operand to user, one per operand slot, labelled
with the slot number where the op's operand order matters.
"""

from __future__ import annotations

import json

from graphc.graph import Graph
from graphc.ops import CONST, OPS, VAR
from graphc.printing import constant_text


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a DOT string is a double-quoted, escaped string


def to_dot(graph: Graph, name: str = "graphc") -> str:
    """The graph's reachable nodes and edges as a DOT digraph."""
    keep = graph.reachable()
    primal = int(graph.info.get("primal_nodes", len(graph)))
    lines = [
        f"digraph {_quote(name)} {{",
        "  rankdir=BT;",
        '  node [fontname="Helvetica", fontsize=11];',
        f"  // primal nodes: ellipses; derivative nodes ({graph.info.get('method', 'none')}): filled boxes",
    ]
    for node in range(len(graph)):
        if not keep[node]:
            continue
        op = graph.op(node)
        if op == VAR:
            label = graph.name(node)
        elif op == CONST:
            label = constant_text(graph.const_value(node))[0]  # type: ignore[arg-type]
        else:
            spec = OPS[op]
            label = spec.infix if spec.infix else (spec.function or op)
        style = (
            'shape=ellipse, style=""' if node < primal else 'shape=box, style="filled", fillcolor="lightblue"'
        )
        if op == VAR:
            style = 'shape=ellipse, style="bold"'
        lines.append(f"  n{node} [label={_quote(label)}, {style}];")
    for node in range(len(graph)):
        if not keep[node]:
            continue
        args = graph.args(node)
        ordered = len(args) > 1 and not OPS[graph.op(node)].commutative
        for slot, arg in enumerate(args):
            label = f" [label={_quote(str(slot))}]" if ordered else ""
            lines.append(f"  n{arg} -> n{node}{label};")
    for i, (node, out) in enumerate(zip(graph.outputs, graph.output_names, strict=True)):
        lines.append(f'  out{i} [label={_quote(out)}, shape=note, style="filled", fillcolor="lightyellow"];')
        lines.append(f"  n{node} -> out{i} [style=dashed];")
    lines.append("}")
    return "\n".join(lines) + "\n"
