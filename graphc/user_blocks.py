"""User-defined blocks: ``def name(a, b) = expression`` in the language, and :func:`block` from Python.

A block is expanded where it is used, at the token level, before the parser reads the program:
``def sq(a) = a * a; sq(x + 1)`` reads as ``((x + 1)) * ((x + 1))``, and hash-consing makes the
repeated argument one node. A body may call earlier blocks (expanded when the block is defined, so
one left-to-right pass over the tokens with an explicit stack of open calls expands everything:
nothing recurses), and every op; the names it reads are its parameters and the language's
constants. Tokens that come from a body carry the block's name, so an error inside it says which
block it is in, with the caret under the call.

A block registered from Python with its own derivative, ``block("mysoftmax(a) = exp(a) /
sum(exp(a))", vjp="y * (g - sum(y * g))")`` (``y``: the block's output, ``g``: the incoming adjoint;
one formula per parameter), is expanded around one node of the ``custom`` op: its operands are the
arguments and the expanded body, its value is the body's, and its VJP is the user's formula, built
into the derivative graph from the same tokens; the body gets no adjoint. Its JVP passes the
body's own tangent through, so ``forward`` differentiates the body: :func:`check_block` compares
the two, as the 003 lecture checks ``MySoftmax`` against ``softmax``.

Registered blocks live in a :class:`BlockRegistry`. Every parse reads the *current* one: the
module's default registry, unless a ``with`` block has entered another (``with graphc.blocks() as
scope: ...``), in this thread or task only (a :mod:`contextvars` variable), until the ``with`` ends.
So two users in one process, or two tests, each keep their blocks in their own registry and cannot
clash or leak; :func:`block`, :func:`forget` and :func:`check_block` act on the current registry
(:func:`block` replaces a block of the same name; :func:`forget` removes one). A parsed graph
holds the blocks it used in its custom nodes, so it no longer needs the registry.
"""

from __future__ import annotations

import itertools
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from graphc import ops  # (ops builds the custom entry from this module's rules: read at call time)
from graphc.errors import GraphcError, ParseError
from graphc.shapes import Shape

if TYPE_CHECKING:
    from graphc.graph import Graph

# A run of tokens: parallel tuples of kinds and words (as graphc.parse.Tokens holds them).
Run = tuple[tuple[str, ...], tuple[str, ...]]
MAX_EXPANSION = 2_000_000  # tokens after expanding blocks: a guard against exponential nesting


@dataclass(frozen=True)
class Block:
    """A user-defined block: its parameters, its expanded body and, optionally, its VJP formulas."""

    name: str
    params: tuple[str, ...]
    body: Run
    vjp: tuple[Run, ...] | None = None  # one formula per parameter, over params, ``y`` and ``g``
    scalar: bool = False  # the body is its scalar form too (paths, symbolic, llvm: see custom_scalarise)

    def __repr__(self) -> str:
        return f"Block({self.name}({', '.join(self.params)}))"


class BlockRegistry:
    """A set of named user blocks, which the parses made while it is current read.

    >>> import graphc
    >>> with graphc.blocks() as scope:
    ...     _ = graphc.block("twice(a) = 2 * a")
    ...     graphc.compile("twice(x)")(3.0), "twice" in scope
    (np.float64(6.0), True)
    >>> from graphc.user_blocks import current
    >>> "twice" in current()
    False
    """

    def __init__(self, blocks: dict[str, Block] | None = None) -> None:
        self.blocks: dict[str, Block] = dict(blocks or {})
        self._tokens: list[Token[BlockRegistry]] = []

    def __contains__(self, name: object) -> bool:
        return name in self.blocks

    def __repr__(self) -> str:
        return f"BlockRegistry({', '.join(map(repr, self.blocks.values()))})"

    def __enter__(self) -> Self:
        self._tokens.append(_CURRENT.set(self))
        return self

    def __exit__(self, *exc: object) -> None:
        _CURRENT.reset(self._tokens.pop())

    def block(
        self, definition: str, vjp: str | tuple[str, ...] | None = None, *, scalar: bool = False
    ) -> Block:
        """Define a block in this registry (see :func:`block`)."""
        new = _defined(definition, vjp, self, scalar)
        self.blocks[new.name] = new
        return new

    def forget(self, name: str) -> None:
        """Remove block ``name`` from this registry (a no-op if there is none)."""
        self.blocks.pop(name, None)


