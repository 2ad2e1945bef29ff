"""The hash-consed computational graph.

A :class:`Graph` owns a ``networkx.MultiDiGraph`` (``graph.nx``) whose nodes are integers in
creation order (a topological order) and which has one edge per operand slot, from operand to
user, keyed by the slot number: ``x*x`` has two parallel edges. Node attributes: ``op``, ``args``
(operand nodes in slot order, the authority on argument order), ``value`` for constants and
``name`` for variables, ``shape`` (a tuple, ``()`` for a scalar; see graphc.shapes) and, for a
block op, ``params``.

Tensors. A node's value is a tensor of its ``shape``: each dimension an int or a name bound at
call time. A variable's shape is declared (``var(name, shape)``); every other node's shape is a
function of its op, operands and params (an elementwise op broadcasts its operands' shapes as
NumPy does; a block op's entry has a ``shape`` rule). A block op's *params* are a hashable tuple
that the op's entry defines (``sum``: ``(axes, keepdims)`` with axes in ``0..rank-1``;
``transpose``: the permutation; ``reshape``/``broadcast``: the target shape; ``index``: one item
per leading axis, an int or a ``(start, stop, step)`` triple, all normalised to non-negative
values); they are part of the hash-consing key, ``(op, *args, params)``, so the key determines the
shape. A program with no declared tensor builds exactly the graph it built before shapes existed:
every node then has shape ``()`` and no params, and :attr:`Graph.tensor` is False.

Nodes are made only through the builder methods (:meth:`var`, :meth:`const`, :meth:`apply` and
the arithmetic shorthands), which hash-cons: the same op on the same operands returns the
existing node, commutative operands are put in canonical order, and the few rewrites of the op
table are applied (graphc's algebra, not always IEEE-exact: see graphc/policy.py's REWRITES).
Nothing here recurses over the graph.
"""

from __future__ import annotations

import contextlib
import gc
import keyword
import math
import numbers
import struct
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from graphc.errors import DataError, GraphcError, ResourceError, UnknownVariableError
from graphc.ops import ALL_OPS, CONST, OPS, VAR, Op
from graphc.shapes import Shape, ShapeError, broadcast

_ADD, _SUB, _MUL, _DIV, _POW, _NEG = (OPS[name] for name in ("add", "sub", "mul", "div", "pow", "neg"))
_bits = struct.Struct("<d").pack  # a float's bytes: tells 0.0 from -0.0

if TYPE_CHECKING:
    import networkx as nx

