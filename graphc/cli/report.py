"""``graphc report``: the command line of complexity reports."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from graphc.backends import BACKENDS, UNAVAILABLE, check_backend
from graphc.cli.common import whole_number
from graphc.diff import MAX_PATHS
from graphc.errors import GraphcError
from graphc.families import DEFAULT_WIDTH, describe, family
from graphc.report.measure import report_methods
from graphc.report.runner import DEFAULT_BUDGET, Report
from graphc.report.runner import run as measure_report

DEFAULT_SIZES = "1:10"
MAX_SIZES = 1000


class ReportError(GraphcError):
    """A report the command line cannot run as asked."""


def _parse_sizes(text: str) -> list[int]:
    """``A:B`` (inclusive) or a comma-separated list: ``1:12``, ``2,4,8``."""
    sizes: list[int] = []
    for part in text.split(","):
        low, colon, high = part.strip().partition(":")
        try:
            bounds = (int(low), int(high) if colon else int(low))
        except ValueError:
            raise ReportError(f"--sizes expects A:B or a list such as 2,4,8, got {text!r}") from None
        if bounds[0] < 1 or bounds[1] < bounds[0]:
            raise ReportError(f"--sizes: {part.strip()!r} is not a range of sizes from 1 up")
        if bounds[1] - bounds[0] >= MAX_SIZES:
            raise ReportError(f"--sizes: at most {MAX_SIZES} sizes in one report")
        sizes += range(bounds[0], bounds[1] + 1)
    return sorted(set(sizes))


def _parse_methods(text: str | None, modes: tuple[str, ...] = ()) -> list[str]:
    """The report methods named (default: all); a Jacobian family's methods are its modes."""
    known = dict.fromkeys(modes) if modes else report_methods()
    if text is None:
        return list(known)
    methods = [name.strip() for name in text.split(",") if name.strip()]
    for name in methods:
        if name not in known:
            raise ReportError(f"--methods: unknown method {name!r} (the methods are: {', '.join(known)})")
    if not methods:
        raise ReportError("--methods: name at least one method")
    return list(dict.fromkeys(methods))


def _parse_backends(text: str) -> list[str]:
    """Backend names, comma-separated, or ``all`` (every backend that can compile here)."""
    if text == "all":
        return [name for name in BACKENDS if name not in UNAVAILABLE]
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    for name in names:
        check_backend(name)
    if not names:
        raise ReportError("--backend: name at least one backend")
    return names


def _budget(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


_whole = whole_number(0)


def add_parser(commands: Any) -> None:
    methods = ", ".join(report_methods())
    command = commands.add_parser(
        "report",
        help="measure how each differentiation method's cost grows: tables, fits and plots",
        description="Measure every differentiation method on one expression, or on a family of "
        "growing graphs: path count, gradient graph size (as a DAG and as a tree), time to "
        "differentiate, compile and evaluate. A cell predicted to cost more than the budget is "
        "skipped, one that runs over is stopped. Growth fits are stated in words under the table; "
        "--out DIR also writes report.json, report.md and PNG plots.",
        epilog="examples:\n"
        "  graphc report --family product --sizes 1:12 --out product-report\n"
        "  graphc report --family mlp --width 100 --sizes 1:3 --methods paths,dp\n"
        "  graphc report --family chain --sizes 2:12 --methods forward,dp\n"
        "  graphc report --family orders --sizes 1:10 --backend numpy\n"
        '  graphc report "sin(w^2) + cos(w^2)"\n'
        "  graphc report --list-families",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    command.add_argument("expr", metavar="EXPR", nargs="?", help="one expression to report on")
    command.add_argument("--family", metavar="NAME", help="a family of growing graphs (see --list-families)")
    command.add_argument(
        "--sizes", metavar="A:B", help=f"the family's sizes, A:B inclusive or 2,4,8 (default {DEFAULT_SIZES})"
    )
    command.add_argument("--width", type=int, metavar="W", help="units per layer of the mlp family")
    command.add_argument("--methods", metavar="M,...", help=f"methods to measure (default: all of {methods})")
    command.add_argument(
        "--budget",
        type=_budget,
        default=DEFAULT_BUDGET,
        metavar="SECONDS",
        help="the most one cell (one method at one size) may take: predicted costs above it are "
        f"skipped, overruns are stopped (default {DEFAULT_BUDGET:g})",
    )
    command.add_argument(
        "--backend",
        default="all",
        metavar="NAMES",
        help=f"backends to compile with, comma-separated, or all (of {', '.join(BACKENDS)}; default all: "
        "every backend that can compile here)",
    )
    command.add_argument(
        "--max-paths",
        type=_whole,
        default=MAX_PATHS,
        metavar="N",
        help=f"the paths method is skipped above N paths (default {MAX_PATHS:,})",
    )
    command.add_argument(
        "--seed", type=_whole, default=0, metavar="N", help="seed of weights and random DAGs"
    )
    command.add_argument("--out", metavar="DIR", help="write report.json, report.md and PNG plots here")
    command.add_argument("--list-families", action="store_true", help="describe the families and exit")
    command.set_defaults(run=run)


def _build_report(args: argparse.Namespace) -> Report:
    """The report the command line asks for (checked, not yet measured)."""
    if (args.expr is None) == (args.family is None):
        raise ReportError("give either an expression or --family NAME (see --list-families)")
    modes = family(args.family).modes if args.family is not None else ()
    report = Report(
        methods=_parse_methods(args.methods, modes),
        backends=_parse_backends(args.backend),
        budget=args.budget,
        max_paths=args.max_paths,
        seed=args.seed,
    )
    if args.expr is not None:
        for option in ("sizes", "width"):
            if getattr(args, option) is not None:
                raise ReportError(f"--{option} applies to --family reports, not to one expression")
        from graphc.parse import parse

        if not parse(args.expr).variables:  # a parse error, too, comes before any measuring
            raise ReportError(f"{args.expr!r} has no variables: there is nothing to differentiate")
        report.expr = args.expr
        return report
    report.family = family(args.family)
    if args.width is not None and not report.family.uses_width:
        users = ", ".join(f.name for f in _width_families())
        raise ReportError(f"--width applies to the {users} family, not to {report.family.name}")
    if args.width is not None and args.width < 1:
        raise ReportError(f"--width must be at least 1, got {args.width}")
    if report.family.uses_width:
        report.width = args.width if args.width is not None else DEFAULT_WIDTH[report.family.name]
    report.sizes = _parse_sizes(args.sizes or DEFAULT_SIZES)
    return report


def _width_families() -> list[Any]:
    from graphc.families import FAMILIES

    return [f for f in FAMILIES.values() if f.uses_width]


def run(args: argparse.Namespace) -> int:
    """Run ``graphc report``; a KeyboardInterrupt writes what was measured (with --out) and propagates."""
    if args.list_families:
        print(describe())
        return 0
    report = _build_report(args)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    cells = len(report.methods) * max(1, len(report.sizes))
    errors = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
        disable=not errors.is_terminal,
    )
    try:
        with progress:
            task = progress.add_task("measuring", total=cells)

            def step(description: str) -> None:
                if progress.tasks[task].description != "measuring":
                    progress.advance(task)
                progress.update(task, description=description)

            measure_report(report, step)
    except KeyboardInterrupt:
        if args.out:
            from graphc.report.render import write

            write(report, args.out)
            print(f"graphc: partial report written to {args.out}", file=sys.stderr)
        raise
    from graphc.report.render import print_table, write

    print_table(report)
    if args.out:
        written = write(report, args.out)
        print(f"wrote {', '.join(path.name for path in written)} to {args.out}")
    return 0
