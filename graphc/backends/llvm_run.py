"""Calling JIT-compiled kernels: arguments to pointer arrays, outputs, threads.

The kernel's C signature is ``void(double **inputs, int64 *steps, double **outputs, int64 start,
int64 stop, double *scratch)``. ctypes releases the GIL during the call, so a large batch is
split into ranges computed on several threads at once; each point is computed the same way
whichever thread computes it, so results do not depend on the thread count.
"""

from __future__ import annotations

import ctypes
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

KERNEL_TYPE = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p
)
POINT_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
MIN_POINTS_PER_THREAD = 32768  # below this, starting a thread costs more than it saves


_SCALARS = (float, int, np.float64)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]  # type: ignore[no-any-return]


class CompiledKernel:
    """The machine code of one graph, called like a generated NumPy function.

    It owns the execution engine its code lives in: the engine must outlive every call, or the
    call jumps into freed memory.
    """

    def __init__(
        self,
        engine: Any,
        batch: int,
        point: int,
        inputs: int,
        outputs: int,
        scratch: int,
        threads: int | None,
    ) -> None:
        self._engine = engine
        self._kernel = KERNEL_TYPE(batch)
        self._point = POINT_TYPE(point)
        self._inputs = inputs
        self._outputs = outputs
        self._scratch = scratch
        self.threads = threads  # None: every usable core for a large batch

    def __call__(self, *values: Any) -> Any:
        if all(type(v) in _SCALARS for v in values):
            return self._at_point(values)
        arrays = [np.asarray(v, dtype=np.float64) for v in values]
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        size = math.prod(shape)
        steps = np.ones(self._inputs + 1, dtype=np.int64)  # +1: never a zero-length array
        keep: list[np.ndarray] = []  # what the kernel reads, alive until it returns
        for k, a in enumerate(arrays):
            if a.size == 1:
                steps[k] = 0
            elif a.shape != shape:
                a = np.broadcast_to(a, shape)
            keep.append(np.ascontiguousarray(a))
        results = np.empty((self._outputs, size))
        inputs = np.array([_address(a) for a in keep] + [0], dtype=np.uintp)
        base = _address(results)
        outputs = np.array([base + 8 * size * j for j in range(self._outputs)] + [0], dtype=np.uintp)
        self._run(_address(inputs), _address(steps), _address(outputs), size)
        if shape == ():
            shaped = tuple(results[:, 0])  # np.float64 scalars
        else:
            shaped = tuple(results[j].reshape(shape) for j in range(self._outputs))
        return shaped[0] if self._outputs == 1 else shaped

    def _at_point(self, values: tuple[Any, ...]) -> Any:
        """One point of Python or NumPy scalars: the point kernel, no pointer arrays."""
        point = np.array(values, dtype=np.float64) if values else np.empty(1)
        results = np.empty(self._outputs)
        scratch = _address(np.empty(self._scratch)) if self._scratch else None
        self._point(_address(point), _address(results), scratch)
        return results[0] if self._outputs == 1 else tuple(results)

    def _run(self, inputs: int, steps: int, outputs: int, size: int) -> None:
        threads = usable_cores() if self.threads is None else self.threads
        pieces = max(1, min(threads, size // MIN_POINTS_PER_THREAD))
        if pieces == 1:
            scratch = np.empty(max(self._scratch, 1))
            self._kernel(inputs, steps, outputs, 0, size, _address(scratch))
            return
        bounds = [size * i // pieces for i in range(pieces + 1)]
        scratches = [np.empty(max(self._scratch, 1)) for _ in range(pieces)]

        def run(i: int) -> None:
            self._kernel(inputs, steps, outputs, bounds[i], bounds[i + 1], _address(scratches[i]))

        with ThreadPoolExecutor(max_workers=pieces, thread_name_prefix="graphc-llvm") as pool:
            list(pool.map(run, range(pieces)))
