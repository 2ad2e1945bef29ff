"""Sparse Jacobians and Hessians: structural sparsity from the graph, colouring, compressed passes.

``jacobian_sparsity`` / ``hessian_sparsity`` read the pattern off the graph without evaluating
anything (:mod:`graphc.sparse.pattern`); ``sparse_jacobian`` / ``sparse_hessian`` colour it
(:mod:`graphc.sparse.coloring`), build every nonzero on one graph in one pass per colour
(:mod:`graphc.sparse.compressed`), compile that graph once and return a :class:`SparseKernel`,
called like a Kernel and returning a ``scipy.sparse.csr_matrix``. SciPy is imported here only,
when one of these is used (the ``sparse`` extra).

Batches: called with arrays of one dimension (one value per point), a SparseKernel returns a list
of matrices, one per point; arrays of more dimensions are refused (flatten them first).

Backends: at one point the numpy backend makes one NumPy call per computed nonzero and compiles
one Python statement per node, so from about a thousand computed nonzeros ``backend="llvm"``
both builds and evaluates faster (bench/RESULTS.md's sparse part has the measurements).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.api import Wrt, as_graph
from graphc.backends import compile_graph
from graphc.diff.common import resolve_wrt
from graphc.errors import EvaluationError, GraphcError
from graphc.graph import Graph
from graphc.kernel import Kernel
from graphc.sparse.coloring import ORDERS, column_coloring, fewest_colors, star_coloring, transpose
from graphc.sparse.compressed import Entries, forward_entries, hessian_entries, reverse_entries
from graphc.sparse.pattern import hessian_rows, jacobian_rows

MODES = ("auto", "forward", "reverse")
FEWEST = "fewest"  # every colouring order tried, the fewest colours kept


def _orders(order: str) -> tuple[str, ...]:
    """The colouring orders to try for ``order``: one of ORDERS, or all of them for "fewest"."""
    if order == FEWEST:
        return ORDERS
    if order not in ORDERS:
        raise GraphcError(
            f"unknown colouring order {order!r} (the orders are: {FEWEST}, {', '.join(ORDERS)})"
        )
    return (order,)


def scipy_sparse() -> Any:
    """``scipy.sparse``, or a GraphcError saying how to install it."""
    try:
        import scipy.sparse
    except ImportError:
        raise GraphcError("sparse derivatives need SciPy: pip install 'graphc[sparse]'") from None
    return scipy.sparse


def _structure(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``indptr`` and ``indices`` of a pattern given as sorted column lists per row."""
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(row) for row in rows], out=indptr[1:])
    indices = np.fromiter((j for row in rows for j in row), dtype=np.int64, count=int(indptr[-1]))
    width = np.int32 if indptr[-1] < 2**31 and len(rows) < 2**31 else np.int64
    return indptr.astype(width), indices.astype(width)


def _boolean(rows: Sequence[Sequence[int]], columns: int) -> Any:
    indptr, indices = _structure(rows)
    data = np.ones(len(indices), dtype=bool)
    return scipy_sparse().csr_matrix((data, indices, indptr), shape=(len(rows), columns))


def jacobian_sparsity(expr: Any, wrt: Wrt = None) -> Any:
    """The Jacobian's structural pattern: a boolean ``csr_matrix``, one row per output, one column
    per variable in ``wrt`` (default: all, sorted). Nothing is evaluated.

    >>> jacobian_sparsity("x1 - 2*x2, x2*x3, exp(x3)").toarray().astype(int).tolist()
    [[1, 1, 0], [0, 1, 1], [0, 0, 1]]
    """
    graph = as_graph(expr)
    names = resolve_wrt(graph, wrt)
    return _boolean(jacobian_rows(graph, names), len(names))


def hessian_sparsity(expr: Any, wrt: Wrt = None) -> Any:
    """The Hessian's structural pattern (symmetric): a boolean ``csr_matrix``, the pairs of
    variables that meet in a nonlinear node.

    >>> hessian_sparsity("x*y + exp(z) + 3*x").toarray().astype(int).tolist()
    [[0, 1, 0], [1, 0, 0], [0, 0, 1]]
    """
    graph = as_graph(expr)
    _one_output(graph)
    names = resolve_wrt(graph, wrt)
    return _boolean(hessian_rows(graph, names), len(names))


