"""SciPy's calling convention: functions of one flat vector ``x`` in ``wrt`` order.

:func:`objective` wraps a one-output function for ``scipy.optimize.minimize``; :func:`residuals`
wraps a vector function (one output per residual, or one output evaluated over data arrays: one
residual per data point) for ``scipy.optimize.least_squares`` and ``scipy.optimize.root``. Both
compile their kernels when first asked (a Hessian is only built if ``hess`` is called), and
variables outside ``wrt`` take their values from ``data``.

>>> import numpy as np
>>> obj = objective("(x - 1)**2 + 10*(y - x**2)**2", ["x", "y"])
>>> obj.value_and_grad(np.array([0.0, 0.0]))
(1.0, array([-2.,  0.]))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from graphc import diff
from graphc.api import Wrt, as_graph, hessian, jacobian
from graphc.backends import compile_graph
from graphc.diff.common import resolve_wrt
from graphc.errors import EvaluationError, GraphcError
from graphc.graph import Graph
from graphc.kernel import Kernel


class _Point:
    """Assembles a kernel's arguments (``variables`` order) from ``x`` (``wrt`` order) and ``data``."""

    def __init__(
        self, graph: Graph, wrt: Sequence[str], data: Mapping[str, Any] | None, arrays: bool
    ) -> None:
        data = dict(data or {})
        self.variables = graph.variables
        self.wrt = tuple(wrt)
        for name in data:
            if name in self.wrt:
                raise GraphcError(f"data gives variable '{name}', which is in wrt (x holds its value)")
            if name not in self.variables:
                known = ", ".join(self.variables) or "none"
                raise GraphcError(
                    f"data gives '{name}', which is not a variable (the variables are: {known})"
                )
        missing = [name for name in self.variables if name not in self.wrt and name not in data]
        if missing:
            raise GraphcError(f"variable '{missing[0]}' is neither in wrt nor given in data")
        values = {name: np.asarray(value, dtype=np.float64) for name, value in data.items()}
        shapes = {value.shape for value in values.values() if value.size != 1}
        if len(shapes) > 1 or any(len(shape) != 1 for shape in shapes):
            listed = ", ".join(f"{name}{value.shape}" for name, value in values.items())
            raise GraphcError(f"data must be numbers or 1-D arrays of one length, got {listed}")
        self.points = next(iter(shapes))[0] if shapes else None  # data points, or None for numbers only
        if self.points is not None and not arrays:
            raise GraphcError(
                "objective takes numbers in data (one value); for one term per data point use residuals"
            )
        index = {name: i for i, name in enumerate(self.variables)}  # not list.index: 20,000 names
        self._position = np.array([index[name] for name in self.wrt], dtype=np.intp)
        self._template = np.zeros(len(self.variables))
        self._arrays: dict[int, np.ndarray] = {}
        for name, value in values.items():
            if value.size == 1:
                self._template[index[name]] = value.item()
            else:
                self._arrays[index[name]] = value

    def flat(self, x: Any) -> np.ndarray:
        """The point as one vector in ``variables`` order (data of numbers only)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (len(self.wrt),):
            raise EvaluationError(
                f"x must be a flat vector of {len(self.wrt)} values (wrt order), got shape {x.shape}"
            )
        point = self._template.copy()
        point[self._position] = x
        return point

    def args(self, x: Any) -> list[Any]:
        """The kernel's arguments: numbers, and the data arrays where given."""
        args: list[Any] = list(self.flat(x))
        for position, value in self._arrays.items():
            args[position] = value
        return args


def _rows(result: Any) -> np.ndarray:
    """A kernel's result over data points as one array, a row per output (one output or a tuple)."""
    return np.asarray(result if isinstance(result, tuple) else (result,), dtype=np.float64)