DEFAULT = BlockRegistry()  # the registry current where no ``with`` has entered another
_CURRENT: ContextVar[BlockRegistry] = ContextVar("graphc_blocks", default=DEFAULT)


def current() -> BlockRegistry:
    """The registry parses read now: the innermost entered one, else :data:`DEFAULT`."""
    return _CURRENT.get()


def blocks(inherit: bool = False) -> BlockRegistry:
    """A new registry, to enter with ``with``: empty, or (``inherit=True``) starting with a copy of
    the current registry's blocks. Blocks defined while it is current vanish when it is left."""
    return BlockRegistry(current().blocks if inherit else None)


class _Call:
    """A block call being read: where its argument tokens start in the output, and its depth."""

    def __init__(self, block: Block, start: int, depth: int, k: int) -> None:
        self.block, self.start, self.depth, self.k = block, start, depth, k
        self.commas: list[int] = []


class Expansion:
    """Expand the blocks of a token list in one pass: ``def`` statements are read and dropped, and
    each call of a block is replaced by its body with the parameters replaced by the arguments.

    The result is parallel lists: kinds, words, starts (a spliced token has the start of the call
    it came from) and origins (the block a token came from, or None)."""

    def __init__(
        self,
        text: str,
        kinds: list[str],
        words: list[str],
        starts: list[int],
        registry: BlockRegistry | None = None,
    ) -> None:
        self.text, self.kinds, self.words, self.starts = text, kinds, words, starts
        self.blocks: dict[str, Block] = dict((registry or current()).blocks)
        self.customs: dict[str, Block] = {}  # the blocks with a VJP used (called by name)
        self.out: tuple[list[str], list[str], list[int], list[str | None]] = ([], [], [], [])

    def error(self, message: str, k: int) -> ParseError:
        return ParseError(message, self.text, self.starts[k] if k < len(self.starts) else len(self.text))

    def run(self) -> tuple[list[str], list[str], list[int], list[str | None]]:
        kinds, words = self.kinds, self.words
        calls: list[_Call] = []
        depth = 0
        defining: tuple[str, tuple[str, ...], int, int] | None = None  # name, params, out start, k
        statement_start = True
        k = 0
        n = len(kinds)
        while k < n:
            kind, word = kinds[k], words[k]
            if statement_start and word == "def" and kinds[k + 1 : k + 3] == ["name", "("]:
                name, params, k = self._header(k)
                defining = (name, params, len(self.out[0]), k)
                statement_start = False
                continue
            statement_start = kind == "sep" and not depth
            if kind in ("sep", "end") and not depth:
                if calls:
                    raise self.error(f"'{calls[-1].block.name}(' is never closed", calls[-1].k)
                if defining is not None:
                    self._define(*defining)
                    defining = None
                    if kind == "sep":
                        k += 1
                        continue
            elif kind == "name" and kinds[k + 1 : k + 2] == ["("] and word in self.blocks:
                depth += 1
                calls.append(_Call(self.blocks[word], len(self.out[0]), depth, k))
                k += 2
                continue
            elif kind in ("(", "["):
                depth += 1
            elif kind in (")", "]"):
                if calls and kind == ")" and depth == calls[-1].depth:
                    self._splice(calls.pop())
                    depth -= 1
                    k += 1
                    continue
                depth -= 1
            elif kind == "," and calls and depth == calls[-1].depth:
                calls[-1].commas.append(len(self.out[0]))
                k += 1
                continue
            elif kind == "name" and defining is not None:
                self._check_name(defining, k)
            self._emit(kind, word, self.starts[k], None)
            k += 1
        return self.out

    def _emit(self, kind: str, word: str, start: int, origin: str | None) -> None:
        kinds, words, starts, origins = self.out
        kinds.append(kind)
        words.append(word)
        starts.append(start)
        origins.append(origin)

    def _header(self, k: int) -> tuple[str, tuple[str, ...], int]:
        """Read ``def NAME "(" NAME ("," NAME)* ")" "="`` at token k."""
        kinds, words = self.kinds, self.words
        name = words[k + 1]  # (a statement "def NAME(" defines a block; else "def" is a name)
        if name in ops.RESERVED:
            raise self.error(f"cannot define '{name}': it is a built-in name", k + 1)
        params: list[str] = []
        j = k + 3
        while True:
            if kinds[j] != "name":
                raise self.error(f"block '{name}': a parameter is a name", j)
            if words[j] in params or words[j] in ops.RESERVED:
                raise self.error(f"block '{name}': parameter '{words[j]}' is repeated or a built-in name", j)
            params.append(words[j])
            if kinds[j + 1] == ")":
                break
            if kinds[j + 1] != ",":
                raise self.error(f"block '{name}': expected ',' or ')' after a parameter", j + 1)
            j += 2
        if kinds[j + 2] != "=":
            raise self.error(f"block '{name}': expected '=' and the body after the parameters", j + 2)
        if kinds[j + 3] in ("sep", "end"):
            raise self.error(f"block '{name}' has an empty body", j + 3)
        return name, tuple(params), j + 3

    def _check_name(self, defining: tuple[str, tuple[str, ...], int, int], k: int) -> None:
        name, params = defining[0], defining[1]
        word, after = self.words[k], (self.kinds[k + 1 : k + 2] or ["end"])[0]
        if word in params or word in ops.CONSTANTS or after in ("(", "="):
            return
        raise self.error(
            f"block '{name}' reads '{word}', which is not one of its parameters ({', '.join(params)})", k
        )

    def _define(self, name: str, params: tuple[str, ...], start: int, k: int) -> None:
        kinds, words = self.out[:2]
        body = (tuple(kinds[start:]), tuple(words[start:]))
        for store in self.out:
            del store[start:]
        self.blocks[name] = Block(name, params, body)

    def _splice(self, call: _Call) -> None:
        """Replace the argument tokens of ``call`` (all of the output after its start) by its body."""
        block, kinds, words = call.block, *self.out[:2]
        bounds = [call.start, *call.commas, len(kinds)]
        args = [(kinds[a:b], words[a:b]) for a, b in itertools.pairwise(bounds)]
        if args == [([], [])]:
            args = []
        if len(args) != len(block.params) or any(not run[0] for run in args):
            raise self.error(
                f"block '{block.name}' takes {len(block.params)} argument(s) ({len(args)} given)", call.k
            )
        for store in self.out:
            del store[call.start :]
        start, origin = self.starts[call.k], block.name
        if block.vjp is not None:
            self.customs[block.name] = block
            self._emit("name", block.name, start, origin)
            self._emit("(", "(", start, origin)
            for arg_kinds, arg_words in args:
                self._emit_run(arg_kinds, arg_words, start, origin)
                self._emit(",", ",", start, origin)
        self._emit("(", "(", start, origin)
        bound = dict(zip(block.params, args, strict=True))
        body_kinds, body_words = block.body
        for i, (kind, word) in enumerate(zip(body_kinds, body_words, strict=True)):
            arg = bound.get(word) if kind == "name" else None
            after = body_kinds[i + 1] if i + 1 < len(body_kinds) else "end"
            if arg is None or after in ("(", "="):
                self._emit(kind, word, start, origin)
            else:
                self._emit("(", "(", start, origin)
                self._emit_run(*arg, start, origin)
                self._emit(")", ")", start, origin)
        self._emit(")", ")", start, origin)
        if block.vjp is not None:
            self._emit(")", ")", start, origin)
        if len(self.out[0]) > MAX_EXPANSION:
            raise self.error(f"expanding block '{block.name}' makes over {MAX_EXPANSION} tokens", call.k)

    def _emit_run(self, kinds: list[str], words: list[str], start: int, origin: str | None) -> None:
        for kind, word in zip(kinds, words, strict=True):
            self._emit(kind, word, start, origin)