def _one_output(graph: Graph) -> None:
    if len(graph.outputs) != 1:
        raise GraphcError(f"hessian needs a function with one output; this one has {len(graph.outputs)}")


class SparseKernel:
    """A compiled sparse derivative, called like a :class:`~graphc.Kernel` (one value per variable,
    by keyword or in ``variables`` order) and returning a ``scipy.sparse.csr_matrix`` of ``shape``
    (a list of them, one per point, for one-dimensional arrays).

    ``info`` holds ``colors`` (the passes), ``coloring`` (their vertex order), ``nnz``, ``computed``
    (the nonzeros that are not constants, computed at each call), the Jacobian's ``mode`` and the
    ``seconds`` each stage of the build took; ``pattern`` is the boolean
    structure and ``kernel`` the compiled Kernel of the computed nonzeros.
    """

    def __init__(
        self,
        entries: Entries,
        rows: Sequence[Sequence[int]],
        shape: tuple[int, int],
        backend: str,
        threads: int | None,
        wrt: Sequence[str],
        info: dict[str, Any],
    ) -> None:
        self.shape = shape
        self.wrt = tuple(wrt)
        self.mode: str | None = info.get("mode")
        self._indptr, self._indices = _structure(rows)
        template = np.zeros(len(entries.nodes))
        computed: dict[int, int] = {}  # node -> its output in the compiled graph
        slots, outputs = [], []
        for slot, node in enumerate(entries.nodes):
            value = None if node is None else entries.graph.const_value(node)
            if node is None or value is not None:
                template[slot] = 0.0 if value is None else value
                continue
            slots.append(slot)
            outputs.append(computed.setdefault(node, len(computed)))
        self._template = template
        self._slots = np.array(slots, dtype=np.intp)
        self._take = np.array(outputs, dtype=np.intp)
        start = time.perf_counter()
        compiled = entries.graph  # the passes' own graph (see Entries): given its outputs, not copied
        compiled.set_outputs(list(computed), [f"nonzero {i}" for i in range(len(computed))])
        # nothing to compute (every nonzero a constant): the numpy backend compiles it to nothing
        self.kernel: Kernel = compile_graph(compiled, backend if computed else "numpy", threads=threads)
        self.variables = self.kernel.variables
        self.backend = backend
        self.info = {**info, "nnz": len(entries.nodes), "computed": len(computed), "shape": shape}
        if "seconds" in info:
            self.info["seconds"] = {**info["seconds"], "compile": time.perf_counter() - start}

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Pickle plain data and the compiled kernel (itself its graph and options: see
        :meth:`graphc.Kernel.__reduce__`); :func:`rebuild` checks it all when loading."""
        state = {
            "format": SPARSE_FORMAT,
            "kernel": self.kernel,
            "shape": list(self.shape),
            "wrt": list(self.wrt),
            "backend": self.backend,
            "info": dict(self.info),
            "indptr": self._indptr.tolist(),
            "indices": self._indices.tolist(),
            "template": self._template.tolist(),
            "slots": self._slots.tolist(),
            "take": self._take.tolist(),
        }
        return rebuild, (state,)

    def __repr__(self) -> str:
        colors = self.info["colors"]
        return f"<graphc.SparseKernel {self.backend}: {self.shape} matrix, {self.info['nnz']} nonzeros, {colors} colors>"

    @property
    def pattern(self) -> Any:
        """The structural nonzeros, a boolean ``csr_matrix``."""
        data = np.ones(len(self._indices), dtype=bool)
        return scipy_sparse().csr_matrix((data, self._indices.copy(), self._indptr.copy()), shape=self.shape)

    def _matrix(self, data: np.ndarray) -> Any:
        return scipy_sparse().csr_matrix((data, self._indices.copy(), self._indptr.copy()), shape=self.shape)

    def _values(self, result: Any) -> np.ndarray:
        """The compiled kernel's results as one array of shape ``(computed, *batch)``."""
        if not self._take.size:
            return np.empty((0,))
        if self.info["computed"] == 1:
            result = (result,)
        return np.asarray(result, dtype=np.float64)

    def at(self, point: Any) -> Any:
        """The matrix at one point given as a flat vector, one value per variable in ``variables``
        order (SciPy's convention: no keywords, no unpacking)."""
        point = np.asarray(point, dtype=np.float64)
        if point.shape != (len(self.variables),):
            raise EvaluationError(
                f"at takes one value per variable ({len(self.variables)}), got shape {point.shape}"
            )
        data = self._template.copy()
        if self._take.size:
            computed = self.kernel.point_into(point, np.empty(len(self.kernel.outputs)))
            data[self._slots] = computed[self._take]
        return self._matrix(data)

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        values = self.kernel.ordered(args, kwargs) if kwargs or len(args) != len(self.variables) else args
        self.kernel.diagnose(values)
        shape = np.broadcast_shapes(*(np.shape(value) for value in values))
        if shape == ():
            return self.at(np.array(values, dtype=np.float64))
        if len(shape) != 1:
            raise EvaluationError(
                f"a sparse derivative takes scalars or one-dimensional arrays (a list of matrices, one per "
                f"point), got arguments of shape {shape}: flatten them first"
            )
        data = np.repeat(self._template[:, np.newaxis], shape[0], axis=1)
        if self._take.size:
            computed = self._values(self.kernel(*(np.broadcast_to(value, shape) for value in values)))
            data[self._slots] = computed[self._take]
        return [self._matrix(data[:, point]) for point in range(shape[0])]


