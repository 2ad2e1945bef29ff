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
"""

from __future__ import annotations

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
    import dask.array as da
    from dask import delayed
    from dask.base import tokenize

    arrays = [v if type(v).__module__.startswith("dask") else np.asarray(v, dtype=np.float64) for v in values]
    kernel.diagnose(tuple(np.broadcast_to(0.0, a.shape) for a in arrays))  # shapes, before building
    ndim = max(a.ndim for a in arrays)
    axes = string.ascii_letters[1 : ndim + 1]  # "a" is the outputs' axis
    operands: list[Any] = []
    for a in arrays:
        if a.ndim == 0 and isinstance(a, np.ndarray):
            operands += [float(a), None]  # a scalar goes to every block as is
        else:
            operands += [a.astype(np.float64), axes[ndim - a.ndim :]]
    count = len(kernel.outputs)
    # the kernel as one task of the graph: each worker loads it once, not once per block
    shared = delayed(
        kernel,
        pure=True,
        traverse=False,
        name="graphc-kernel-" + tokenize(kernel.backend, kernel.source, kernel.variables, kernel.outputs),
    )
    stacked = da.blockwise(
        _block,
        "a" + axes,
        shared,
        None,
        count,
        None,
        *operands,
        new_axes={"a": count},
        align_arrays=True,
        dtype=np.float64,
        meta=np.empty((0,) * (ndim + 1)),
        name="graphc-" + tokenize(kernel.backend, kernel.source, count, *operands),
    )
    outputs = tuple(stacked[j] for j in range(count))
    return kernel.finished(outputs[0] if count == 1 else outputs)
