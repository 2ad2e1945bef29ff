"""T2's floor: the BLAS products its gradient needs, timed alone, against the systems' whole steps.

    python bench/t2_floor.py                                  # about a minute; writes t2_floor.md here
    python bench/t2_floor.py --rounds 9 --out /tmp/floor --graphc /path/to/a/graphc/checkout

T2 (bench/tensor_problems.py: 256x784 -> 256 relu -> 10, softmax cross-entropy, loss and gradient)
needs five matrix products: forward ``X @ W1`` and ``h @ W2``, backward ``dz @ W2ᵀ``, ``hᵀ @ dz``
and ``Xᵀ @ G1`` (G1 the gradient at the hidden layer's input). Two of them, ``X @ W1`` and
``Xᵀ @ G1``, are 256x784x256 each and hold almost all of the arithmetic. Each product is timed
alone through two BLAS libraries:

- NumPy's (``np.matmul`` into a preallocated output): the OpenBLAS NumPy's wheel bundles, which
  hand-written NumPy, and so the ``numpy-hand`` system, uses;
- the ``dgemm`` graphc-llvm's kernels call (:mod:`graphc.backends.llvm.tensor_blas`: the OpenBLAS
  SciPy's wheel bundles), through ctypes with the arguments a kernel passes (row-major
  ``C = A @ B`` as column-major ``Cᵀ = Bᵀ Aᵀ``, a transposed operand by its transpose flag, no copy).

A library's floor is the sum of its products' times: what a step costs in that BLAS alone, before
any elementwise work, softmax or call overhead; a system built on it cannot take less. The same
run (the same process, in turns, round after round) times the whole steps of graphc-llvm,
numpy-hand, and JAX and PyTorch when installed, and prints each floor against the best peer's
step: the least fraction of it any system calling that BLAS can reach.

What graphc-llvm spends above its floor is split by a second child process, in which the symbol
graphc's kernels call for dgemm is bound to a function that returns at once (before graphc
registers SciPy's: bench-only, through :data:`graphc.backends.llvm.tensor_blas.DGEMM`): that
step is the kernel's loops (its small products, the elementwise and softmax loops) and its Python
call, without its dgemm calls (the two large products'). (Its products' results are then whatever the
workspace held; the loops' work does not depend on the values.)

The measuring runs in a child process pinned to one core (``--core``), with one BLAS and XLA
thread (bench/harness.py's environment, as bench/tensors.py's workers), and a disk cache of its
own for graphc. Each figure is the median over ``--rounds`` rounds of a block of calls (about
``--block`` seconds), wall clock and the process's CPU time. Writes ``t2_floor.md`` and
``t2_floor.json`` to ``--out`` (default: this directory).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import block_timer, names_from, one_thread_environment

SYSTEMS = ("graphc-llvm", "numpy-hand", "jax", "torch")
PEERS = ("numpy-hand", "jax", "torch")
BLAS = {"numpy": "NumPy's BLAS", "dgemm": "graphc's dgemm (SciPy's BLAS)"}  # the two libraries timed
AGREEMENT = 1e-10  # relative, normwise per array: as bench/tensors.py checks every system


@dataclass(frozen=True)
class Product:
    """``A @ B`` of T2's gradient: A and B as stored (row-major), and whether each is read
    transposed (a view of the stored array, as in the step)."""

    text: str
    role: str
    a: str  # the stored operand's name in :func:`operands`
    a_transposed: bool
    b: str
    b_transposed: bool


PRODUCTS = (
    Product("X @ W1", "forward, hidden layer", "X", False, "W1", False),
    Product("h @ W2", "forward, output layer", "h", False, "W2", False),
    Product("dz @ W2ᵀ", "backward, gradient at h", "dz", False, "W2", True),
    Product("hᵀ @ dz", "backward, gradient of W2", "h", True, "dz", False),
    Product("Xᵀ @ G1", "backward, gradient of W1", "X", True, "G1", False),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"from {', '.join(SYSTEMS)}")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument("--block", type=float, default=0.2, help="seconds of calls per timed block")
    parser.add_argument("--core", type=int, default=max(os.sched_getaffinity(0)), help="the core to pin to")
    parser.add_argument("--graphc", help="a graphc checkout to import graphc from (default: this one)")
    parser.add_argument("--out", default=HERE, help="directory for t2_floor.md and t2_floor.json")
    parser.add_argument("--worker", metavar="JSON", help=argparse.SUPPRESS)  # the pinned child's output
    parser.add_argument("--without-blas", action="store_true", help=argparse.SUPPRESS)  # the second child
    args = parser.parse_args(argv)
    systems = names_from(args.systems, dict.fromkeys(SYSTEMS), "system", parser)
    args.systems = ["numpy-hand", *(s for s in systems if s != "numpy-hand")]  # the check needs it
    if args.rounds < 1 or args.block <= 0:
        parser.error("--rounds must be >= 1 and --block > 0")
    return args


# --- the pinned child: measuring -------------------------------------------------------------------


def operands(arrays: dict[str, Any]) -> dict[str, Any]:
    """The stored arrays the products read: T2's own, and h, dz, G1 as the step makes them."""
    import numpy as np

    x, w1, b1, w2, b2, t = (arrays[name] for name in ("X", "W1", "b1", "W2", "b2", "T"))
    h = np.maximum(x @ w1 + b1, 0.0)
    z = h @ w2 + b2
    e = np.exp(z - z.max(axis=1, keepdims=True))
    dz = (e / e.sum(axis=1, keepdims=True) - t) / len(x)
    return {"X": x, "W1": w1, "W2": w2, "h": h, "dz": dz, "G1": (dz @ w2.T) * (h > 0.0)}


