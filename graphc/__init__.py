"""graphc: a symbolic computational-graph compiler.

Text (or a SymPy expression) becomes a hash-consed networkx DAG; graphs are differentiated
(graph to graph, by any of several methods) and compiled to fast callables.

>>> import graphc
>>> f = graphc.compile("sin(x*y) + exp(x)")
>>> f.variables
('x', 'y')
>>> round(float(f(x=0.0, y=2.0)), 12)
1.0
>>> g = graphc.grad("sin(x*y) + exp(x)")
>>> [round(float(v), 12) for v in g(x=0.0, y=2.0)]
[3.0, 0.0]
"""

from typing import TYPE_CHECKING  # deleted below: the namespace holds only the public API

from graphc.api import (
    as_graph,
    compile,
    count_paths,
    derivative,
    differentiate,
    grad,
    hessian,
    jacobian,
    jvp,
    value_and_grad,
    vjp,
)
from graphc.backends import BACKENDS

# robustness: NaN provenance and resource limits (issue 7)
from graphc.check import CheckResult, check
from graphc.diff import METHODS, SymbolicError, TooManyPathsError

# caller-provided outputs, Kernel.into (issue 6)
from graphc.errors import (
    ArityError,
    BackendError,
    DataError,
    EvaluationError,
    GraphcError,
    OutputError,
    ParseError,
    ResourceError,
    TraceError,
    UnknownFunctionError,
    UnknownVariableError,
)
from graphc.graph import MAX_NODES, Graph

# implicit differentiation (issue 8)
from graphc.implicit import SingularError, implicit
from graphc.kernel import Kernel
from graphc.parse import parse

# Python functions in: tracing (issue 31); graphc.numpy is its NumPy-like namespace
from graphc.tracing import Traced, sym, trace

# user-defined blocks and the seeds at block level (issue 27)
from graphc.user_blocks import BlockRegistry, block, blocks, check_block, forget

__version__ = "0.1.0"

if TYPE_CHECKING:
    # SciPy's calling convention, sparse Jacobians and Hessians (issue 29; SciPy is imported on use)
    from graphc.optimize import objective, residuals
    from graphc.sparse import SparseKernel, hessian_sparsity, jacobian_sparsity
    from graphc.sympy_bridge import from_sympy
del TYPE_CHECKING

# The public names imported when first asked for, by the module that defines them: ``import graphc``
# imports neither SymPy (slow to import, and large: only the symbolic method, SymPy input and
# printing need it) nor the modules only SciPy users call, so a first gradient does not wait for them.
_LAZY = {
    "from_sympy": "graphc.sympy_bridge",
    "objective": "graphc.optimize",
    "residuals": "graphc.optimize",
    "SparseKernel": "graphc.sparse",
    "hessian_sparsity": "graphc.sparse",
    "jacobian_sparsity": "graphc.sparse",
}


# and their modules, which ``import graphc`` used to bind: ``graphc.optimize.Residuals`` still works
_LAZY_MODULES = frozenset({"optimize", "sparse"})


def __getattr__(name: str) -> object:
    """A name of ``_LAZY`` (or one of its modules), imported when first asked for, then bound here."""
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(f"graphc.{name}")  # the import binds it here
    if name not in _LAZY:
        raise AttributeError(f"module 'graphc' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "BACKENDS",
    "MAX_NODES",
    "METHODS",
    "ArityError",
    "BackendError",
    "BlockRegistry",
    "CheckResult",
    "DataError",
    "EvaluationError",
    "Graph",
    "GraphcError",
    "Kernel",
    "OutputError",
    "ParseError",
    "ResourceError",
    "SingularError",
    "SparseKernel",
    "SymbolicError",
    "TooManyPathsError",
    "TraceError",
    "Traced",
    "UnknownFunctionError",
    "UnknownVariableError",
    "as_graph",
    "block",
    "blocks",
    "check",
    "check_block",
    "compile",
    "count_paths",
    "derivative",
    "differentiate",
    "forget",
    "from_sympy",
    "grad",
    "hessian",
    "hessian_sparsity",
    "implicit",
    "jacobian",
    "jacobian_sparsity",
    "jvp",
    "objective",
    "parse",
    "residuals",
    "sym",
    "trace",
    "value_and_grad",
    "vjp",
]


def __dir__() -> list[str]:
    """The public API and ``__version__``; not the submodules that importing it binds here."""
    return [*__all__, "__version__"]