class _FlatFunction:
    """What :class:`Objective` and :class:`Residuals` share: the graph, ``wrt``, the options, and
    the point assembler; a subclass checks the graph first (``_check``) and compiles its first
    kernel last (``_compile``)."""

    _DATA_ARRAYS = False  # whether data may hold arrays (one residual per data point)

    def __init__(
        self,
        expr: Any,
        wrt: Wrt = None,
        backend: str = "numpy",
        *,
        data: Mapping[str, Any] | None = None,
        sparse: bool = False,
        threads: int | None = None,
    ) -> None:
        self.graph = as_graph(expr)
        self._check()
        self.wrt = tuple(resolve_wrt(self.graph, wrt))
        self.backend, self.sparse, self.threads = backend, sparse, threads
        self._point = _Point(self.graph, self.wrt, data, arrays=self._DATA_ARRAYS)
        self._compile()

    def _check(self) -> None:
        """Refuse a graph this kind of function cannot wrap (before ``wrt`` is resolved)."""

    def _compile(self) -> None:
        """Compile what every call needs (the rest is compiled when first asked)."""


class Objective(_FlatFunction):
    """A one-output function of one flat vector: ``fun``, ``jac``, ``value_and_grad``, ``hess``.

    ``value_and_grad`` fits ``minimize(obj.value_and_grad, x0, jac=True)``; ``fun`` and ``jac``
    share one compiled value-and-gradient kernel and its last result, so SciPy's calls of both at
    one point compute once. ``hess`` is dense, or a ``csr_matrix`` with ``sparse=True``.
    """

    def _check(self) -> None:
        if len(self.graph.outputs) != 1:
            raise GraphcError(
                f"objective needs a function with one output; this one has {len(self.graph.outputs)}: "
                "use residuals for several"
            )

    def _compile(self) -> None:
        derivative = diff.differentiate(self.graph, list(self.wrt))
        self._value_and_grad = compile_graph(derivative, self.backend, threads=self.threads)
        self._last: tuple[np.ndarray, float, np.ndarray] | None = None
        self._hessian: Any = None

    def value_and_grad(self, x: Any) -> tuple[float, np.ndarray]:
        """``(f(x), ∇f(x))``: a float and a flat array in ``wrt`` order."""
        point = self._point.flat(x)
        last = self._last
        if last is not None and np.array_equal(last[0], point):
            return last[1], last[2].copy()
        result = self._value_and_grad.point_into(point, np.empty(len(self.wrt) + 1))
        value, gradient = float(result[0]), result[1:]
        self._last = (point, value, gradient)
        return value, gradient.copy()

    def fun(self, x: Any) -> float:
        """``f(x)``."""
        return self.value_and_grad(x)[0]

    def jac(self, x: Any) -> np.ndarray:
        """``∇f(x)``, a flat array in ``wrt`` order."""
        return self.value_and_grad(x)[1]

    def hess(self, x: Any) -> Any:
        """The Hessian at ``x``: an array ``(n, n)``, or a ``csr_matrix`` with ``sparse=True``."""
        point = self._point.flat(x)
        if self._hessian is None:
            self._hessian = hessian(
                self.graph, list(self.wrt), backend=self.backend, threads=self.threads, sparse=self.sparse
            )
        if self.sparse:
            return self._hessian.at(point)
        n = len(self.wrt)
        return self._hessian.point_into(point, np.empty(n * n)).reshape(n, n)