def uses_blocks(words: list[str]) -> bool:
    """Whether a program's words define or may call a block (the parser expands only then)."""
    registered = current().blocks
    return "def" in words or (bool(registered) and not registered.keys().isdisjoint(words))


# --- blocks from Python ------------------------------------------------------------------------


def _run(text: str, what: str) -> Run:
    from graphc.parse import scan

    tokens = scan(text)
    if tokens.error is not None:
        raise ParseError(f"{what}: {tokens.error.message}", text, tokens.error.position)
    return tuple(tokens.kinds[:-1]), tuple(tokens.words[:-1])


def block(definition: str, vjp: str | tuple[str, ...] | None = None, *, scalar: bool = False) -> Block:
    """Define a block for every later expression parsed under the current registry (the default
    one, or the innermost ``with graphc.blocks()``): ``"name(a, b) = expression"``, optionally with
    its VJP, one formula per parameter over the parameters, ``y`` (the block's output) and ``g``
    (the adjoint of its output), each shaped like its parameter. A block with a VJP has no scalar
    form unless ``scalar=True`` says its body is one: then ``paths``, ``symbolic`` and the ``llvm``
    backend, which work on scalars, compute the body and differentiate it (the automatic derivative,
    which :func:`check_block` compares with the VJP), while ``dp`` keeps using the VJP.

    >>> import graphc
    >>> with graphc.blocks():
    ...     _ = graphc.block("mysoftmax(a) = exp(a) / sum(exp(a))", vjp="y * (g - sum(y * g))")
    ...     graphc.grad("x: [2]; mysoftmax(x)[0]")([0.0, 0.0])[0].tolist()
    [0.25, -0.25]
    """
    return current().block(definition, vjp, scalar=scalar)


