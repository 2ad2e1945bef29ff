"""The compiled callable every backend returns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphc.errors import EvaluationError
from graphc.graph import Graph


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
        finish: Callable[[Any], Any] | None = None,
    ) -> None:
        self.graph = graph
        self.backend = backend
        self.source = source
        self.variables: tuple[str, ...] = tuple(graph.variables if variables is None else variables)
        self.outputs: tuple[str, ...] = tuple(graph.output_names)
        self.wrt: tuple[str, ...] = tuple(wrt)  # the variables a derivative kernel differentiates by
        self.mode = mode  # how a Jacobian was accumulated: "forward" or "reverse"
        self._function = function
        self._finish = finish  # shapes the raw outputs (a tuple of partials, a Jacobian array...)
        self._index = {name: i for i, name in enumerate(self.variables)}

    def __repr__(self) -> str:
        return f"<graphc.Kernel {self.backend}: ({', '.join(self.variables)}) -> ({', '.join(self.outputs)})>"

    def ordered(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        """The call's arguments in ``variables`` order, every variable given exactly once."""
        names = self.variables
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

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        if kwargs or len(args) != len(self.variables):
            args = self.ordered(args, kwargs)
        try:
            result = self._function(*args)
        except (TypeError, ValueError, OverflowError):
            self.diagnose(args)  # bad arguments: raise a precise EvaluationError instead
            raise
        return result if self._finish is None else self._finish(result)

    def derived(
        self, *, wrt: Sequence[str] = (), mode: str | None = None, finish: Callable[[Any], Any]
    ) -> Kernel:
        """This kernel with its results shaped by ``finish`` (used by grad, jacobian, ...)."""
        return Kernel(
            self.graph,
            self._function,
            backend=self.backend,
            source=self.source,
            variables=self.variables,
            wrt=wrt,
            mode=mode,
            finish=finish,
        )
