"""The LLVM backend on tensor graphs: the scalarised graph in the existing scalar kernels.

A tensor graph is scalarised (graphc.scalarise) for the concrete shapes of a call and compiled by
the scalar LLVM backend; its variables are the inputs' elements (``W[1,2]``), its outputs the
outputs' elements. A call binds the named dimensions and the batch shape as the NumPy backend
does (``graphc.shapes.bind``: extra leading axes of an input are batch axes, broadcast between
inputs), passes each element as an array over the input's batch axes, and stacks the results
into ``batch + shape`` per output: the batch rule of every kernel. A graph with concrete shapes is
compiled once, when the kernel is built; one with named dimensions at its first call for each
binding of them, kept by the dimensions' values.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.graph import Graph
from graphc.kernel import Kernel
from graphc.scalarise import Scalarised, element_name, indices, scalarise
from graphc.shapes import BIND_SOURCE, Shape


class _Compiled:
    """The scalar kernel of one binding of the named dimensions, and where its scalars go."""

    def __init__(self, graph: Graph, threads: int | None) -> None:
        from graphc.backends.llvm.runtime import compile_graph

        scalar: Scalarised = scalarise(graph, what="the llvm backend")
        self.kernel = compile_graph(scalar.graph, threads=threads)
        self.outputs = scalar.outputs
        # the position of each input element among the scalar kernel's (sorted) variables
        position = {name: i for i, name in enumerate(scalar.graph.variables)}
        self.slots = {
            name: [position[element_name(name, index)] for index in indices(shape)]
            for name, shape in scalar.inputs.items()
        }

    def __call__(
        self, arrays: dict[str, np.ndarray], declared: dict[str, Shape], batch: tuple[int, ...]
    ) -> list[Any]:
        values: list[Any] = [None] * len(self.kernel.variables)
        for name, array in arrays.items():
            lead = array.ndim - len(declared[name])
            flat = array.reshape(array.shape[:lead] + (-1,))
            for k, slot in enumerate(self.slots[name]):
                values[slot] = flat[..., k]
        raw = self.kernel.function(*values)
        results = raw if isinstance(raw, tuple) else (raw,)
        shaped = []
        start = 0
        for shape in self.outputs:
            count = math.prod(shape)
            if batch:
                block = np.empty(batch + (count,))
                for k in range(count):
                    block[..., k] = results[start + k]  # broadcast: an element may not vary
            else:
                block = np.array(results[start : start + count], dtype=np.float64)
            shaped.append(block.reshape(batch + shape))
            start += count
        return shaped


class TensorFunction:
    """The callable of a tensor graph's LLVM kernel: inputs in the graph's (sorted) variable order."""

    def __init__(self, graph: Graph, threads: int | None) -> None:
        self.graph = graph
        self.threads = threads
        self.declared = {name: graph.shape(graph.variable(name)) for name in graph.variables}
        self.named = sorted({d for shape in graph.shapes for d in shape if isinstance(d, str)})
        self._compiled: dict[tuple[int, ...], _Compiled] = {}
        self._lock = threading.Lock()
        scope: dict[str, Any] = {"np": np}
        exec(BIND_SOURCE, scope)  # noqa: S102 - graphc.shapes' own constant source
        self._bind = scope["_bind"]
        if not self.named:
            self._compiled[()] = _Compiled(graph, threads)

    @property
    def source(self) -> str:
        """The LLVM IR of the kernel when the shapes are concrete, else a note saying when it is made."""
        first = self._compiled.get(())
        if first is not None:
            return first.kernel.source
        return f"; compiled at call time, once per value of the named dimensions {', '.join(self.named)}"

    def compiled(self, dims: dict[str, int]) -> _Compiled:
        """The scalar kernel for these values of the named dimensions (compiled on first use)."""
        key = tuple(dims[d] for d in self.named)
        with self._lock:
            found = self._compiled.get(key)
            if found is None:
                found = self._compiled[key] = _Compiled(self.graph.with_dims(dims), self.threads)
        return found

    def __call__(self, *values: Any, out: Sequence[np.ndarray] | None = None) -> Any:
        arrays = {
            name: np.asarray(v, dtype=np.float64)
            for name, v in zip(self.graph.variables, values, strict=True)
        }
        dims, batch = self._bind(self.declared, {name: a.shape for name, a in arrays.items()})
        results = self.compiled(dims)(arrays, self.declared, batch)
        if out is not None:
            for target, value in zip(out, results, strict=True):
                target[...] = value
            return list(out)
        return results[0] if len(results) == 1 else tuple(results)


def compile_graph(graph: Graph, threads: int | None = None) -> Kernel:
    """A Kernel computing the tensor ``graph`` by the scalar LLVM backend on its scalarisation."""
    function = TensorFunction(graph, threads)
    return Kernel(graph, function, backend="llvm", source=function.source)
