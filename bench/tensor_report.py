"""The "Tensor problems" section of RESULTS.md, from the figures bench/tensors.py measured."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
from typing import Any

from report import machine
from tensor_problems import PROBLEMS
from tensor_systems import REFERENCE, SYSTEMS

DISTRIBUTIONS = ("numpy", "scikit-learn", "jax", "jaxlib", "torch")
PEERS = ("numpy-hand", "jax", "torch", "torch-compile")  # what graphc is judged against
ISSUE_FIGURES = (
    "T1 hand NumPy 1.0–2.0 ms, JAX 0.68 ms, PyTorch 1.9–2.2 ms; T2 hand NumPy 4.9 ms, JAX 6.5 ms, "
    "PyTorch 6.5 ms; T3 JAX 7.0 ms, PyTorch 9.5 ms; a peer's first gradient from a fresh process 1.2–1.6 s"
)

# name, heading, unit scale, format
FIGURES: list[tuple[str, str, float, str]] = [
    ("step_s", "step ms", 1e3, "{:.3g}"),
    ("loss_s", "loss ms", 1e3, "{:.3g}"),
    ("step_per_loss", "step/loss", 1.0, "{:.2f}"),
    ("per_hand", f"× {REFERENCE}", 1.0, "{:.2f}"),
    ("step_cpu_s", "step CPU ms", 1e3, "{:.3g}"),
    ("build_s", "build s", 1.0, "{:.3g}"),
    ("first_s", "first gradient s", 1.0, "{:.3g}"),
    ("first_cpu_s", "first gradient CPU s", 1.0, "{:.3g}"),
    ("error", "rel. error", 1.0, "{:.1e}"),
]


def tensor_machine(graphc_root: str) -> dict[str, Any]:
    """report.machine()'s CPU, Python and date, with the tensor peers' versions and the commit of
    the graphc tree the run imported (marked when that tree had uncommitted changes)."""
    info = machine()
    info["bench_commit"] = info["graphc_commit"]  # machine() names this checkout's commit
    info["versions"] = {}
    for name in DISTRIBUTIONS:
        try:
            info["versions"][name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            info["versions"][name] = "absent"
    info["graphc_commit"] = _git(graphc_root, "rev-parse", "--short", "HEAD") or "unknown"
    if _git(graphc_root, "status", "--porcelain", "--untracked-files=no", "--", "graphc"):
        info["graphc_commit"] += " with uncommitted changes to graphc/"
    info["graphc_root"] = os.path.abspath(graphc_root)
    return info


def _git(root: str, *words: str) -> str:
    try:
        return subprocess.run(
            ["git", "-C", root, *words], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _number(cell: dict[str, Any], figure: str) -> float | None:
    value = cell.get(figure)
    return value if isinstance(value, (int, float)) and cell.get("status") == "ok" else None


def _with_ratios(row: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    hand = _number(row.get(REFERENCE, {}), "step_s")
    for cell in row.values():
        step, loss = _number(cell, "step_s"), _number(cell, "loss_s")
        if step and loss:
            cell["step_per_loss"] = step / loss
        if step and hand:
            cell["per_hand"] = step / hand
    return row


def _best_peer(row: dict[str, dict[str, Any]], figure: str) -> tuple[str, float] | None:
    values = [(value, name) for name in PEERS if (value := _number(row.get(name, {}), figure)) is not None]
    return (min(values)[1], min(values)[0]) if values else None


def problem_section(problem: str, row: dict[str, dict[str, Any]]) -> list[str]:
    spec = PROBLEMS[problem]
    batches = sorted({cell["batch"] for cell in row.values() if "batch" in cell})
    lines = [f"### {problem}: {spec.title}", ""]
    lines += [f"Batch: n = {', '.join(f'{b:,}' for b in batches)}; weights {', '.join(spec.wrt)}.", ""]
    lines += ["```", spec.text, "```", ""]
    heads = [head for _, head, _, _ in FIGURES]
    lines += ["| system | " + " | ".join(heads) + " | status |", "|---|" + "---:|" * len(heads) + "---|"]
    for name, cell in row.items():
        texts = []
        for figure, _, scale, form in FIGURES:
            value = cell.get(figure)
            texts.append(form.format(value * scale) if isinstance(value, (int, float)) else "—")
        lines.append(f"| {name} | " + " | ".join(texts) + f" | {cell['status']} |")
    return [*lines, ""]


def goals(by_problem: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Issue 24's goals for graphc-numpy and issue 26's for graphc-llvm, judged on this run."""
    lines = ["### The goals, judged on this run", ""]

    def judge(text: str, system: str, problems: tuple[str, ...], check: Any) -> None:
        misses, reasons = [], []
        for problem in problems:
            row = by_problem.get(problem)
            if row is None or system not in row:
                continue
            cell = row[system]
            if cell["status"] != "ok":
                reasons.append(f"{problem}: {cell['status']}")
                continue
            miss = check(row, cell)
            if miss:
                misses.append(f"{problem} ({miss})")
        judged = len(reasons) < sum(1 for p in problems if system in by_problem.get(p, {}))
        if misses:
            verdict = "**missed**: " + "; ".join(misses)
        elif judged:
            verdict = "met" + (f" where measured (not on {'; '.join(reasons)})" if reasons else "")
        else:
            verdict = "not measured" + (f" ({'; '.join(reasons)})" if reasons else " in this run")
        lines.append(f"- {text}: {verdict}")

    def at_most(figure: str, limit: float, unit: str = "") -> Any:
        def check(row: dict[str, Any], cell: dict[str, Any]) -> str | None:
            value = cell[figure]
            return f"{value:.3g}{unit}" if value > limit else None

        return check

    def against_peer(limit: float) -> Any:
        def check(row: dict[str, Any], cell: dict[str, Any]) -> str | None:
            best = _best_peer(row, "step_s")
            if best is None:
                return "no peer measured"
            ratio = cell["step_s"] / best[1]
            return f"{ratio:.2f}× {best[0]}" if ratio > limit else None

        return check

    judge(
        "graphc-numpy step ≤ 1.1× numpy-hand (issue 24)",
        "graphc-numpy",
        ("T1", "T2"),
        at_most("per_hand", 1.1, "×"),
    )
    judge(
        "graphc-numpy text to first gradient ≤ 0.3 s, fresh process (issue 24)",
        "graphc-numpy",
        ("T1", "T2"),
        at_most("first_s", 0.3, " s"),
    )
    judge(
        "graphc-llvm step ≤ 0.8× the best peer (issue 26)",
        "graphc-llvm",
        ("T1", "T2", "T3"),
        against_peer(0.8),
    )
    judge(
        "graphc-llvm text to first gradient ≤ 0.5 s, fresh process (issue 26)",
        "graphc-llvm",
        ("T1", "T2", "T3"),
        at_most("first_s", 0.5, " s"),
    )
    judge(
        "graphc-llvm step/loss ≤ 3 (issue 26)",
        "graphc-llvm",
        ("T1", "T2", "T3"),
        at_most("step_per_loss", 3.0),
    )
    return [*lines, ""]