def _defined(
    definition: str, vjp: str | tuple[str, ...] | None, registry: BlockRegistry, scalar: bool = False
) -> Block:
    """The block ``definition`` defines, read with ``registry``'s blocks (a body may call them)."""
    if not isinstance(definition, str):
        raise GraphcError(
            f"a block is defined by text 'name(a) = expression', got {type(definition).__name__}"
        )
    from graphc.parse import scan

    tokens = scan("def " + definition)
    if tokens.error is not None:
        raise tokens.error
    expansion = Expansion(tokens.text, tokens.kinds, tokens.words, tokens.starts, registry)
    kinds, _, _, _ = expansion.run()
    defined = [b for name, b in expansion.blocks.items() if registry.blocks.get(name) is not b]
    if len(defined) != 1 or kinds != ["end"]:
        raise ParseError("a block is one definition: name(a, b) = expression", tokens.text, 4)
    new = defined[0]
    if vjp is not None:
        formulas = (vjp,) if isinstance(vjp, str) else tuple(vjp)
        if len(formulas) != len(new.params) or not all(isinstance(f, str) for f in formulas):
            raise GraphcError(f"block '{new.name}' takes one VJP formula per parameter ({len(new.params)})")
        runs = tuple(_run(f, f"the VJP of block '{new.name}'") for f in formulas)
        allowed = {*new.params, "y", "g"}
        for run, formula in zip(runs, formulas, strict=True):
            for i, (kind, word) in enumerate(zip(*run, strict=True)):
                after = run[0][i + 1] if i + 1 < len(run[0]) else "end"
                if (
                    kind == "name"
                    and word not in allowed
                    and word not in ops.CONSTANTS
                    and after not in ("(", "=")
                ):
                    raise GraphcError(
                        f"the VJP of block '{new.name}' reads '{word}': it may read "
                        f"{', '.join(sorted(allowed))} ({formula!r})"
                    )
        new = Block(new.name, new.params, new.body, runs, scalar)
    elif scalar:
        raise GraphcError(
            f"block '{new.name}': scalar=True is for a block with its own vjp (one without is its body)"
        )
    return new


def forget(name: str) -> None:
    """Remove a block registered by :func:`block` from the current registry (a KeyError-free
    no-op if there is none)."""
    current().forget(name)


# --- the custom op's rules (its entry is in graphc/ops.py) --------------------------------------


def custom_shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
    return shapes[-1]


def custom_emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    return a[-1]


def custom_vjp(b: Graph, args: tuple[int, ...], out: int, params: Any, g: int) -> tuple[int | None, ...]:
    """The user's formulas, built from their tokens with the names bound to the nodes."""
    from graphc.parse import build_expression

    block: Block = params
    assert block.vjp is not None
    names = {**dict(zip(block.params, args, strict=False)), "y": out, "g": g}
    adjoints: list[int | None] = []
    for run, arg in zip(block.vjp, args, strict=False):
        try:
            node = build_expression(list(run[0]), list(run[1]), b, names)
        except ParseError as err:
            raise GraphcError(f"the VJP of block '{block.name}': {err.message}") from None
        if b.shape(node) != b.shape(arg):
            from graphc.shapes import text

            raise GraphcError(
                f"the VJP of block '{block.name}' is shaped {text(b.shape(node))}, "
                f"its parameter {text(b.shape(arg))}"
            )
        adjoints.append(node)
    return (*adjoints, None)


