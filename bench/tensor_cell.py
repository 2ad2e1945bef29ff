"""One tensor-benchmark worker, run by tensors.py in a fresh process pinned to one core.

It loads the problem's arrays, builds the system's step and computes the first loss and gradient,
then writes one JSON line to stdout (the runner's clock for time-to-first-gradient stops when it
reads it) and saves that loss and gradient to ``--result`` for the correctness check. With
``--once`` it exits there; otherwise it answers the runner's commands on stdin, one per line:
``step`` or ``loss`` runs a block of calls (sized once to about ``--block`` seconds) and answers
the mean wall-clock and CPU seconds per call; ``quit`` (or end of input) ends it. So several workers can wait side by
side and be timed in turns, each on the same core, none running while another is timed.

    python bench/tensor_cell.py --system jax --problem T1 --arrays t1.npz --result jax.npz --once
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import block_timer


def say(**figures: Any) -> None:
    sys.stdout.write(json.dumps(figures) + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True)
    parser.add_argument("--problem", required=True)
    parser.add_argument("--arrays", required=True, help="the problem's arrays (.npz), made by the runner")
    parser.add_argument("--result", required=True, help="where to save the first loss and gradient (.npz)")
    parser.add_argument("--graphc", help="the directory graphc is imported from (default: this checkout)")
    parser.add_argument("--block", type=float, default=0.25, help="seconds per timed block")
    parser.add_argument("--once", action="store_true", help="exit after the first gradient")
    args = parser.parse_args()
    sys.path.insert(1, args.graphc or os.path.dirname(HERE))

    import numpy as np
    from tensor_problems import PROBLEMS
    from tensor_systems import SYSTEMS

    problem, system = PROBLEMS[args.problem], SYSTEMS[args.system]
    with np.load(args.arrays) as file:
        arrays = {name: file[name] for name in file.files}
    start = time.perf_counter()
    try:
        built = system.build(problem, arrays)
        first = built.step()
    except Exception as error:
        if system.graphc:
            import graphc

            if isinstance(error, graphc.GraphcError):
                message = str(error).splitlines()[0]
                say(skipped=f"graphc cannot build {problem.name}: {type(error).__name__}: {message}")
                return
        raise
    say(build_s=time.perf_counter() - start, cpu_s=time.process_time())  # the process's CPU time so far
    loss, gradients = built.to_numpy(first)
    np.savez(args.result, loss=loss, **dict(zip(problem.wrt, gradients, strict=True)))
    if args.once:
        return
    for _ in range(2):  # untimed: work a system does once, on a later call (graphc-llvm: its full code)
        built.step()
        built.loss()
    built.settle()
    timers = {"step": block_timer(built.step, args.block), "loss": block_timer(built.loss, args.block)}
    say(ready=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        wall, cpu = timers[command]()
        say(seconds=wall, cpu_seconds=cpu)


if __name__ == "__main__":
    main()
