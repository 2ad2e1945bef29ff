"""A report as a terminal table (rich), Markdown, JSON and PNG plots (matplotlib, no screen needed).

rich and matplotlib are imported here, inside the functions, so ``import graphc`` stays fast.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from graphc.report.measure import EVAL_BATCH, Row, describe_count
from graphc.report.runner import Report

# (metric, title, y-axis label) for each plot of a family report
PLOTS = (
    ("differentiate_s", "Time to differentiate", "seconds (log scale)"),
    ("eval_s", f"Time per gradient evaluation on {EVAL_BATCH:,} points", "seconds per call (log scale)"),
    ("compile_s", "Time to compile the gradient", "seconds (log scale)"),
    ("nodes", "Gradient graph size (DAG, shared nodes once)", "nodes (log scale)"),
    ("tree_size", "Gradient size as a tree (no sharing)", "tree nodes (log scale)"),
    (
        "multiplications",
        "Multiplications per point of the Jacobian's accumulation",
        "multiplications (log scale)",
    ),
)
_MARKERS = "osD^vP*X"
_LINES = ("-", "--", "-.", ":")  # methods that coincide (dp and forward often do) stay visible


def seconds(value: float | None) -> str:
    """A duration for a table: µs, ms or s with three significant digits; "–" when not measured."""
    if value is None:
        return "–"
    if value < 1e-3:
        return f"{value * 1e6:.3g} µs"
    if value < 1:
        return f"{value * 1e3:.3g} ms"
    return f"{value:.3g} s"


def count(value: float | None) -> str:
    """A count for a table: exact with thousands separators, or in scientific notation when huge."""
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}" if value < 10**12 else describe_count(value)
    if math.isinf(value):
        return "> 1e308"
    return f"{int(value):,}" if value < 1e12 else f"{value:.3g}"


def _columns(report: Report) -> list[str]:
    columns = ["size"] if report.family is not None else []
    columns += ["method", "paths", "DAG nodes", "edges", "tree size", "differentiate"]
    if report.jacobian:
        columns[columns.index("differentiate")] = (
            "multiplications"  # graphc.jacobian builds and compiles at once
        )
    for backend in report.backends:
        columns += [f"compile ({backend})", f"eval ×{EVAL_BATCH:,} ({backend})"]
    return [*columns, "status"]


def _cells(report: Report, row: Row) -> list[str]:
    cells = [str(row.size)] if report.family is not None else []
    cells += [row.method, count(row.paths), count(row.nodes), count(row.edges), count(row.tree_size)]
    cells.append(count(row.multiplications) if report.jacobian else seconds(row.differentiate_s))
    for backend in report.backends:
        timing = row.backends.get(backend, {})
        cells += [seconds(timing.get("compile_s")), seconds(timing.get("eval_s"))]
    status = row.status.split(";")[0] if row.status.startswith("error:") else row.status  # JSON has it all
    return [*cells, status]


def title(report: Report) -> str:
    """The report's title: the family and its sizes, or the expression (comments left out)."""
    if report.family is None:
        return f"graphc report: {report.name}"
    width = f", width {report.width}" if report.family.uses_width else ""
    sizes = f"{report.sizes[0]}:{report.sizes[-1]}" if report.sizes else "none"
    return f"graphc report: family {report.family.name}, sizes {sizes}{width}"


def print_table(report: Report, console: Any = None) -> None:
    """The report as a rich table on stdout, the growth fits in words under it."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:  # piped or redirected: no wrapping of the wide table
            console = Console(width=220)
    table = Table(title=title(report), title_justify="left")
    for name in _columns(report):
        right = name not in ("method", "status")
        table.add_column(name, justify="right" if right else "left", overflow="fold")
    previous = None
    for row in report.rows:
        if previous is not None and row.size != previous:
            table.add_section()
        previous = row.size
        style = None if row.ok else "dim"
        table.add_row(*_cells(report, row), style=style)
    console.print(table)
    lines = report.fit_lines()
    if lines:
        console.print(
            f"Growth with size (fitted per {report.unit}; times under 1 ms are not fitted):", highlight=False
        )
        for line in lines:
            console.print(f"  {line}", highlight=False, markup=False)
    if report.interrupted:
        console.print("(interrupted: the table is partial)", highlight=False)


def markdown(report: Report, plots: list[tuple[str, str]]) -> str:
    """The report as Markdown: what was run, the table, the fits, and the plots embedded."""
    lines = [f"# {title(report)}", ""]
    if report.family is not None:
        lines += [f"Family `{report.family.name}`: {report.family.summary}.", ""]
    budget = "none" if report.budget is None else f"{report.budget:g} s per cell"
    lines.append(
        f"Methods: {', '.join(report.methods)}. Backends: {', '.join(report.backends)}. "
        f"Budget: {budget}; the paths method is refused above {report.max_paths:,} paths. "
        f"Evaluation is timed per call on a batch of {EVAL_BATCH:,} points; "
        "compile times are with the disk cache off."
    )
    lines.append("")
    if report.interrupted:
        lines += ["**Interrupted: the results are partial.**", ""]
    columns = _columns(report)
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "|".join("---" if c in ("method", "status") else "---:" for c in columns) + "|")
    for row in report.rows:
        lines.append("| " + " | ".join(_cells(report, row)) + " |")
    fit_lines = report.fit_lines()
    if fit_lines:
        lines += ["", f"## Growth with size (fitted per {report.unit}; times under 1 ms are not fitted)", ""]
        lines += [f"- {line}" for line in fit_lines]
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{caption}]({name})\n" for name, caption in plots]
    return "\n".join(lines) + "\n"


def write(report: Report, directory: str | Path) -> list[Path]:
    """Write report.json, the PNG plots and report.md into ``directory``; return the paths written."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json"]
    written[0].write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    plots = family_plots(report, out) if report.family is not None else expression_plot(report, out)
    written += [out / name for name, _ in plots]
    (out / "report.md").write_text(markdown(report, plots))
    written.append(out / "report.md")
    return written