def numpy_product(product: Product, stored: dict[str, Any]) -> Callable[[], Any]:
    import numpy as np

    a = stored[product.a].T if product.a_transposed else stored[product.a]
    b = stored[product.b].T if product.b_transposed else stored[product.b]
    c = np.empty((a.shape[0], b.shape[1]))
    return lambda: np.matmul(a, b, out=c)


def dgemm_product(product: Product, stored: dict[str, Any], address: int) -> Callable[[], Any]:
    """The product as graphc-llvm's kernel calls dgemm: ``Cᵀ = op(Bᵀ) op(Aᵀ)`` column-major."""
    import numpy as np

    dgemm = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 13)(address)
    a, b = stored[product.a], stored[product.b]
    m, k = (a.shape[1], a.shape[0]) if product.a_transposed else a.shape
    n = b.shape[0] if product.b_transposed else b.shape[1]
    c = np.empty((m, n))
    # a row-major array is its transpose in column-major order, with leading dimension its row length
    flag_b, ld_b = (b"T", k) if product.b_transposed else (b"N", n)
    flag_a, ld_a = (b"T", m) if product.a_transposed else (b"N", k)
    cells: list[Any] = [ctypes.c_char(flag_b), ctypes.c_char(flag_a)]  # every argument is a pointer
    cells += [ctypes.c_int32(v) for v in (n, m, k, ld_b, ld_a, n)]
    cells += [ctypes.c_double(1.0), ctypes.c_double(0.0)]
    f_b, f_a, n_, m_, k_, ldb, lda, ldc, alpha, beta = (ctypes.addressof(cell) for cell in cells)
    args = (f_b, f_a, n_, m_, k_, alpha, b.ctypes.data, ldb, a.ctypes.data, lda, beta, c.ctypes.data, ldc)
    keep = (cells, a, b, c)  # alive as long as the closure

    def call() -> Any:
        dgemm(*args)
        return keep

    expected = (a.T if product.a_transposed else a) @ (b.T if product.b_transposed else b)
    call()
    assert np.allclose(c, expected, rtol=1e-12, atol=1e-12), f"dgemm's {product.text} differs from NumPy's"
    return call


