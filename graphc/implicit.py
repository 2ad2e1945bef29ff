"""Implicit differentiation: the derivative of ``z(x)`` defined by equations ``g(x, z) = 0``.

Where ``∂g/∂z`` is invertible, the implicit function theorem says the equations define ``z``
locally as a function of ``x``, and differentiating ``g(x, z(x)) = 0`` gives
``∂g/∂x + ∂g/∂z · dz/dx = 0``, so ``dz/dx = −(∂g/∂z)⁻¹ ∂g/∂x``.

- One equation in one unknown: ``dz/dx = −(∂g/∂x)/(∂g/∂z)`` is built as a graph (one node per
  input ``x``), so it prints as a formula (``−x/z`` for ``x² + z² − 1``) and compiles like any other.
- A system of ``m`` equations in ``m`` unknowns: the blocks ``∂g/∂z`` (m×m) and ``∂g/∂x`` are
  built as a graph and compiled; the linear system is solved numerically at each point.

Either way the partials come from any differentiation method (``dp`` by default), and a point
where ``∂g/∂z`` is singular raises :class:`SingularError` instead of returning ``inf``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.backends import compile_graph
from graphc.diff import differentiate, partial_name
from graphc.errors import GraphcError
from graphc.graph import Graph
from graphc.kernel import Kernel

Names = str | Sequence[str]


class SingularError(GraphcError, ArithmeticError):
    """``∂g/∂z`` is singular: the equations do not define ``z`` as a function of ``x`` there."""


def _names(names: Names, what: str) -> list[str]:
    """A list of names from a comma-separated string or a sequence, each given once."""
    if not isinstance(names, (str, list, tuple)):
        raise GraphcError(f"{what} must name one or more variables, got {names!r}")
    result = [part.strip() for part in names.split(",")] if isinstance(names, str) else list(names)
    if not result or any(not isinstance(name, str) or not name for name in result):
        raise GraphcError(f"{what} must name one or more variables, got {names!r}")
    twice = sorted({name for name in result if result.count(name) > 1})
    if twice:
        raise GraphcError(f"{what} names variable '{twice[0]}' twice")
    return result


def derivative_name(unknown: str, variable: str) -> str:
    """The name of the total derivative of an unknown along the solution: ``dz/dx``."""
    return f"d{unknown}/d{variable}"


def implicit_graph(g: Graph, solve_for: Names, wrt: Names | None = None, method: str = "dp") -> Graph:
    """The graph of implicit derivatives of ``g(x, z) = 0``.

    With one unknown its outputs are ``dz/dx = −(∂g/∂x)/(∂g/∂z)`` for each ``x`` in ``wrt``, then
    ``∂g/∂z`` itself (the pivot, checked at evaluation). With ``m`` unknowns they are the blocks
    ``∂g_i/∂z_j`` (m×m) and ``∂g_i/∂x_k`` (m×n), row by row. ``info`` records ``solve_for``,
    ``wrt`` and ``method``. ``wrt=None`` means every variable that is not an unknown.

    >>> from graphc.parse import parse
    >>> from graphc.printing import formula
    >>> d = implicit_graph(parse("x^2 + z^2 - 1"), "z")
    >>> d.output_names
    ['dz/dx', '∂f/∂z']
    >>> formula(d, d.outputs[0])
    '-x/z'
    """
    unknowns = _names(solve_for, "solve_for")
    for name in unknowns:
        g.variable(name)  # raises UnknownVariableError naming the variables there are
    if wrt is None:
        inputs = [name for name in g.variables if name not in unknowns]
    else:
        inputs = _names(wrt, "wrt")
        for name in inputs:
            g.variable(name)
        both = [name for name in inputs if name in unknowns]
        if both:
            raise GraphcError(f"'{both[0]}' is both an unknown (solve_for) and an input (wrt)")
    if not inputs:
        raise GraphcError(f"the equations have no variable besides {', '.join(unknowns)} to differentiate by")
    equations = len(g.outputs)
    if equations != len(unknowns):
        raise GraphcError(
            f"{equations} equation{'s' * (equations != 1)} in {len(unknowns)} "
            f"unknown{'s' * (len(unknowns) != 1)} ({', '.join(unknowns)}): implicit differentiation "
            "needs as many equations as unknowns"
        )
    columns = inputs + unknowns
    full = differentiate(g, columns, method)
    partial = full.outputs[equations:]  # row i holds ∂g_i/∂x_1..n, then ∂g_i/∂z_1..m

    def entry(i: int, j: int) -> int:
        return partial[i * len(columns) + j]

    n = len(inputs)
    result = full  # a new graph already: its outputs are ours to set
    if equations == 1:
        pivot = entry(0, n)
        if result.const_value(pivot) == 0.0:
            raise SingularError(
                f"the equation does not depend on {unknowns[0]}: ∂{g.output_names[0]}/∂{unknowns[0]} is 0 "
                "everywhere, so it does not define it"
            )
        nodes = [result.neg(result.div(entry(0, k), pivot)) for k in range(n)]
        names = [derivative_name(unknowns[0], x) for x in inputs]
        result.set_outputs([*nodes, pivot], [*names, partial_name(g.output_names[0], unknowns[0])])
    else:
        nodes, names = [], []
        for block in (range(n, n + equations), range(n)):  # ∂g/∂z, then ∂g/∂x
            for i, output in enumerate(g.output_names):
                for j in block:
                    nodes.append(entry(i, j))
                    names.append(partial_name(output, columns[j]))
        result.set_outputs(nodes, names)
    result.info = {"method": method, "solve_for": unknowns, "wrt": inputs, "equations": equations}
    return result


def _where(index: tuple[int, ...]) -> str:
    return " at this point" if not index else f" at batch index {index}"


def _finish_one(graph: Graph) -> Any:
    unknown, inputs = graph.info["solve_for"][0], graph.info["wrt"]
    pivot_name = graph.output_names[-1]

    def finish(result: Any) -> tuple[Any, ...]:
        values = result if isinstance(result, tuple) else (result,)
        pivot = np.asarray(values[-1])
        zero = np.argwhere(pivot == 0.0)
        if len(zero):
            raise SingularError(
                f"{pivot_name} is 0{_where(tuple(int(i) for i in zero[0]))}: the implicit function "
                f"theorem needs it nonzero, and {unknown} is not locally a function of "
                f"{', '.join(inputs)} there"
            )
        return tuple(values[:-1])

    return finish


def _finish_system(graph: Graph) -> Any:
    unknowns, inputs = graph.info["solve_for"], graph.info["wrt"]
    m, n = len(unknowns), len(inputs)
    eps = np.finfo(np.float64).eps

    def finish(result: Any) -> np.ndarray:
        entries = np.stack(np.broadcast_arrays(*result))
        batch = entries.shape[1:]
        a = np.moveaxis(entries[: m * m].reshape(m, m, *batch), (0, 1), (-2, -1))
        b = np.moveaxis(entries[m * m :].reshape(m, n, *batch), (0, 1), (-2, -1))
        solution = np.full(batch + (m, n), np.nan)
        finite = np.isfinite(a).all(axis=(-2, -1)) & np.isfinite(b).all(axis=(-2, -1))
        if finite.any():
            a_ok = a[finite]
            singular = np.argwhere(finite)[np.linalg.cond(a_ok) * eps >= 1.0]
            if len(singular):
                raise SingularError(
                    f"∂g/∂({', '.join(unknowns)}) is singular{_where(tuple(int(i) for i in singular[0]))}: "
                    f"the implicit function theorem needs it invertible, and {', '.join(unknowns)} are "
                    f"not locally functions of {', '.join(inputs)} there"
                )
            solution[finite] = -np.linalg.solve(a_ok, b[finite])
        return solution

    return finish


def implicit(
    g: Any, solve_for: Names, wrt: Names | None = None, method: str = "dp", backend: str = "numpy"
) -> Kernel:
    """A kernel for the derivatives of the unknowns ``solve_for`` defined by ``g(x, z) = 0``.

    ``g`` is program text, a Graph or a SymPy expression, with one output per equation.
    Call the kernel with every variable (inputs and unknowns: a point on the solution set), by
    keyword or in ``kernel.variables`` order. With one unknown it returns the tuple of ``dz/dx``
    in ``kernel.wrt`` order (like ``grad``); with several, an array of shape
    ``(*batch_shape, unknowns, len(wrt))`` (like ``jacobian``: batch axes first). Raises :class:`SingularError` where
    ``∂g/∂z`` is zero (one unknown) or numerically singular (a system) at any of the points.

    >>> k = implicit("x^2 + z^2 - 1", solve_for="z")
    >>> k.wrt, k(x=0.6, z=0.8)
    (('x',), (np.float64(-0.7499999999999999),))
    >>> j = implicit("x + y + z, x - y + 2*z", solve_for="y,z")
    >>> j(x=3.0, y=-1.0, z=-2.0).round(12).tolist()  # rows y, z; one column x
    [[-0.333333333333], [-0.666666666667]]
    """
    from graphc.api import as_graph

    return compile_implicit(implicit_graph(as_graph(g), solve_for, wrt, method), backend)


def compile_implicit(graph: Graph, backend: str = "numpy") -> Kernel:
    """The kernel of an :func:`implicit_graph`: the derivatives, checked for singular points."""
    return compile_graph(graph, backend).derived(wrt=graph.info["wrt"], result=("implicit",))


def finish(graph: Graph) -> Any:
    """The function turning an :func:`implicit_graph`'s outputs into the kernel's result."""
    return _finish_one(graph) if graph.info["equations"] == 1 else _finish_system(graph)