def _load_note(settings: dict[str, Any]) -> str:
    load = settings.get("load_average")
    if not load:
        return ""
    return (
        f" Load average (1 minute) {load[0]:.1f} at the start of the run and {load[1]:.1f} at its end: "
        "the wall-clock figures include the core's turns given to other processes, the CPU figures do not."
    )


def _remeasured(results: dict[str, Any]) -> list[str]:
    """A line per later run whose problems replaced the first run's (``tensors.py --merge``)."""
    lines = []
    for run in results.get("remeasured", []):
        settings = run["settings"]
        lines.append(
            f"- Re-measured since, replacing their rows: {', '.join(run['problems'])}, by `{run['command']}` "
            f"on {run['date']}, graphc at commit {run['graphc_commit']}, systems {', '.join(settings['systems'])}, "
            f"{settings['rounds']} rounds, {settings['cold']} fresh starts."
            + _load_note(settings)
            + " Those problems' rows (and goals) are from that run; a system it did not run is absent from them."
        )
    return lines


def markdown(results: dict[str, Any]) -> str:
    settings, info = results["settings"], results["machine"]
    by_problem: dict[str, dict[str, dict[str, Any]]] = {}
    for cell in results["cells"]:
        by_problem.setdefault(cell["problem"], {})[cell["system"]] = cell
    for row in by_problem.values():
        _with_ratios(row)
    versions = ", ".join(f"{name} {version}" for name, version in info["versions"].items())
    core, rounds, block = settings["core"], settings["rounds"], settings["block"]
    systems = "; ".join(f"{name}: {SYSTEMS[name].summary}" for name in settings["systems"] if name in SYSTEMS)
    lines = [
        "## Tensor problems",
        "",
        (
            f"Generated by `{settings['command']}` on {info['date']}; do not edit by hand, rerun it. "
            "The raw figures are in [tensor_results.json](tensor_results.json)."
        ),
        "",
        (
            f"- Machine: {info['cpu']}, {info['cores']} cores (shared), {info['platform']}; "
            f"Python {info['python']}; graphc at commit {info['graphc_commit']}"
            + (f" (imported from {info['graphc_root']})" if "graphc_root" in info else "")
            + (f"; bench/ at commit {info['bench_commit']}" if "bench_commit" in info else "")
            + "."
            + _load_note(settings)
        ),
        f"- Versions: {versions}.",
        *_remeasured(results),
        f"- Systems: {systems}.",
        (
            f"- Every system runs in fresh processes pinned to core {core} (`taskset -c {core}`) on one "
            "thread (OMP, MKL and OpenBLAS threads 1, XLA's Eigen single-threaded, "
            "`torch.set_num_threads(1)`, graphc-llvm `threads=1`), in float64."
        ),
        (
            "- step ms: the loss and its gradient with respect to every weight, at fixed weights (no "
            "update), results waited for; loss ms: the loss alone. Each is the median over "
            f"{rounds} rounds; in a round every system runs, in turn, one block of about {block:g} s of calls, "
            "while the other systems' processes wait idle: the systems are timed side by side. step CPU ms: "
            "the CPU time of the worker process (all its threads) per step, median likewise: on a machine "
            "shared with other work it leaves out the time the core gave to other processes."
        ),
        (
            "- build s: inside the process, from the program (graphc: its text; a peer: its loss "
            "function) to the first loss and gradient: differentiate, compile (JAX: trace and XLA; "
            "torch-compile: Inductor), first call. first gradient s: wall clock from starting a fresh "
            "process (the interpreter, imports, the arrays read from a .npz file) to its first loss and "
            f"gradient, the median of {settings['cold']} starts (one if the first took over 10 s), "
            "after one untimed warm-up start per system (bytecode written, files in the OS's cache); "
            "every start has an empty graphc and Inductor cache of its own. first gradient CPU s: the "
            "CPU time that process had used by then (median likewise)."
        ),
        (
            f"- rel. error: max over the loss and each gradient of max|g − ref| / max|ref|, against "
            f"{REFERENCE}; a system off by more than {settings['agreement']:g} is not timed and fails "
            "the run. Each × numpy-hand is the step time over numpy-hand's."
        ),
        f"- For comparison, the figures issues 24 and 26 quote (an earlier machine): {ISSUE_FIGURES}.",
        (
            "- The peers come with the `bench` extra (`pip install -e '.[bench]'`); its `torch>=2.1,<=2.13.0` "
            "takes the CPU build of 2.13.0 where one lies on disk, as here; elsewhere install a CPU build "
            "first (`pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu`), or "
            "pip takes PyPI's CUDA build of several GB. An absent peer is a skipped row."
        ),
        "",
    ]
    lines += goals(by_problem)
    for problem, row in by_problem.items():
        lines += problem_section(problem, row)
    return "\n".join(lines)
