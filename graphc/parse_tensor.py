"""The tensor syntax of the parser: declarations, indexing, and calls of block ops and composites.

A mixin of graphc.parse's parser (it reads the same tokens and stacks): ``x: [5]`` and
``X: [n, 64]`` declare inputs; ``A[1, 2]``, ``x[1:4]``, ``x[::2]``, ``A[:, 0]`` index with integer
literals; ``sum(x, axis=k)``, ``max(x)`` (one tensor), ``reshape(x, [2, -1])``, ``softmax(x)``...
build block nodes through the op table's entries. Every shape the operands cannot take is a
ParseError at the call or bracket, naming the shapes. Each loop here reads a flat run of tokens:
nothing recurses.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from graphc.errors import ArityError, ParseError
from graphc.ops import (
    ALL_OPS,
    BLOCK_FUNCTIONS,
    COMPOSITES,
    FUNCTIONS,
    INTERNAL_CALLS,
    REDUCTIONS,
    RESERVED,
    Op,
    index_params,
    reduction_params,
)
from graphc.shapes import Shape, ShapeError

if TYPE_CHECKING:
    from graphc.graph import Graph
    from graphc.parse import Tokens


class TensorSyntax:
    """The tensor constructs of the language, for graphc.parse's ``_Parser``."""

    # the parser's state this mixin reads and writes
    kinds: Any
    words: list[str]
    tokens: Tokens
    graph: Graph
    values: list[int]
    stack: list[tuple[str, Op | None, int, int, int]]
    open_brackets: int
    bindings: dict[str, int]
    free: set[str]
    declared: dict[str, Shape]
    dim_names: set[str]
    given_dims: dict[str, int]
    keywords: dict[int, dict[str, Any]]
    customs: dict[str, Any]

    def error(self, message: str, k: int, cls: type[ParseError] = ParseError) -> ParseError:
        raise NotImplementedError  # the parser's

    # --- declarations ------------------------------------------------------------------------------

    def _declaration(self, k: int) -> int:
        """Read ``NAME ":" "[" dim ("," dim)* "]"`` at token k; return the index after it."""
        name = self.words[k]
        if self.kinds[k + 2] != "[":
            raise self.error("':' declares a shape, which follows in brackets: x: [3] or X: [n, 3]", k + 1)
        if name in RESERVED:
            raise self.error(f"cannot declare '{name}': it is a built-in name", k)
        if name in self.declared:
            raise self.error(f"'{name}' is declared twice", k)
        if name in self.free or name in self.bindings:
            raise self.error(f"declare '{name}' before its first use", k)
        shape, k = self._dims(k + 2, declaring=True)
        if self.kinds[k] not in ("sep", "end"):
            raise self.error("a declaration ends its statement: separate statements with ';'", k)
        self.declared[name] = shape
        self.free.add(name)
        self.graph.var(name, shape)  # an input even if unused, as a scalar variable is
        return k

    def _dims(self, k: int, declaring: bool = False) -> tuple[Shape, int]:
        """Read ``"[" dim ("," dim)* "]"`` at token k (a declaration's, or reshape's where one -1
        is allowed); return the dims and the index after the ``]``."""
        kinds, words = self.kinds, self.words
        dims: list[int | str] = []
        j = k + 1
        if kinds[j] == "]" and not declaring:  # reshape(x, []): to a scalar, as a derivative may
            return (), j + 1
        while True:
            negative = kinds[j] == "op" and words[j] == "-"
            at = j + negative
            if kinds[at] == "num" and words[at].isdigit():
                value = -int(words[at]) if negative else int(words[at])
                if value == -1 and not declaring:
                    dims.append(-1)
                elif value < 1:
                    raise self.error(f"a dimension must be a whole number >= 1, got {value}", j)
                else:
                    dims.append(value)
            elif kinds[at] == "name" and not negative:
                if not declaring and words[at] not in self.dim_names:
                    raise self.error(f"unknown dimension '{words[at]}' (not in any declaration)", at)
                dims.append(self.given_dims.get(words[at], words[at]))
                if declaring:
                    self.dim_names.add(words[at])
            else:
                raise self.error("a dimension is a whole number or a name", j)
            j = at + 1
            if kinds[j] == "]":
                return tuple(dims), j + 1
            if kinds[j] != ",":
                raise self.error("expected ',' or ']' in a shape", j)
            j += 1

    # --- indexing ----------------------------------------------------------------------------------

    def _integer(self, j: int) -> tuple[int | None, int]:
        """An optionally negative integer literal at token j (None if there is none), and the
        index after it."""
        kinds, words = self.kinds, self.words
        negative = kinds[j] == "op" and words[j] == "-"
        at = j + negative
        if kinds[at] == "num":
            if not words[at].isdigit():
                raise self.error("indices and slice bounds must be integer literals", at)
            return (-int(words[at]) if negative else int(words[at])), at + 1
        if negative:
            raise self.error("indices and slice bounds must be integer literals", at)
        return None, j

    def _index_item(self, j: int) -> tuple[Any, int]:
        """One item of an index at token j: an integer, a slice's ``(start, stop, step)`` (None
        where omitted) or None for ``:``; and the index after it."""
        kinds = self.kinds
        first, j = self._integer(j)
        if kinds[j] != ":":
            if first is None:
                raise self.error("indices and slice bounds must be integer literals", j)
            return first, j
        bounds: list[int | None] = [first, None, None]
        j += 1
        for slot in (1, 2):
            if kinds[j] in (",", "]", ":"):
                if kinds[j] == ":" and slot == 1:
                    j += 1
                    continue
                if kinds[j] == ":":
                    raise self.error("a slice has at most two ':'", j)
                break
            bounds[slot], j = self._integer(j)
            if bounds[slot] is None:
                raise self.error("indices and slice bounds must be integer literals", j)
            if slot == 1 and kinds[j] == ":":
                j += 1
        return tuple(bounds), j

    def _indexed(self, node: int, k: int) -> tuple[int, int]:
        """``node[...]`` with the brackets' items at token k (the ``[``), and the index after the ``]``."""
        kinds = self.kinds
        items: list[Any] = []
        j = k + 1
        while True:
            item, j = self._index_item(j)
            items.append(item)
            if kinds[j] == "]":
                break
            if kinds[j] != ",":
                raise self.error("expected ',' or ']' in an index", j)
            j += 1
        try:
            params = index_params(self.graph.shape(node), items)
            return self.graph.apply("index", node, params=params), j + 1
        except ShapeError as err:
            raise self.error(str(err), k) from None

    # --- calls of block ops and composites -----------------------------------------------------

    def _call_entry(self, what: str, k: int) -> int:
        """The token of the innermost open call, which the ``axis=`` or list at token k belongs to."""
        entry = self.stack[-1] if self.stack else None
        if entry is None or entry[0] == "(":
            if what == "=":
                raise self.error("unexpected '=': a binding must start its statement (name = ...)", k + 1)
            raise self.error("lists are not part of the language (a shape goes in reshape(x, [2, 3]))", k)
        return entry[2]

    def _keyword(self, k: int) -> int:
        """Read ``axis=INT`` (or ``axis=[0, 2]``, ``shape=[3, n]``) at token k inside a call;
        return the index after it."""
        call = self._call_entry("=", k)
        word = self.words[k]
        op = BLOCK_FUNCTIONS.get(self.words[call]) or INTERNAL_CALLS.get(self.words[call])
        allowed = op.keywords if op is not None and op.keywords else ("axis",)
        if word not in allowed:
            names = ", ".join(f"{name}=" for name in allowed)
            raise self.error(f"unknown keyword argument '{word}' (the only ones are {names})", k)
        value: Any
        if self.kinds[k + 2] == "[":
            value, j = self._literal_list(k + 2)
        else:
            value, j = self._integer(k + 2)
        if value is None:
            raise self.error(f"{word}= takes an integer literal or a list of them", k + 2)
        self.keywords.setdefault(call, {})[word] = value
        return j

    def _literal_list(self, k: int) -> tuple[tuple[Any, ...], int]:
        """Read ``"[" item ("," item)* "]"`` at token k, each item an integer literal, a dimension
        name or a slice (a keyword's list: ``axis=[0, 2]``, ``shape=[3, n]``, ``at=[1:3:1, :]``);
        return the items and the index after the ``]``. The op's ``call`` checks what it holds."""
        items: list[Any] = []
        j = k + 1
        while True:
            if self.kinds[j] == "name" and self.words[j] in self.dim_names:
                items.append(self.given_dims.get(self.words[j], self.words[j]))
                at = j + 1
            elif self.kinds[j] == "name":
                raise self.error(f"unknown dimension '{self.words[j]}' (not in any declaration)", j)
            else:
                item, at = self._index_item(j)
                items.append(item)
            if self.kinds[at] == "]":
                return tuple(items), at + 1
            if self.kinds[at] != ",":
                raise self.error("expected ',' or ']' in a list", at)
            j = at + 1

    def _dims_argument(self, k: int) -> int:
        """Read reshape's ``[2, -1]`` at token k; return the index after it."""
        call = self._call_entry("[", k)
        if self.words[call] != "reshape":
            raise self.error("lists are not part of the language (a shape goes in reshape(x, [2, 3]))", k)
        dims, j = self._dims(k)
        self.keywords.setdefault(call, {})["shape"] = (dims, k)
        return j

    def _finish_block_call(self, k: int, mark: int) -> Op | None:
        """Build the call of a block op or composite opened at token k, its operands above
        ``mark``; return None, or the elementwise op to call instead (``max(x, y)``)."""
        name = self.words[k]
        keywords = self.keywords.pop(k, {})
        args = tuple(self.values[mark:])
        custom = self.customs.get(name)
        if custom is not None:  # a user block with its VJP: its arguments and its expanded body
            self.open_brackets -= 1
            del self.values[mark:]
            self.values.append(self.graph.block(ALL_OPS["custom"], args, custom))
            return None
        if name in FUNCTIONS and (len(args) != 1 or (not self.graph.shape(args[0]) and not keywords)):
            if keywords:
                raise self.error(f"{name}() of two arguments is elementwise: it takes no axis=", k)
            return FUNCTIONS[name]  # elementwise max/min, as before tensors
        self.open_brackets -= 1
        composite = COMPOSITES.get(name)
        op = None if composite is not None else INTERNAL_CALLS.get(name) or BLOCK_FUNCTIONS[name]
        if op is not None and op.call is not None:
            self._finish_layer_call(op, k, mark, keywords)
            return None
        arity = composite.arity if composite is not None else BLOCK_FUNCTIONS[name].arity
        if len(args) != arity:
            plural = "s" if arity > 1 else ""
            raise self.error(
                f"{name}() takes {arity} tensor argument{plural} ({len(args)} given)", k, ArityError
            )
        takes_axis = composite.axis if composite is not None else BLOCK_FUNCTIONS[name].name in REDUCTIONS
        if "axis" in keywords and not takes_axis:
            raise self.error(f"{name}() takes no axis=", k)
        if (name == "reshape") != ("shape" in keywords):
            raise self.error("reshape takes a tensor and a shape: reshape(x, [2, 3])", k)
        del self.values[mark:]
        try:
            node = self._block_node(name, args, keywords)
        except ShapeError as err:
            raise self.error(str(err), k) from None
        self.values.append(node)
        return None

    def _finish_layer_call(self, op: Op, k: int, mark: int, keywords: dict[str, Any]) -> None:
        """A call of a block op with integer literals after its tensors (``maxpool2d(X, 2)``)."""
        args = tuple(self.values[mark:])
        if len(args) != op.arity + op.literals:
            raise self.error(
                f"{op.function or op.name}() takes {op.arity} tensor argument(s) and {op.literals} "
                "whole number(s) "
                f"({len(args)} given)",
                k,
                ArityError,
            )
        graph, literals = self.graph, []
        for node in args[op.arity :]:
            value = graph.const_value(node)
            if value is None or value != int(value) or value < 1:
                raise self.error(f"{op.function}() takes its window size as a whole number >= 1", k)
            literals.append(int(value))
        assert op.call is not None, op.name
        del self.values[mark:]
        try:
            self.values.append(
                graph.apply(op.name, *args[: op.arity], params=op.call(tuple(literals), keywords))
            )
        except ShapeError as err:
            raise self.error(str(err), k) from None

    def _block_node(self, name: str, args: tuple[int, ...], keywords: dict[str, Any]) -> int:
        dims = keywords["shape"][0] if "shape" in keywords else None
        keepdims, axis = keywords.get("keepdims", 0), keywords.get("axis")
        if keepdims not in (0, 1):
            raise ShapeError("keepdims= takes 0 or 1")
        if isinstance(axis, tuple) and not all(type(a) is int for a in axis):
            raise ShapeError(f"{name}()'s axis= takes an integer or a list of integers")
        return block_call(self.graph, name, args, keywords.get("axis"), dims, bool(keepdims))


