"""The compiled callable every backend returns."""

from __future__ import annotations

import bisect
import itertools
import sys
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphc.errors import DataError, EvaluationError, GraphcError, OutputError
from graphc.graph import Graph

Layout = Callable[[Any], list[Any]]  # the caller's ``out`` (shaped like a result) -> one array per output
# the shapes of a call's outputs: one broadcast shape for all (a scalar graph's), or one per output
Shapes = tuple[int, ...] | list[tuple[int, ...]]


def outputs_layout(count: int) -> Layout:
    """``out`` for a kernel returning its outputs as they are: one array, or a tuple of ``count``."""

    def layout(out: Any) -> list[Any]:
        if count == 1:
            return [out]
        return sequence_layout(count, "one array per output")(out)

    return layout


def sequence_layout(count: int, what: str) -> Layout:
    """``out`` as a tuple or list of ``count`` arrays (``what`` says what they are, for errors)."""

    def layout(out: Any) -> list[Any]:
        if not isinstance(out, (tuple, list)) or len(out) != count:
            got = f"{len(out)} items" if isinstance(out, (tuple, list)) else type(out).__name__
            raise OutputError(f"out must be a tuple of {count} arrays ({what}), got {got}")
        return list(out)

    return layout


def _as_tuple(result: Any) -> tuple[Any, ...]:
    return result if isinstance(result, tuple) else (result,)


def _value_and_partials(result: Any) -> tuple[Any, tuple[Any, ...]]:
    result = _as_tuple(result)  # a function of no variables has a value and no partials
    return result[0], tuple(result[1:])


def _value_and_partials_layout(partials: int) -> Layout:
    """``out`` for ``value_and_grad``: ``(value, (partial, ...))``."""
    pair = sequence_layout(2, "the value and the tuple of partials")
    inner = sequence_layout(partials, "the partials")
    return lambda out: [pair(out)[0], *inner(out[1])]


def _matrix(rows: int, columns: int) -> Any:
    """A scalar graph's Jacobian or Hessian: shape ``(*batch, rows, columns)``, batch axes first."""

    def finish(result: Any) -> np.ndarray:
        entries = np.stack(_as_tuple(result))
        matrix = entries.reshape(rows, columns, *entries.shape[1:])
        return np.moveaxis(matrix, (0, 1), (-2, -1))  # a view (lazy on a Dask array)

    return finish


class _Staged(list):  # type: ignore[type-arg]
    """The arrays a kernel writes into, fresh and its own, of batch shape ``shape``, and the step
    that moves them into the caller's ``out``."""

    def __init__(self, arrays: list[Any], shape: tuple[int, ...], commit: Any) -> None:
        super().__init__(arrays)
        self.shape = shape
        self.commit = commit


class Outputs(list):  # type: ignore[type-arg]
    """The caller's arrays a kernel writes into, one per output, checked by :meth:`Kernel.into`,
    with the address of each one's first byte (for a backend that passes addresses)."""

    def __init__(self, arrays: list[np.ndarray], addresses: tuple[int, ...]) -> None:
        super().__init__(arrays)
        self.addresses = addresses


CLEAR_INPUTS = 64  # input arrays a _Checked remembers as overlapping no output


