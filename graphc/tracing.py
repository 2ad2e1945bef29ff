"""Tracing: Python functions on symbols build graphc's graph.

``graphc.sym("x")`` is a :class:`Traced` value: a graph and one of its nodes. Python's operators,
the functions of :mod:`graphc.numpy` and NumPy's own functions (through ``__array_ufunc__`` and
``__array_function__``) each make one call of the graph's builder, so a function traced on
symbols builds the same hash-consed graph as its text. Python control flow runs at trace time,
once; a traced value has no number then, so using it as a bool, a float or a length raises a
:class:`~graphc.errors.TraceError` pointing at the user's line.

Values traced separately (two ``sym`` calls) live in separate graphs until an operation combines
them: the part of the smaller graph that the operand needs is replayed into the larger through
its builder (variables of the same name are one variable; hash-consing makes a second replay build
nothing new). A traced function's symbols share one graph from the start, so tracing a function
replays nothing: it is one builder call per operation.
"""

from __future__ import annotations

import inspect
import keyword
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphc.errors import EvaluationError, TraceError
from graphc.graph import Graph
from graphc.ops import CONST, OPS, PYTHON_OPERATORS, RESERVED, VAR, Op, index_params
from graphc.shapes import Shape, ShapeError
from graphc.shapes import text as shape_text

# Python's binary operators a class may overload (a fact of Python, not of graphc): the special
# methods' names, and which of them have a reflected form (``__radd__``; a comparison's reflection is
# another comparison). Each is bound to a method that applies the op whose entry names it
# (``python="add"``), looked up in the op table when called: see _operator.
_ARITHMETIC: tuple[str, ...] = ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow")
_ARITHMETIC += ("lshift", "rshift", "and", "xor", "or")
_COMPARISONS = ("lt", "le", "gt", "ge", "eq", "ne")
NEGATION: Op = next(op for op in OPS.values() if op.arity == 1 and op.infix == "-")

_NUMBERS = (int, float, np.integer, np.floating)


def user_line() -> str:
    """``file:line`` of the innermost frame outside graphc and NumPy: the user's line."""
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module not in ("graphc", "numpy") and not module.startswith(("graphc.", "numpy.")):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return "<unknown>"


def trace_error(message: str) -> TraceError:
    return TraceError(f"{message} (at {user_line()})")


