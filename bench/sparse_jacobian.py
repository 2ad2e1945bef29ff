"""The sparse Jacobian of the 1-D Bratu residuals (issue 29): graphc against CasADi and JAX.

    python bench/sparse_jacobian.py [--n 20000] [--dense-n 200] [--sizes 200,2000] [--repeat 20] [--results FILE]

For each system: seconds from the problem (graphc: program text; CasADi and JAX: their Python
APIs) to the first evaluated Jacobian, and one evaluation at a point, median and fastest (graphc:
a scipy.sparse.csr_matrix; CasADi: its sparse DM, and separately that DM converted to SciPy; JAX:
jacfwd's dense array). Dense Jacobians (graphc's own and JAX's) hold n² doubles, 3.2 GB at
n = 20,000: they run at --dense-n instead, which the table says. Every result is checked against
the exact tridiagonal Jacobian. --sizes adds graphc's sparse Jacobian on both backends at smaller n
(where the NumPy backend stops being the better choice). A second table gives the colours each
colouring order takes on the benchmark's pattern and on others of the kind issue 29 names.
--results writes the tables as the sparse part of a RESULTS.md (bench/report.py's splice).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse

import graphc
from graphc.sparse.coloring import ORDERS, column_coloring, star_coloring, transpose

LAMBDA = 1.0


def bratu_text(n: int) -> str:
    h2 = (1.0 / (n + 1)) ** 2 * LAMBDA
    rows = []
    for i in range(n):
        left = f"x{i - 1} - " if i else "-"
        right = f" + x{i + 1}" if i < n - 1 else ""
        rows.append(f"{left}2*x{i}{right} + {h2!r}*exp(x{i})")
    return ", ".join(rows)


def exact(n: int, x: np.ndarray) -> Any:
    h2 = (1.0 / (n + 1)) ** 2 * LAMBDA
    diagonal = -2.0 + h2 * np.exp(x)
    return scipy.sparse.diags([np.ones(n - 1), diagonal, np.ones(n - 1)], [-1, 0, 1], format="csr")


def median_time(call: Callable[[], Any], repeat: int) -> str:
    """The median and the fastest of ``repeat`` calls, in ms (the fastest: the least disturbed by
    other processes on a shared machine)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return f"{1e3 * statistics.median(times):.2f} / {1e3 * min(times):.2f}"


def check(n: int, x: np.ndarray, matrix: Any) -> float:
    dense = matrix.toarray() if scipy.sparse.issparse(matrix) else np.asarray(matrix)
    return (
        float(np.abs(dense - exact(n, x).toarray()).max())
        if n <= 2000
        else float(abs(matrix - exact(n, x)).max())
    )


def graphc_sparse(n: int, backend: str, repeat: int) -> dict[str, Any]:
    x = np.linspace(0.0, 0.1, n)
    wrt = [f"x{i}" for i in range(n)]
    start = time.perf_counter()
    text = bratu_text(n)
    made, cpu = time.perf_counter(), time.process_time()
    graph = graphc.parse(text)
    parsed = time.perf_counter()
    kernel = graphc.jacobian(graph, wrt, backend=backend, sparse=True)
    compiled = time.perf_counter()
    point = np.zeros(len(kernel.variables))
    index = {name: i for i, name in enumerate(kernel.variables)}
    point[[index[name] for name in wrt]] = x
    matrix = kernel.at(point)
    first, cpu = time.perf_counter(), time.process_time() - cpu
    stages = ", ".join(f"{stage} {seconds:.2f}" for stage, seconds in kernel.info["seconds"].items())
    return {
        "system": f"graphc sparse ({backend})",
        "n": n,
        "from problem s": first - made,
        "cpu s": cpu,
        "detail": f"text {made - start:.2f} s (not counted), parse {parsed - made:.2f}, {stages}, "
        f"first call {first - compiled:.2f}; {kernel.info['colors']} colours ({kernel.info['coloring']})",
        "eval ms": median_time(lambda: kernel.at(point), repeat),
        "error": check(n, x, matrix),
    }