class _Checked:
    """``out`` arrays that :meth:`Kernel.into` checked for one broadcast shape, known by identity.

    Checking thousands of arrays one by one costs more than computing them, so ``into`` checks a
    set once per shape and keeps this record: a later call with the same array objects only checks
    its inputs against their extents (a binary search), and an input array it found clear before
    not even that (finding an array's extent costs more than a small kernel's call). A weak
    reference per array forgets the record once one of them is collected (an input, its entry), so
    a new array that got a dead one's id is never taken for it. An array changed in place
    afterwards (``writeable``, ``shape`` or ``dtype`` set anew) is not looked at again; its memory
    stays the same, so nothing is written outside it.
    """

    def __init__(self, arrays: list[np.ndarray], shape: Shapes, names: list[str]) -> None:
        self.shape = shape
        self.ids = tuple(map(id, arrays))
        self.alive = True
        self._references = [weakref.ref(array, self._forget) for array in arrays]
        bounds = [_extent(array) for array in arrays]
        self.addresses = tuple(low for low, _ in bounds)
        extents = sorted(
            (low, high, name) for (low, high), name in zip(bounds, names, strict=True) if high > low
        )
        self._lows = [low for low, _, _ in extents]
        self._highs = [high for _, high, _ in extents]  # sorted too: the extents do not overlap
        self._names = [name for _, _, name in extents]
        self._clear: dict[int, weakref.ref[np.ndarray]] = {}  # inputs overlapping no output, by id

    def _forget(self, _: Any) -> None:
        self.alive = False

    def holds(self, arrays: list[Any], shape: Shapes) -> bool:
        """Whether ``arrays`` are the arrays checked, for ``shape``."""
        return self.alive and self.shape == shape and self.ids == tuple(map(id, arrays))

    def overlapping(self, array: np.ndarray) -> str | None:
        """What names the first output array overlapping ``array``'s bytes, if any."""
        known = self._clear.get(id(array))
        if known is not None and known() is array:
            return None
        low, high = _extent(array)
        i = bisect.bisect_right(self._highs, low)  # the first extent ending after ``low``
        if i < len(self._lows) and self._lows[i] < high:
            return self._names[i]
        if len(self._clear) >= CLEAR_INPUTS:  # a caller passing new arrays on every call
            self._clear.clear()
        self._clear[id(array)] = weakref.ref(array)
        return None


def _matrix_layout(rows: int, columns: int) -> Layout:
    """``out`` for a :func:`_matrix` result: one C-contiguous array of shape ``(*batch, rows,
    columns)``. The kernel writes the entries, each contiguous over the batch, into a staging block
    that is then moved into ``out`` (one copy)."""

    def layout(out: Any) -> list[Any]:
        if not isinstance(out, np.ndarray) or out.shape[-2:] != (rows, columns) or out.ndim < 2:
            got = f"shape {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
            raise OutputError(f"out must be an array of shape (*batch, {rows}, {columns}), got {got}")
        if out.dtype != np.float64:
            raise OutputError(f"out must have dtype float64, got {out.dtype}")
        if not out.flags.c_contiguous:
            raise OutputError("out must be C-contiguous")
        if not out.flags.writeable:
            raise OutputError("out is read-only")
        stage = np.empty((rows, columns, *out.shape[:-2]))

        def commit() -> None:
            np.copyto(out, np.moveaxis(stage, (0, 1), (-2, -1)))

        views = [stage[i, j, ...] for i in range(rows) for j in range(columns)]
        return _Staged(views, out.shape[:-2], commit)

    return layout


def _blocks(rows: int, columns: int) -> Any:
    """A tensor graph's Jacobian or Hessian: one array per (output, input) pair, each of shape
    ``batch + out_shape + in_shape``; the array itself when there is one pair, else a tuple of
    rows."""

    def finish(result: Any) -> Any:
        entries = _as_tuple(result)
        if rows == columns == 1:
            return entries[0]
        return tuple(tuple(entries[i * columns : (i + 1) * columns]) for i in range(rows))

    return finish


def _blocks_layout(rows: int, columns: int) -> Layout:
    """``out`` for a :func:`_blocks` result: the array itself for one pair, else a tuple of
    ``rows`` tuples of ``columns`` arrays."""
    if rows == columns == 1:
        return lambda out: [out]
    outer = sequence_layout(rows, "one tuple per output")
    inner = sequence_layout(columns, "one array per input")
    return lambda out: [array for row in outer(out) for array in inner(row)]


def _implicit(kernel: Kernel) -> tuple[Callable[[Any], Any], None]:
    from graphc.implicit import finish  # graphc.implicit compiles kernels: imported when used

    return finish(kernel.graph), None


