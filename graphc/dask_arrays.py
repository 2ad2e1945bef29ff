"""Kernels on Dask arrays: lazily, one kernel call per block.

:meth:`graphc.Kernel.__call__` comes here when an argument is a Dask array (so Dask is imported
only then). The arguments are aligned as NumPy broadcasting requires: each one's axes are the
trailing axes of the result, an axis of length 1 broadcasts, and the arrays are rechunked to
common chunks (``dask.array.blockwise`` with ``align_arrays``). Each block of the result is one
call of the kernel's compiled function writing every output into one ``(outputs, *block)``
array; each output is a lazy slice of it, and the kernel's result (a tuple of partials, a
Jacobian...) is shaped from those slices as for NumPy arrays. Nothing is computed until the
caller computes it. Workers receive the kernel pickled (its graph, compiled there again, or
loaded from the disk cache: see :meth:`graphc.Kernel.__reduce__`).

A tensor kernel's inputs have declared (core) axes, and their extra leading axes are batch axes
(the gufunc rule). The blocks are cut along the batch axes only: each input's core axes are one
chunk (rechunked so if they were not), its batch axes are aligned with the others' from the right
as broadcasting requires. Each block is one call of the kernel, writing every output's core
elements side by side along one last axis, ``(*batch block, total core size)``; each output is a
lazy slice of it, reshaped to ``batch + its core shape`` block by block.
"""

from __future__ import annotations

import math
import string
from typing import TYPE_CHECKING, Any

import numpy as np

from graphc.errors import EvaluationError

if TYPE_CHECKING:
    from graphc.kernel import Kernel


def _block(kernel: Kernel, count: int, *values: Any) -> np.ndarray:
    """One block of every output: the kernel's compiled function on the blocks ``values``."""
    shape = np.broadcast_shapes(*(np.shape(v) for v in values))
    out = np.empty((count, *shape))
    kernel.compute([out[j] for j in range(count)], values)
    return out


def call(kernel: Kernel, values: tuple[Any, ...]) -> Any:
    """``kernel(*values)`` where some of the values are Dask arrays: the result as Dask arrays."""
    if kernel.result[0] == "implicit":
        raise EvaluationError(
            "an implicit kernel checks the computed values for singular points: call it with NumPy "
            "arrays, not Dask arrays"
        )
    arrays = [v if type(v).__module__.startswith("dask") else np.asarray(v, dtype=np.float64) for v in values]
    kernel.diagnose(tuple(np.broadcast_to(0.0, a.shape) for a in arrays))  # shapes, before building
    if kernel.graph.tensor:
        return _tensor_call(kernel, arrays)
    import dask.array as da

    ndim = max(a.ndim for a in arrays)
    axes = string.ascii_letters[1 : ndim + 1]  # "a" is the outputs' axis
    operands: list[Any] = []
    for a in arrays:
        if a.ndim == 0 and isinstance(a, np.ndarray):
            operands += [float(a), None]  # a scalar goes to every block as is
        else:
            operands += [a.astype(np.float64), axes[ndim - a.ndim :]]
    count = len(kernel.outputs)
    stacked = da.blockwise(
        _block,
        "a" + axes,
        _shared(kernel),
        None,
        count,
        None,
        *operands,
        new_axes={"a": count},
        align_arrays=True,
        dtype=np.float64,
        meta=np.empty((0,) * (ndim + 1)),
        name="graphc-" + _token(kernel, count, *operands),
    )
    outputs = tuple(stacked[j] for j in range(count))
    return kernel.finished(outputs[0] if count == 1 else outputs)


def _shared(kernel: Kernel) -> Any:
    """The kernel as one task of the Dask graph: each worker loads it once, not once per block."""
    from dask import delayed

    return delayed(kernel, pure=True, traverse=False, name="graphc-kernel-" + _token(kernel))


def _token(kernel: Kernel, *more: Any) -> str:
    from dask.base import tokenize

    return str(
        tokenize(kernel.backend, kernel.source, kernel.variables, kernel.outputs, kernel.result, *more)
    )


def _tensor_block(
    kernel: Kernel, ranks: tuple[int, ...], cores: list[tuple[int, ...]], *values: Any
) -> np.ndarray:
    """One block of a tensor kernel (``ranks``: each input's declared rank; ``cores``: each
    output's shape without the batch): the outputs' core elements side by side on a last axis,
    after the block's batch axes."""
    batch = np.broadcast_shapes(*(np.shape(v)[: np.ndim(v) - r] for v, r in zip(values, ranks, strict=True)))
    result = kernel.function(*values)
    outputs = result if isinstance(result, tuple) else (result,)
    sizes = [math.prod(core) for core in cores]
    block = np.empty((*batch, sum(sizes)))
    start = 0
    for output, core, size in zip(outputs, cores, sizes, strict=True):
        block[..., start : start + size] = np.broadcast_to(output, (*batch, *core)).reshape(*batch, size)
        start += size
    return block


