"""Ahead-of-time C: a graph as portable C99 source that needs only libm.

:func:`export` writes ``DIR/NAME.h`` and ``DIR/NAME.c`` with two functions::

    void NAME(long n, const double *in1, ..., double *out1, ...);  /* n points, one array each */
    void NAME_point(const double *in, double *out);                /* one point */

Inputs come in the graph's variable order (sorted names, as ``kernel.variables``), outputs in its
output order (for a ``value_and_grad`` graph: the value, then the partials in ``wrt`` order). Each
node is one statement (``double t7 = t3 * t5;``), its C spelling the op table's ``c`` field, so
compiled with ISO C semantics (``-std=c99`` contracts no ``a*b + c`` into an FMA) each value is
the same IEEE operation as in graphc's kernels, and the same libm function where graphc calls
libm. A large graph is split into part functions of at most ``part_nodes`` statements, values that
cross parts kept in a scratch array, and parts are spread over several files
(``NAME.c``, ``NAME_1.c``, ...) of at most ``file_bytes`` each, so that a C compiler's time
stays linear in the graph (one huge function is superlinear in most compilers). ``build_shared``
runs the system's ``cc`` on them.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from graphc.errors import BackendError, GraphcError
from graphc.graph import Graph
from graphc.ops import BLOCK_OPS, CONST, OPS, VAR
from graphc.scalarise import element_name, indices, scalarise

PART_NODES = 2_000  # statements per part function
FILE_BYTES = 1_000_000  # source bytes per .c file (the entry points' file may exceed it by one part)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_C_WORDS = frozenset(
    [
        "auto",
        "break",
        "case",
        "char",
        "const",
        "continue",
        "default",
        "do",
        "double",
        "else",
        "enum",
        "extern",
        "float",
        "for",
        "goto",
        "if",
        "inline",
        "int",
        "long",
        "register",
        "restrict",
        "return",
        "short",
        "signed",
        "sizeof",
        "static",
        "struct",
        "switch",
        "typedef",
        "union",
        "unsigned",
        "void",
        "volatile",
        "while",
        "n",
        "i",
        "in",
        "out",
        "s",
    ]
)


def c_name(label: str) -> str:
    """A C identifier for an input or output label: ``∂f/∂x`` -> ``df_dx``, ``∂²f/∂x²`` -> ``d2f_dx2``."""
    chars = []
    for ch in label:
        if ch == "∂":
            chars.append("d")
        elif ch.isascii() and (ch.isalnum() or ch == "_"):
            chars.append(ch)
        elif unicodedata.digit(ch, None) is not None:
            chars.append(str(unicodedata.digit(ch)))
        else:
            chars.append("_")
    name = re.sub("_+", "_", "".join(chars)).strip("_") or "v"
    if name[0].isdigit():
        name = "v" + name
    return name + "_" if name in _C_WORDS else name


def _unique(names: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    result = []
    for name in names:
        candidate, k = name, 2
        while candidate in seen:
            candidate, k = f"{name}_{k}", k + 1
        seen.add(candidate)
        result.append(candidate)
    return result


def literal(value: float) -> str:
    """A double as C source: exact (``repr`` round-trips), negatives in brackets, INFINITY, NAN."""
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "(-INFINITY)"
    text = repr(float(value))
    if "e" not in text and "." not in text:
        text += ".0"
    return f"({text})" if text.startswith("-") else text


def _comment(text: str) -> str:
    """Text safe inside a C comment."""
    return text.replace("*/", "* /").replace("\n", " ")


class _Plan:
    """Which nodes each part computes, and where every value lives (a local, a slot, an input)."""

    def __init__(self, graph: Graph, part_nodes: int, order: Sequence[str]) -> None:
        keep = graph.reachable()
        self.graph = graph
        self.inputs = {graph.variable(name): i for i, name in enumerate(order)}  # a variable's place in in[]
        computed = [node for node in range(len(graph)) if keep[node] and graph.op(node) not in (VAR, CONST)]
        self.parts = [computed[i : i + part_nodes] for i in range(0, len(computed), part_nodes)] or [[]]
        part_of = {node: k for k, nodes in enumerate(self.parts) for node in nodes}
        self.slots: dict[int, int] = {}  # values used by a later part, or output by the graph
        for k, nodes in enumerate(self.parts):
            for node in nodes:
                for arg in graph.args(node):
                    if part_of.get(arg, k) != k and arg not in self.slots:
                        self.slots[arg] = len(self.slots)
        self.part_of = part_of

    def value(self, node: int, part: int) -> str:
        """How part ``part`` names ``node``'s value."""
        graph = self.graph
        if graph.op(node) == CONST:
            value = graph.const_value(node)
            assert value is not None
            return literal(value)
        if node in self.inputs:
            return f"in[{self.inputs[node]}]"
        if self.part_of[node] == part:
            return f"t{node}"
        return f"s[{self.slots[node]}]"

    def part_body(self, part: int) -> list[str]:
        graph = self.graph
        lines = []
        for node in self.parts[part]:
            spec = OPS[graph.op(node)]
            operands = [self.value(arg, part) for arg in graph.args(node)]
            lines.append(f"    const double t{node} = {spec.c.format(*operands)};")
            if node in self.slots:
                lines.append(f"    s[{self.slots[node]}] = t{node};")
        for j, node in enumerate(graph.outputs):
            if self.part_of.get(node, -1) == part:
                lines.append(f"    out[{j}] = t{node};")
            elif part == len(self.parts) - 1 and node not in self.part_of:  # a constant or an input
                lines.append(f"    out[{j}] = {self.value(node, part)};")
        unused = [f"    (void){p};" for p in ("in", "s", "out") if not any(f"{p}[" in line for line in lines)]
        return unused + lines  # (void) keeps -Wextra quiet about a parameter this part does not use


