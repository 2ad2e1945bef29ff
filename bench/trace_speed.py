"""Tracing against parsing: the same program as a Python function and as text (issue 31).

A chain of N layers ``u = sin(u)*y + u*c_k`` (five nodes each) is traced from a Python loop and
parsed from its text; both build the same graph. Prints the best of three runs of each.

Run: python bench/trace_speed.py [N]   (default 20000: 100,000 nodes)
"""

import sys
import time

import graphc
import graphc.numpy as gnp

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000


def chain(x, y):
    u = x
    for k in range(N):
        u = gnp.sin(u) * y + u * (k + 1.0)
    return u


TEXT = "u = x\n" + "".join(f"u = sin(u)*y + u*{k + 1.0!r}\n" for k in range(N)) + "u"


def best(run):
    times = []
    for _ in range(3):
        start = time.perf_counter()
        graph = run()
        times.append(time.perf_counter() - start)
    return graph, min(times)


traced, trace_s = best(lambda: graphc.trace(chain))
parsed, parse_s = best(lambda: graphc.parse(TEXT))
assert traced.stats() == parsed.stats()  # the same graph (its inputs made first: ids differ)
print(f"{len(traced):,} nodes: trace {trace_s:.2f} s, parse {parse_s:.2f} s (ratio {trace_s / parse_s:.2f})")
