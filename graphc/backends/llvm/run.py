"""Calling JIT-compiled kernels: arguments to pointer arrays, outputs, threads.

The kernel's C signature is ``int64(double **inputs, int64 *steps, double **outputs, int64 start,
int64 stop, double *scratch)``; an input broadcast from one value (step 0) is given as a vector's
worth (``lanes``) of copies of it. ctypes releases the GIL during the call, so a large batch is
split into ranges computed on several threads at once: the calling thread computes the first,
threads kept for the process compute the others. Each point is computed the same way whichever
thread computes it, so results do not depend on the thread count.

A call's fixed cost is most of a small call's time, so the common calls take short paths: values
of one shape (floats, length-1 arrays, a small batch) are stacked by one ``np.array``, a point
goes to ``graphc_point``, and the results of a point, the pointer table, the broadcast copies and
the scratch live in memory that later calls reuse, each call taking a piece for itself alone.
A batch's results are the rows of one block, and the kernel writes a later call's results into
the same block once its caller holds nothing of it (see RECYCLE_MIN).
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import struct
import sys
import threading
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

# Both return 0: the kernel (inputs, steps, outputs, start, stop, scratch) and the point (in, out,
# scratch); a tape's interpreter takes its program's table before the same arguments.
_KERNEL_ARGUMENTS = (ctypes.c_void_p,) * 3 + (ctypes.c_int64,) * 2 + (ctypes.c_void_p,)
_POINT_ARGUMENTS = (ctypes.c_void_p,) * 3
KERNEL_TYPE = ctypes.CFUNCTYPE(ctypes.c_int64, *_KERNEL_ARGUMENTS)
POINT_TYPE = ctypes.CFUNCTYPE(ctypes.c_int64, *_POINT_ARGUMENTS)
TAPE_TYPE = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, *_KERNEL_ARGUMENTS)
TAPE_POINT_TYPE = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, *_POINT_ARGUMENTS)
MIN_POINTS_PER_THREAD = 32768  # below this, starting a thread costs more than it saves
# Up to this many points, the values are stacked in one array: a copy costs less than an
# address per value (measured on 10 values, the same up to about 2000 points)
SMALL_BATCH = 1024
_NUMBERS = (float, int, np.float64)
_F64 = np.dtype(np.float64)  # the native one (a byte-swapped float64 is another dtype)
# A batch's results come back as rows of one block. A block of RECYCLE_MIN to RECYCLE_MAX bytes
# is kept by its kernel, and a later call of the same size writes into it once its caller has let
# go of every row: fresh memory costs a page fault per 4 KiB, several times a small kernel's own
# time on the calls that meet them. Below RECYCLE_MIN, malloc's free
# lists serve as well; above RECYCLE_MAX, holding the memory between calls would cost too much.
RECYCLE_MIN = 1 << 18
RECYCLE_MAX = 1 << 28
# A batch writing at least this many bytes of results streams them to memory (non-temporal
# stores: a line is written without being read first), where every output's rows share one
# alignment: a memory-bound kernel saves the read of every line it writes. Smaller results stay
# in the cache, where their reader wants them.
STREAM_BYTES = 1 << 22


def _references(array: np.ndarray) -> int:
    return sys.getrefcount(array)


def _alone() -> int:
    """What :func:`_references` counts for an array held by one local variable and nothing else
    (measured, not assumed: interpreters differ in the references they count)."""
    block = np.empty(1)
    return _references(block)


_ALONE = _alone()


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


def _broadcast_shape(arrays: dict[tuple[int, ...], np.ndarray]) -> tuple[int, ...]:
    """The shape that arrays of these shapes (one array each) broadcast to."""
    if len(arrays) == 1:
        return next(iter(arrays))
    if len(arrays) <= 32:  # np.broadcast's limit in NumPy 1.x; a few times faster than broadcast_shapes
        return np.broadcast(*arrays.values()).shape
    return np.broadcast_shapes(*arrays)


class _Workers:
    """The threads that compute a batch's pieces besides the calling thread, started once and
    kept: starting threads on every call would cost more than a small kernel's whole batch. A
    forked child forgets them (their threads are not in the child)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._size = 0

    def pool(self, workers: int) -> ThreadPoolExecutor:
        """A pool of at least ``workers`` threads."""
        # imported at the first batch split, not with the backend: a process without threads never pays
        from concurrent.futures import ThreadPoolExecutor

        with self._lock:
            if self._pool is None or self._size < workers:
                if self._pool is not None:
                    self._pool.shutdown(wait=False)  # its queued pieces still run
                self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="graphc-llvm")
                self._size = workers
            return self._pool

    def forget(self) -> None:
        self._lock = threading.Lock()
        self._pool, self._size = None, 0


_WORKERS = _Workers()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WORKERS.forget)