def block_call(
    graph: Graph, name: str, args: tuple[int, ...], axis: Any = None, dims: Any = None, keepdims: bool = False
) -> int:
    """The node of a call of block op or composite ``name`` of the language on ``args``, with its
    ``axis=`` (reductions and composites; ``keepdims`` for reductions) or, for reshape, its target
    ``dims`` (one may be -1): what the parser and graphc.numpy both build. A shape the operands
    cannot take is a ShapeError."""
    composite = COMPOSITES.get(name)
    if composite is not None:
        return composite.build(graph, *args, axis)
    op = BLOCK_FUNCTIONS[name]
    shape = graph.shape(args[0])
    if op.name in REDUCTIONS:
        return graph.apply(op.name, args[0], params=reduction_params(shape, axis, keepdims))
    if op.name == "reshape":
        return graph.apply("reshape", args[0], params=_reshape_target(shape, dims))
    if op.name == "transpose":
        return graph.apply("transpose", args[0], params=tuple(range(len(shape) - 1, -1, -1)))
    return graph.apply(op.name, *args)


def _reshape_target(shape: Shape, dims: Shape) -> Shape:
    """reshape's target with its ``-1`` (at most one) worked out from ``shape``."""
    unknown = [i for i, d in enumerate(dims) if d == -1]
    if len(unknown) > 1:
        raise ShapeError("reshape takes at most one -1")
    if not unknown:
        return dims
    ints = [d for d in shape if isinstance(d, int)]
    known = [d for d in dims if isinstance(d, int) and d != -1]
    names = sorted(d for d in shape if isinstance(d, str))
    if names != sorted(d for d in dims if isinstance(d, str)) or math.prod(ints) % math.prod(known):
        from graphc.shapes import text

        raise ShapeError(f"cannot reshape {text(shape)} to {text(dims)}: the sizes differ")
    i = unknown[0]
    return (*dims[:i], math.prod(ints) // math.prod(known), *dims[i + 1 :])