def steps(systems: list[str], problem: Any, arrays: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Each available system's step, checked against numpy-hand's loss and gradient; and why each
    other one is not timed."""
    import numpy as np
    from tensor_systems import SYSTEMS as BUILDERS

    built, missing = {}, {}
    want: tuple[float, list[Any]] | None = None
    for name in systems:
        system = BUILDERS[name]
        reason = system.unavailable(problem)
        if reason:
            missing[name] = reason
            continue
        step = system.build(problem, arrays)
        for _ in range(3):  # warm: compiled (graphc-llvm: its full code from its third call)
            result = step.step()
        loss, gradients = step.to_numpy(result)
        if want is None:
            want = (loss, gradients)
        worst = abs(loss - want[0]) / max(abs(want[0]), 1.0)
        for got, expected in zip(gradients, want[1], strict=True):
            scale = float(np.abs(expected).max(initial=0.0)) or 1.0
            worst = max(worst, float(np.abs(got - expected).max(initial=0.0)) / scale)
        if not worst <= AGREEMENT:
            missing[name] = f"failed: differs from numpy-hand's by {worst:.1e} relative"
            continue
        built[name] = step.step
    return built, missing


def blas_libraries() -> list[dict[str, Any]]:
    """threadpoolctl's description of each BLAS loaded (library file, version, kernel), if installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = ("filepath", "version", "architecture", "num_threads")
    return [{k: info.get(k) for k in keys} for info in threadpool_info() if info.get("user_api") == "blas"]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(1, args.graphc or os.path.dirname(HERE))
    import numpy as np
    from tensor_problems import PROBLEMS

    from graphc.backends.llvm.tensor_blas import dgemm_address

    problem = PROBLEMS["T2"]
    arrays = problem.arrays()
    stored = operands(arrays)
    address = dgemm_address()
    runs: dict[tuple[str, str], Callable[[], Any]] = {}
    for product in PRODUCTS:
        runs["numpy", product.text] = numpy_product(product, stored)
        runs["dgemm", product.text] = dgemm_product(product, stored, address)
    built, missing = steps(args.systems, problem, arrays)
    for name, step in built.items():
        runs["step", name] = step
    timers = {key: block_timer(run, args.block) for key, run in runs.items()}
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {key: [] for key in timers}
    keys = list(timers)
    load = [os.getloadavg()[0]]
    for r in range(args.rounds):  # in turns, each round starting one later: load falls on all alike
        shift = r % len(keys)
        for key in keys[shift:] + keys[:shift]:
            samples[key].append(timers[key]())
    load.append(os.getloadavg()[0])
    figures = [
        {
            "kind": kind,
            "name": name,
            "wall_s": statistics.median(s[0] for s in values),
            "cpu_s": statistics.median(s[1] for s in values),
        }
        for (kind, name), values in samples.items()
    ]
    shapes = {}
    for product in PRODUCTS:
        a, b = stored[product.a], stored[product.b]
        m, k = a.shape[::-1] if product.a_transposed else a.shape
        shapes[product.text] = [m, k, b.shape[0] if product.b_transposed else b.shape[1]]
    return {
        "figures": figures,
        "shapes": shapes,
        "missing": missing,
        "blas": blas_libraries(),
        "numpy": np.__version__,
        "load_average": load,
    }


def bind_dgemm_to_nothing() -> Any:
    """Bind the symbol graphc's kernels call for dgemm to a function that returns at once (before
    graphc binds it to SciPy's); the execution engine holding it, to be kept alive."""
    import llvmlite.binding as llvm

    from graphc.backends.llvm.target import new_target_machine
    from graphc.backends.llvm.tensor_blas import DGEMM

    text = f"define void @nothing({', '.join(['ptr'] * 13)}) {{\n  ret void\n}}\n"
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(text), new_target_machine())
    engine.finalize_object()
    llvm.add_symbol(DGEMM, engine.get_function_address("nothing"))
    return engine


def measure_without_blas(args: argparse.Namespace) -> dict[str, Any]:
    """graphc-llvm's step with its dgemm calls doing nothing: its loops and its Python call."""
    sys.path.insert(1, args.graphc or os.path.dirname(HERE))
    from tensor_problems import PROBLEMS
    from tensor_systems import SYSTEMS as BUILDERS

    engine = bind_dgemm_to_nothing()
    problem = PROBLEMS["T2"]
    step = BUILDERS["graphc-llvm"].build(problem, problem.arrays())
    for _ in range(3):
        step.step()
    timer = block_timer(step.step, args.block)
    samples = [timer() for _ in range(args.rounds)]
    del engine  # (kept alive until here: the kernel calls its function)
    return {
        "wall_s": statistics.median(s[0] for s in samples),
        "cpu_s": statistics.median(s[1] for s in samples),
    }


# --- the parent: running the child and writing the page ---------------------------------------------