def export(
    graph: Graph,
    directory: str | Path,
    name: str,
    *,
    source: str = "",
    part_nodes: int = PART_NODES,
    file_bytes: int = FILE_BYTES,
) -> list[Path]:
    """Write ``NAME.h`` and ``NAME.c`` (and ``NAME_1.c``... for a large graph) into ``directory``.

    ``source`` (the program text, say) is quoted in the header. Returns the paths written, the
    header first.
    """
    if not isinstance(name, str) or not _NAME.match(name) or name in _C_WORDS:
        raise GraphcError(f"the name of a C function must be a C identifier, got {name!r}")
    layout = _Layout(graph)
    inputs = _unique([c_name(v) for v in graph.variables])
    outputs = _unique([c_name(o) for o in graph.output_names])
    plan = _Plan(layout.scalar, part_nodes, layout.order)
    slots = len(plan.slots)
    parts = [
        [f"void {name}_part{k}(const double *in, double *s, double *out) {{", *plan.part_body(k), "}"]
        for k in range(len(plan.parts))
    ]
    files: list[list[str]] = [[]]
    size = 0
    for text in parts:
        length = sum(len(line) + 1 for line in text)
        if size and size + length > file_bytes:
            files.append([])
            size = 0
        files[-1].extend(["", *text])
        size += length
    several = len(files) > 1
    storage = "" if several else "static "
    for file in files:  # a part function is static unless another file calls it
        for i, line in enumerate(file):
            if line.startswith(f"void {name}_part"):
                file[i] = storage + line

    header = _header(layout, name, inputs, outputs, source, len(files))
    arguments = [f"const double *{v}" for v in inputs] + [f"double *{o}" for o in outputs]
    main = [
        f"/* {name}.c: generated by graphc; see {name}.h. Portable C99, needs only libm (-lm). */",
        "#include <math.h>",
        f'#include "{name}.h"',
    ]
    if several:
        main += [
            "",
            *(f"void {name}_part{k}(const double *in, double *s, double *out);" for k in range(len(parts))),
        ]
    main += files[0]
    main += [
        "",
        f"void {name}_point(const double *in, double *out) {{",
        f"    double s[{max(slots, 1)}];",
        *(f"    {name}_part{k}(in, s, out);" for k in range(len(parts))),
        "}",
        "",
        f"void {name}({', '.join(['long n', *arguments])}) {{",
        "    long i, k;" if graph.tensor else "    long i;",
        "    for (i = 0; i < n; i++) {",
        f"        double in[{max(sum(layout.in_sizes), 1)}];",
        f"        double out[{max(sum(layout.out_sizes), 1)}];",
        *_copies(inputs, layout.in_sizes, outputs=False),
        f"        {name}_point(in, out);",
        *_copies(outputs, layout.out_sizes, outputs=True),
        "    }",
        "}",
        "",
    ]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / f"{name}.h", directory / f"{name}.c"]
    written[0].write_text(header)
    written[1].write_text("\n".join(main) + "\n")
    for k, file in enumerate(files[1:], start=1):
        path = directory / f"{name}_{k}.c"
        declarations = [line.replace(" {", ";") for line in file if line.startswith("void ")]
        lines = [
            f"/* {path.name}: part of {name}, generated by graphc; compile with {name}.c. */",
            "#include <math.h>",
            "",
            *declarations,
            *file,
            "",
        ]
        path.write_text("\n".join(lines))
        written.append(path)
    return written