SPARSE_FORMAT = "graphc-sparse-kernel 1"  # the version of a pickled SparseKernel's state


def _whole_numbers(values: Any, below: int) -> bool:
    return isinstance(values, list) and all(type(v) is int and 0 <= v < below for v in values)


def rebuild(state: Any) -> SparseKernel:
    """The SparseKernel a pickle holds (see :meth:`SparseKernel.__reduce__`), its plain data
    checked: a CSR structure of ``shape``, one template value per nonzero, computed slots that
    take the kernel's outputs."""
    from graphc.errors import DataError
    from graphc.graph import plain_info

    if not isinstance(state, dict) or state.get("format") != SPARSE_FORMAT:
        raise DataError(f"not a pickled graphc SparseKernel (expected format {SPARSE_FORMAT!r})")
    fields: list[Any] = [state.get(k) for k in ("kernel", "shape", "indptr", "indices", "template")]
    kernel, shape, indptr, indices, template = fields
    fields = [state.get(k) for k in ("slots", "take", "wrt", "backend")]
    slots, take, wrt, backend = fields
    if not isinstance(kernel, Kernel) or not isinstance(backend, str):
        raise DataError("pickled SparseKernel: no compiled kernel or backend")
    if not (isinstance(shape, list) and len(shape) == 2 and _whole_numbers(shape, 2**62)):
        raise DataError("pickled SparseKernel: the shape is not two sizes")
    rows, columns = shape
    nnz = len(indices) if isinstance(indices, list) else -1
    if (
        not _whole_numbers(indptr, nnz + 1)
        or len(indptr) != rows + 1
        or indptr[0] != 0
        or indptr[-1] != nnz
        or any(a > b for a, b in itertools.pairwise(indptr))
        or not _whole_numbers(indices, columns)
    ):
        raise DataError(f"pickled SparseKernel: not the CSR structure of a {rows}x{columns} matrix")
    if not (isinstance(template, list) and len(template) == nnz and all(type(v) is float for v in template)):
        raise DataError("pickled SparseKernel: the template is not one float per nonzero")
    if not (
        _whole_numbers(slots, nnz) and _whole_numbers(take, len(kernel.outputs)) and len(slots) == len(take)
    ):
        raise DataError("pickled SparseKernel: the computed nonzeros do not fit the kernel's outputs")
    if not (isinstance(wrt, list) and all(isinstance(name, str) for name in wrt)):
        raise DataError("pickled SparseKernel: wrt is not a list of names")
    loaded = SparseKernel.__new__(SparseKernel)
    loaded.shape, loaded.wrt, loaded.backend = (rows, columns), tuple(wrt), backend
    loaded.info = plain_info(state.get("info"))
    loaded.mode = loaded.info.get("mode")
    width = np.int32 if nnz < 2**31 and rows < 2**31 else np.int64
    loaded._indptr, loaded._indices = np.array(indptr, dtype=width), np.array(indices, dtype=width)
    loaded._template = np.array(template, dtype=np.float64)
    loaded._slots, loaded._take = np.array(slots, dtype=np.intp), np.array(take, dtype=np.intp)
    loaded.kernel, loaded.variables = kernel, kernel.variables
    return loaded


