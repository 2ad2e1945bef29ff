"""What every differentiation method shares: resolving ``wrt``, activity, local partials, names.

Every method returns a new Graph whose outputs are the function's outputs followed by the
partials, row by row (``∂f1/∂x, ∂f1/∂y, ∂f2/∂x, ...``), built on a copy of the function's graph
so that the partials share the primal nodes. A structurally zero partial is the constant 0.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from graphc.errors import GraphcError
from graphc.graph import Graph
from graphc.ops import CONST, OPS

_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_FROM_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
_PARTIAL = re.compile(r"∂([⁰¹²³⁴⁵⁶⁷⁸⁹]*)(.+)/((?:∂[^∂]+)+)\Z")
_DENOMINATOR = re.compile(r"∂([^∂⁰¹²³⁴⁵⁶⁷⁸⁹]+)([⁰¹²³⁴⁵⁶⁷⁸⁹]*)")
_UNBUILT: Any = object()  # a partial not built yet (None is a structurally zero one)


def resolve_wrt(graph: Graph, wrt: str | Sequence[str] | None) -> list[str]:
    """The variables to differentiate with respect to: ``None`` means all (sorted names).

    A string may list several names separated by commas (``"x,y"``). Every name must be a
    variable of the graph.
    """
    if wrt is None:
        return graph.variables
    if not isinstance(wrt, (str, list, tuple)):
        raise GraphcError(f"wrt must name one or more variables, got {wrt!r}")
    names = [part.strip() for part in wrt.split(",")] if isinstance(wrt, str) else list(wrt)
    if not names or any(not isinstance(name, str) or not name for name in names):
        raise GraphcError(f"wrt must name one or more variables, got {wrt!r}")
    for name in names:
        graph.variable(name)  # raises UnknownVariableError naming the variables there are
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)  # linear: 20,000 names
    if duplicates:
        raise GraphcError(f"wrt names variable '{duplicates[0]}' twice")
    return names


def depends_on(graph: Graph, sources: Sequence[int], end: int | None = None) -> list[bool]:
    """Which nodes (of the first ``end``) depend on any of the ``sources``, indexed by node."""
    end = len(graph) if end is None else end
    active = [False] * end
    for node in sources:
        active[node] = True
    operands = graph.operands
    for node in range(min(sources, default=end), end):
        if not active[node]:
            for arg in operands[node]:
                if active[arg]:
                    active[node] = True
                    break
    return active


def distinct_users(graph: Graph, keep: Sequence[bool]) -> list[int]:
    """How many different kept nodes use each node (of the first ``len(keep)``), indexed by node."""
    count = [0] * len(keep)
    operands = graph.operands
    for node in range(len(keep)):
        if keep[node]:
            args = operands[node]
            for arg in set(args) if len(args) > 1 else args:
                count[arg] += 1
    return count


class LocalPartials:
    """The local derivative ``∂node/∂args[slot]`` of each edge, from the op table.

    ``cached``: each edge's partial is built once and kept, for passes that visit an edge again
    (one reverse pass per output of a dense Jacobian). Without it the rule runs at each visit, for
    passes that visit most edges once (a sparse Jacobian's colours: cones that seldom meet), where
    keeping them costs more than it saves; a second visit finds the nodes the first built."""

    def __init__(self, graph: Graph, cached: bool = True) -> None:
        self.graph = graph
        self.cached = cached  # (uncached, a pass may run the op's rules itself: see dp.adjoints)
        self._operands, self._ops = graph.operands, graph.ops  # the graph's own lists
        self._cache: dict[int, int | None] | None = {} if cached else None  # keyed by node * slots + slot
        self._slots = max(op.arity for op in OPS.values())  # of the table as it is (ops added at run time)

    def __call__(self, node: int, slot: int) -> int | None:
        if self._cache is None:
            rule = OPS[self._ops[node]].partials[slot]  # the table itself: an op added later is found
            return None if rule is None else rule(self.graph, self._operands[node], node)
        key = node * self._slots + slot
        z = self._cache.get(key, _UNBUILT)
        if z is _UNBUILT:
            rule = OPS[self._ops[node]].partials[slot]  # the table itself: an op added later is found
            z = self._cache[key] = None if rule is None else rule(self.graph, self._operands[node], node)
        return z


_MUL = OPS["mul"]


def scaled(graph: Graph, factor: int, z: int) -> int:
    """``factor * z``, with a factor of -1 built as a negation (``-g``, not ``-1*g``)."""
    value = graph.const_value(z)
    if value == 1.0:
        return factor  # what the builder makes of factor*1, without asking it
    if value == -1.0:
        return graph.neg(factor)
    if graph.const_value(factor) == -1.0:
        return graph.neg(z)
    return graph.mul(factor, z)


def accumulated(graph: Graph, total: int | None, term: int) -> int:
    """``total + term``, a negated term built as a subtraction; ``term`` alone when no total."""
    if total is None:
        return term
    if graph.op(term) == "neg":
        return graph.sub(total, graph.args(term)[0])
    if graph.op(total) == "neg":
        return graph.sub(term, graph.args(total)[0])
    return graph.add(total, term)


# --- terms: a node and an exact power-of-two factor that rides along ----------------------------------
#
# ``dp`` and ``forward`` carry each adjoint or tangent as a Term ``(node, k)``: the value ``k*node``,
# ``k`` a signed power of two, ±2^e with |e| <= 64, collected instead of multiplied in at every
# step. ∂(a*a)/∂a has two edges, each contributing ``adj*a``: as nodes that is ``t = adj*a; t + t``
# at every layer of a chain of squarings (B3's 20 layers: 20 adds and 19 muls beside the function's
# 20 muls), as terms it is ``(t, k)`` twice, which sum to ``(t, 2k)``: 19 muls, and one more by the
# constant 2^20 at the end. A partial of -1 (``-u``, ``a - b``) is the factor -1, summed as a
# subtraction when it meets another term and built as ``-g`` only if it reaches the end. Other
# constant partials are multiplied in as before, and a factor's magnitude is multiplied in before a
# term fans out to several operands or users, where carrying it would cost a multiply per branch
# (the sign rides on; when it reaches more than one partial, each is negated where the plain sums
# built one shared negation: a rare extra operation, against the ones subtractions save).
#
# Multiplying by a power of two is exact in binary floating point unless the result overflows or
# underflows, so factors change no value: a partial is bit for bit what the plain sums give, except
# where a rescaled node over- or underflows and the plain sum did not (the bound on e keeps that to
# partials beyond about 1e289 or below 1e-289), and in the sign of an exactly zero sum (``k*(a+b)``
# for ``k*a + k*b``). A constant node always has the factor 1: its factor is folded in.

Term = tuple[int, float]  # (node, k): the value k*node, k = ±2^e exactly

_SMALLEST, _LARGEST = 2.0**-64, 2.0**64


def is_factor(value: float) -> bool:
    """Whether ``value`` may ride along as a term's factor: ±2^e with |e| <= 64.

    >>> [is_factor(v) for v in (1.0, -0.25, 2.0**64, 2.0**65, 3.0, 0.0, math.inf)]
    [True, True, True, False, False, False, False]
    """
    return _SMALLEST <= abs(value) <= _LARGEST and math.frexp(value)[0] in (0.5, -0.5)


class Terms:
    """Sums and products of terms on ``graph``, building as few nodes as exactness allows.

    >>> g = Graph()
    >>> t = g.mul(g.var("x"), g.var("y"))
    >>> terms = Terms(g)
    >>> total = terms.accumulated((t, 1.0), (t, 1.0))  # t + t, without building it
    >>> total == (t, 2.0), g.stats()["ops"], terms.materialised(total) == g.mul(t, g.const(2.0))
    (True, {'mul': 1, 'var': 2}, True)
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        # the graph's own lists (they grow as nodes are built): read per edge
        self._ops, self._data = graph.ops, graph.data

    def scaled(self, seed: Term, z: int) -> Term:
        """``seed * z`` for a local partial ``z``: a partial of ±1 changes only the factor."""
        graph, ops, data = self.graph, self._ops, self._data
        node, k = seed
        if ops[z] == CONST:
            value = data[z]
            if value == 1.0:
                return seed
            if ops[node] == CONST:  # folded, as graph.mul(node, z) folds it
                return graph.const(_MUL.fold(data[node], value)), 1.0
            if value == -1.0:
                return node, -k
            product = graph.mul(node, z)
            return product, (1.0 if ops[product] == CONST else k)  # node*0 folds to 0, whatever k is
        if ops[node] == CONST:  # a constant seed (whose factor is 1)
            c = data[node]
            if c == 1.0:
                return z, 1.0
            if c == -1.0:  # -1 * -g is g, as before
                return (graph.args(z)[0], 1.0) if ops[z] == "neg" else (z, -1.0)
        return graph.mul(node, z), k

    def accumulated(self, total: Term | None, term: Term) -> Term:
        """``total + term``: one node for equal factors (a subtraction for opposite ones, none for
        the same node twice), else one multiply by a constant more; ``term`` alone when no total."""
        if total is None:
            return term
        graph, ops = self.graph, self._ops
        (n1, k1), (n2, k2) = total, term
        if ops[n1] == "neg":
            n1, k1 = graph.args(n1)[0], -k1
        if ops[n2] == "neg":
            n2, k2 = graph.args(n2)[0], -k2
        if n1 == n2 and ops[n1] != CONST:
            k = k1 + k2
            if k != 0.0 and k - k1 == k2 and k - k2 == k1:  # exact: k*n1 rounds as k1*n1 + k2*n1 does
                if is_factor(k):
                    return n1, k
                odd, factor = _odd_part(k)  # 3*n1 for n1 + 2*n1, say
                if is_factor(factor):
                    return graph.mul(n1, graph.const(odd)), factor
                return graph.mul(n1, graph.const(k)), 1.0  # 2*k1 is beyond the bound: multiplied in
        if k1 == k2:
            return graph.add(n1, n2), k1
        if k1 == -k2:  # the positive factor keeps an exactly zero sum +0, as n1 + -n2 is
            return (graph.sub(n1, n2), k1) if k1 > 0 else (graph.sub(n2, n1), k2)
        # Unequal factors: bring a constant to the other's factor (it folds), else the node with
        # the larger factor to the smaller one, by a multiply shared by every pass that makes it.
        if ops[n1] == CONST or (ops[n2] != CONST and abs(k1) > abs(k2)):
            n1, k1, n2, k2 = n2, k2, n1, k1
        ratio = k2 / k1
        c = graph.const_value(n2)
        if c is not None and (c * ratio) / ratio != c:  # the constant would over- or underflow
            return graph.add(self.materialised((n1, k1)), n2), 1.0
        rescaled = graph.mul(n2, graph.const(abs(ratio)))
        if ratio > 0:
            return graph.add(n1, rescaled), k1
        return (graph.sub(n1, rescaled), k1) if k1 > 0 else (graph.sub(rescaled, n1), -k1)

    def spread(self, term: Term) -> Term:
        """``term`` before it is used along edges to several different nodes: its factor's
        magnitude multiplied in once (``(node*|k|, ±1)``), not carried into each term it makes and
        multiplied out of each. The sign rides on: it costs nothing until the end."""
        node, k = term
        if k == 1.0 or k == -1.0:
            return term
        return self.materialised((node, abs(k))), math.copysign(1.0, k)

    def materialised(self, term: Term) -> int:
        """The node of ``k*node``: ``node`` itself, ``-node`` (``b - a`` for ``a - b``, ``g`` for
        ``-g``), or ``node*k`` (``g*(c*k)`` for ``g*c``, ``c`` a constant)."""
        node, k = term
        if k == 1.0:
            return node
        graph = self.graph
        op, args = graph.op(node), graph.args(node)
        if k < 0 and op == "neg":
            node, k = args[0], -k
            op, args = graph.op(node), graph.args(node)
        if k == 1.0:
            return node
        c = graph.const_value(args[1]) if op == "mul" else None  # a constant operand comes second
        if c is not None and (c * k) / k == c:  # (unless c*k would over- or underflow)
            return graph.mul(args[0], graph.const(c * k))
        if k == -1.0:
            return graph.sub(args[1], args[0]) if op == "sub" else graph.neg(node)
        return graph.mul(node, graph.const(k))


def _odd_part(value: float) -> tuple[float, float]:
    """``value`` as ``odd * factor``: an odd whole number and a power of two (``3.0 = 3 * 1``,
    ``-1.5 = 3 * -0.5``)."""
    numerator, denominator = abs(value).as_integer_ratio()  # a power-of-two denominator
    shift = (numerator & -numerator).bit_length() - 1
    return float(numerator >> shift), math.copysign(2.0**shift / denominator, value)


def partial_name(output: str, variable: str) -> str:
    """The name of ``∂output/∂variable``; repeated differentiation gives ``∂²f/∂x∂y``, ``∂³f/∂x³``.

    >>> partial_name("f", "x"), partial_name("∂f/∂x", "y"), partial_name("∂²f/∂x²", "x")
    ('∂f/∂x', '∂²f/∂x∂y', '∂³f/∂x³')
    """
    match = _PARTIAL.match(output)
    if match is None:
        return f"∂{output}/∂{variable}"
    order = int(match.group(1).translate(_FROM_SUPERSCRIPTS) or "1")
    denominators: list[list[Any]] = []
    for name, power in _DENOMINATOR.findall(match.group(3)):
        denominators.append([name, int(power.translate(_FROM_SUPERSCRIPTS) or "1")])
    if denominators and denominators[-1][0] == variable:
        denominators[-1][1] += 1
    else:
        denominators.append([variable, 1])
    bottom = "".join(f"∂{name}{_superscript(power)}" for name, power in denominators)
    return f"∂{_superscript(order + 1)}{match.group(2)}/{bottom}"


def _superscript(n: int) -> str:
    return "" if n == 1 else str(n).translate(_SUPERSCRIPTS)


def assemble(
    source: Graph,
    result: Graph,
    wrt: Sequence[str],
    partials: Sequence[Sequence[int | None]],
    method: str,
    **info: Any,
) -> Graph:
    """Give ``result`` its outputs: the function's outputs, then ``partials[i][j] = ∂out_i/∂wrt_j``."""
    nodes = list(source.outputs)
    names = list(source.output_names)
    for name, row in zip(source.output_names, partials, strict=True):
        for variable, node in zip(wrt, row, strict=True):
            nodes.append(result.const(0.0) if node is None else node)
            names.append(partial_name(name, variable))
    result.set_outputs(nodes, names)
    result.info = {
        "method": method,
        "wrt": list(wrt),
        "function_outputs": len(source.outputs),
        "primal_nodes": len(source),
        **info,
    }
    return result


def prepared(graph: Graph, wrt: str | Sequence[str] | None) -> tuple[Graph, list[str]]:
    """A copy of ``graph`` to build the derivative on, and the resolved ``wrt`` names."""
    if not graph.outputs:
        raise GraphcError("the graph has no outputs to differentiate")
    return graph.copy(), resolve_wrt(graph, wrt)


# --- the NaN-free rule of selecting ops (``where``) ----------------------------------------------------
#
# A branch that is not selected contributes exactly 0 to every derivative. Passing an adjoint or
# tangent ``g`` through a ``where`` is a select (the op entry's ``gate``: ``where(c, g, 0)``), not a
# product with a 0/1 mask; but the chain rule goes on multiplying below the select, and a masked
# zero times the infinite local derivative of ``sqrt`` at 0 is NaN. So a term that passed a gate
# carries a *flag*: a node, nonzero where some path that brought it is selected at every gate
# (``c``, ``c and d``, ``c or not d``...; ``None`` for a term live everywhere). A flagged term is
# exactly 0 where its flag is 0, and each product of it with a local derivative that is not a
# constant is built as ``where(flag, product, 0)``: where no selected path reaches, the product is
# never taken. The flags are built from ``and``, ``or`` and ``not`` nodes, whose derivatives are
# structurally zero, so a derivative of a derivative (a Hessian) keeps the rule.

Flag = int | None  # None: live everywhere


class Gates:
    """Flags and guarded products on ``graph`` (see above)."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._ops = graph.ops

    def both(self, flag: Flag, condition: int) -> int:
        """Live where ``flag`` is and ``condition`` holds."""
        return condition if flag is None else self.graph.apply("and", flag, condition)

    def either(self, first: Flag, second: Flag) -> Flag:
        """Live where either is (``None`` if either is live everywhere, or they are ``c``, ``not c``)."""
        if first is None or second is None:
            return None
        graph = self.graph
        for a, b in ((first, second), (second, first)):
            if self._ops[b] == "not" and graph.args(b)[0] == a:
                return None
        return first if first == second else graph.apply("or", first, second)

    def guarded(self, flag: Flag, term: Term, z: int) -> Term:
        """``term`` (already multiplied by ``z``) kept exactly 0 where ``flag`` is 0, if ``z`` might
        have made it something else there (a constant ``z`` cannot: it is finite)."""
        if flag is None or self._ops[z] == CONST:
            return term
        node, k = term
        graph = self.graph
        return graph.apply("where", flag, node, graph.const(0.0)), k


def join_flag(flags: dict[int, int], gates: Gates, node: int, first: bool, reach: Flag) -> None:
    """Record that a term live where ``reach`` is was added to ``node``'s adjoint (``first``: the
    first term it gets): its flag becomes the join of both, and a node live everywhere has none."""
    if first:
        if reach is not None:
            flags[node] = reach
    elif node in flags:
        joined = gates.either(flags[node], reach)
        if joined is None:
            del flags[node]
        else:
            flags[node] = joined


def elementwise_jvp(
    graph: Graph, gates: Gates, flags: dict[int, int], node: int, seeds: tuple[int | None, ...]
) -> tuple[int | None, Flag]:
    """The tangent of elementwise ``node`` from its operands' tangents ``seeds`` (None: none), its
    terms guarded by the operands' where flags, and where it is live (forward mode, plain or
    stacked: :mod:`graphc.diff.stacked`)."""
    spec = OPS[graph.op(node)]
    args = graph.args(node)
    total: int | None = None
    reach: Flag = None
    for slot, t in enumerate(seeds):
        if t is None:
            continue
        flag = flags.get(args[slot])
        live: Flag
        if spec.gate is not None:
            passed = spec.gate(graph, args, slot, t)
            if passed is None:
                continue
            term, live = passed[0], gates.both(flag, passed[1])
        else:
            rule = spec.partials[slot]
            z = None if rule is None else rule(graph, args, node)
            if z is None:
                continue
            term, live = gates.guarded(flag, (graph.mul(z, t), 1.0), z)[0], flag
        reach = live if total is None else gates.either(reach, live)
        total = term if total is None else graph.add(total, term)
    return total, reach