def graphc_dense(n: int, repeat: int) -> dict[str, Any]:
    x = np.linspace(0.0, 0.1, n)
    wrt = [f"x{i}" for i in range(n)]
    start, cpu = time.perf_counter(), time.process_time()
    r = graphc.residuals(bratu_text(n), wrt, backend="llvm")
    matrix = r.jac(x)
    first = time.perf_counter()
    return {
        "system": "graphc dense (llvm)",
        "n": n,
        "from problem s": first - start,
        "cpu s": time.process_time() - cpu,
        "detail": "residuals(...).jac: every entry, n passes",
        "eval ms": median_time(lambda: r.jac(x), repeat),
        "error": check(n, x, matrix),
    }


def casadi(n: int, repeat: int) -> list[dict[str, Any]]:
    import casadi as ca

    x0 = np.linspace(0.0, 0.1, n)
    start, cpu = time.perf_counter(), time.process_time()
    x = ca.SX.sym("x", n)
    zero = ca.SX(1, 1)
    residual = (
        ca.vertcat(zero, x[:-1]) - 2 * x + ca.vertcat(x[1:], zero) + (1.0 / (n + 1)) ** 2 * LAMBDA * ca.exp(x)
    )
    function = ca.Function("J", [x], [ca.jacobian(residual, x)])
    matrix = function(x0)
    first, cpu = time.perf_counter(), time.process_time() - cpu
    as_scipy = matrix.sparse()
    return [
        {
            "system": "CasADi SX (sparse DM)",
            "n": n,
            "from problem s": first - start,
            "cpu s": cpu,
            "detail": f"casadi {ca.__version__}, vectorised SX, jacobian with its sparsity",
            "eval ms": median_time(lambda: function(x0), repeat),
            "error": check(n, x0, as_scipy),
        },
        {
            "system": "CasADi SX (to SciPy)",
            "n": n,
            "from problem s": float("nan"),
            "cpu s": float("nan"),
            "detail": "the same, DM.sparse() to a scipy.sparse matrix",
            "eval ms": median_time(lambda: function(x0).sparse(), max(3, repeat // 4)),
            "error": check(n, x0, as_scipy),
        },
    ]


def jax(n: int, repeat: int) -> dict[str, Any]:
    import jax as jx
    import jax.numpy as jnp

    jx.config.update("jax_enable_x64", True)
    x0 = jnp.asarray(np.linspace(0.0, 0.1, n))
    h2 = (1.0 / (n + 1)) ** 2 * LAMBDA
    start, cpu = time.perf_counter(), time.process_time()

    def residual(x: Any) -> Any:
        padded = jnp.concatenate([jnp.zeros(1), x, jnp.zeros(1)])
        return padded[:-2] - 2 * x + padded[2:] + h2 * jnp.exp(x)

    jacobian = jx.jit(jx.jacfwd(residual))
    matrix = jacobian(x0).block_until_ready()
    first = time.perf_counter()
    return {
        "system": "JAX jacfwd (dense, jit)",
        "n": n,
        "from problem s": first - start,
        "cpu s": time.process_time() - cpu,
        "detail": f"jax {jx.__version__}",
        "eval ms": median_time(lambda: jacobian(x0).block_until_ready(), repeat),
        "error": check(n, np.asarray(x0), np.asarray(matrix)),
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| system | n | from problem s | its CPU s | eval ms (median / fastest) | max error | detail |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        if "skipped" in row:
            lines.append(f"| {row['system']} | {row['n']:,} | — | — | — | — | {row['skipped']} |")
            continue
        first, cpu = ("—" if math.isnan(v) else f"{v:.2f}" for v in (row["from problem s"], row["cpu s"]))
        lines.append(
            f"| {row['system']} | {row['n']:,} | {first} | {cpu} | {row['eval ms']} | {row['error']:.1e} | "
            f"{row['detail']} |"
        )
    return "\n".join(lines)


def coloring_patterns(n: int) -> dict[str, list[list[int]]]:
    """Jacobian patterns (rows of column indices): the benchmark's and others of issue 29's kinds."""
    rng = np.random.default_rng(29)
    side = round(n**0.5)
    grid = []  # the 5-point Laplacian on a side x side grid
    for i in range(side * side):
        r, c = divmod(i, side)
        grid.append(
            sorted(
                [i]
                + [i + d for d, ok in ((-side, r), (side, r < side - 1), (-1, c), (1, c < side - 1)) if ok]
            )
        )
    return {
        f"Bratu (tridiagonal), n = {n:,}": [list(range(max(0, i - 1), min(n, i + 2))) for i in range(n)],
        f"2-D Laplacian, {side}x{side} grid": grid,
        f"arrow, n = {n:,}": [list(range(n))] + [[0, i] for i in range(1, n)],
        f"random, n = {n:,}, 4 per row": [sorted(set(rng.integers(0, n, 4).tolist())) for _ in range(n)],
        "crown, 2x100 (rows join 2i, 2j+1, i != j)": [
            [2 * i, 2 * j + 1] for i in range(100) for j in range(100) if i != j
        ],
    }


def coloring_table(n: int) -> str:
    """The colours of each order: columns (forward passes), rows (reverse passes) and the star
    colouring of the symmetric pattern (Hessian passes)."""
    lines = [
        "| pattern | "
        + " | ".join(f"{side}: {order}" for side in ("columns", "rows", "Hessian") for order in ORDERS)
        + " |",
        "|---|" + "---:|" * (3 * len(ORDERS)),
    ]
    for name, rows in coloring_patterns(n).items():
        columns = 1 + max(j for row in rows for j in row)
        by_column = transpose(rows, columns)
        neighbours = [set() for _ in range(columns)]
        if columns == len(rows):
            for i, row in enumerate(rows):
                for j in row:
                    if j != i:
                        neighbours[i].add(j)
                        neighbours[j].add(i)
        adjacency = [sorted(s) for s in neighbours]
        counts = [max(column_coloring(rows, columns, o)) + 1 for o in ORDERS]
        counts += [max(column_coloring(by_column, len(rows), o)) + 1 for o in ORDERS]
        counts += [max(star_coloring(adjacency, o)) + 1 if columns == len(rows) else "—" for o in ORDERS]
        lines.append(f"| {name} | {' | '.join(map(str, counts))} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dense-n", type=int, default=200)
    parser.add_argument("--sizes", default="200,2000", help="graphc sparse on both backends at these n too")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--results", metavar="FILE", help="write the table as the sparse part of this RESULTS.md"
    )
    args = parser.parse_args()
    n, repeat = args.n, args.repeat
    # graphc first: JAX's thread pools, once started, add to this process's CPU time
    rows = [graphc_sparse(n, "llvm", repeat), graphc_sparse(n, "numpy", max(3, repeat // 4))]
    for size in (int(size) for size in args.sizes.split(",") if size):
        rows.extend(graphc_sparse(size, backend, repeat) for backend in ("llvm", "numpy"))
    rows.append(graphc_dense(args.dense_n, max(3, repeat // 4)))
    for name, run in (("CasADi", lambda: casadi(n, repeat)), ("JAX", lambda: jax(args.dense_n, repeat))):
        try:
            found = run()
        except ImportError as error:
            rows.append({"system": name, "n": n, "skipped": f"skipped: {error}"})
            continue
        rows.extend(found if isinstance(found, list) else [found])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    cache = (
        "off (GRAPHC_NO_CACHE=1): every LLVM build compiles"
        if os.environ.get("GRAPHC_NO_CACHE", "") not in ("", "0")
        else "on: an LLVM build may be a cache hit"
    )
    header = (
        f"## Sparse Jacobian: Bratu residuals, n = {n:,} (issue 29)\n\n"
        f"`python bench/sparse_jacobian.py --n {n} --dense-n {args.dense_n} --sizes {args.sizes} --repeat {repeat}` at "
        f"{commit.stdout.strip() or '?'}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}, graphc's LLVM disk cache {cache}. "
        "'from problem': the problem as text (graphc) or Python API "
        "calls (peers) to the first evaluated Jacobian, wall clock, and the CPU time the process spent on it (on a "
        "loaded machine the wall clock includes waiting for a core); 'eval': one evaluation at a point, the median and the fastest of the repeats (the fastest is the least disturbed by the other processes of a shared machine).\n"
    )
    colours = (
        "\n### Colours by colouring order\n\nThe passes each order takes (graphc.sparse.coloring; "
        "graphc uses the fewest): columns (forward mode), rows (reverse mode), and the star colouring of the "
        "symmetric pattern (a Hessian of that pattern; square patterns only).\n\n"
        f"{coloring_table(2000)}\n"
    )
    report = f"{header}\n{table(rows)}\n{colours}"
    print(report)
    if args.results:
        from report import splice  # bench/ is the script's directory: on the path

        splice(args.results, "sparse", report)


if __name__ == "__main__":
    main()