def _tensor_call(kernel: Kernel, arrays: list[Any]) -> Any:
    """``kernel(*arrays)`` for a tensor kernel, some arrays Dask's: blocks along the batch axes."""
    import dask.array as da

    from graphc.shapes import bind, concrete

    graph = kernel.graph
    declared = {name: graph.shape(graph.variable(name)) for name in kernel.variables}
    dims, batch = bind(declared, {name: a.shape for name, a in zip(kernel.variables, arrays, strict=True)})
    cores = [concrete(graph.shape(node), dims) for node in graph.outputs]
    sizes = tuple(math.prod(core) for core in cores)
    ranks = tuple(len(declared[name]) for name in kernel.variables)
    letters = iter(string.ascii_letters)
    batch_axes = "".join(next(letters) for _ in batch)
    last = next(letters)  # the outputs' core elements, side by side
    operands: list[Any] = []
    for a, rank in zip(arrays, ranks, strict=True):
        lead = a.ndim - rank
        core_axes = "".join(next(letters) for _ in range(rank))
        whole = {lead + i: -1 for i in range(rank)}  # the core axes in one chunk
        array = a.rechunk(whole) if isinstance(a, da.Array) else da.from_array(a, chunks=a.shape)
        operands += [array.astype(np.float64), batch_axes[len(batch) - lead :] + core_axes]
    stacked = da.blockwise(
        _tensor_block,
        batch_axes + last,
        _shared(kernel),
        None,
        ranks,
        None,
        cores,
        None,
        *operands,
        new_axes={last: sum(sizes)},
        align_arrays=True,
        concatenate=True,
        dtype=np.float64,
        meta=np.empty((0,) * (len(batch) + 1)),
        name="graphc-tensor-" + _token(kernel, *operands),
    )
    outputs = []
    start = 0
    for core, size in zip(cores, sizes, strict=True):
        # the last axis is one chunk: splitting it into the core axes keeps the batch's blocks
        outputs.append(stacked[..., start : start + size].reshape(*batch, *core))
        start += size
    return kernel.finished(outputs[0] if len(outputs) == 1 else tuple(outputs))


def into(kernel: Kernel, out: Any, values: tuple[Any, ...]) -> Any:
    """``kernel.into(out, *values)`` where some values are Dask arrays: the lazy result computed
    now, block by block, each block written into its slice of ``out`` (``dask.array.store``),
    and ``out`` returned. ``out`` is shaped like the result; its arrays may be NumPy arrays, or
    anything ``store`` writes into (zarr, h5py datasets), of the result's shapes. With a
    distributed scheduler, the blocks are computed in other processes, which cannot write into
    this process's NumPy arrays: OutputError, rather than results silently lost."""
    import dask.array as da
    from dask.base import get_scheduler

    from graphc.errors import OutputError

    sources = _flattened(call(kernel, values))
    targets = _flattened(out)
    if len(targets) != len(sources):
        raise OutputError(
            f"out must hold {len(sources)} arrays, shaped like the kernel's result; got {len(targets)}"
        )
    for j, (source, target) in enumerate(zip(sources, targets, strict=True)):
        what = f"out array {j}"
        shape = getattr(target, "shape", None)
        if shape is None or not hasattr(target, "__setitem__"):
            raise OutputError(
                f"{what} must be an array that can be written into, got {type(target).__name__}"
            )
        if tuple(shape) != source.shape:
            raise OutputError(f"{what} has shape {tuple(shape)}, but the result's is {source.shape}")
        if isinstance(target, np.ndarray):
            if target.dtype != np.float64:
                raise OutputError(f"{what} must have dtype float64, got {target.dtype}")
            if not target.flags.writeable:
                raise OutputError(f"{what} is read-only")
    scheduler = getattr(get_scheduler(), "__self__", None)
    if type(scheduler).__module__.startswith("distributed") and any(
        isinstance(t, np.ndarray) for t in targets
    ):
        raise OutputError(
            "into with Dask arrays on a distributed cluster cannot write into NumPy arrays of this "
            "process (the workers would write into copies): call the kernel and store its lazy result "
            "(dask.array.to_zarr, or .compute())"
        )
    numpy_only = all(isinstance(t, np.ndarray) for t in targets)  # disjoint slices: no lock needed
    da.store(sources, targets, lock=not numpy_only)
    return out


def _flattened(result: Any) -> list[Any]:
    """The arrays of a result or of an ``out`` shaped like it (tuples and lists nested), in order."""
    stack, leaves = [result], []
    while stack:
        item = stack.pop()
        if isinstance(item, (tuple, list)):
            stack.extend(reversed(item))
        else:
            leaves.append(item)
    return leaves