Finishing = tuple[Callable[[Any], Any] | None, Layout | None]

# How a kernel's raw outputs (one array per graph output) become its result, by the name that
# ``Kernel.result`` holds with its plain parameters: (finish, layout for ``into``). A pickled kernel
# holds the name, never a function.
RESULTS: dict[str, Callable[..., Finishing]] = {
    "outputs": lambda k: (None, outputs_layout(len(k.outputs))),  # one array, or a tuple of them
    "partials": lambda k: (_as_tuple, sequence_layout(len(k.wrt), "one per partial")),
    "value_and_partials": lambda k: (_value_and_partials, _value_and_partials_layout(len(k.wrt))),
    "matrix": lambda k, rows, columns: (_matrix(rows, columns), _matrix_layout(rows, columns)),
    "blocks": lambda k, rows, columns: (_blocks(rows, columns), _blocks_layout(rows, columns)),
    "implicit": _implicit,  # solved after the compiled code: no into
}


def _shape(value: Any) -> tuple[int, ...]:
    return value.shape if isinstance(value, np.ndarray) else np.shape(value)  # type: ignore[no-any-return]


def _extent(array: np.ndarray) -> tuple[int, int]:
    """The bytes an array may touch: ``[low, high)`` (exact for a contiguous array)."""
    low, high = np.lib.array_utils.byte_bounds(array)
    return low, high


def _check_arrays(arrays: list[Any], shapes: Shapes, names: list[str]) -> None:
    """Raise OutputError unless ``arrays`` (one per output, ``names`` saying which) are float64,
    C-contiguous, writeable, of ``shapes`` (one shape for every output, or one per output), and
    overlap no other."""
    extents: list[tuple[int, int, str]] = []
    for j, (array, what) in enumerate(zip(arrays, names, strict=True)):
        if not isinstance(array, np.ndarray):
            raise OutputError(f"{what} must be a NumPy array, got {type(array).__name__}")
        if array.dtype != np.float64:
            raise OutputError(f"{what} must have dtype float64, got {array.dtype}")
        want = shapes[j] if isinstance(shapes, list) else shapes
        if array.shape != want:
            why = "its result has shape" if isinstance(shapes, list) else "the arguments broadcast to"
            raise OutputError(f"{what} has shape {array.shape}, but {why} {want}")
        if not array.flags.c_contiguous:
            raise OutputError(f"{what} must be C-contiguous")
        if not array.flags.writeable:
            raise OutputError(f"{what} is read-only")
        if array.nbytes:
            extents.append((*_extent(array), what))
    extents.sort()
    for (_, high, first), (low, _, second) in itertools.pairwise(extents):
        if low < high:
            raise OutputError(f"{first} and {second} overlap")