class located:
    """A context in which a ShapeError gets the user's line (the builder's message names the op
    and the shapes)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        if isinstance(error, ShapeError):
            raise ShapeError(f"{error} (at {user_line()})") from None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _no_bool(what: str) -> TraceError:
    return trace_error(
        f"a traced value cannot be used as a Python {what}: it has no number until the compiled "
        "function runs, and Python control flow runs once, at trace time: write the choice as a "
        "value, graphc.numpy.where(c, a, b) (comparisons and &, |, ~ build its condition)"
    )


class Traced:
    """A traced value: node ``node`` of ``graph``. Arithmetic on it builds graph nodes.

    >>> import graphc
    >>> x, y = graphc.sym("x"), graphc.sym("y")
    >>> f = x * y + 1
    >>> f
    <traced x*y + 1>
    >>> graphc.compile(f)(2.0, 3.0)
    np.float64(7.0)
    """

    __slots__ = ("graph", "node")
    __hash__ = object.__hash__  # comparisons build nodes, identity hashes

    def __init__(self, graph: Graph, node: int) -> None:
        self.graph = graph
        self.node = node

    def __repr__(self) -> str:
        if len(self.graph) > 200:
            return f"<traced node {self.node} ({self.graph.op(self.node)}) of {len(self.graph)}>"
        from graphc.printing import formula

        return f"<traced {formula(self.graph, self.node, simplify_below=0)}>"

    # --- what a traced value cannot be at trace time ----------------------------------------------

    def __bool__(self) -> bool:
        raise _no_bool("bool (in if, while, and, or, not)")

    def __float__(self) -> float:
        raise trace_error(
            "a traced value has no number at trace time: float(), int() and the math module "
            "cannot take it; use graphc.numpy (gnp.sin) or NumPy (np.sin)"
        )

    __int__ = __index__ = __complex__ = __float__  # type: ignore[assignment]

    @property
    def shape(self) -> Shape:
        """The value's shape: ``()`` for a scalar, dimensions ints or names."""
        return self.graph.shape(self.node)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def T(self) -> Any:
        """The transpose (axes reversed), as ``transpose(x)``."""
        from graphc.numpy import FUNCTIONS

        return FUNCTIONS["transpose"](self)

    def __len__(self) -> int:
        shape = self.shape
        if not shape:
            raise trace_error("len() of a traced scalar: a scalar has no length")
        if isinstance(shape[0], str):
            raise trace_error(f"len() of a traced {shape_text(shape)}: its first dimension is a name")
        return shape[0]

    def __iter__(self) -> Any:
        if not self.shape:
            raise trace_error("iterating over a traced scalar: a scalar has no elements")
        return (self[i] for i in range(len(self)))

    def __getitem__(self, key: Any) -> Traced:
        items: list[Any] = []
        for item in key if isinstance(key, tuple) else (key,):
            if isinstance(item, slice):
                bounds = (item.start, item.stop, item.step)
                if not all(b is None or isinstance(b, (int, np.integer)) for b in bounds):
                    raise trace_error(f"slice bounds must be integers at trace time, got {item}")
                items.append(None if bounds == (None, None, None) else tuple(_int(b) for b in bounds))
            elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
                items.append(int(item))
            else:
                raise trace_error(
                    f"a traced value is indexed by integers and slices, got {type(item).__name__} "
                    f"(shape {shape_text(self.shape)})"
                )
        with located():
            params = index_params(self.shape, items)
            return Traced(self.graph, self.graph.apply("index", self.node, params=params))

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise trace_error(
            "NumPy tried to make an array of a traced value (np.array, np.asarray, or a NumPy "
            "function that converts its arguments): use graphc.numpy's functions on traced values"
        )

    # --- NumPy dispatch ----------------------------------------------------------------------------

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        from graphc.numpy import UFUNCS, supported

        spec = UFUNCS.get(ufunc)
        if spec is None or method != "__call__":
            called = f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
            raise trace_error(f"{called} is not supported on traced values ({supported()})")
        if kwargs:
            raise trace_error(f"numpy.{ufunc.__name__} on traced values takes no {', '.join(kwargs)}=")
        return apply(spec, inputs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        from graphc.numpy import ARRAY_FUNCTIONS, supported

        function = ARRAY_FUNCTIONS.get(func)
        if function is None:
            raise trace_error(f"numpy.{func.__name__} is not supported on traced values ({supported()})")
        return function(*args, **kwargs)

    def __pos__(self) -> Traced:
        return self

    def __neg__(self) -> Any:
        return apply(NEGATION, (self,))

    def __abs__(self) -> Any:
        return apply(OPS["abs"], (self,))

    def __invert__(self) -> Any:  # ~x is `not x`: Python's own `not` cannot be overloaded
        return apply(OPS["not"], (self,))


def _operator(name: str, reflected: bool) -> Callable[[Traced, Any], Any]:
    """Python's operator ``__{name}__`` (or its reflection) on a traced value: the op whose entry
    names it (``PYTHON_OPERATORS``), or NotImplemented where no op does."""

    def method(self: Traced, other: Any) -> Any:
        spec = PYTHON_OPERATORS.get(name)
        if spec is None or (not isinstance(other, (Traced, *_NUMBERS)) and not _scalar_array(other)):
            return NotImplemented
        return apply(spec, (other, self) if reflected else (self, other))

    return method


for _name in _ARITHMETIC + _COMPARISONS:
    setattr(Traced, f"__{_name}__", _operator(_name, False))
for _name in _ARITHMETIC:
    setattr(Traced, f"__r{_name}__", _operator(_name, True))


def _scalar_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iuf"


def _adopt(target: Graph, source: Graph, nodes: Sequence[int]) -> list[int]:
    """``nodes`` of ``source`` rebuilt in ``target`` (the part they depend on, through the builder)."""
    keep = source.reachable(nodes)
    mapping: dict[int, int] = {}
    for n in range(max(nodes) + 1):
        if not keep[n]:
            continue
        op = source.op(n)
        if op == VAR:
            with located():
                mapping[n] = target.var(source.name(n), source.shape(n))
        elif op == CONST:
            mapping[n] = target.const(source.const_value(n))  # type: ignore[arg-type]
        else:
            args = (mapping[a] for a in source.args(n))
            mapping[n] = target.apply(op, *args, params=source.params(n))
    return [mapping[node] for node in nodes]


def lift(graph: Graph, value: Any) -> int:
    """The node of ``value`` in ``graph``: a traced value's (adopted from another graph if need
    be) or a number's constant."""
    if isinstance(value, Traced):
        return value.node if value.graph is graph else _adopt(graph, value.graph, [value.node])[0]
    if isinstance(value, np.ndarray) and value.shape != ():
        raise trace_error(
            f"a NumPy array of shape {value.shape} in a traced function: graphc's constants are "
            "numbers, so make the array an input (a parameter, or graphc.sym with its shape)"
        )
    if isinstance(value, bool) or not (isinstance(value, _NUMBERS) or _scalar_array(value)):
        raise trace_error(f"expected a number or a traced value, got {type(value).__name__}")
    return graph.const(float(value))


def apply(spec: Op, values: Sequence[Any], params: Any = None) -> Any:
    """The op on traced values and numbers: a traced value, or the op's NumPy value when no
    operand is traced (so helper functions work on numbers too)."""
    graph = common_graph(values)
    if graph is None:
        return spec.evaluate(*values, params=params)
    args = tuple(v.node if isinstance(v, Traced) and v.graph is graph else lift(graph, v) for v in values)
    try:
        return Traced(graph, graph.block(spec, args, params) if spec.block else graph.applied(spec, args))
    except ShapeError as error:
        raise ShapeError(f"{error} (at {user_line()})") from None


def common_graph(values: Sequence[Any]) -> Graph | None:
    """The largest graph among the traced ``values`` (the others are adopted into it), or None."""
    graph = None
    for v in values:
        if isinstance(v, Traced) and (graph is None or (v.graph is not graph and len(v.graph) > len(graph))):
            graph = v.graph
    return graph


# --- symbols and functions -----------------------------------------------------------------------


def _checked_name(name: Any) -> str:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise TraceError(f"a symbol's name must be a Python identifier, got {name!r}")
    if name in RESERVED:
        raise TraceError(f"'{name}' is a built-in name of graphc's language: a symbol needs another name")
    return name


def checked_shape(shape: Any, what: str) -> Shape:
    """A declared shape: a sequence of whole numbers >= 1 and dimension names."""
    if isinstance(shape, (str, bytes)) or not isinstance(shape, (tuple, list)):
        raise TraceError(f"the shape of {what} must be a list of dimensions, got {shape!r}")
    for d in shape:
        named = isinstance(d, str) and d.isidentifier()
        if not named and not (isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1):
            raise TraceError(f"a dimension of {what} must be a whole number >= 1 or a name, got {d!r}")
    return tuple(d if isinstance(d, str) else int(d) for d in shape)


def sym(name: str, shape: Sequence[int | str] = ()) -> Traced:
    """A symbol: the input variable ``name`` of the given shape (dimensions ints or names), as a
    traced value to compute with.

    >>> import graphc
    >>> x = graphc.sym("x")
    >>> graphc.grad(x**3)(2.0)
    (np.float64(12.0),)
    >>> W, v = graphc.sym("W", [3, "n"]), graphc.sym("v", ["n"])
    >>> (W @ v).shape
    (3,)
    """
    graph = Graph()
    return Traced(graph, graph.var(_checked_name(name), checked_shape(shape, f"'{name}'")))


def _outputs(result: Any) -> list[Any]:
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    if not outputs:
        raise TraceError("the traced function returned no outputs")
    return outputs


def graph_of(values: Any, graph: Graph | None = None) -> Graph:
    """A graph whose outputs are ``values`` (a traced value or number, or a tuple or list of them).

    With ``graph`` (a traced function's own, which this finishes), its every variable is an input;
    without, the inputs are the variables the values depend on (their graphs may hold others) and
    the values' graphs are left as they are.
    """
    outputs = _outputs(values)
    if graph is None:
        graph = Graph()
        by_graph: dict[int, list[int]] = {}  # one walk of each values' graph for all its outputs
        for i, v in enumerate(outputs):
            if isinstance(v, Traced):
                by_graph.setdefault(id(v.graph), []).append(i)
        for indices in by_graph.values():
            nodes = _adopt(graph, outputs[indices[0]].graph, [outputs[i].node for i in indices])
            for i, node in zip(indices, nodes, strict=True):
                outputs[i] = Traced(graph, node)
    graph.set_outputs([lift(graph, v) for v in outputs])
    return graph.pruned()


def is_traced(expr: Any) -> bool:
    """Whether ``expr`` is a traced value, or a tuple or list holding one."""
    if isinstance(expr, (tuple, list)):
        return any(isinstance(item, Traced) for item in expr)
    return isinstance(expr, Traced)


def parameters(function: Callable[..., Any]) -> list[inspect.Parameter]:
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        raise TraceError(f"cannot read the parameters of {function!r} to trace it") from None
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            star = "*" if p.kind == p.VAR_POSITIONAL else "**"
            raise TraceError(
                f"cannot trace a function with {star}{p.name}: each parameter becomes one symbol, "
                "so give it named parameters"
            )
    return params


def declared_shapes(params: Sequence[inspect.Parameter], shapes: Any) -> dict[str, Shape]:
    """``shapes=`` checked against the function's ``params``: a dict of parameter name to shape."""
    if shapes is None:
        return {}
    if not isinstance(shapes, dict):
        raise TraceError(f"shapes= takes a dict of parameter name to shape, got {type(shapes).__name__}")
    unknown = set(shapes) - {p.name for p in params}
    if unknown:
        names = ", ".join(sorted(map(str, unknown)))
        raise TraceError(f"shapes= names {names}, not a parameter of the function")
    return {name: checked_shape(shape, f"'{name}'") for name, shape in shapes.items()}


def trace(
    function: Callable[..., Any], *examples: Any, shapes: dict[str, Sequence[int | str]] | None = None
) -> Graph:
    """The graph of a Python function, traced once with one symbol per parameter (named after it).

    A parameter is a scalar unless ``shapes`` gives its shape (``{"W": [3, 5], "X": ["n", 5]}``)
    or an example argument does (``examples`` in parameter order: only their shapes are used).
    The function may loop, call helpers and use NumPy; it returns a value or a tuple of values
    (several outputs). Its inputs are made in parameter order, then its operations in the order
    it runs them; nodes its outputs do not need are dropped, as the parser drops them.

    >>> import numpy as np
    >>> import graphc
    >>> graphc.trace(lambda x, y: np.sin(x * y) + np.exp(x)).to_text()
    'sin(x*y) + exp(x)'
    >>> print(graphc.trace(lambda W, x: np.tanh(W @ x), np.zeros((3, 5)), shapes={"x": [5]}).to_text())
    W: [3, 5]
    x: [5]
    tanh(W@x)
    """
    if not callable(function):
        raise TraceError(f"expected a function to trace, got {type(function).__name__}")
    params = parameters(function)
    declared: dict[str, Any] = declared_shapes(params, shapes)
    if len(examples) > len(params):
        raise TraceError(f"{len(examples)} example arguments for {len(params)} parameters")
    for p, example in zip(params, examples, strict=False):
        declared.setdefault(p.name, example_shape(p.name, example))
    graph = Graph()
    args, kwargs = [], {}
    for p in params:
        value = Traced(graph, graph.var(_checked_name(p.name), declared.get(p.name, ())))
        if p.kind == p.KEYWORD_ONLY:
            kwargs[p.name] = value
        else:
            args.append(value)
    return graph_of(function(*args, **kwargs), graph)


def example_shape(name: str, value: Any) -> Shape:
    """The shape of an argument given for parameter ``name``: the shape its symbol is traced with."""
    if isinstance(value, np.ndarray):
        shape: tuple[int, ...] = value.shape
    elif isinstance(value, (float, int)):
        return ()
    else:
        try:
            shape = np.shape(value)
        except (TypeError, ValueError) as error:  # a ragged list
            raise TraceError(f"the argument for '{name}' has no shape: {error}") from None
    if 0 in shape:
        raise TraceError(f"the argument for '{name}' has shape {shape}: graphc's dimensions are >= 1")
    return tuple(int(d) for d in shape)


class LazyKernel:
    """The kernel of a Python function whose shapes are known only when it is called, as
    ``jax.jit``'s are: a call traces the function with the shapes of its arguments (the
    parameters ``shapes=`` does not declare), builds the kernel with ``build(shapes)`` the first
    time it sees those shapes, keeps it and calls it. A parameter ``shapes=`` declares keeps its
    declared shape (named dimensions bind at the call; extra leading axes are batch axes).

    Arguments go by keyword or by position in the function's parameter order (``variables``).
    Any other attribute is the last-built kernel's (``wrt``, ``graph``, ``source``...).

    >>> import numpy as np
    >>> import graphc
    >>> g = graphc.grad(lambda W, x: np.sum(np.tanh(W @ x)))
    >>> [p.shape for p in g(np.ones((2, 3)), np.ones(3))]
    [(2, 3), (3,)]
    >>> g.wrt
    ('W', 'x')
    """

    def __init__(
        self, function: Callable[..., Any], shapes: Any, build: Callable[[dict[str, Shape]], Any]
    ) -> None:
        self.function = function
        params = parameters(function)
        self.variables: tuple[str, ...] = tuple(p.name for p in params)
        self.shapes = declared_shapes(params, shapes)
        self.kernels: dict[tuple[Shape, ...], Any] = {}  # by the shapes of the undeclared parameters
        self._build = build
        self._last: Any = None

    def __repr__(self) -> str:
        name = getattr(self.function, "__name__", "function")
        return f"<graphc.LazyKernel of {name}({', '.join(self.variables)}): {len(self.kernels)} traced>"

    def kernel(self, *args: Any, **kwargs: Any) -> Any:
        """The kernel for these arguments' shapes (traced and built on their first appearance)."""
        return self._kernel_and_values(args, kwargs)[0]

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        kernel, values = self._kernel_and_values(args, kwargs)
        if not kwargs and len(args) == len(values):
            return kernel(*values)
        rest = {name: value for name, value in kwargs.items() if name not in self.variables}
        return kernel(*values, *args[len(values) :], **rest)

    def _kernel_and_values(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, list[Any]]:
        """The kernel for the parameters' values in this call, and those values in order. (Other
        arguments, vjp's cotangent or jvp's tangents, go to the kernel as they are.)"""
        names = self.variables
        values = dict(zip(names, args, strict=False))
        for name, value in kwargs.items():
            if name in values:
                raise EvaluationError(f"parameter '{name}' is given twice")
            if name in names:
                values[name] = value
        missing = [name for name in names if name not in values]
        if missing:
            raise EvaluationError(
                f"missing value for parameter{'s' * (len(missing) > 1)} {', '.join(missing)}"
            )
        inferred = {name: example_shape(name, values[name]) for name in names if name not in self.shapes}
        key = tuple(inferred.values())
        kernel = self.kernels.get(key)
        if kernel is None:
            kernel = self.kernels[key] = self._build({**inferred, **self.shapes})
        self._last = kernel
        return kernel, [values[name] for name in names]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or self._last is None:
            raise AttributeError(
                f"{name}: this kernel is traced on its first call (from its arguments' shapes), "
                "so call it first, or give every parameter's shape with shapes="
            )
        return getattr(self._last, name)
