"""Huge inputs: how long graphc takes and how much memory it needs, or how early it refuses.

Each case runs in a fresh process and prints one line: the case, what happened (nodes built, or
the error), seconds, and the peak resident memory. Run: ``python bench/hostile_sizes.py [case...]``.

Cases: ``text10mb`` (10 MB of formula text), ``vars1m`` (a sum of 1,000,000 variables, parsed and
differentiated), ``vars1m-eval`` (and compiled with numpy and evaluated),
``nodes10m`` (a program over the default 10,000,000-node cap: refused with ResourceError).
"""

from __future__ import annotations

import subprocess
import sys
import time

CASES = {
    "text10mb": "text = 'x' + ''.join(f'+sin(x*{i})' for i in range(780_000)); assert len(text) > 10_000_000\n"
    "g = graphc.parse(text); d = graphc.differentiate(g); report(f'{len(text)/1e6:.1f} MB text: {len(g):,} nodes, "
    "gradient graph {len(d):,} nodes')",
    "vars1m": "text = '+'.join(f'v{i}' for i in range(1_000_000))\n"
    "g = graphc.parse(text); d = graphc.differentiate(g); report(f'{len(text)/1e6:.1f} MB text: {len(g):,} nodes, "
    "gradient graph {len(d):,} nodes, {len(d.outputs):,} outputs')",
    "vars1m-eval": "text = '+'.join(f'v{i}' for i in range(1_000_000))\n"
    "k = graphc.compile(text); v = k(*([1.0] * 1_000_000)); report(f'compiled and evaluated: {float(v)}')",
    "nodes10m": "text = 'x' + ''.join(f'+x*{i}' for i in range(5_100_000))\n"
    "g = graphc.parse(text); report(f'{len(g):,} nodes')",
}

PRELUDE = """
import resource, sys, time
import graphc
start = time.perf_counter()
def report(what):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f'{what}; {time.perf_counter() - start:.1f} s, peak RSS {rss:,.0f} MB')
try:
"""


def run(case: str) -> None:
    body = "\n".join("    " + line for line in CASES[case].splitlines())
    code = (
        PRELUDE + body + "\nexcept graphc.GraphcError as err:\n    report(f'{type(err).__name__}: {err}')\n"
    )
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    out = result.stdout.strip() or result.stderr.strip().splitlines()[-1:] or ["(nothing)"]
    text = out if isinstance(out, str) else out[0]
    print(
        f"{case}: {text} [exit {result.returncode}, {time.perf_counter() - started:.1f} s wall]", flush=True
    )


if __name__ == "__main__":
    for name in sys.argv[1:] or list(CASES):
        run(name)