class Kernel:
    """A compiled graph: call it with one value per variable, get one value per output.

    Arguments go by keyword (``k(x=1.0, y=2.0)``) or by position in ``kernel.variables`` order
    (sorted names). Scalars and arrays of any shape broadcast NumPy-style and are computed in
    float64; a single output is returned as is, several as a tuple. Values outside an op's domain
    give nan or inf, as in NumPy, without warnings.
    """

    def __init__(
        self,
        graph: Graph,
        function: Callable[..., Any],
        *,
        backend: str,
        source: str,
        variables: Sequence[str] | None = None,
        wrt: Sequence[str] = (),
        mode: str | None = None,
        result: Sequence[Any] = ("outputs",),
    ) -> None:
        self.graph = graph
        self.backend = backend
        self.source = source
        self.variables: tuple[str, ...] = tuple(graph.variables if variables is None else variables)
        self.outputs: tuple[str, ...] = tuple(graph.output_names)
        self.wrt: tuple[str, ...] = tuple(wrt)  # the variables a derivative kernel differentiates by
        self.mode = mode  # how a Jacobian was accumulated: "forward", "reverse" or "optimal"
        # what a Jacobian kernel's accumulation performs: "multiplications" (scalar, per point)
        # and "order" (the bracketing of its product); see graphc.chain
        self.info: dict[str, Any] = {}
        self.result: tuple[Any, ...] = tuple(result)  # a name in RESULTS, then its parameters
        self.threads: int | None = None  # the thread cap it was compiled with (set by compile_graph)
        self._function = function
        # ``finish`` shapes the raw outputs (a tuple of partials, a Jacobian array...); ``layout``
        # is its inverse for ``into``: the caller's ``out``, shaped like a result, as one array per output
        self._finish, self._layout = RESULTS[self.result[0]](self, *self.result[1:])
        self._index = {name: i for i, name in enumerate(self.variables)}
        self._checked: _Checked | None = None  # the last ``out`` arrays into checked (see check_out)
        self._shapes: dict[tuple[Any, ...], list[tuple[int, ...]]] = {}  # a tensor graph's, by input shapes

    def __repr__(self) -> str:
        return f"<graphc.Kernel {self.backend}: ({', '.join(self.variables)}) -> ({', '.join(self.outputs)})>"

    def ordered(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        """The call's arguments in ``variables`` order, every variable given exactly once."""
        names = self.variables
        if not args and len(kwargs) == len(names):  # the usual call: every variable by keyword
            try:
                return tuple([kwargs[name] for name in names])
            except KeyError:
                pass  # another name among them: said below
        if len(args) > len(names):
            listed = ", ".join(names) or "none"
            raise EvaluationError(f"got {len(args)} positional arguments, but the variables are: {listed}")
        values: list[Any] = list(args) + [None] * (len(names) - len(args))
        given = [True] * len(args) + [False] * (len(names) - len(args))
        for name, value in kwargs.items():
            i = self._index.get(name)
            if i is None:
                listed = ", ".join(names) or "none"
                raise EvaluationError(f"unexpected argument '{name}' (the variables are: {listed})")
            if given[i]:
                raise EvaluationError(f"variable '{name}' is given twice")
            values[i], given[i] = value, True
        missing = [name for name, ok in zip(names, given, strict=True) if not ok]
        if missing:
            plural = "s" * (len(missing) > 1)
            raise EvaluationError(f"missing value for variable{plural} {', '.join(missing)}")
        return tuple(values)

    def diagnose(self, values: tuple[Any, ...]) -> None:
        """Raise the EvaluationError that explains why ``values`` cannot be evaluated, if any."""
        if self.graph.tensor:
            self._diagnose_shapes(values)
            return
        arrays = []
        for name, value in zip(self.variables, values, strict=True):
            try:
                arrays.append(np.asarray(value, dtype=np.float64))
            except (TypeError, ValueError, OverflowError) as err:
                kind = type(value).__name__
                raise EvaluationError(
                    f"variable '{name}': cannot convert {kind} to float64 ({err})"
                ) from None
        try:
            np.broadcast_shapes(*(a.shape for a in arrays))
        except ValueError:
            shapes = ", ".join(f"{n}{a.shape}" for n, a in zip(self.variables, arrays, strict=True))
            raise EvaluationError(f"the arguments' shapes do not broadcast together: {shapes}") from None

    @property
    def function(self) -> Callable[..., Any]:
        """The compiled function, taking the variables in the graph's (sorted) order."""
        return self._function

    def _diagnose_shapes(self, values: tuple[Any, ...]) -> None:
        """The EvaluationError of arguments that do not fit a tensor graph's declared shapes."""
        from graphc.shapes import bind

        graph = self.graph
        declared = {name: graph.shape(graph.variable(name)) for name in self.variables}
        try:
            given = {
                name: np.shape(np.asarray(v, dtype=np.float64)) for name, v in zip(self.variables, values)
            }
            bind(declared, given)
        except (TypeError, ValueError) as err:
            raise EvaluationError(str(err)) from None

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        if kwargs or len(args) != len(self.variables):
            args = self.ordered(args, kwargs)
        if "dask" in sys.modules and any(type(a).__module__.startswith("dask") for a in args):
            from graphc.dask_arrays import call  # only once a Dask array is seen

            return call(self, args)
        try:
            result = self._function(*args)
        except (TypeError, ValueError, OverflowError):
            self.diagnose(args)  # bad arguments: raise a precise EvaluationError instead
            raise
        return result if self._finish is None else self._finish(result)

    def into(self, out: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Compute into the caller's arrays ``out`` and return ``out``: no output is allocated.

        ``out`` is shaped like the kernel's result: an array for one output, a tuple of arrays
        for several (``grad``: one per partial; ``value_and_grad``: ``(value, (partials...))``), one
        array of shape ``(*batch, rows, columns)`` for ``jacobian`` and ``hessian`` (of a tensor
        graph: its blocks, one array per (output, input) pair, as a call returns them). Each
        array must be float64, C-contiguous, writeable, of its result's shape (the arguments'
        broadcast shape; a tensor graph's output: the batch shape, then its own), and overlap
        neither an input nor another output (else :class:`OutputError`). The arguments follow,
        as for a call; ``out`` comes first and only by position, so a variable may be named
        ``out`` (``k.into(buffer, out=2.0)``). Repeated calls then reuse the same memory: a
        large batch costs no fresh pages. The arrays are checked in full once per shape: calls
        with the same array objects again only check the new inputs against them (an array
        changed in place in between, its ``writeable`` flag, shape or dtype set anew, is not
        looked at again).
        With Dask arrays as arguments, ``into`` computes the result now, block by block, each
        block written into its slice of ``out`` (``dask.array.store``: ``out`` may also hold
        zarr or h5py arrays); on a distributed cluster NumPy arrays of this process cannot be
        written by the workers, so that is an :class:`OutputError` (see docs/distributed.md).

        >>> import numpy as np, graphc
        >>> g = graphc.grad("x*y")
        >>> out = (np.empty(3), np.empty(3))
        >>> g.into(out, np.arange(3.0), 2.0) is out, out[1].tolist()
        (True, [0.0, 1.0, 2.0])
        """
        if self._layout is None:
            raise OutputError(
                "this kernel computes its results after the compiled code; into is not available"
            )
        if kwargs or len(args) != len(self.variables):
            args = self.ordered(args, kwargs)
        if "dask" in sys.modules and any(type(a).__module__.startswith("dask") for a in args):
            from graphc.dask_arrays import into  # only once a Dask array is seen

            return into(self, out, args)
        arrays = self.check_out(self._layout(out), args)
        try:
            self._function(*args, out=arrays)
        except (TypeError, ValueError):
            self.diagnose(args)
            raise
        commit = getattr(arrays, "commit", None)
        if commit is not None:  # the results were staged (a Jacobian's batch-first layout)
            commit()
        return out

    def compute(self, out: list[np.ndarray], values: tuple[Any, ...]) -> None:
        """The raw outputs for ``values`` (in ``variables`` order) into ``out``, one array per
        output, unchecked: :meth:`into` without its checks, for callers that made ``out`` themselves."""
        self._function(*values, out=out)

    def finished(self, outputs: Any) -> Any:
        """The kernel's result made from raw outputs (one, or a tuple of one per output)."""
        return outputs if self._finish is None else self._finish(outputs)

    def export_c(self, directory: Any, name: str, *, source: str = "") -> list[Any]:
        """Write this kernel as C99 source, ``directory/name.h`` and ``name.c``: a function of ``n``
        points, one array per variable then one per output (``self.outputs``), and ``name_point``.
        See :mod:`graphc.backends.c`; returns the paths written.

        >>> import tempfile, graphc
        >>> paths = graphc.value_and_grad("x*y").export_c(tempfile.mkdtemp(), "model")
        >>> [p.name for p in paths]
        ['model.h', 'model.c']
        """
        from graphc.backends.c import export

        if self.result[0] == "implicit":
            raise GraphcError(
                "an implicit kernel solves its results after the compiled code: it has no C export"
            )
        return list(export(self.graph, directory, name, source=source))

    def point_into(self, point: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The raw outputs at one point, in SciPy's flat-vector convention: ``point`` holds one
        float64 per variable (``variables`` order), ``out`` a float64 vector of one value per
        output, which is returned (the llvm backend writes into it directly).

        >>> import numpy as np, graphc
        >>> graphc.compile("x*y, x + y").point_into(np.array([2.0, 3.0]), np.empty(2)).tolist()
        [6.0, 5.0]
        """
        if point.dtype != np.float64 or point.shape != (len(self.variables),):
            raise EvaluationError(
                f"point must be a float64 vector of {len(self.variables)} values, got {point.dtype} {point.shape}"
            )
        if out.dtype != np.float64 or out.shape != (len(self.outputs),) or not out.flags.writeable:
            raise OutputError(f"out must be a writeable float64 vector of {len(self.outputs)} values")
        write = getattr(self._function, "point_into", None)
        if write is not None and self.outputs and out.flags.c_contiguous:
            write(np.ascontiguousarray(point), out)
        else:
            result = self._function(*point)
            out[:] = result if isinstance(result, tuple) else (result,)
        return out

    def check_out(self, arrays: list[Any], values: tuple[Any, ...]) -> list[Any]:
        """``arrays`` (one per output) as the kernel writes into them, or OutputError unless they
        can take the results for ``values``: float64, C-contiguous, writeable, of the values'
        broadcast shape, overlapping neither each other nor an input. The arrays' own checks are
        made once per shape and remembered (:class:`_Checked`); the inputs' on every call."""
        shape: Shapes
        try:
            if self.graph.tensor:
                shape = self._output_shapes(tuple(_shape(v) for v in values))
            else:
                shape = np.broadcast_shapes(*(np.shape(v) for v in values))
        except ValueError:
            self.diagnose(values)
            raise
        if isinstance(arrays, _Staged):  # the kernel's own fresh arrays, copied into out after
            if arrays.shape != shape:
                raise OutputError(
                    f"out has batch shape {arrays.shape}, but the arguments broadcast to {shape}"
                )
            return arrays
        checked = self._checked
        if checked is None or not checked.holds(arrays, shape):
            names = [f"out for output {j} ({name})" for j, name in enumerate(self.outputs)]
            _check_arrays(arrays, shape, names)
            checked = self._checked = _Checked(arrays, shape, names)
        for name, value in zip(self.variables, values, strict=True):
            if isinstance(value, np.ndarray) and value.nbytes:
                what = checked.overlapping(value)
                if what is not None:
                    raise OutputError(f"{what} overlaps the input '{name}'")
        return Outputs(arrays, checked.addresses)

    def _output_shapes(self, given: tuple[tuple[int, ...], ...]) -> list[tuple[int, ...]]:
        """A tensor graph's output shapes for inputs of shapes ``given`` (``variables`` order): the
        batch shape, then each output's own; worked out once per ``given`` (ValueError if the
        shapes do not fit the declarations)."""
        found = self._shapes.get(given)
        if found is None:
            from graphc.shapes import bind, concrete

            graph = self.graph
            declared = {name: graph.shape(graph.variable(name)) for name in self.variables}
            dims, batch = bind(declared, dict(zip(self.variables, given, strict=True)))
            found = [batch + concrete(graph.shape(node), dims) for node in graph.outputs]
            if len(self._shapes) >= 64:  # a bound on the record, for callers of many shapes
                self._shapes.clear()
            self._shapes[given] = found
        return found

    def derived(
        self,
        *,
        wrt: Sequence[str] = (),
        mode: str | None = None,
        result: Sequence[Any],
        variables: Sequence[str] | None = None,
    ) -> Kernel:
        """This kernel with its results shaped as ``result`` says (a name in :data:`RESULTS` and its
        parameters: ``("partials",)``, ``("matrix", rows, columns)``...; used by grad, jacobian, ...),
        and called with its variables in the order ``variables`` (default: this kernel's; vjp puts
        the cotangent last)."""
        function = self._function
        if variables is not None and tuple(variables) != self.variables:
            function = _permuted(function, [list(variables).index(name) for name in self.variables])
        kernel = Kernel(
            self.graph,
            function,
            backend=self.backend,
            source=self.source,
            variables=self.variables if variables is None else variables,
            wrt=wrt,
            mode=mode,
            result=result,
        )
        kernel.threads = self.threads
        return kernel

    def __reduce__(self) -> tuple[Callable[[dict[str, Any]], Kernel], tuple[dict[str, Any]]]:
        """Pickle the graph and the options, not machine code: loading compiles again (or finds the
        code in the loading machine's disk cache), so a pickle works on any machine with graphc."""
        state = {
            "format": KERNEL_FORMAT,
            "graph": self.graph.to_data(),
            "backend": self.backend,
            "threads": self.threads,
            "wrt": list(self.wrt),
            "mode": self.mode,
            "result": list(self.result),
            "variables": list(self.variables),
        }
        return rebuild, (state,)


KERNEL_FORMAT = "graphc-kernel 1"  # the version of a pickled kernel's state


def _permuted(function: Callable[..., Any], position: list[int]) -> Callable[..., Any]:
    """``function`` (of the graph's variables, sorted) called with its arguments in another order:
    argument ``position[i]`` of a call is the function's argument ``i``."""

    def reordered(*args: Any, **out: Any) -> Any:
        return function(*(args[i] for i in position), **out)

    return reordered


def rebuild(state: Any) -> Kernel:
    """The kernel a pickle holds (see :meth:`Kernel.__reduce__`), compiled on this machine.

    The state is checked to be plain data in graphc's format (the graph by
    :meth:`Graph.from_data`, names against graphc's own tables) before anything is compiled.
    """
    from graphc.backends import compile_graph  # the backends import this module

    if not isinstance(state, dict) or state.get("format") != KERNEL_FORMAT:
        raise DataError(f"not a pickled graphc kernel (expected format {KERNEL_FORMAT!r})")
    backend, threads, wrt, mode, result, variables = (
        state.get(k) for k in ("backend", "threads", "wrt", "mode", "result", "variables")
    )
    if not isinstance(backend, str):
        raise DataError("pickled kernel: the backend is not a name")
    if not isinstance(wrt, list) or not all(isinstance(name, str) for name in wrt):
        raise DataError("pickled kernel: wrt is not a list of names")
    if not isinstance(result, list) or not result or result[0] not in RESULTS:
        raise DataError(f"pickled kernel: unknown result {result!r} (known: {', '.join(RESULTS)})")
    if not all(type(p) is int for p in result[1:]) or not (mode is None or isinstance(mode, str)):
        raise DataError("pickled kernel: malformed result parameters or mode")
    graph = Graph.from_data(state.get("graph"))
    if variables is not None and (
        not isinstance(variables, list)
        or not all(isinstance(v, str) for v in variables)
        or sorted(variables) != graph.variables
    ):
        raise DataError("pickled kernel: variables are not the graph's variables in some order")
    try:
        kernel = compile_graph(graph, backend, threads=threads)
    except GraphcError:
        raise
    # params in graphc's format, accepted by the op's shape rule, that no op of graphc's would build
    except (SyntaxError, TypeError, ValueError, LookupError, AttributeError, ArithmeticError) as err:
        raise DataError(f"pickled kernel: its graph does not compile ({type(err).__name__}: {err})") from None
    return kernel.derived(wrt=wrt, mode=mode, result=result, variables=variables)