# The default cap on a graph's size. A node costs about 220 bytes here (its op, operands, data and
# hash-consing key; measured with tracemalloc on an 800,000-node graph), and parsing holds the
# tokens and a pruned copy besides: 10,000,000 nodes is roughly 2-4 GB.
MAX_NODES = 10_000_000
DATA_FORMAT = "graphc-graph 1"  # the version of Graph.to_data's plain form


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a graph is built, differentiated or compiled
    (a context manager, or a decorator of a function that does so).

    Building allocates a few tuples per node (its operands, its hash-consing key) that live as long
    as the graph. The collector runs after every few hundred allocations and, now and then, walks
    every object the process holds, so a build of a few hundred thousand nodes walked its own
    growing graph again and again, a large part of its time (bench/RESULTS.md, the sparse part).
    Nodes hold no reference cycles: nothing waits on the collector, and the cycles that other code
    makes meanwhile are collected once it is resumed. Only the outermost pause resumes it; a
    collector the caller had disabled stays disabled.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def checked_max_nodes(value: Any) -> int | None:
    """``value`` as a node cap: a whole number >= 1, or None for no cap."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise GraphcError(f"max_nodes must be a whole number >= 1 or None, got {value!r}")


class Graph:
    """A DAG of scalar and tensor operations with named outputs.

    >>> g = Graph()
    >>> x = g.var("x")
    >>> g.set_outputs([g.mul(x, x)])
    >>> g.nx.number_of_edges(), g.stats()["depth"]
    (2, 1)
    """

    max_nodes: int | None = MAX_NODES  # building a node beyond this raises ResourceError; None: no cap

    def __init__(self) -> None:
        # The authority is these flat, creation-ordered lists: walking them is far faster than
        # walking networkx, which matters at 100,000+ nodes. ``nx`` mirrors them on demand (and
        # networkx is imported only then: its import is a large part of a short `graphc grad --at`).
        self._op: list[str] = []
        self._args: list[tuple[int, ...]] = []
        self._data: list[Any] = []  # a constant's value, a variable's name, a block op's params, else None
        self._shape: list[Shape] = []  # every node's shape: () for a scalar
        self.tensor = False  # some node is not a scalar, or is a block op
        # the hash-consing table, one dict per op: an elementwise node by its operands (the node's
        # own ``args`` tuple is the key: no second tuple per node), a block op's by (operands,
        # params), a constant by its bits, a variable by its name
        self._table: dict[str, dict[Any, int]] = {}
        # constants by value, beside the table's by bits, for the builder's commonest call (a rule's
        # const(1.0)...): neither zero (0.0 == -0.0) nor NaN (never equal) is kept here
        self._constants: dict[float, int] = {}
        self._variables: dict[str, int] = {}
        self._nx: nx.MultiDiGraph | None = None
        self.outputs: list[int] = []
        self.output_names: list[str] = []
        self.info: dict[str, Any] = {}  # what a transformation records: method, wrt, path counts...
        self.names: dict[int, str] = {}  # the program's binding names of nodes (``u`` of ``u = x*y``)
        # nodes a rule derives from others and asks for again, by the rule's key (graphc.ops: the tie
        # count of a max chain): only a shortcut, as building one again finds the same node
        self.derived: dict[tuple[Any, ...], int] = {}

    @property
    def nx(self) -> nx.MultiDiGraph:
        """The graph as a networkx MultiDiGraph: one edge per operand slot, keyed by slot number."""
        if self._nx is None:
            import networkx

            self._nx = networkx.MultiDiGraph()
        mirrored = self._nx.number_of_nodes()
        if mirrored < len(self._op):
            new = range(mirrored, len(self._op))
            self._nx.add_nodes_from((node, self.attrs(node)) for node in new)
            self._nx.add_edges_from(
                (arg, node, slot) for node in new for slot, arg in enumerate(self._args[node])
            )
        return self._nx

    # --- reading ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._op)

    def __repr__(self) -> str:
        return f"<graphc.Graph: {len(self)} nodes, outputs {self.output_names}, variables {self.variables}>"

    @property
    def variables(self) -> list[str]:
        """The names of the input variables, sorted."""
        return sorted(self._variables)

    def variable(self, name: str) -> int:
        """The node of variable ``name``."""
        try:
            return self._variables[name]
        except KeyError:
            known = ", ".join(self.variables) or "none"
            raise UnknownVariableError(f"unknown variable '{name}' (the variables are: {known})") from None

    def op(self, node: int) -> str:
        return self._op[node]

    def args(self, node: int) -> tuple[int, ...]:
        return self._args[node]

    @property
    def ops(self) -> Sequence[str]:
        """Every node's op name, indexed by node: the graph's own list, for fast walks (read only)."""
        return self._op

    @property
    def operands(self) -> Sequence[tuple[int, ...]]:
        """Every node's operands, indexed by node: the graph's own list, for fast walks (read only;
        it grows as nodes are built)."""
        return self._args

    @property
    def data(self) -> Sequence[Any]:
        """Every node's data, indexed by node: a constant's value, a variable's name, a block op's
        params, else None (the graph's own list, for fast walks; read only)."""
        return self._data

    def name(self, node: int) -> str:
        """A variable node's name."""
        assert self._op[node] == VAR
        return self._data[node]

    def shape(self, node: int) -> Shape:
        """The node's shape: ``()`` for a scalar."""
        return self._shape[node]

    @property
    def shapes(self) -> Sequence[Shape]:
        """Every node's shape, indexed by node (read only)."""
        return self._shape

    def params(self, node: int) -> Any:
        """A block op node's params (see the module docstring), else None."""
        op = self._op[node]
        return None if op in (CONST, VAR) else self._data[node]

    def attrs(self, node: int) -> dict[str, Any]:
        """The node's attributes as networkx holds them: op, args, shape, and value, name or params."""
        attrs: dict[str, Any] = {"op": self._op[node], "args": self._args[node], "shape": self._shape[node]}
        if self._op[node] == CONST:
            attrs["value"] = self._data[node]
        elif self._op[node] == VAR:
            attrs["name"] = self._data[node]
        elif self._data[node] is not None:
            attrs["params"] = self._data[node]
        return attrs

    def const_value(self, node: int) -> float | None:
        """The value of a constant node, or None for any other node."""
        return self._data[node] if self._op[node] == CONST else None

    def users(self) -> list[int]:
        """How many operand slots use each node (the out-degree), indexed by node."""
        count = [0] * len(self._op)
        for args in self._args:
            for arg in args:
                count[arg] += 1
        return count

    def reachable(self, roots: Iterable[int] | None = None) -> list[bool]:
        """Which nodes the ``roots`` (default: the outputs) depend on, indexed by node."""
        keep = [False] * len(self._op)
        for root in self.outputs if roots is None else roots:
            keep[root] = True
        for node in range(len(self._op) - 1, -1, -1):  # users come after their operands
            if keep[node]:
                for arg in self._args[node]:
                    keep[arg] = True
        return keep

    def stats(self) -> dict[str, Any]:
        """Nodes, edges, a histogram of ops (leaves as ``var``/``const``) and depth (longest path)."""
        depth = [0] * len(self._op)
        for node, args in enumerate(self._args):
            if args:
                depth[node] = 1 + max(depth[arg] for arg in args)
        return {
            "nodes": len(self._op),
            "edges": sum(len(args) for args in self._args),
            "ops": dict(sorted(Counter(self._op).items())),
            "depth": max(depth, default=0),
        }

    # --- building --------------------------------------------------------------------------------

    def _op_table(self, op: str) -> dict[Any, int]:
        """The hash-consing table of ``op``'s nodes (made on first use)."""
        table = self._table.get(op)
        if table is None:
            table = self._table[op] = {}
        return table

    def _too_many(self) -> ResourceError:
        return ResourceError(
            f"the graph would exceed {self.max_nodes:,} nodes (the max_nodes limit; each node takes "
            "about 220 bytes): raise it with --max-nodes or max_nodes= if the memory is there"
        )

    def _new(self, key: Any, op: str, args: tuple[int, ...], data: Any = None, shape: Shape = ()) -> int:
        node = len(self._op)
        cap = self.max_nodes
        if cap is not None and node >= cap:
            raise self._too_many()
        self._op.append(op)
        self._args.append(args)
        self._data.append(data)
        self._shape.append(shape)
        if shape:
            self.tensor = True
        self._op_table(op)[key] = node
        return node

    def var(self, name: str, shape: Shape = ()) -> int:
        """The node of input variable ``name`` of the given shape (made on first use)."""
        node = self._variables.get(name)
        if node is None:
            node = self._new(name, VAR, (), name, tuple(shape))
            self._variables[name] = node
        elif self._shape[node] != tuple(shape):
            raise ShapeError(f"variable '{name}' has shape {list(self._shape[node])}, not {list(shape)}")
        return node

    def const(self, value: float) -> int:
        """The node of a float constant; equal values (bit for bit) share one node."""
        if type(value) is float:
            node = self._constants.get(value)
            if node is not None:
                return node
        value = float(value)
        nan = math.isnan(value)
        if nan:
            value = math.nan  # one canonical NaN
        key = _bits(value)
        node = self._op_table(CONST).get(key)
        if node is None:
            node = self._new(key, CONST, (), value)
        if value != 0.0 and not nan:
            self._constants[value] = node
        return node

    def apply(self, op: str, *args: int, params: Any = None) -> int:
        """The node of ``op`` applied to ``args``, after folding, rewriting and hash-consing.

        A block op takes its ``params``; a shape its operands cannot take raises ShapeError.
        """
        spec = ALL_OPS[op]
        if len(args) != spec.arity and not (spec.variadic and len(args) > spec.arity):
            raise GraphcError(f"{op} takes {spec.arity} operand(s), got {len(args)}")
        if spec.block:
            return self.block(spec, args, params)
        return self.applied(spec, args)

    def block(self, spec: Op, args: tuple[int, ...], params: Any) -> int:
        """The node of block op ``spec`` on ``args`` with ``params`` (hash-consed with them)."""
        assert spec.shape is not None, spec.name
        shape = spec.shape(tuple(self._shape[a] for a in args), params)
        key = (args, params)
        node = self._op_table(spec.name).get(key)
        if node is None:
            node = self._new(key, spec.name, args, params, shape)
            self.tensor = True
        return node

    def applied(self, spec: Op, args: tuple[int, ...]) -> int:
        """:meth:`apply` of an elementwise op's spec to as many operands as it takes (the builder's
        hot path); operands' shapes broadcast.

        An existing node is found before the rewrite is asked: a rewrite depends only on the
        operands, and it declined them when the node was made."""
        if self.tensor:  # else every shape is ()
            shapes = self._shape
            shape = shapes[args[0]]
            for arg in args:
                if shapes[arg] != shape:
                    shape = broadcast([shapes[a] for a in args], spec.function or spec.infix or spec.name)
                    break
            if shape:
                return self._tensor_applied(spec, args, shape)
        ops = self._op
        if spec.commutative:
            # a constant after any other node, else by id: a constant's id depends on when folding
            # happened to make it, which printing and re-parsing change
            a, b = args
            a_const, b_const = ops[a] == CONST, ops[b] == CONST
            if a_const > b_const or (a_const == b_const and a > b):
                args = (b, a)
        for arg in args:
            if ops[arg] != CONST:
                break
        else:
            data = self._data
            return self.const(spec.fold(*[data[arg] for arg in args]))
        name = spec.name
        table = self._table.get(name)
        if table is None:
            table = self._table[name] = {}
        node = table.get(args)
        if node is not None:
            return node
        if spec.rewrite is not None:
            rewritten = spec.rewrite(self, args)
            if rewritten is not None:
                return rewritten
        # a new scalar node: _new, inline (this is the builder's hot path)
        node = len(ops)
        cap = self.max_nodes
        if cap is not None and node >= cap:
            raise self._too_many()
        ops.append(name)
        self._args.append(args)
        self._data.append(None)
        self._shape.append(())
        table[args] = node
        return node

    def _tensor_applied(self, spec: Op, args: tuple[int, ...], shape: Shape) -> int:
        """An elementwise op with a tensor result: the scalar path's canonical order and rewrites,
        a rewrite kept only where it keeps the shape (``x*0`` stays a node: 0 is a scalar)."""
        ops = self._op
        if spec.commutative:
            a, b = args
            if (ops[a] == CONST, a) > (ops[b] == CONST, b):
                args = (b, a)
        if spec.rewrite is not None:
            rewritten = spec.rewrite(self, args)
            if rewritten is not None and self._shape[rewritten] == shape:
                return rewritten
        node = self._op_table(spec.name).get(args)
        return node if node is not None else self._new(args, spec.name, args, None, shape)

    def add(self, a: int, b: int) -> int:
        return self.applied(_ADD, (a, b))

    def sub(self, a: int, b: int) -> int:
        return self.applied(_SUB, (a, b))

    def mul(self, a: int, b: int) -> int:
        return self.applied(_MUL, (a, b))

    def div(self, a: int, b: int) -> int:
        return self.applied(_DIV, (a, b))

    def pow(self, a: int, b: int) -> int:
        return self.applied(_POW, (a, b))

    def neg(self, a: int) -> int:
        return self.applied(_NEG, (a,))

    def set_outputs(self, nodes: Sequence[int], names: Sequence[str] | None = None) -> None:
        """Name the graph's outputs (default names: ``f``, or ``f1``, ``f2``, ... for several)."""
        if names is None:
            names = ["f"] if len(nodes) == 1 else [f"f{i + 1}" for i in range(len(nodes))]
        if len(names) != len(nodes):
            raise GraphcError(f"{len(nodes)} outputs but {len(names)} names")
        self.outputs = list(nodes)
        self.output_names = list(names)

    # --- whole-graph transformations (each returns a new Graph) ----------------------------------

    def copy(self) -> Graph:
        """An independent copy: building on it leaves this graph unchanged."""
        new = Graph()
        new.max_nodes = self.max_nodes
        new._op, new._args, new._data = self._op.copy(), self._args.copy(), self._data.copy()
        new._shape, new.tensor = self._shape.copy(), self.tensor
        new._table = {op: table.copy() for op, table in self._table.items()}
        new._variables = self._variables.copy()
        new._constants = self._constants.copy()
        new.set_outputs(self.outputs, self.output_names)
        new.names = self.names.copy()
        return new

    def pruned(self, copy: bool = True) -> Graph:
        """A copy holding only what the outputs depend on, plus every variable, renumbered.

        With ``copy=False``, this graph itself when nothing is pruned (for a builder handing over
        the graph it made, which nothing else holds)."""
        keep = self.reachable()
        for node in self._variables.values():
            keep[node] = True
        if all(keep):
            return self.copy() if copy else self
        return self.rebuilt(keep)

    def rebuilt(self, keep: Sequence[bool] | None) -> Graph:
        """A new graph replaying the kept nodes (all when ``keep`` is None) in creation order."""
        return self._replayed(keep, {})

    def with_dims(self, dims: dict[str, int]) -> Graph:
        """A copy whose named dimensions are replaced by their values in ``dims`` (shapes and params)."""
        return self._replayed(None, dims)

    def _replayed(self, keep: Sequence[bool] | None, dims: dict[str, int]) -> Graph:
        from graphc.shapes import substituted

        new = Graph()
        new.max_nodes = self.max_nodes
        mapping: dict[int, int] = {}
        for node, op in enumerate(self._op):
            if keep is not None and not keep[node]:
                continue
            if op == VAR:
                shape = self._shape[node]
                mapping[node] = new.var(self._data[node], substituted(shape, dims) if dims else shape)  # type: ignore[arg-type]
            elif op == CONST:
                mapping[node] = new.const(self._data[node])
            else:
                params = self._data[node]
                args = (mapping[a] for a in self._args[node])
                mapping[node] = new.apply(op, *args, params=substituted(params, dims) if dims else params)
        new.set_outputs([mapping[o] for o in self.outputs], self.output_names)
        new.names = {mapping[node]: name for node, name in self.names.items() if node in mapping}
        return new

    # --- plain data (what a pickled kernel holds) --------------------------------------------------

    def to_data(self) -> dict[str, Any]:
        """The graph as plain data: strings, numbers, lists and dicts only, node ids kept.

        ``nodes`` lists ``[op, args, value, name]`` per node in creation order (``value`` for a
        constant, ``name`` for a variable, else None), and a fifth item where a tensor graph needs
        it: a variable's declared shape (a list of ints and dimension names), a block op's params
        (tuples written as lists; a user block as a dict of its name, parameters and formulas'
        text). :meth:`from_data` reads it back.

        >>> g = Graph()
        >>> g.set_outputs([g.apply("sin", g.var("x"))])
        >>> g.to_data()["nodes"]
        [['var', [], None, 'x'], ['sin', [0], None, None]]
        >>> Graph.from_data(g.to_data()).to_text()
        'sin(x)'
        >>> t = Graph()
        >>> t.set_outputs([t.apply("sum", t.var("x", (3, "n")), params=((1,), False))])
        >>> t.to_data()["nodes"]
        [['var', [], None, 'x', [3, 'n']], ['sum', [0], None, None, [[1], False]]]
        """
        nodes = []
        for op, args, data, shape in zip(self._op, self._args, self._data, self._shape, strict=True):
            value = data if op == CONST else None
            name = data if op == VAR else None
            entry = [op, list(args), value, name]
            if op == VAR and shape:
                entry.append(list(shape))
            elif op not in (CONST, VAR) and data is not None:
                entry.append(_params_data(data))
            nodes.append(entry)
        return {
            "format": DATA_FORMAT,
            "nodes": nodes,
            "outputs": list(self.outputs),
            "output_names": list(self.output_names),
            "max_nodes": self.max_nodes,
            "info": dict(self.info),
        }

    @classmethod
    def from_data(cls, data: Any) -> Graph:
        """The graph :meth:`to_data` wrote, node for node (same ids), or DataError naming the fault.

        Only graphc's own format is read: op names from the op table with their arities, operands
        that are earlier nodes, float constants, string names, no node twice; shapes of ints and
        names, params of plain values that the op's own shape rule accepts, a user block's
        formulas as text of the language (scanned again, never run). Nothing in ``data`` is run or
        imported.
        """
        if not isinstance(data, dict) or data.get("format") != DATA_FORMAT:
            raise DataError(f"not graphc graph data (expected format {DATA_FORMAT!r})")
        nodes, outputs, names = data.get("nodes"), data.get("outputs"), data.get("output_names")
        if not isinstance(nodes, list) or not isinstance(outputs, list) or not isinstance(names, list):
            raise DataError("graph data needs lists 'nodes', 'outputs' and 'output_names'")
        graph = cls()
        graph.max_nodes = checked_max_nodes(data.get("max_nodes", MAX_NODES))
        for node, entry in enumerate(nodes):
            graph._load_node(node, entry)
        count = len(graph._op)
        if not all(type(o) is int and 0 <= o < count for o in outputs):
            raise DataError(f"graph data: an output is not a node id below {count}")
        if not all(isinstance(name, str) for name in names):
            raise DataError("graph data: output names must be strings")
        graph.set_outputs(outputs, names)
        graph.info = plain_info(data.get("info", {}))
        return graph

    def _load_node(self, node: int, entry: Any) -> None:
        """Append node ``node`` of :meth:`from_data` after checking it against the op table."""
        if not isinstance(entry, list) or len(entry) not in (4, 5):
            raise DataError(f"graph data: node {node} is not [op, args, value, name] (and shape or params)")
        op, args, value, name = entry[:4]
        extra = entry[4] if len(entry) == 5 else None
        shape: Shape = ()
        if op == VAR:
            if not isinstance(name, str) or args != [] or name in self._variables:
                raise DataError(f"graph data: node {node} is not a new variable with a name")
            if extra is not None:
                shape = _shape_from_data(node, extra)
            key: Any = name
            self._variables[name] = node
            data: Any = name
        elif op == CONST:
            if type(value) is not float or args != [] or extra is not None:
                raise DataError(f"graph data: node {node} is a constant without a float value")
            key, data = _bits(value), value
            if value != 0.0 and not math.isnan(value):
                self._constants[value] = node
        else:
            spec = ALL_OPS.get(op) if isinstance(op, str) else None
            if spec is None:
                raise DataError(f"graph data: node {node} has an unknown op {op!r}")
            arity_ok = isinstance(args, list) and (
                len(args) == spec.arity or (spec.variadic and len(args) > spec.arity)
            )
            if not arity_ok:
                raise DataError(f"graph data: node {node} ({op}) needs {spec.arity} operand(s)")
            if not all(type(a) is int and 0 <= a < node for a in args):
                raise DataError(f"graph data: node {node} ({op}) has an operand that is not an earlier node")
            if spec.block:
                data = _params_from_data(node, op, extra)
                key = (tuple(args), data)
                shape = self._loaded_shape(node, spec, args, data)
            else:
                if extra is not None:
                    raise DataError(f"graph data: node {node} ({op}) is elementwise: it takes no params")
                key, data = tuple(args), None
                shape = self._loaded_shape(node, spec, args, None)
        table = self._op_table(op)
        if key in table:
            raise DataError(f"graph data: node {node} repeats node {table[key]}")
        self._new(key, op, tuple(args), data, shape)
        if op not in (VAR, CONST) and ALL_OPS[op].block:
            self.tensor = True

    def _loaded_shape(self, node: int, spec: Op, args: list[int], params: Any) -> Shape:
        """The shape of loaded node ``node``: its op's rule on its operands' shapes, or DataError."""
        shapes = [self._shape[a] for a in args]
        try:
            if spec.block:
                assert spec.shape is not None, spec.name
                return spec.shape(tuple(shapes), params)
            first = shapes[0]
            return first if all(s == first for s in shapes) else broadcast(shapes, spec.name)
        except (GraphcError, TypeError, ValueError, IndexError, KeyError) as err:
            message = getattr(err, "message", None) or str(err)
            raise DataError(f"graph data: node {node} ({spec.name}): {message}") from None

    def to_sympy(self) -> Any:
        """The outputs as SymPy expressions: one expression, or a tuple for several outputs."""
        from graphc.sympy_bridge import to_sympy

        return to_sympy(self)

    def to_text(self) -> str:
        """The graph as a graphc program that parses back to the same graph."""
        from graphc.printing import to_text

        return to_text(self)


_PLAIN = (str, int, float, bool, type(None))


def _params_data(params: Any) -> Any:
    """A block op's params as plain data: tuples as lists (params hold no lists: they are hashed),
    a user block (graphc.user_blocks.Block) as ``{"block": name, "params": [...], "body": text,
    "vjp": [text, ...] or None}``, the words of its formulas joined by spaces."""
    from graphc.user_blocks import Block

    if isinstance(params, Block):
        return {
            "block": params.name,
            "params": list(params.params),
            "body": " ".join(params.body[1]),
            "vjp": None if params.vjp is None else [" ".join(run[1]) for run in params.vjp],
        }
    root: list[Any] = []
    stack: list[tuple[Any, list[Any]]] = [(params, root)]
    while stack:
        item, into = stack.pop()
        if isinstance(item, tuple):
            items: list[Any] = []
            into.append(items)
            stack.extend((child, items) for child in reversed(item))
        elif isinstance(item, _PLAIN):
            into.append(item)
        elif isinstance(item, numbers.Integral):
            into.append(int(item))
        else:
            raise GraphcError(f"to_data: block params hold a {type(item).__name__}, not plain data")
    return root[0]


def _params_from_data(node: int, op: str, data: Any) -> Any:
    """Params written by :func:`_params_data`, checked to be plain data: lists become tuples."""
    if isinstance(data, dict) or op == _CUSTOM:  # a user block's node holds the block, as a dict
        if not isinstance(data, dict) or op != _CUSTOM:
            raise DataError(f"graph data: node {node} ({op}) has malformed params")
        return _block_from_data(node, data)
    root: list[Any] = []
    stack: list[tuple[Any, list[Any], int]] = [(data, root, 0)]
    while stack:
        item, into, depth = stack.pop()
        if isinstance(item, list):
            if depth >= _PARAMS_DEPTH:
                raise DataError(f"graph data: node {node} ({op}) has params nested too deep")
            items: list[Any] = []
            into.append(items)
            stack.extend((child, items, depth + 1) for child in reversed(item))
        elif type(item) in (int, bool) or item is None or _is_dim_name(item):
            into.append(item)
        else:
            what = f"the string {item!r}" if isinstance(item, str) else f"a {type(item).__name__}"
            raise DataError(
                f"graph data: node {node} ({op}) has params holding {what} (params hold ints, "
                "booleans, None and dimension names)"
            )
    # the lists, innermost first, become tuples (hashable, as the builder made them)
    return _tuples(root)[0]


_CUSTOM = "custom"  # the op of a user block with its own VJP (graphc.user_blocks): its params are the block
_PARAMS_DEPTH = 8  # the ops' params nest three deep (unindex: (index items, shape)); room to spare


def _tuples(root: list[Any]) -> tuple[Any, ...]:
    """``root`` with every list in it (nested) made a tuple, without recursion."""
    order: list[list[Any]] = []
    stack = [root]
    while stack:
        items = stack.pop()
        order.append(items)
        stack.extend(item for item in items if isinstance(item, list))
    made: dict[int, tuple[Any, ...]] = {}
    for items in reversed(order):  # a list's inner lists come after it in ``order``
        made[id(items)] = tuple(made[id(item)] if isinstance(item, list) else item for item in items)
    return made[id(root)]


def _block_from_data(node: int, data: dict[str, Any]) -> Any:
    """The user block a custom node's params hold, its formulas scanned again from their text."""
    from graphc.parse import scan
    from graphc.user_blocks import Block

    name, params, body, vjp = (data.get(k) for k in ("block", "params", "body", "vjp"))
    texts: list[Any] | None = [body] if vjp is None else [body, *vjp] if isinstance(vjp, list) else None
    if (
        set(data) != {"block", "params", "body", "vjp"}
        or not isinstance(name, str)
        or not isinstance(params, list)
        or not all(isinstance(p, str) for p in params)
        or texts is None
        or not all(isinstance(text, str) for text in texts)
    ):
        raise DataError(f"graph data: node {node} (custom) has malformed block params")
    runs = []
    for text in texts:
        tokens = scan(text)
        if tokens.error is not None:
            raise DataError(f"graph data: node {node} (custom): block '{name}': {tokens.error.message}")
        runs.append((tuple(tokens.kinds[:-1]), tuple(tokens.words[:-1])))
    return Block(name, tuple(params), runs[0], None if vjp is None else tuple(runs[1:]))


def _is_dim_name(item: Any) -> bool:
    """Whether ``item`` can name a dimension: an identifier that is no Python keyword (params are
    written into generated source, where a name can only be read, never called)."""
    return isinstance(item, str) and item.isidentifier() and not keyword.iskeyword(item)


def _shape_from_data(node: int, data: Any) -> Shape:
    """A variable's declared shape from graph data: a list of sizes (ints) and dimension names."""
    if not isinstance(data, list) or not all((type(d) is int and d >= 0) or _is_dim_name(d) for d in data):
        raise DataError(f"graph data: node {node} has a shape that is not a list of sizes and names")
    return tuple(data)


def plain_info(info: Any) -> dict[str, Any]:
    """``info`` of graph data, checked to hold only plain values (strings, numbers, lists, dicts)."""
    if not isinstance(info, dict):
        raise DataError("graph data: info is not a dict")
    stack: list[Any] = [info]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                raise DataError("graph data: info has a key that is not a string")
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif not isinstance(item, _PLAIN):
            raise DataError(f"graph data: info holds a {type(item).__name__}, not plain data")
    return dict(info)
