"""The ``graphc`` command line.

Every failure is one line on stderr starting ``graphc: error:`` (a parse error adds the source
line and a caret) and exit status 2; Ctrl-C exits with status 130, a closed output pipe with 141,
``graphc check`` with 1 when it reports a non-finite value. No tracebacks, unless
``GRAPHC_DEBUG=1`` asks for them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from graphc import __version__
from graphc.api import derivatives
from graphc.backends import BACKENDS, check_backend, compile_graph
from graphc.diff import MAX_PATHS, METHODS
from graphc.diff.common import resolve_wrt
from graphc.errors import GraphcError, ParseError
from graphc.graph import MAX_NODES, Graph
from graphc.parse import parse
from graphc.printing import formula


class UsageError(GraphcError):
    """A command line that graphc cannot act on."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _split_top_level(text: str) -> list[str]:
    """Split at commas that are not inside brackets: ``x=atan2(1,2),y=3`` has two parts."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_assignments(items: Sequence[str]) -> dict[str, float]:
    """``--at`` values: ``name=value`` pairs separated by commas; a value is a constant expression."""
    values: dict[str, float] = {}
    for item in items:
        for part in _split_top_level(item):
            name, eq, value_text = part.partition("=")
            name = name.strip()
            if not eq or not name or not value_text.strip():
                raise UsageError(f"--at expects name=value pairs separated by commas, got {part.strip()!r}")
            if not name.isidentifier():
                raise UsageError(f"--at: {name!r} is not a variable name")
            if name in values:
                raise UsageError(f"--at: variable '{name}' is given twice")
            try:
                graph = parse(value_text)
            except ParseError as err:
                raise UsageError(f"--at: the value of '{name}' is not a number: {err}") from None
            value = graph.const_value(graph.outputs[0]) if len(graph.outputs) == 1 else None
            if value is None:
                raise UsageError(f"--at: the value of '{name}' must be a number, got {value_text.strip()!r}")
            values[name] = value
    return values


def _check_point(variables: Sequence[str], point: dict[str, float]) -> None:
    unknown = [name for name in point if name not in variables]
    if unknown:
        listed = ", ".join(variables) or "none"
        raise UsageError(f"--at: unknown variable '{unknown[0]}' (the variables are: {listed})")
    missing = [name for name in variables if name not in point]
    if missing:
        example = ",".join(f"{name}=..." for name in missing)
        raise UsageError(f"missing value for {', '.join(missing)}: give it with --at {example}")


def json_number(value: Any) -> Any:
    """A float for JSON: non-finite values become the strings "nan", "inf", "-inf"."""
    value = float(value)
    return value if math.isfinite(value) else str(value)


def _cmd_eval(args: argparse.Namespace) -> int:
    graph = parse(args.expr, args.max_nodes)
    point = parse_assignments(args.at)
    _check_point(graph.variables, point)
    kernel = compile_graph(graph, args.backend)
    result = kernel(**point)
    values = list(result) if len(graph.outputs) > 1 else [result]
    if args.json:
        value: Any = [json_number(v) for v in values] if len(values) > 1 else json_number(values[0])
        print(json.dumps({"expr": args.expr, "backend": args.backend, "value": value}))
    elif len(values) == 1:
        print(repr(float(values[0])))
    else:
        for name, v in zip(graph.output_names, values):
            print(f"{name} = {float(v)!r}")
    return 0


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number of at least ``minimum``, with a one-line error otherwise."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return convert


_positive = whole_number(1)


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


def _cmd_grad(args: argparse.Namespace) -> int:
    graph = parse(args.expr, args.max_nodes)
    if args.emit and args.json:
        raise UsageError("--emit and --json cannot be combined: --emit prints source, --json prints results")
    if args.emit and args.at:
        raise UsageError("--emit prints code for every point; leave out --at")
    point = parse_assignments(args.at)
    if args.at:
        _check_point(graph.variables, point)
    check_backend(args.backend)
    derivative = _gradient_graph(args, graph)
    if args.emit:
        sys.stdout.write(_emit(args.emit, derivative))
        return 0
    first = derivative.info["function_outputs"]
    wrt = derivative.info["wrt"]
    partial_names = derivative.output_names[first:]
    if not args.at:
        texts = [formula(derivative, node) for node in derivative.outputs[first:]]
        if args.json:
            gradient = _by_output(graph, wrt, texts)
            print(
                json.dumps(
                    {"expr": args.expr, "method": args.method, "gradient": gradient}, ensure_ascii=False
                )
            )
        else:
            for name, text in zip(partial_names, texts, strict=True):
                print(f"{name} = {text}")
        return 0
    result = compile_graph(derivative, args.backend)(**point)
    values = [float(v) for v in (result if isinstance(result, tuple) else (result,))]
    if args.json:
        value: Any = [json_number(v) for v in values[:first]]
        record = {
            "expr": args.expr,
            "method": args.method,
            "backend": args.backend,
            "value": value[0] if first == 1 else value,
            "gradient": _by_output(graph, wrt, [json_number(v) for v in values[first:]]),
        }
        if args.order != 1:
            record["order"] = args.order
        print(json.dumps(record, ensure_ascii=False))
    else:
        for name, v in zip(derivative.output_names, values, strict=True):
            print(f"{name} = {v!r}")
    return 0


def _by_output(graph: Graph, wrt: list[str], entries: list[Any]) -> dict[str, Any]:
    """``{variable: entry}`` for one output; ``{output: {variable: entry}}`` for several."""
    rows = [
        dict(zip(wrt, entries[i * len(wrt) : (i + 1) * len(wrt)], strict=True))
        for i in range(len(graph.outputs))
    ]
    return rows[0] if len(rows) == 1 else dict(zip(graph.output_names, rows, strict=True))


def _cmd_trace(args: argparse.Namespace) -> int:
    from graphc.trace import trace

    graph = parse(args.expr, args.max_nodes)
    point = parse_assignments(args.at)
    _check_point(graph.variables, point)
    result = trace(graph, point, args.mode, args.wrt)
    if args.json:
        rows = [
            {
                "node": r.name,
                "definition": r.definition,
                "value": json_number(r.value),
                ("tangent" if args.mode == "forward" else "adjoint"): json_number(r.derivative),
            }
            for r in result.rows
        ]
        gradient = {k: json_number(v) for k, v in result.gradient.items()}
        print(
            json.dumps(
                {"expr": args.expr, "mode": args.mode, "wrt": result.wrt, "rows": rows, "gradient": gradient},
                ensure_ascii=False,
            )
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


def _add_max_nodes(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--max-nodes",
        type=_positive,
        default=MAX_NODES,
        metavar="N",
        help=f"stop with an error if a graph would have more than N nodes (default: {MAX_NODES:,})",
    )


def _add_at(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--at",
        action="append",
        default=[],
        metavar="NAME=VALUE,...",
        help="the point: name=value pairs separated by commas (repeatable); values may be "
        "constant expressions such as pi/4",
    )


def _add_implicit_command(commands: Any) -> None:
    from graphc.implicit import run_command

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
    _add_at(command)
    command.add_argument(
        "--method", default="dp", choices=list(METHODS), help="how the partials of g are computed"
    )
    command.add_argument(
        "--backend", default="numpy", choices=list(BACKENDS), help="compiler backend (default: numpy)"
    )
    command.add_argument("--json", action="store_true", help="print the result as one JSON object")
    _add_max_nodes(command)
    command.set_defaults(run=run_command)


def _add_check_command(commands: Any) -> None:
    from graphc.check import run_command

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
    _add_at(command)
    command.add_argument(
        "--wrt", metavar="NAMES", help="differentiate by these variables, comma-separated (default: all)"
    )
    command.add_argument("--method", default="dp", choices=list(METHODS), help="default: dp")
    command.add_argument(
        "--backend", default="numpy", choices=list(BACKENDS), help="compiler backend (default: numpy)"
    )
    command.add_argument("--json", action="store_true", help="print the result as one JSON object")
    _add_max_nodes(command)
    command.set_defaults(run=run_command)


def _add_report_command(commands: Any) -> None:
    from graphc.report.command import add_command

    add_command(commands)


def read_expression(expr: str) -> str:
    """EXPR as given, or the text of standard input for ``-``, or of a file for ``@FILE``.

    Neither can start a formula, and a long program (over the 128 KB a single command-line argument
    may have on Linux) can only come this way.
    """
    if expr == "-":
        try:
            if sys.stdin is None:  # no standard input at all (file descriptor 0 closed)
                raise OSError("there is none")
            return sys.stdin.read()
        except (OSError, UnicodeDecodeError, ValueError) as err:  # ValueError: a closed file
            raise UsageError(f"cannot read the formula from standard input: {err}") from None
    if expr.startswith("@"):
        path = expr[1:]
        try:
            with open(path, encoding="utf-8") as file:
                return file.read()
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise UsageError(f"cannot read the formula from {path!r}: {reason}") from None
    return expr


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="graphc",
        description="graphc: a symbolic computational-graph compiler. Formulas in, compiled functions "
        "and their derivatives out. Wherever a command takes EXPR, '-' reads it from standard input "
        "and '@FILE' from a file (UTF-8).",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"graphc {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    gradient = commands.add_parser(
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
    gradient.add_argument("expr", metavar="EXPR", help="the formula, e.g. 'u = x*y; sin(u) + u**2'")
    gradient.add_argument(
        "--wrt", metavar="NAMES", help="differentiate by these variables, comma-separated (default: all)"
    )
    gradient.add_argument(
        "--method",
        default="dp",
        choices=list(METHODS),
        help="dp: reverse mode, linear (default); forward: one pass per input; paths: sum over "
        "all paths, exponential; symbolic: SymPy; numeric: central differences",
    )
    gradient.add_argument(
        "--backend", default="numpy", choices=list(BACKENDS), help="compiler backend (default: numpy)"
    )
    _add_at(gradient)
    gradient.add_argument(
        "--order",
        type=_positive,
        default=1,
        metavar="N",
        help="the N-th derivative in each variable of --wrt (default: 1)",
    )
    gradient.add_argument(
        "--emit",
        choices=["sympy", "numpy", "dot", "llvm"],
        help="print the gradient as SymPy formulas, a standalone NumPy module, Graphviz DOT or LLVM IR",
    )
    gradient.add_argument(
        "--json",
        action="store_true",
        help='print {"expr", "method", "backend", "value", "gradient": {name: number}} as JSON',
    )
    gradient.add_argument(
        "--max-paths",
        type=_positive,
        metavar="N",
        help=f"with --method paths: refuse graphs with more paths than this (default: {MAX_PATHS:,})",
    )
    gradient.add_argument("--cse", action="store_true", help="with --method symbolic: run sympy.cse")
    _add_max_nodes(gradient)
    gradient.set_defaults(run=_cmd_grad)

    evaluate = commands.add_parser(
        "eval",
        help="evaluate a formula at a point",
        description="Evaluate a formula (or a program with bindings and several outputs) at a point.",
        epilog='example: graphc eval "sin(x*y) + exp(x)" --at x=1.5,y=2',
        allow_abbrev=False,
    )
    evaluate.add_argument("expr", metavar="EXPR", help="the formula, e.g. 'u = x*y; sin(u) + u**2'")
    _add_at(evaluate)
    evaluate.add_argument(
        "--backend", default="numpy", choices=list(BACKENDS), help="compiler backend (default: numpy)"
    )
    evaluate.add_argument("--json", action="store_true", help='print {"expr", "backend", "value"} as JSON')
    _add_max_nodes(evaluate)
    evaluate.set_defaults(run=_cmd_eval)

    tracer = commands.add_parser(
        "trace",
        help="the evaluation trace at a point: primal values with tangents or adjoints",
        description="Print the evaluation trace of a one-output formula at a point: one row per input "
        "and operation (v1 ... vN) with its definition, primal value, and tangent (forward mode) or "
        "adjoint (reverse mode).",
        epilog='example: graphc trace "x1*x2 + exp(x1*x2) - sin(x2)" --at x1=1.5,x2=0.5 --mode reverse',
        allow_abbrev=False,
    )
    tracer.add_argument("expr", metavar="EXPR", help="the formula")
    _add_at(tracer)
    tracer.add_argument("--mode", default="forward", choices=["forward", "reverse"], help="default: forward")
    tracer.add_argument(
        "--wrt", metavar="NAME", help="forward mode: the input to differentiate by (default: the first)"
    )
    tracer.add_argument("--json", action="store_true", help="print the rows as JSON")
    _add_max_nodes(tracer)
    tracer.set_defaults(run=_cmd_trace)
    _add_implicit_command(commands)
    _add_report_command(commands)
    _add_check_command(commands)
    parser.commands = dict(commands.choices)  # type: ignore[attr-defined]
    return parser


def _reorder(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """Let EXPR start with '-' (``graphc eval "-x**2" --at x=1``), which argparse takes for an option.

    Such an argument that is no option of the command is moved behind ``--``, where argparse
    reads it as the positional EXPR.
    """
    command = getattr(parser, "commands", {}).get(argv[0]) if argv else None
    if command is None or "--" in argv:
        return argv
    options = command._option_string_actions  # argparse's table of the command's option strings
    rest, expr, i = [argv[0]], None, 1
    while i < len(argv):
        item = argv[i]
        action = options.get(item)
        if action is not None:
            rest.append(item)
            if action.nargs != 0 and i + 1 < len(argv):
                rest.append(argv[i + 1])
                i += 1
        elif expr is None and len(item) > 1 and item.startswith("-") and item.split("=", 1)[0] not in options:
            expr = item
        else:
            rest.append(item)
        i += 1
    return argv if expr is None else [*rest, "--", expr]


def one_line(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped, so an error stays one line."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()  # inside: Ctrl-C while it imports the commands is one line too
        args = parser.parse_args(_reorder(parser, args_list))
        if isinstance(getattr(args, "expr", None), str):
            args.expr = read_expression(args.expr)
        return int(args.run(args))
    except ParseError as err:
        first, _, caret = err.render().partition("\n")
        print(f"graphc: error: {one_line(first)}\n{caret}", file=sys.stderr)
        return 2
    except GraphcError as err:
        print(f"graphc: error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("graphc: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("graphc: error: out of memory", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of stdout went away (graphc ... | head): stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
        except (OSError, ValueError):
            pass
        return 141  # as a tool killed by SIGPIPE
    except Exception as err:  # a bug in graphc: say so in one line unless debugging
        if os.environ.get("GRAPHC_DEBUG"):
            raise
        print(
            f"graphc: internal error: {type(err).__name__}: {err} (set GRAPHC_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 1