def sparse_jacobian(
    graph: Graph,
    wrt: Sequence[str],
    mode: str = "auto",
    backend: str = "numpy",
    threads: int | None = None,
    order: str = FEWEST,
) -> SparseKernel:
    """The Jacobian as a SparseKernel: colour the columns (forward) or the rows (reverse) and, for
    ``mode="auto"``, keep the one with fewer colours (reverse on a tie, as the dense Jacobian).
    ``order`` is the colouring's vertex order (graphc.sparse.coloring.ORDERS), or "fewest": each
    of them, keeping the fewest colours. ``info`` reports the ``colors``, the order used
    (``coloring``) and the ``seconds`` each stage took (pattern, coloring, passes, compile)."""
    if mode not in MODES:
        raise GraphcError(f"unknown Jacobian mode {mode!r} (the modes are: {', '.join(MODES)})")
    orders = _orders(order)
    start = time.perf_counter()
    rows = jacobian_rows(graph, wrt)
    patterned = time.perf_counter()
    columns = len(wrt)
    # the columns of one row need distinct colours (and the rows of one column): a colouring
    # with as many colours as the longest row (column) is optimal, no other order is tried
    no: tuple[list[int], str] = ([], orders[0])
    by_columns = by_rows = no
    if mode != "reverse":
        longest = max(map(len, rows), default=0)
        by_columns = fewest_colors(lambda o: column_coloring(rows, columns, o), orders, longest)
    if mode != "forward":
        by_column = transpose(rows, columns)
        longest = max(map(len, by_column), default=0)
        by_rows = fewest_colors(lambda o: column_coloring(by_column, len(rows), o), orders, longest)
    if mode == "auto":
        mode = "forward" if max(by_columns[0], default=-1) < max(by_rows[0], default=-1) else "reverse"
    coloured = time.perf_counter()
    if mode == "forward":
        (colour, order), entries = by_columns, forward_entries(graph, wrt, rows, by_columns[0])
    else:
        (colour, order), entries = by_rows, reverse_entries(graph, wrt, rows, by_rows[0])
    seconds = {"pattern": patterned - start, "coloring": coloured - patterned}
    seconds["passes"] = time.perf_counter() - coloured
    info = {"colors": max(colour, default=-1) + 1, "mode": mode, "coloring": order, "seconds": seconds}
    return SparseKernel(entries, rows, (len(rows), columns), backend, threads, wrt, info)


def sparse_hessian(
    graph: Graph, wrt: Sequence[str], backend: str = "numpy", threads: int | None = None, order: str = FEWEST
) -> SparseKernel:
    """The Hessian of a one-output function as a SparseKernel, by a star colouring of its pattern
    (``order`` as for :func:`sparse_jacobian`)."""
    _one_output(graph)
    orders = _orders(order)
    start = time.perf_counter()
    rows = hessian_rows(graph, wrt)
    patterned = time.perf_counter()
    neighbours = [[j for j in row if j != i] for i, row in enumerate(rows)]
    # adjacent variables differ; an edge between two vertices of degree two or more lies on a
    # triangle or on a path of four vertices, which a star colouring gives three colours
    degree = list(map(len, neighbours))
    joined = any(degree[i] > 1 and degree[j] > 1 for i, row in enumerate(neighbours) for j in row)
    least = 3 if joined else 2 if any(degree) else 1
    colour, order = fewest_colors(lambda o: star_coloring(neighbours, o), orders, least)
    coloured = time.perf_counter()
    entries = hessian_entries(graph, wrt, rows, colour)
    seconds = {"pattern": patterned - start, "coloring": coloured - patterned}
    seconds["passes"] = time.perf_counter() - coloured
    info = {
        "colors": max(colour, default=-1) + 1,
        "mode": "reverse-over-reverse",
        "coloring": order,
        "seconds": seconds,
    }
    return SparseKernel(entries, rows, (len(wrt), len(wrt)), backend, threads, wrt, info)


__all__ = [
    "SparseKernel",
    "hessian_sparsity",
    "jacobian_sparsity",
    "sparse_hessian",
    "sparse_jacobian",
]