class Residuals(_FlatFunction):
    """A vector of residuals of one flat vector: ``fun``, ``jac``, ``fun_and_jac``.

    The residuals are the outputs (one per residual), or, with data arrays, every output at every
    data point, point by point (``r[p*outputs + i]`` is output ``i`` at point ``p``). ``jac`` is an
    array ``(residuals, len(wrt))``, or a ``csr_matrix`` with ``sparse=True``.
    """

    _DATA_ARRAYS = True

    def _compile(self) -> None:
        self._function = compile_graph(self.graph, self.backend, threads=self.threads)
        self._jacobian: Any = None

    def fun(self, x: Any) -> np.ndarray:
        """The residuals at ``x``, a flat array."""
        if self._point.points is None:
            return self._function.point_into(self._point.flat(x), np.empty(len(self.graph.outputs)))
        result = self._function(*self._point.args(x))
        values = _rows(result)
        return values.T.ravel()  # (outputs, points) -> point by point

    @property
    def jacobian_kernel(self) -> Any:
        """The compiled Jacobian (compiled when first asked): with ``sparse=True`` a
        :class:`graphc.sparse.SparseKernel`, whose ``info`` has the colours and nonzeros."""
        if self._jacobian is None:
            self._jacobian = self._compile_jacobian()
        return self._jacobian

    def jac(self, x: Any) -> Any:
        """The Jacobian at ``x``: one row per residual, one column per ``wrt`` variable."""
        outputs, n = len(self.graph.outputs), len(self.wrt)
        kernel = self.jacobian_kernel
        if self.sparse:
            if self._point.points is None:
                return kernel.at(self._point.flat(x))
            from graphc.sparse import scipy_sparse

            return scipy_sparse().vstack(kernel(*self._point.args(x)), format="csr")
        if self._point.points is None:
            return kernel.point_into(self._point.flat(x), np.empty(outputs * n)).reshape(outputs, n)
        result = kernel(*self._point.args(x))
        entries = _rows(result)
        # (outputs*n, points) -> (points, outputs, n): residuals point by point
        return entries.reshape(outputs, n, -1).transpose(2, 0, 1).reshape(-1, n)

    def fun_and_jac(self, x: Any) -> tuple[np.ndarray, Any]:
        """``(fun(x), jac(x))``, for ``scipy.optimize.root(r.fun_and_jac, x0, jac=True)``."""
        return self.fun(x), self.jac(x)

    def _compile_jacobian(self) -> Any:
        if self.sparse:
            return jacobian(
                self.graph, list(self.wrt), backend=self.backend, threads=self.threads, sparse=True
            )
        # the partials' kernel, row by row: its layout is this module's, whatever a dense
        # jacobian kernel's batch placement is
        outputs = len(self.graph.outputs)
        method = "forward" if len(self.wrt) < outputs else "dp"
        derivative = diff.differentiate(self.graph, list(self.wrt), method)
        partials = derivative.copy()
        partials.set_outputs(derivative.outputs[outputs:], derivative.output_names[outputs:])
        kernel: Kernel = compile_graph(partials, self.backend, threads=self.threads)
        return kernel


def objective(
    expr: Any,
    wrt: Wrt = None,
    backend: str = "numpy",
    *,
    data: Mapping[str, Any] | None = None,
    sparse: bool = False,
    threads: int | None = None,
) -> Objective:
    """A one-output function in SciPy's convention (see :class:`Objective`).

    >>> from scipy.optimize import minimize
    >>> obj = objective("(x - 1)**2 + 10*(y - x**2)**2", ["x", "y"])
    >>> result = minimize(obj.value_and_grad, [-1.0, 1.0], jac=True)
    >>> bool(result.success), [round(float(v), 5) for v in result.x]
    (True, [1.0, 1.0])
    """
    return Objective(expr, wrt, backend, data=data, sparse=sparse, threads=threads)


def residuals(
    expr: Any,
    wrt: Wrt = None,
    backend: str = "numpy",
    *,
    data: Mapping[str, Any] | None = None,
    sparse: bool = False,
    threads: int | None = None,
) -> Residuals:
    """Residuals in SciPy's convention (see :class:`Residuals`).

    >>> import numpy as np
    >>> from scipy.optimize import least_squares
    >>> t = np.linspace(0.0, 1.0, 50)
    >>> r = residuals("a*exp(b*t) - y", ["a", "b"], data={"t": t, "y": 2.0 * np.exp(-1.5 * t)})
    >>> fit = least_squares(r.fun, [1.0, 0.0], jac=r.jac)
    >>> [round(float(v), 6) for v in fit.x]
    [2.0, -1.5]
    """
    return Residuals(expr, wrt, backend, data=data, sparse=sparse, threads=threads)
