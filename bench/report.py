"""RESULTS.md, results.json and the B5 compile-time plot, from the figures run.py measured."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
from collections.abc import Callable
from typing import Any

from problems import PROBLEMS
from systems import SYSTEMS

GRAPHC = ("graphc-llvm", "graphc-numpy")
PEER_DISTRIBUTIONS = ("numpy", "llvmlite", "sympy", "symengine", "casadi", "pytensor", "jax", "jaxlib")
ERROR_GOAL = 1e-10
WRONG = 1e-6  # a peer off by more than this (or not finite) is wrong, never the best peer: float64
# rounding through B5-100k's 22,000-deep graph alone costs every system ~1e-8 against the reference


# name, heading, unit scale, format; every figure is "lower is better"
FIGURES: list[tuple[str, str, float, str]] = [
    ("build_s", "build s", 1.0, "{:.3g}"),
    ("grad_s", "grad ms", 1e3, "{:.3g}"),
    ("func_s", "func ms", 1e3, "{:.3g}"),
    ("grad_per_func", "grad/func", 1.0, "{:.2f}"),
    ("call_s", "call µs", 1e6, "{:.3g}"),
    ("peak_mb", "peak MB", 1.0, "{:.0f}"),
    ("error", "rel. error", 1.0, "{:.1e}"),
]


def machine() -> dict[str, Any]:
    """CPU, cores, Python, the graphc commit and the version of every peer (or 'absent')."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            cpu = next(line.split(":", 1)[1].strip() for line in file if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {}
    for name in PEER_DISTRIBUTIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "graphc_commit": _command(
            ["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short", "HEAD"]
        ),
        "gcc": _command(["gcc", "--version"]).splitlines()[0] if _command(["gcc", "--version"]) else "absent",
        "versions": versions,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _command(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _with_ratios(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for cell in cells:
        if cell.get("grad_s") and cell.get("func_s"):
            cell["grad_per_func"] = cell["grad_s"] / cell["func_s"]
    return cells


def _table(cells: list[dict[str, Any]], problem: str) -> dict[str, dict[str, Any]]:
    return {cell["system"]: cell for cell in cells if cell["problem"] == problem}


def trusted(cell: dict[str, Any]) -> bool:
    """A cell whose gradient was checked finite and right (to WRONG relative): it may be a best peer."""
    error = cell.get("error")
    return cell.get("finite") is True and isinstance(error, (int, float)) and error <= WRONG


def best_peer(row: dict[str, dict[str, Any]], figure: str) -> tuple[str, float] | None:
    """The peer with the lowest value of ``figure`` in one problem's row, among the trusted ones
    (graphc and the hand-written C excluded)."""
    values = [
        (cell[figure], name)
        for name, cell in row.items()
        if SYSTEMS[name].peer and trusted(cell) and isinstance(cell.get(figure), (int, float))
    ]
    if not values:
        return None
    value, name = min(values)
    return name, value


def ratio_text(row: dict[str, dict[str, Any]], system: str, figure: str) -> str:
    mine = row.get(system, {}).get(figure)
    best = best_peer(row, figure)
    if not isinstance(mine, (int, float)) or best is None:
        return "—"
    name, value = best
    if value == 0:
        return f"— ({name})"
    return f"{mine / value:.2f} ({name})"


def _cell_text(cell: dict[str, Any], figure: str, scale: float, form: str) -> str:
    value = cell.get(figure)
    if isinstance(value, (int, float)):
        return form.format(value * scale)
    status = cell.get("status", "")
    return status if status != "ok" and figure == _first_missing(cell) else "—"


def _first_missing(cell: dict[str, Any]) -> str | None:
    for figure, *_ in FIGURES:
        if figure != "error" and figure != "grad_per_func" and not isinstance(cell.get(figure), (int, float)):
            return figure
    return None


def problem_section(problem: str, row: dict[str, dict[str, Any]]) -> list[str]:
    spec = PROBLEMS[problem]
    lines = [f"## {problem}: {spec.title}", ""]
    points = sorted({cell["points"] for cell in row.values() if "points" in cell})
    if points:
        lines += [
            f"Batch: N = {', '.join(f'{p:,}' for p in points)} points"
            + (f"; {spec.notes}." if spec.notes else "."),
            "",
        ]
    heads = [head for _, head, _, _ in FIGURES]
    lines.append("| system | " + " | ".join(heads) + " | finite | status |")
    lines.append("|---|" + "---:|" * len(heads) + "---|---|")
    for name, cell in row.items():
        if cell["status"].startswith(("skipped", "n/a", "not run")):
            lines.append(f"| {name} | " + " | ".join("—" for _ in heads) + f" | — | {cell['status']} |")
            continue
        texts = [_cell_text(cell, figure, scale, form) for figure, _, scale, form in FIGURES]
        finite = {True: "yes", False: "**no**"}.get(cell.get("finite"), "—")
        lines.append(f"| {name} | " + " | ".join(texts) + f" | {finite} | {cell['status']} |")
    for system in GRAPHC:
        if system in row:
            ratios = [ratio_text(row, system, figure) for figure, *_ in FIGURES]
            lines.append(f"| *{system} / best peer* | " + " | ".join(ratios) + " | | |")
    if _value(row, "c-hand", "grad_s") is not None and "graphc-llvm" in row:
        ratios = []
        for figure, *_ in FIGURES:
            mine, theirs = row["graphc-llvm"].get(figure), row["c-hand"].get(figure)
            ok = isinstance(mine, (int, float)) and isinstance(theirs, (int, float)) and theirs
            ratios.append(f"{mine / theirs:.2f}" if ok else "—")
        lines.append("| *graphc-llvm / c-hand* | " + " | ".join(ratios) + " | | |")
    return [*lines, ""]


def headline(cells_by_problem: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    heads = [head for _, head, _, _ in FIGURES]
    lines = [
        "## Headline: graphc-llvm / the best peer, per figure",
        "",
        (
            "Each entry is graphc-llvm's figure divided by the best peer's (lower is better for every "
            "figure: below 1 graphc leads), with the best peer named. Peers: every system but graphc's "
            "and the hand-written C, and only those whose gradient was finite and agreed with the reference "
            f"to {WRONG:g} on the check points."
        ),
        "",
        "| problem | " + " | ".join(heads) + " |",
        "|---|" + "---:|" * len(heads),
    ]
    for problem, row in cells_by_problem.items():
        lines.append(
            f"| {problem} | " + " | ".join(ratio_text(row, "graphc-llvm", f) for f, *_ in FIGURES) + " |"
        )
    return [*lines, ""]


def _value(row: dict[str, dict[str, Any]], system: str, figure: str) -> float | None:
    value = row.get(system, {}).get(figure)
    return value if isinstance(value, (int, float)) else None


def goals(cells_by_problem: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Issue 6's goals, each judged on this run's numbers."""
    lines = ["## The goals, judged on this run", ""]

    def verdict(text: str, misses: list[str] | None) -> None:
        if misses is None:
            mark = "not measured in this run"
        else:
            mark = "met" if not misses else "**missed**: " + "; ".join(misses)
        lines.append(f"- {text}: {mark}")

    def compare(
        system: str,
        figure: str,
        against: Callable[[dict[str, dict[str, Any]]], tuple[str, float] | None],
        limit: float = 1.0,
        problems: list[str] | None = None,
    ) -> list[str] | None:
        """The problems where ``system``'s figure exceeds ``limit`` × the other's; None if none compared."""
        misses, compared = [], 0
        for problem, row in cells_by_problem.items():
            if problems is not None and problem not in problems:
                continue
            mine, best = _value(row, system, figure), against(row)
            if best is None or system not in row:
                continue
            compared += 1
            if mine is None:
                misses.append(f"{problem} (no figure: {row.get(system, {}).get('status', 'not run')})")
            elif mine > limit * best[1]:
                misses.append(f"{problem} ({mine / best[1]:.2f}× {best[0]})")
        return misses if compared else None

    verdict(
        "graphc-llvm gradient time ≤ every peer's on every problem",
        compare("graphc-llvm", "grad_s", lambda row: best_peer(row, "grad_s")),
    )
    c_hand = compare(
        "graphc-llvm",
        "grad_s",
        lambda row: ("c-hand", row["c-hand"]["grad_s"]) if _value(row, "c-hand", "grad_s") else None,
        1.5,
        ["B1"],
    )
    verdict("graphc-llvm gradient within 1.5× of the hand-written C on B1", c_hand)
    verdict(
        "graphc-llvm expression-to-callable ≤ the fastest peer's on B5-10k, B5-100k and B6",
        compare(
            "graphc-llvm", "build_s", lambda row: best_peer(row, "build_s"), 1.0, ["B5-10k", "B5-100k", "B6"]
        ),
    )
    sizes = [
        (PROBLEMS[p].size, _value(row, "graphc-llvm", "build_s"))
        for p, row in cells_by_problem.items()
        if PROBLEMS[p].size
    ]
    sizes = [(size, value) for size, value in sizes if value]
    if len(sizes) >= 2:
        (small, t_small), (large, t_large) = min(sizes), max(sizes)
        growth = (t_large / t_small) / (large / small)
        lines.append(
            f"- graphc-llvm build time linear in size (B5): {t_small:.3g} s at {small:,} ops, "
            f"{t_large:.3g} s at {large:,} ops: {growth:.2f}× linear growth"
        )
    ratios = {p: _value(row, "graphc-llvm", "grad_per_func") for p, row in cells_by_problem.items()}
    misses = [f"{p} ({ratio:.2f})" for p, ratio in ratios.items() if ratio is not None and ratio > 3]
    measured = any(ratio is not None for ratio in ratios.values())
    verdict("graphc-llvm gradient time / function time ≤ 3 on every problem", misses if measured else None)
    verdict(
        "graphc-numpy gradient time ≤ SymPy lambdify(cse=True)'s everywhere",
        compare(
            "graphc-numpy",
            "grad_s",
            lambda row: (
                ("sympy-cse", row["sympy-cse"]["grad_s"]) if _value(row, "sympy-cse", "grad_s") else None
            ),
        ),
    )
    row = cells_by_problem.get("B3x", {})
    if row:
        infinite = [name for name, cell in row.items() if cell.get("finite") is False]
        graphc_ok = all(row.get(name, {}).get("finite") for name in GRAPHC if name in row)
        lines.append(
            f"- B3 with layer 0 = (w, 1.5·w) finite for graphc: {'met' if graphc_ok else '**missed**'}; "
            f"systems returning non-finite values: {', '.join(infinite) or 'none'}"
        )
    misses = []
    measured = any(name in row for row in cells_by_problem.values() for name in GRAPHC)
    for problem, row in cells_by_problem.items():
        for name in GRAPHC:
            error = _value(row, name, "error")
            if name in row and (error is None or error > ERROR_GOAL):
                misses.append(f"{problem} {name} ({'no figure' if error is None else f'{error:.1e}'})")
    verdict(
        f"graphc's gradients agree with the reference to {ERROR_GOAL:g} relative",
        misses if measured else None,
    )
    # The reference is in extended precision: on an ill-conditioned graph no float64 system can
    # meet a fixed bound, so also judge graphc against the most accurate peer on the same problem.
    misses = []
    for problem, row in cells_by_problem.items():
        best = best_peer(row, "error")
        for name in GRAPHC:
            error = _value(row, name, "error")
            if best and error is not None and error > max(2 * best[1], ERROR_GOAL):
                misses.append(f"{problem} {name} ({error:.1e} against {best[0]}'s {best[1]:.1e})")
    verdict(
        "graphc's error ≤ twice the most accurate peer's (or within the bound above) on every problem",
        misses if measured else None,
    )
    return [*lines, ""]


def plot_b5(cells: list[dict[str, Any]], path: str) -> bool:
    """Compile time (expression to callable) against B5's size, one line per system; False if no data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[int, float]]] = {}
    for cell in cells:
        size = PROBLEMS[cell["problem"]].size
        if size and isinstance(cell.get("build_s"), (int, float)):
            series.setdefault(cell["system"], []).append((size, cell["build_s"]))
    if not series:
        return False
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, points in series.items():
        points.sort()
        style = "o-" if name.startswith("graphc") else "s--"
        axes.plot([p[0] for p in points], [p[1] for p in points], style, label=name)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("B5 random DAG size (operations)")
    axes.set_ylabel("expression to callable gradient (s)")
    axes.set_title("Compile time against graph size (timeouts are missing points)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def _runtime_note(settings: dict[str, Any]) -> str:
    """How the run treats graphc-llvm's runtime (older results.json files do not say: they ran
    every cell with graphc's disk cache off)."""
    if "graphc_cache" not in settings:
        return "Every cell runs with graphc's disk cache off (GRAPHC_NO_CACHE=1)."
    seconds = settings.get("graphc_runtime_s")
    if seconds is None:  # no graphc-llvm cell
        return "Each cell has a graphc cache directory of its own."
    if seconds < 0:
        return (
            "graphc's runtime could not be kept on disk in this run: each graphc-llvm cell compiled its own."
        )
    return (
        "graphc-llvm's runtime (its vector math functions, the helpers of its kernels' last points and "
        "its tape interpreter: code that depends on the machine, not on the graph) is compiled once per "
        "machine into graphc's disk cache, as a "
        f"peer's libraries are compiled when it is installed: the run compiled it first ({seconds:.2f} s), "
        "and each cell starts with it and with no compiled kernel (a cache directory of its own)."
    )


def markdown(results: dict[str, Any], plotted: bool) -> str:
    settings, info = results["settings"], results["machine"]
    cells = _with_ratios(results["cells"])
    by_problem = {problem: _table(cells, problem) for problem in settings["problems"]}
    mode = "--quick" if settings["quick"] else "the full run"
    command = settings.get("command") or "python bench/run.py" + (" --quick" if settings["quick"] else "")
    if command.removeprefix("python bench/run.py").replace(" --quick", ""):
        mode += "'s settings but for the options given"
    versions = ", ".join(f"{name} {version}" for name, version in info["versions"].items())
    lines = [
        "# graphc against its peers",
        "",
        (
            f"Generated by `{command}` ({mode}) on {info['date']}; do not edit by hand, rerun it. "
            "The raw figures are in [results.json](results.json)."
        ),
        "",
        (
            f"- Machine: {info['cpu']}, {info['cores']} cores (shared), {info['platform']}; Python {info['python']}; "
            f"{info['gcc']}; graphc at commit {info['graphc_commit']}."
        ),
        f"- Versions: {versions}.",
        f"- Batch: N = {settings['points']:,} points per variable (float64)"
        + (
            " — **--quick: fewer points than the full run's 1,000,000, and fewer still on B5 and B6 "
            "(each problem states its N)**"
            if settings["quick"] or settings["points"] < 1_000_000
            else ""
        )
        + f"; times are the median of {settings['repeats']} calls after one warm-up call; "
        f"each cell runs in a fresh process with a {settings['timeout']:g} s timeout, on one thread "
        "(graphc-llvm threads=1, XLA and BLAS limited to one thread).",
        (
            "- build s: from the expression to a callable gradient: build the expression (graphc parses its "
            "text; a peer converts graphc's parsed graph node by node into its own expressions), "
            "differentiate, compile, and call once at one point (JAX compiles again for the batch's shape "
            "during the warm-up, not counted). Each system's modules are imported before the clock starts "
            "(graphc and graphc-llvm's llvmlite.binding, like sympy, symengine, casadi, jax); graphc's "
            "own modules imported during the build come byte-compiled, as an installed package's do. "
            + _runtime_note(settings)
        ),
        (
            "- grad ms / func ms: the gradient (every partial; B6: the 10th derivative) and the function on "
            "the batch, fresh outputs each call (graphc-llvm writes into the block of results its caller "
            "let go of: see graphc/backends/llvm/run.py). call µs: one gradient call at N = 1. peak MB: the cell "
            "process's ru_maxrss (interpreter, imports and the inputs included)."
        ),
        (
            f"- rel. error: max over partials of max|g − ref| / max|ref| on 1,000 check points; the reference is "
            f"{results['reference']} (graphc's systems time the dp method). The reference "
            "computes sin, cos, tanh, exp with NumPy's ufuncs, compiled systems with libm or their own code: "
            "on deep graphs (B5-100k is ~22,000 operations deep) the figure includes those roundings amplified "
            "by the graph's conditioning. finite: every checked value finite."
        ),
        (
            "- A cell that timed out or failed shows its status in the first figure it did not reach. "
            "B5-100k's timeout is 3× the others'. A system that gives no compile time on a B5 size "
            "(timeout or failure before its gradient existed) is not run on the larger sizes."
        ),
        "",
    ]
    lines += headline(by_problem)
    lines += goals(by_problem)
    for problem, row in by_problem.items():
        lines += problem_section(problem, row)
    if plotted:
        lines += ["## Compile time against graph size (B5)", "", "![B5 compile time](b5_compile.png)", ""]
    return "\n".join(lines)


def write_outputs(results: dict[str, Any], out: str) -> list[str]:
    json_path = os.path.join(out, "results.json")
    with open(json_path, "w", encoding="utf-8") as file:
        json.dump(results, file, indent=1, default=float)
    plot_path = os.path.join(out, "b5_compile.png")
    plotted = plot_b5(results["cells"], plot_path)
    md_path = os.path.join(out, "RESULTS.md")
    splice(md_path, "scalar", markdown(results, plotted))
    return [md_path, json_path] + ([plot_path] if plotted else [])


# RESULTS.md is written by several scripts, each owning one part, in this order; the changelog is
# kept by hand. A part starts at its marker line (an HTML comment, invisible when rendered).
PARTS = ("scalar", "sparse", "tensor", "changelog")


def _marker(name: str) -> str:
    return f"<!-- results part: {name} -->"


def splice(path: str, part: str, text: str) -> None:
    """Write RESULTS.md with the part ``part`` replaced by ``text`` and every other part kept as it
    stands in the file, so no script's run erases another's figures or the hand-kept changelog."""
    assert part in PARTS, part
    parts = dict.fromkeys(PARTS, "")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as file:
            current, name = [], "scalar"  # a page without markers is all run.py's
            for line in file.read().splitlines():
                found = [other for other in PARTS if line == _marker(other)]
                if found:
                    parts[name], current, name = "\n".join(current), [], found[0]
                else:
                    current.append(line)
            parts[name] = "\n".join(current)
    parts[part] = text
    with open(path, "w", encoding="utf-8") as file:
        file.write(
            "\n".join(
                f"{_marker(name)}\n{body.strip(chr(10))}\n" for name, body in parts.items() if body.strip()
            )
        )
