"""The NumPy backend for tensor graphs: one statement per block node, under the batch rule.

A graph with a declared tensor (:attr:`Graph.tensor`) compiles to a module whose function binds
the named dimensions and the batch shape from its arguments (``_bind``: every input's shape ends
with its declared shape; the leading axes left over broadcast together into the batch), then runs
one statement per node: an elementwise op as its NumPy template, an operand of lower declared rank
given its missing axes explicitly (``b[..., None, :]``), so a batch axis is never aligned with a
declared one; a block op as its entry's ``emit``. Every output gets the batch axes in front.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from graphc.backends.numpy import OUTPUT_HELPERS, in_place, literal, parameter_names
from graphc.graph import Graph
from graphc.ops import ALL_OPS, BLOCK_HELPERS, CONST, VAR
from graphc.shapes import BIND_SOURCE
from graphc.shapes import source as shape_source

PRELUDE = ["import math", "", "import numpy as np", "", "", *BIND_SOURCE.splitlines(), "", ""]


_DEFINITION = re.compile(r"(?:def )?(\w+)")  # a definition's name, at the line's first column


def _definitions(source: str) -> list[tuple[str, str]]:
    """The top-level definitions of ``source`` (a ``def`` or an assignment each), named, in order."""
    found: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        start = _DEFINITION.match(line)
        if start is not None:
            found.append((start.group(1), []))
        if found:
            found[-1][1].append(line)
    return [(name, "\n".join(lines).rstrip("\n")) for name, lines in found]


_HELPERS = _definitions(BLOCK_HELPERS)
_WORD = re.compile(r"\w+")  # a name is called where it is a whole word of the text


def helpers(body: Sequence[str]) -> list[str]:
    """The lines of the BLOCK_HELPERS that ``body`` calls, and those they call, in their order:
    a module holds no helper it does not use (fewer lines to read, and to compile)."""
    texts = ["\n".join(body)]
    used: set[str] = set()
    while texts:  # the helpers a text calls, then the helpers those call
        words = set(_WORD.findall(texts.pop()))
        for name, definition in _HELPERS:
            if name not in used and name in words:
                used.add(name)
                texts.append(definition)
    lines = []
    for name, definition in _HELPERS:
        if name in used:
            lines += [*definition.splitlines(), "", ""]
    return lines


def expanded(source: str, rank: int, out_rank: int) -> str:
    """An operand of declared rank ``rank`` in an elementwise op of rank ``out_rank``: its missing
    axes inserted before its own, so that leading batch axes stay in front."""
    if rank == out_rank or source[0].isdigit() or source.startswith(("(", "np.")):
        return source  # same rank, or a literal
    return f"{source}[..., {'None, ' * (out_rank - rank)}{':, ' * rank}]".replace(", ]", "]")


def statements(graph: Graph, outputs: Sequence[int], params: Sequence[str]) -> tuple[list[str], list[str]]:
    """The statements computing ``outputs`` and the names they end in."""
    keep = graph.reachable(outputs)
    ref: dict[int, str] = {graph.variable(v): p for v, p in zip(graph.variables, params, strict=True)}
    reusable = _reusable(graph, keep, outputs)
    lines = []
    for node in range(len(graph)):
        op = graph.op(node)
        if not keep[node] or op == VAR:
            continue
        if op == CONST:
            ref[node] = literal(graph.const_value(node))  # type: ignore[arg-type]
            continue
        spec = ALL_OPS[op]
        args = graph.args(node)
        shapes = tuple(graph.shape(a) for a in args)
        if spec.block:
            assert spec.emit is not None
            # a literal operand as a NumPy scalar: the emitted source calls array methods on it
            operands = tuple(f"np.float64({ref[a]})" if graph.op(a) == CONST else ref[a] for a in args)
            code = spec.emit(operands, shapes, graph.params(node))
        else:
            rank = len(graph.shape(node))
            operands = tuple(expanded(ref[a], len(s), rank) for a, s in zip(args, shapes, strict=True))
            code = spec.numpy_of(operands).format(*operands)
            dead, guarded = reusable.get(node, (None, False))
            if dead is not None:  # write into the dead operand's array: no allocation
                out = f"{ref[dead]} if not batch else None" if guarded else None
                written = in_place(spec, ref[dead], operands, out)
                if written is not None:
                    ref[node] = ref[dead]
                    lines.append(f"{ref[dead]} = {written}" if "out=" in written else written)
                    continue
        ref[node] = f"t{node}"
        lines.append(f"t{node} = {code}")
    return lines, [ref[o] for o in outputs]


def _reusable(graph: Graph, keep: Sequence[bool], outputs: Sequence[int]) -> dict[int, tuple[int, bool]]:
    """For an elementwise node, an operand whose array it may overwrite, and whether only without
    batch axes: a temporary that owns a fresh array (no view of an input: not a ``view`` block op's
    result), of the node's declared shape and rank >= 1, used for the last time there (it and every
    view of it). If its partner operands are literals, the result has exactly its shape, batch axes
    included; if not, a partner may bring batch axes it lacks, so the statement writes into it only
    when the call has no batch axes (every array then has exactly its declared shape)."""
    root: dict[int, int] = {}  # the node whose array a node's value lives in
    last: dict[int, int] = {}  # the last node reading each array
    for node in range(len(graph)):
        if not keep[node]:
            continue
        op = graph.op(node)
        args = graph.args(node)
        spec = ALL_OPS.get(op)
        owned = spec is not None and not spec.view and op not in (VAR, CONST)
        root[node] = node if owned or not args else root[args[0]]
        for arg in args:
            last[root[arg]] = node
    for output in outputs:
        last[root[output]] = len(graph)  # an output's array is returned: never overwritten
    found = {}
    for node in range(len(graph)):
        op = graph.op(node)
        if not keep[node] or op in (VAR, CONST) or ALL_OPS[op].block or not graph.shape(node):
            continue
        args = graph.args(node)
        temporaries = [a for a in args if graph.op(a) != CONST]
        for candidate in temporaries:
            if (
                root[candidate] == candidate
                and last.get(candidate) == node
                and graph.shape(candidate) == graph.shape(node)
                and graph.op(candidate) != VAR
            ):
                found[node] = (candidate, len(temporaries) > 1)
                break
    return found


def function(graph: Graph, name: str, indices: Sequence[int], as_tuple: bool) -> list[str]:
    """The lines defining ``name``, returning the outputs listed by index (batch axes in front)."""
    variables = graph.variables
    params = parameter_names(variables)
    outputs = [graph.outputs[i] for i in indices]
    body, results = statements(graph, outputs, params)
    declared = {v: graph.shape(graph.variable(v)) for v in variables}
    signature = ", ".join(params)
    header = f"{name}({', '.join(variables)}) -> {', '.join(graph.output_names[i] for i in indices)}"
    lines = ["", f"def {name}({signature}{', ' * bool(params)}*, out=None):", f'    """{header}"""']
    lines += [f"    {p} = np.asarray({p}, dtype=np.float64)" for p in params]
    given = ", ".join(f"{v!r}: {p}.shape" for v, p in zip(variables, params, strict=True))
    lines.append(f"    dims, batch = _bind({declared!r}, {{{given}}})")
    lines.append("    with np.errstate(all='ignore'):")
    lines += [f"        {line}" for line in body] or ["        pass"]
    copied = [f"{r}.copy()" if graph.op(o) == VAR else r for r, o in zip(results, outputs, strict=True)]
    shaped = [
        f"_shaped({r}, batch + {shape_source(graph.shape(o))})" for r, o in zip(copied, outputs, strict=True)
    ]
    single = len(shaped) == 1 and not as_tuple
    values = shaped[0] if single else "(" + ", ".join(shaped) + ("," if len(shaped) == 1 else "") + ")"
    lines.append(f"    values = {values}")
    lines.append(f"    return values if out is None else _copied({'(values,)' if single else 'values'}, out)")
    return [*lines, ""]


def module(graph: Graph, functions: Mapping[str, Sequence[int]], tuples: Sequence[str] = ()) -> list[str]:
    """A standalone module's lines: one function per entry of ``functions``."""
    body = [
        line for name, indices in functions.items() for line in function(graph, name, indices, name in tuples)
    ]
    header = f"# Generated by graphc: {', '.join(functions)} of ({', '.join(graph.variables)})"
    return [header, *PRELUDE, *helpers(body), *OUTPUT_HELPERS.strip("\n").splitlines(), "", *body]