def _aligned(address: int) -> int:
    return -(-address // 64) * 64  # a cache line


class _Memory(NamedTuple):
    """One call's memory, reused by later calls: a point call's results, a batch call's table of
    pointers and steps and the copies of its broadcast values, and the kernel's scratch."""

    words: memoryview  # all of it (it keeps the array alive)
    results: np.ndarray
    column: np.ndarray  # the results as a column: shape (outputs, 1)
    copies: np.ndarray  # shape (inputs, lanes): a vector's worth of each broadcast value
    results_at: int
    table_at: int  # the input pointers, the output pointers, the steps, then the stream flag
    copies_at: int
    scratch_at: int

    @classmethod
    def of(cls, inputs: int, outputs: int, scratch: int, lanes: int) -> _Memory:
        head = 2 * outputs + 2 * inputs + 1  # the results and the table
        words = np.empty(head + inputs * lanes + scratch + 16)  # 16: room to align two starts
        at = _address(words)
        copies_at = _aligned(at + 8 * head)
        scratch_at = _aligned(copies_at + 8 * inputs * lanes)
        start = (copies_at - at) // 8
        results = words[:outputs]
        copies = words[start : start + inputs * lanes].reshape(inputs, lanes)
        return cls(
            words.data, results, results[:, np.newaxis], copies, at, at + 8 * outputs, copies_at, scratch_at
        )


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
        program: Any = None,
    ) -> None:
        self._engine = engine
        self._program = program  # a tape's program (graphc.backends.llvm.tape): kept alive with the kernel
        self._kernel: Any
        self._point: Any
        if program is None:
            self._kernel, self._point = KERNEL_TYPE(batch), POINT_TYPE(point)
        else:  # the interpreter: the program's table comes first
            at = _address(program.words)
            self._kernel = functools.partial(TAPE_TYPE(batch), at)
            self._point = functools.partial(TAPE_POINT_TYPE(point), at)
        self._inputs = inputs
        self._outputs = outputs
        self._scratch = scratch  # doubles of scratch per call
        self.threads = threads  # None: every usable core for a large batch
        self._lanes = lanes  # points per vector
        # Memory for calls, reused: a call takes one for itself alone (list.pop and append are
        # atomic), so calls on several threads at once each have their own.
        self._memory: list[_Memory] = []
        self._blocks: list[np.ndarray] = []  # result blocks returned before, each maybe let go
        self._table = struct.Struct(f"{2 * inputs + outputs + 1}Q")  # pointers, steps and flag, packed
        self._steps = (1,) * inputs  # a batch's steps when no input is broadcast

    def _take(self) -> _Memory:
        try:
            return self._memory.pop()
        except IndexError:
            return _Memory.of(self._inputs, self._outputs, self._scratch, self._lanes)

    def __call__(self, *values: Any, out: list[np.ndarray] | None = None) -> Any:
        """The outputs at ``values``; with ``out`` (checked by :meth:`graphc.Kernel.into`: one
        C-contiguous float64 array per output, of the broadcast shape, overlapping nothing), the
        kernel writes into those arrays and they are returned."""
        first, last = (values[0], values[-1]) if values else (0.0, 0.0)
        if (
            out is None
            and len(values) == 1
            and type(first) is np.ndarray
            and first.size == 1
            and first.dtype is _F64
        ):
            # one float64 value at one point: its own bytes serve, unstacked (no copy on the point path)
            return self._at_point(first.reshape(1, *first.shape))
        # cheap tests that the values may be stacked: the first and last are alike, and small
        if out is None and (
            (type(first) in _NUMBERS and type(last) in _NUMBERS)
            or (
                getattr(first, "size", SMALL_BATCH + 1) <= SMALL_BATCH
                and getattr(last, "shape", ()) == getattr(first, "shape", None)
            )
        ):
            try:  # one array of all the values, if each has the first one's shape: (inputs, *shape)
                stacked = np.array(values, dtype=np.float64)
            except (TypeError, ValueError, OverflowError):  # shapes differ, or a bad value
                stacked = None
            if stacked is not None and stacked.size == self._inputs:
                return self._at_point(stacked)
            if stacked is not None and stacked.size:
                return self._stacked(stacked)
        return self._broadcast(values, out)

    def _broadcast(self, values: tuple[Any, ...], out: list[np.ndarray] | None) -> Any:
        """The outputs at values of any shapes that broadcast together (or into ``out``)."""
        arrays = [np.asarray(v, dtype=np.float64) for v in values]
        shape = _broadcast_shape({a.shape: a for a in arrays})
        size = math.prod(shape)
        if not self._outputs:  # nothing to compute: the empty result, as the NumPy backend's
            return ()
        if out is None and size == 1:  # one point, values of several shapes
            return self._at_point(np.concatenate([a.ravel() for a in arrays]).reshape(-1, *shape))
        memory = self._take()
        keep: list[np.ndarray] = []  # what the kernel reads: alive until it returns
        inputs: list[int] = []
        steps: list[int] = []
        for i, a in enumerate(arrays):
            if a.size == 1:  # the kernel reads a vector's worth of it
                memory.copies[i] = a.item()
                inputs.append(memory.copies_at + 8 * self._lanes * i)
                steps.append(0)
            else:
                keep.append(np.ascontiguousarray(a if a.shape == shape else np.broadcast_to(a, shape)))
                inputs.append(_address(keep[-1]))
                steps.append(1)
        if out is None:
            block = self._block(self._outputs * size)
            base = _address(block)
            outputs = [base + 8 * size * j for j in range(self._outputs)]
        else:  # the addresses graphc.Kernel.into found when it checked out, if it passes them
            outputs = getattr(out, "addresses", None) or [_address(array) for array in out]
        vector = 8 * self._lanes
        first = -outputs[0] % vector // 8  # the first point whose results' vectors are aligned
        stream = (  # a tape's interpreter ignores the flag (it is bound by its dispatch, not by memory)
            self._program is None
            and 8 * self._outputs * size >= STREAM_BYTES
            and len({a % vector for a in outputs}) == 1
            and first < size
        )
        self._table.pack_into(memory.words, 8 * self._outputs, *inputs, *outputs, *steps, stream)
        self._run(memory, size, first if stream else 0)
        self._memory.append(memory)
        if out is not None:
            return out[0] if self._outputs == 1 else tuple(out)
        if RECYCLE_MIN <= block.nbytes <= RECYCLE_MAX:
            self._blocks.append(block)
        results = block.reshape(self._outputs, *shape)  # its rows' base is the block
        return results[0] if self._outputs == 1 else tuple(results)

    def _block(self, size: int) -> np.ndarray:
        """A flat block of ``size`` doubles for a call's results: one an earlier call returned, if
        it has that size and nothing but this call refers to it (no row, view or array of the
        caller's: each refers to the block), else new memory. list.pop is atomic, so two calls on
        two threads never take the same block."""
        try:
            block = self._blocks.pop()
        except IndexError:
            return np.empty(size)
        if block.size == size and _references(block) <= _ALONE:
            return block
        return np.empty(size)  # still in use, or a different size: the kernel forgets it

    def _at_point(self, point: np.ndarray) -> Any:
        """The outputs at one point, given as an array of shape ``(inputs, *shape)`` of size
        ``inputs``: arrays of ``shape``, or np.float64 scalars for shape ()."""
        memory = self._take()
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

    def point_into(self, point: np.ndarray, out: np.ndarray) -> None:
        """The outputs at one point, the inputs given as one float64 vector, written into the
        float64 vector ``out`` (checked by :meth:`graphc.Kernel.point_into`): no Python object per
        value, which at 20,000 inputs and outputs costs more than the kernel."""
        memory = self._take()
        self._point(point.tobytes(), _address(out), memory.scratch_at)
        self._memory.append(memory)

    def _stacked(self, stacked: np.ndarray) -> Any:
        """The outputs for a small batch, the inputs stacked in one array ``(inputs, *shape)`` of
        more than ``inputs`` values (all points are computed: no input is broadcast)."""
        n, o = self._inputs, self._outputs
        size = stacked.size // n
        results = np.empty((o, *stacked.shape[1:]))
        first_in, first_out, stride = _address(stacked), _address(results), 8 * size
        memory = self._take()
        self._table.pack_into(
            memory.words,
            8 * o,
            *range(first_in, first_in + n * stride, stride),
            *range(first_out, first_out + o * stride, stride),
            *self._steps,
            0,
        )
        self._run(memory, size)
        self._memory.append(memory)
        return results[0] if o == 1 else tuple(results)

    def _run(self, memory: _Memory, size: int, first: int = 0) -> None:
        """The kernel on ``size`` points, the table in ``memory``; ``first``: the points before the
        first aligned vector of results, computed alone (they must not be streamed)."""
        inputs = memory.table_at
        outputs = inputs + 8 * self._inputs
        steps = outputs + 8 * self._outputs
        pieces = 1
        if size >= 2 * MIN_POINTS_PER_THREAD and self.threads != 1:
            threads = usable_cores() if self.threads is None else self.threads
            pieces = max(1, min(threads, size // MIN_POINTS_PER_THREAD))
        if first:  # fewer than a vector: the kernel's tail, which never streams
            self._kernel(inputs, steps, outputs, 0, first, memory.scratch_at)
        if pieces == 1:
            self._kernel(inputs, steps, outputs, first, size, memory.scratch_at)
            return
        # whole vectors per thread; each point is computed the same in any lane of any thread
        lanes, rest = self._lanes, size - first
        bounds = [first + rest * i // pieces // lanes * lanes for i in range(pieces)] + [size]

        def run(i: int) -> None:
            scratch = self._take()
            self._kernel(inputs, steps, outputs, bounds[i], bounds[i + 1], scratch.scratch_at)
            self._memory.append(scratch)

        pool = _WORKERS.pool(pieces - 1)
        waiting = [pool.submit(run, i) for i in range(1, pieces)]
        try:
            self._kernel(inputs, steps, outputs, bounds[0], bounds[1], memory.scratch_at)
        finally:  # the table and the outputs must outlive every piece
            for piece in waiting:
                piece.result()
