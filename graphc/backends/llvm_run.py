"""Calling JIT-compiled kernels: arguments to pointer arrays, outputs, threads.

The kernel's C signature is ``int64(double **inputs, int64 *steps, double **outputs, int64 start,
int64 stop, double *scratch)``; an input broadcast from one value (step 0) is given as a vector's
worth (``lanes``) of copies of it. ctypes releases the GIL during the call, so a large batch is
split into ranges computed on several threads at once; each point is computed the same way
whichever thread computes it, so results do not depend on the thread count.
"""

from __future__ import annotations

import ctypes
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

# Both return 0.
KERNEL_TYPE = ctypes.CFUNCTYPE(
    ctypes.c_int64,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_int64,
    ctypes.c_int64,
    ctypes.c_void_p,
)
POINT_TYPE = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
MIN_POINTS_PER_THREAD = 32768  # below this, starting a thread costs more than it saves
_NUMBERS = (float, int)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _address(array: np.ndarray) -> int:
    """The address of an array's data (the caller keeps the array alive while it is used)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(array))  # type: ignore[arg-type]  # 4x faster
    except (TypeError, ValueError):  # read-only or empty
        return array.__array_interface__["data"][0]  # type: ignore[no-any-return]


class _PointMemory(NamedTuple):
    """The results and scratch of one point call, with their addresses."""

    results: np.ndarray
    column: np.ndarray  # the results as a column: shape (outputs, 1)
    results_at: int
    scratch_at: int

    @classmethod
    def of(cls, outputs: int, scratch: int) -> _PointMemory:
        memory = np.empty(outputs + scratch)
        at = _address(memory)
        results = memory[:outputs]
        return cls(results, results[:, np.newaxis], at, at + 8 * outputs)


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
        lanes: int,
    ) -> None:
        self._engine = engine
        self._kernel = KERNEL_TYPE(batch)
        self._point = POINT_TYPE(point)
        self._inputs = inputs
        self._outputs = outputs
        self._scratch = scratch  # doubles of scratch per call
        self.threads = threads  # None: every usable core for a large batch
        self._lanes = lanes  # points per vector
        # memory for point calls, reused: a call takes one (list.pop is atomic) and puts it back
        self._memory: list[_PointMemory] = []

    def __call__(self, *values: Any, out: list[np.ndarray] | None = None) -> Any:
        """The outputs at ``values``; with ``out`` (checked by :meth:`graphc.Kernel.into`: one
        C-contiguous float64 array per output, of the broadcast shape, overlapping nothing), the
        kernel writes into those arrays and they are returned."""
        first = values[0] if values else 0.0
        if out is None and (type(first) in _NUMBERS or getattr(first, "size", None) == 1):
            try:  # one point, if every value has the first one's shape: (inputs, *shape)
                point = np.array(values, dtype=np.float64)
            except (TypeError, ValueError, OverflowError):  # shapes differ, or a bad value
                point = None
            if point is not None and point.size == self._inputs:
                return self._at_point(point)
        arrays = [np.asarray(v, dtype=np.float64) for v in values]
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        size = math.prod(shape)
        if out is None and size == 1:  # one point, values of several shapes
            return self._at_point(np.concatenate([a.ravel() for a in arrays]).reshape(-1, *shape))
        keep: list[np.ndarray] = []  # what the kernel reads: alive until it returns
        steps: list[int] = []
        for a in arrays:
            if a.shape != shape and a.size != 1:
                a = np.broadcast_to(a, shape)
            if a.size == 1:  # the kernel reads a vector's worth of it
                keep.append(np.full(self._lanes, a.reshape(-1)[0]))
                steps.append(0)
            else:
                keep.append(np.ascontiguousarray(a))
                steps.append(1)
        if out is None:
            results = np.empty((self._outputs, size))
            base = _address(results)
            outputs = [base + 8 * size * j for j in range(self._outputs)]
        else:
            outputs = [_address(array) for array in out]
        # One table: the input pointers, the output pointers, then the steps.
        table = np.array([*map(_address, keep), *outputs, *steps, 0], dtype=np.uint64)
        start = _address(table)
        n = self._inputs
        self._run(start, start + 8 * (n + self._outputs), start + 8 * n, size)
        if out is not None:
            return out[0] if self._outputs == 1 else tuple(out)
        if shape == ():
            shaped = tuple(results[:, 0])  # np.float64 scalars
        else:
            shaped = tuple(results[j].reshape(shape) for j in range(self._outputs))
        return shaped[0] if self._outputs == 1 else shaped

    def _at_point(self, point: np.ndarray) -> Any:
        """The outputs at one point, given as an array of shape ``(inputs, *shape)`` of size
        ``inputs``: arrays of ``shape``, or np.float64 scalars for shape ()."""
        try:
            memory = self._memory.pop()  # this call's alone until it is put back
        except IndexError:
            memory = _PointMemory.of(self._outputs, self._scratch)
        # ``in`` is only read: the point's bytes serve, and cost less than its address
        self._point(point.tobytes(), memory.results_at, memory.scratch_at)
        if point.ndim == 1:
            rows: Any = tuple(memory.results)  # np.float64 scalars
        else:
            rows = memory.column.copy()
            if point.ndim > 2:
                rows = rows.reshape(self._outputs, *point.shape[1:])
        self._memory.append(memory)
        return rows[0] if self._outputs == 1 else tuple(rows)

    def _run(self, inputs: int, steps: int, outputs: int, size: int) -> None:
        pieces = 1
        if size >= 2 * MIN_POINTS_PER_THREAD and self.threads != 1:
            threads = usable_cores() if self.threads is None else self.threads
            pieces = max(1, min(threads, size // MIN_POINTS_PER_THREAD))
        # whole vectors per thread; each point is computed the same in any lane of any thread
        bounds = [size * i // pieces // self._lanes * self._lanes for i in range(pieces)] + [size]

        def run(i: int) -> None:
            self._range(inputs, steps, outputs, bounds[i], bounds[i + 1])

        if pieces == 1:
            run(0)
            return
        with ThreadPoolExecutor(max_workers=pieces, thread_name_prefix="graphc-llvm") as pool:
            list(pool.map(run, range(pieces)))

    def _range(self, inputs: int, steps: int, outputs: int, start: int, stop: int) -> None:
        """The kernel on points ``start..stop``."""
        scratch = np.empty(self._scratch)
        self._kernel(inputs, steps, outputs, start, stop, _address(scratch))