class _Layout:
    """The scalar graph the C code computes, and where each input and output lives in the point
    function's ``in`` and ``out``: a scalar graph as it is; a tensor graph scalarised
    (graphc.scalarise: one scalar per element), each tensor's elements one after another in C
    order, the tensors in the graph's variable (and output) order."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        if not graph.tensor:
            self.scalar, self.order = graph, list(graph.variables)
            self.in_shapes: list[tuple[int, ...]] = [() for _ in graph.variables]
            self.out_shapes: list[tuple[int, ...]] = [() for _ in graph.outputs]
        else:
            keep = graph.reachable()
            for node, op in enumerate(graph.ops):
                if keep[node] and op in BLOCK_OPS and BLOCK_OPS[op].scalarise is None:
                    raise GraphcError(
                        f"C export writes one scalar statement per element, and the block op {op} has "
                        "no scalar form yet (graphc.scalarise): this graph has no C export"
                    )
            scalarised = scalarise(graph, what="C export")
            self.scalar = scalarised.graph
            self.in_shapes = [scalarised.inputs[v] for v in graph.variables]
            self.out_shapes = scalarised.outputs
            self.order = [
                element_name(v, index)
                for v, shape in zip(graph.variables, self.in_shapes, strict=True)
                for index in indices(shape)
            ]
        self.in_sizes = [math.prod(shape) for shape in self.in_shapes]
        self.out_sizes = [math.prod(shape) for shape in self.out_shapes]


def _copies(arrays: list[str], sizes: list[int], *, outputs: bool) -> list[str]:
    """The batch loop's copies between point ``i`` of each array and the point function's ``in``
    (or ``out``): one value for a scalar, a loop over ``k`` for a tensor's ``size`` elements."""
    side = "out" if outputs else "in"
    lines = []
    at = 0
    for array, size in zip(arrays, sizes, strict=True):
        if size == 1:
            point, element = f"{side}[{at}]", f"{array}[i]"
        else:
            point, element = f"{side}[{at} + k]", f"{array}[i * {size} + k]"
        copy = f"{element} = {point};" if outputs else f"{point} = {element};"
        if size == 1:
            lines.append(f"        {copy}")
        elif size:
            lines.append(f"        for (k = 0; k < {size}; k++) {copy}")
        at += size
    return lines


def _shape_note(shape: tuple[int, ...], array: str) -> str:
    """How a tensor argument holds its points, for the header (nothing for a scalar)."""
    if not shape:
        return ""
    size = math.prod(shape)
    return f", shape {list(shape)}: {size} values per point in C order, point i at {array} + {size}*i"


def _header(
    layout: _Layout, name: str, inputs: list[str], outputs: list[str], source: str, files: int
) -> str:
    graph = layout.graph
    guard = f"{name.upper()}_H"
    width = max([len(v) for v in inputs + outputs] + [1])
    sources = f"{name}.c" + "".join(f" {name}_{k}.c" for k in range(1, files))
    lines = [
        f"/* {name}.h: generated by graphc; do not edit, generate it again.",
        f" * From: {_comment(source)}" if source else " *",
        " *",
        f" * Build: cc -O2 -std=c99 -shared -fPIC {sources} -o lib{name}.so -lm",
        " *",
        f" * {name}(n, inputs..., outputs...) computes n points: element i of every output array from",
        " * element i of every input array. Arguments, in order:",
        " *   long n",
        *(
            f" *   const double *{v:<{width}}  input {k}: the variable {_comment(orig)}{_shape_note(shape, v)}"
            for k, (v, orig, shape) in enumerate(zip(inputs, graph.variables, layout.in_shapes, strict=True))
        ),
        *(
            f" *   double *{o:<{width}}        output {k}: {_comment(orig)}{_shape_note(shape, o)}"
            for k, (o, orig, shape) in enumerate(
                zip(outputs, graph.output_names, layout.out_shapes, strict=True)
            )
        ),
        (
            f" * {name}_point(in, out) computes one point: in holds every input's values one after another"
            f" (C order), {name.upper()}_POINT_INPUTS of them, out every output's, {name.upper()}_POINT_OUTPUTS."
            if graph.tensor
            else f" * {name}_point(in, out) computes one point: in[k] is input k, out[k] is output k above."
        ),
        " * Arrays must not overlap an output. Values outside an op's domain give NaN or inf, as in C.",
        " */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        f"#define {name.upper()}_INPUTS {len(inputs)}",
        f"#define {name.upper()}_OUTPUTS {len(outputs)}",
        *(
            [
                f"#define {name.upper()}_POINT_INPUTS {sum(layout.in_sizes)}",
                f"#define {name.upper()}_POINT_OUTPUTS {sum(layout.out_sizes)}",
            ]
            if graph.tensor
            else []
        ),
        "",
        f"void {name}({', '.join(['long n', *(f'const double *{v}' for v in inputs), *(f'double *{o}' for o in outputs)])});",
        f"void {name}_point(const double *in, double *out);",
        "",
        f"#endif /* {guard} */",
        "",
    ]
    return "\n".join(lines)


def build_shared(paths: Sequence[Path], name: str, compiler: str = "cc") -> Path:
    """Compile the exported sources into ``lib{name}.so`` beside them with the system's C compiler."""
    cc = shutil.which(compiler)
    if cc is None:
        raise BackendError(f"no C compiler {compiler!r} on PATH to build lib{name}.so")
    sources = [str(path) for path in paths if path.suffix == ".c"]
    library = paths[0].parent / f"lib{name}.so"
    command = [cc, "-O2", "-std=c99", "-shared", "-fPIC", *sources, "-o", str(library), "-lm"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no message"])[0]
        raise BackendError(f"{compiler} failed building {library.name}: {first}")
    return library