def custom_jvp(
    b: Graph, args: tuple[int, ...], out: int, params: Any, t: tuple[int | None, ...]
) -> int | None:
    return t[-1]  # the body's own tangent: forward mode differentiates the body


def custom_stacked(b: Graph, a: tuple[int, ...], which: tuple[bool, ...], params: Any, lead: Shape) -> int:
    """The block's value on stacked operands (graphc.diff.stacked): its body's, which the stack
    reached through its own ops (broadcast along the stack if the body reads no stacked argument)."""
    body = a[-1]
    return body if which[-1] else b.apply("broadcast", body, params=lead + b.shape(body))


def custom_stacked_jvp(
    b: Graph, args: tuple[int, ...], out: int, params: Any, t: tuple[int | None, ...], lead: Shape
) -> int | None:
    return t[-1]  # the body's stacked tangent, as custom_jvp passes the body's tangent


def custom_paths(c: list[Any], params: Any, shape: tuple[int, ...]) -> Any:
    return c[-1]  # the paths through the body (the exact count of the automatic derivative)


def custom_scalarise(b: Graph, a: tuple[Any, ...], params: Any) -> Any:
    """The body's elements, if the user said the body is the block's scalar form; else refuse by
    name: a scalar derivative of the body would not be the user's VJP."""
    block: Block = params
    if not block.scalar:
        raise GraphcError(
            f"block '{block.name}' has its own VJP and no scalar form, which paths, symbolic, the llvm "
            "backend and C export need: use method='dp' or 'forward' with backend='numpy', or define it "
            "with graphc.block(..., scalar=True) to let them compute and differentiate its body"
        )
    return a[-1]


def custom_spell(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    return f"{params.name}({', '.join(a[:-1])})"


# --- checking a block's VJP against the automatic derivative -----------------------------------


def check_block(name: str, *args: Any, rtol: float = 1e-7, atol: float = 1e-9, seed: int = 0) -> float:
    """Compare block ``name``'s VJP with the automatic derivative of its body at ``args`` (arrays),
    along a random cotangent; return the largest difference, or raise GraphcError naming the
    block and the parameter where they disagree beyond ``atol + rtol·|automatic|``.

    >>> import graphc, numpy as np
    >>> _ = graphc.block("mysoftmax(a) = exp(a) / sum(exp(a))", vjp="y * (g - sum(y * g))")
    >>> graphc.check_block("mysoftmax", np.array([0.5, -1.0, 2.0])) < 1e-12
    True
    """
    from graphc.api import grad

    found = current().blocks.get(name)
    if found is None or found.vjp is None:
        raise GraphcError(f"no block '{name}' with a VJP is registered (graphc.block(..., vjp=...))")
    arrays = [np.asarray(a, dtype=np.float64) for a in args]
    if len(arrays) != len(found.params):
        raise GraphcError(f"block '{name}' takes {len(found.params)} argument(s) ({len(arrays)} given)")
    names = [f"p{i}" for i in range(len(arrays))]
    declared = "; ".join(f"{p}: {list(a.shape)}" for p, a in zip(names, arrays, strict=True) if a.shape)
    # the output's shape, to draw the cotangent
    from graphc.api import compile as compile_expr

    call = f"{name}({', '.join(names)})"
    value = np.asarray(compile_expr(f"{declared}; {call}" if declared else call)(*arrays))
    weights = np.random.default_rng(seed).normal(size=value.shape)
    shape = f"w: {list(value.shape)}; " if value.shape else ""
    text = f"{declared}; {shape}sum({call} * w)" if declared else f"{shape}sum({call} * w)"
    by_user = grad(text, wrt=names)(*arrays, weights)
    by_body = grad(text, wrt=names, method="forward")(*arrays, weights)
    worst = 0.0
    for param, mine, auto in zip(found.params, by_user, by_body, strict=True):
        gap = np.abs(np.asarray(mine) - np.asarray(auto))
        worst = max(worst, float(np.max(gap, initial=0.0)))
        if np.any(gap > atol + rtol * np.abs(auto)) or not np.all(np.isfinite(mine)):
            raise GraphcError(
                f"block '{name}': the VJP of '{param}' differs from the automatic derivative by {float(np.max(gap)):.3g}"
            )
    return worst