def _figure() -> Any:
    from matplotlib.figure import Figure  # the object API: no pyplot, no screen, no global state

    return Figure(figsize=(8, 5), dpi=110, layout="constrained")


def family_plots(report: Report, out: Path) -> list[tuple[str, str]]:
    """One PNG per metric: log-scale cost against size, one line per method."""
    assert report.family is not None
    plots = []
    backend = report.backends[0] if report.backends else ""
    for metric, heading, ylabel in PLOTS:
        figure = _figure()
        axes = figure.add_subplot()
        drawn = False
        for index, method in enumerate(report.methods):
            points = [
                (row.size, float(getattr(row, metric)))
                for row in report.rows
                if row.method == method
                and row.ok
                and getattr(row, metric)
                and math.isfinite(getattr(row, metric))
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                axes.plot(
                    xs,
                    ys,
                    marker=_MARKERS[index % len(_MARKERS)],
                    linestyle=_LINES[index % len(_LINES)],
                    markevery=max(1, len(xs) // 25),  # markers name the line; dense ones hide it
                    linewidth=1.8,
                    markersize=5,
                    label=method,
                )
                drawn = True
        if metric in ("nodes", "tree_size"):
            counts = sorted({(row.size, float(row.paths)) for row in report.rows if row.paths is not None})
            if counts:
                xs, ys = zip(*counts, strict=True)
                axes.plot(xs, ys, linestyle="--", color="0.4", linewidth=1.2, label="path count")
                drawn = True
        if not drawn:
            continue
        suffix = f" — {backend} backend" if metric in ("eval_s", "compile_s") else ""
        axes.set_title(f"{heading}{suffix}\nfamily {report.family.name}", fontsize=11)
        axes.set_xlabel(report.family.axis_label)
        axes.set_ylabel(ylabel)
        axes.set_yscale("log")
        axes.grid(True, which="major", alpha=0.4)
        axes.grid(True, which="minor", alpha=0.12)
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.legend(fontsize=9, loc="best")
        name = f"{metric}.png"
        figure.savefig(out / name)
        plots.append((name, f"{heading}{suffix}"))
    return plots


def expression_plot(report: Report, out: Path) -> list[tuple[str, str]]:
    """One PNG for a single expression: each method's times and sizes as bars (log scale)."""
    from matplotlib.ticker import LogLocator, NullFormatter

    rows = [row for row in report.rows if row.ok]
    if not rows:
        return []
    figure = _figure()
    figure.set_size_inches(10, 1.6 + 0.6 * len(rows))
    times, sizes = figure.subplots(1, 2)
    methods = [row.method for row in rows]
    positions = range(len(rows))
    panels = (
        (
            times,
            (
                ("differentiate_s", "differentiate"),
                ("compile_s", "compile"),
                ("eval_s", f"evaluate {EVAL_BATCH:,} points"),
            ),
        ),
        (sizes, (("nodes", "gradient DAG nodes"), ("tree_size", "gradient tree size"))),
    )
    for axes, bars in panels:
        height = 0.8 / len(bars)
        smallest = math.inf
        for offset, (metric, label) in enumerate(bars):
            values = [min(float(getattr(row, metric) or 0.0), 1e300) for row in rows]
            smallest = min([smallest, *(v for v in values if v > 0)])
            shift = (offset - (len(bars) - 1) / 2) * height
            axes.barh([p + shift for p in positions], values, height=height, label=label)
        axes.set_xscale("log")
        axes.set_xlim(left=smallest / 3)
        axes.xaxis.set_major_locator(LogLocator(base=10))
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set_yticks(list(positions), methods)
        axes.invert_yaxis()
        axes.grid(True, axis="x", alpha=0.3)
        axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=len(bars))
    times.set_xlabel("seconds (log scale)")
    times.set_title("Time per method", fontsize=11)
    sizes.set_xlabel("nodes (log scale)")
    sizes.set_title("Gradient size per method", fontsize=11)
    figure.suptitle(title(report), fontsize=11)
    figure.savefig(out / "methods.png")
    return [("methods.png", "Time and gradient size per method")]