def run_child(args: argparse.Namespace, without_blas: bool = False) -> dict[str, Any]:
    """The child's figures: pinned to ``--core``, one thread, graphc's disk cache its own."""
    scratch = tempfile.mkdtemp(prefix="t2floor-")
    try:
        out = os.path.join(scratch, "figures.json")
        env = one_thread_environment(os.path.join(scratch, "bytecode"), os.path.join(scratch, "graphc"))
        env["JAX_PLATFORMS"] = "cpu"
        command = [
            "taskset", "-c", str(args.core), sys.executable, os.path.abspath(__file__), "--worker", out,
            "--systems", ",".join(args.systems), "--rounds", str(args.rounds), "--block", str(args.block),
            *(["--graphc", args.graphc] if args.graphc else []), *(["--without-blas"] if without_blas else []),
        ]  # fmt: skip
        subprocess.run(command, env=env, check=True)
        with open(out, encoding="utf-8") as file:
            return json.load(file)  # type: ignore[no-any-return]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def markdown(results: dict[str, Any], command: str) -> str:
    """The page: the products alone, the floors, the steps, the floor against the best peer."""
    figures = {(f["kind"], f["name"]): f for f in results["figures"]}

    def ms(kind: str, name: str, clock: str = "cpu") -> float:
        return float(figures[kind, name][f"{clock}_s"]) * 1e3

    load = results["load_average"]
    lines = [
        "# T2's floor: its BLAS products alone, against the whole steps",
        "",
        (
            f"Made by `{command}` (bench/t2_floor.py; do not edit by hand). One pinned core, one BLAS "
            f"thread; each figure the median of {results['settings']['rounds']} rounds of a block of calls, "
            f"all timed in turns in one process. Machine: {results['machine']}. Load average (1 minute) "
            f"{load[0]:.1f} at the start, {load[1]:.1f} at the end: the wall-clock figures include the "
            "core's turns given to other processes, the CPU figures do not."
        ),
        "",
        "## The products T2's gradient needs, each alone",
        "",
        "| product | role | m x k x n | NumPy's BLAS ms (CPU) | GFLOP/s | graphc's dgemm ms (CPU) | GFLOP/s |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    floors = {kind: {"wall": 0.0, "cpu": 0.0} for kind in BLAS}
    for product in PRODUCTS:
        m, k, n = results["shapes"][product.text]
        row = [f"`{product.text}`", product.role, f"{m} x {k} x {n}"]
        for kind in BLAS:
            for clock in ("wall", "cpu"):
                floors[kind][clock] += ms(kind, product.text, clock)
            gflops = 2 * m * k * n / ms(kind, product.text) / 1e6
            row += [f"{ms(kind, product.text, 'wall'):.3f} ({ms(kind, product.text):.3f})", f"{gflops:.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    sums = [f"**{floors[kind]['wall']:.3f}** ({floors[kind]['cpu']:.3f}) | " for kind in BLAS]
    lines += [
        f"| **floor: their sum** | | | {sums[0]}| {sums[1]}|",
        "",
        "GFLOP/s from the CPU time (2·m·k·n per product).",
        "",
        "## The whole steps",
        "",
        "| system | step ms | CPU ms | step / floor of its BLAS (CPU) |",
        "| --- | ---: | ---: | ---: |",
    ]
    steps = [name for kind, name in figures if kind == "step"]
    for name in steps:
        own = {"graphc-llvm": "dgemm", "numpy-hand": "numpy"}.get(name)
        ratio = f"{ms('step', name) / floors[own]['cpu']:.2f} ({BLAS[own]})" if own else "-"
        lines.append(f"| {name} | {ms('step', name, 'wall'):.3f} | {ms('step', name):.3f} | {ratio} |")
    lines += [f"| {name} | {reason} | | |" for name, reason in results["missing"].items()]
    big = [p.text for p in PRODUCTS if math.prod(results["shapes"][p.text]) >= 1 << 24]
    peers = [name for name in steps if name in PEERS]
    if peers:
        lines += against_best_peer(peers, floors, big, results["shapes"], ms)
    lines += split_of_graphc(results, big, ms)
    lines += ["", "## BLAS libraries loaded", ""]
    for info in results["blas"]:
        lines.append(
            f"- `{os.path.basename(str(info['filepath']))}`: OpenBLAS {info['version']}, kernel "
            f"{info['architecture']}, {info['num_threads']} thread(s)"
        )
    if not results["blas"]:
        lines.append("- (threadpoolctl is not installed: the libraries are not described)")
    return "\n".join(lines) + "\n"


def against_best_peer(
    peers: list[str],
    floors: dict[str, dict[str, float]],
    big: list[str],
    shapes: dict[str, list[int]],
    ms: Callable[..., float],
) -> list[str]:
    """Each BLAS's floor as a fraction of the best peer's step, and graphc-llvm's step too."""
    best = min(peers, key=lambda name: ms("step", name))
    cpu, wall = ms("step", best), ms("step", best, "wall")
    lines = [
        "",
        "## The floor against the best peer",
        "",
        f"Best peer: **{best}**, {wall:.3f} ms ({cpu:.3f} CPU).",
        "",
        "| BLAS | floor ms (CPU) | floor / best peer's step (CPU) | floor / best peer's step (wall) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for kind, label in BLAS.items():
        floor = floors[kind]
        lines.append(
            f"| {label} | {floor['wall']:.3f} ({floor['cpu']:.3f}) | **{floor['cpu'] / cpu:.2f}** "
            f"| {floor['wall'] / wall:.2f} |"
        )
    try:
        ours = ms("step", "graphc-llvm")
    except KeyError:
        ours = None
    if ours is not None:
        above = ours - floors["dgemm"]["cpu"]
        lines += [
            "",
            (
                f"graphc-llvm's step / best peer's: **{ours / cpu:.2f}** (CPU), "
                f"{ms('step', 'graphc-llvm', 'wall') / wall:.2f} (wall); above its BLAS's floor: "
                f"{above:.3f} ms CPU ({above / ours:.0%} of its step)."
            ),
        ]
    share = sum(math.prod(shapes[t]) for t in big) / sum(math.prod(s) for s in shapes.values())
    lines += [
        "",
        (
            f"The products {' and '.join(f'`{t}`' for t in big)} hold {share:.1%} of the multiply-adds. "
            "A step of 0.8x the best peer's needs a floor below 0.8x its step: a ratio above 0.8 here "
            "means no system calling that BLAS on one core reaches that goal."
        ),
    ]
    return lines


def split_of_graphc(results: dict[str, Any], big: list[str], cpu_ms: Callable[..., float]) -> list[str]:
    """graphc-llvm's step as its two large products' dgemm calls, the rest of its step (timed with
    dgemm doing nothing), and what is left: the calls' cost in the step over their cost alone."""
    rest = results.get("without_blas")
    if rest is None:
        return []
    step = cpu_ms("step", "graphc-llvm")
    parts = [(f"dgemm `{text}`, alone", cpu_ms("dgemm", text)) for text in big]
    parts.append(("the step with dgemm doing nothing: its loops and its Python call", rest["cpu_s"] * 1e3))
    parts.append(
        ("left: the dgemm calls in the step over the same calls alone", step - sum(p for _, p in parts))
    )
    lines = [
        "",
        "## Where graphc-llvm's step goes (CPU ms)",
        "",
        "| part | ms | of the step |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {name} | {value:.3f} | {value / step:.1%} |" for name, value in parts]
    lines.append(f"| **the step** | **{step:.3f}** | |")
    return lines


def invocation(args: argparse.Namespace) -> str:
    words = ["python bench/t2_floor.py"]
    defaults = parse_args([])
    for key in ("systems", "rounds", "block", "graphc"):
        value = getattr(args, key)
        if value != getattr(defaults, key):
            words.append(f"--{key} {','.join(value) if isinstance(value, list) else value}")
    return " ".join(words)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        figures = measure_without_blas(args) if args.without_blas else measure(args)
        with open(args.worker, "w", encoding="utf-8") as file:
            json.dump(figures, file)
        return
    from tensor_report import tensor_machine

    results = run_child(args)
    if "graphc-llvm" in args.systems and "graphc-llvm" not in results["missing"]:
        results["without_blas"] = run_child(args, without_blas=True)
    info = tensor_machine(args.graphc or os.path.dirname(HERE))
    results["machine"] = (
        f"{info['cpu']}, Python {info['python']}, graphc {info['graphc_commit']}, {info['date']}"
    )
    results["settings"] = {"rounds": args.rounds, "block": args.block, "systems": args.systems}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "t2_floor.json"), "w", encoding="utf-8") as file:
        json.dump(results, file, indent=1)
    page = markdown(results, invocation(args))
    with open(os.path.join(args.out, "t2_floor.md"), "w", encoding="utf-8") as file:
        file.write(page)
    print(page)


if __name__ == "__main__":
    main()
