"""The parser: program text to a hash-consed :class:`Graph`.

Hand-written and iterative: a tokenizer loop and an operator-precedence (shunting-yard) loop
with explicit stacks for operators and brackets, so a 200,000-term sum or 10,000 nested calls
parse without recursion. Nothing here evaluates Python: no ``eval``, no ``ast``, no ``sympify``.

The language (Python's precedence; ``^`` is also power)::

    program   := statement ((";" | newline) statement)*
    statement := NAME "=" expr | expr ("," expr)*        # several outputs only on the last line
    expr      := expr ("+" | "-") expr | expr ("*" | "/") expr | ("-" | "+") expr
               | expr ("**" | "^") expr                  # right-associative, tighter than unary -
               | NUMBER | NAME | FUNCTION "(" expr ("," expr)* ")" | "(" expr ")"

Names are letters (any script), digits and underscores, not starting with a digit; ``#`` starts
a comment; newlines inside brackets continue the line.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterator
from typing import NamedTuple

from graphc.errors import ArityError, ParseError, UnknownFunctionError
from graphc.graph import Graph
from graphc.ops import BINARY_INFIX, CONSTANTS, FUNCTIONS, RESERVED

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 4, "^": 4}
_NEG_PRECEDENCE = 3
_PYTHON_WORDS = frozenset("if else elif for while lambda and or not in is def class return import from with".split())
_UNSUPPORTED = {
    "//": "floor division '//' is not part of the language",
    "%": "the '%' operator is not part of the language",
    "@": "the '@' operator is not part of the language",
    "==": "comparisons are not part of the language",
    "!=": "comparisons are not part of the language",
    "<": "comparisons are not part of the language",
    ">": "comparisons are not part of the language",
    "&": "bitwise operators are not part of the language",
    "|": "bitwise operators are not part of the language",
    "~": "bitwise operators are not part of the language",
    "[": "lists and indexing are not part of the language",
    "]": "lists and indexing are not part of the language",
    "{": "sets and dicts are not part of the language",
    "}": "sets and dicts are not part of the language",
    "'": "strings are not part of the language",
    '"': "strings are not part of the language",
    ".": "'.' is not part of the language (no attributes or methods)",
    ":": "':' is not part of the language",
    "\\": "'\\' is not part of the language",
    "$": "'$' is not part of the language",
    "?": "'?' is not part of the language",
    "!": "'!' is not part of the language",
    "`": "'`' is not part of the language",
}


class Token(NamedTuple):
    kind: str  # "num", "name", "op", "(", ")", ",", "=", "sep", "end"
    text: str
    pos: int


_TOKEN = re.compile(
    r"(?P<space>[ \t\r]+|\#[^\n]*)"
    r"|(?P<sep>[;\n])"
    r"|(?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[^\W\d]\w*)"
    r"|(?P<op>\*\*|[+\-*/^])"
    r"|(?P<punct>[(),=])"
    r"|(?P<bad>[\s\S])"
)


def tokenize(text: str) -> Iterator[Token]:
    """The tokens of ``text``, ending with an ``end`` token; raises ParseError at the first bad one.

    Names are what ``str.isidentifier`` accepts (letters of any script, digits, underscores; not
    starting with a digit), compared exactly as written: no Unicode normalisation.
    """
    n = len(text)
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "space":
            continue
        i, word = m.start(), m.group()
        if kind == "num":
            end = m.end()
            if end < n and (text[end].isalnum() or text[end] in "_."):
                raise ParseError(f"invalid number '{text[i:end + 1]}'", text, end)
        elif kind == "name":
            if not word.isidentifier():
                bad = next(j for j in range(len(word)) if not ("a" + word[: j + 1]).isidentifier())
                _bad_character(text, i + bad)
        elif kind == "punct" or kind == "op":
            if text[i : i + 2] in _UNSUPPORTED:  # '//' and '==' start like '/' and '='
                raise ParseError(_UNSUPPORTED[text[i : i + 2]], text, i)
            if kind == "punct":
                kind = word
        elif kind == "bad":
            _bad_character(text, i)
        yield Token(kind, word, i)
    yield Token("end", "", n)


class _Lookahead:
    """Tokens by index, read from the tokenizer only as far as the parser has looked, so the
    first error reported is the first one in the text."""

    def __init__(self, text: str) -> None:
        self._read: list[Token] = []
        self._source = tokenize(text)

    def __getitem__(self, k: int) -> Token:
        read = self._read
        while len(read) <= k:
            if read and read[-1].kind == "end":
                return read[-1]
            read.append(next(self._source))
        return read[k]


def _bad_character(text: str, i: int) -> None:
    two = text[i : i + 2]
    if two in _UNSUPPORTED:
        raise ParseError(_UNSUPPORTED[two], text, i)
    ch = text[i]
    if ch in _UNSUPPORTED:
        raise ParseError(_UNSUPPORTED[ch], text, i)
    if unicodedata.category(ch)[0] == "C":
        raise ParseError(f"control character U+{ord(ch):04X} is not allowed", text, i)
    raise ParseError(f"unexpected character {ch!r} (U+{ord(ch):04X})", text, i)


def _describe(token: Token) -> str:
    if token.kind == "end":
        return "end of input"
    if token.kind == "sep":
        return "end of line" if token.text == "\n" else "';'"
    if token.kind == "num":
        return f"number {token.text}"
    if token.kind == "name":
        return f"name '{token.text}'"
    return f"'{token.text}'"


class _Parser:
    """One pass over the tokens, building nodes as operators are reduced."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _Lookahead(text)
        self.graph = Graph()
        self.bindings: dict[str, int] = {}
        self.free: dict[str, int] = {}  # name -> position of first use as an input variable

    def error(self, message: str, pos: int, cls: type[ParseError] = ParseError) -> ParseError:
        return cls(message, self.text, pos)

    def parse(self) -> Graph:
        tokens, k = self.tokens, 0
        outputs: list[int] = []
        names: list[str | None] = []
        last_end = 0
        while tokens[k].kind != "end":
            if tokens[k].kind == "sep":
                k += 1
                continue
            if len(outputs) > 1:
                raise self.error("several outputs (',') are only allowed in the last statement", self._output_comma)
            target = None
            if tokens[k].kind == "name" and tokens[k + 1].kind == "=":
                target = tokens[k]
                self._check_target(target)
                k += 2
            k, outputs, names = self._statement(k, allow_outputs=target is None)
            if target is not None:
                self.bindings[target.text] = outputs[0]
                names = [target.text]
            last_end = k
        if not outputs:
            raise self.error("empty program: nothing to compute", last_end)
        graph = self.graph
        default = ["f"] if len(outputs) == 1 else [f"f{i + 1}" for i in range(len(outputs))]
        graph.set_outputs(outputs, [name or d for name, d in zip(names, default)])
        return graph.pruned()

    def _check_target(self, target: Token) -> None:
        name = target.text
        if name in RESERVED:
            kind = "function" if name in FUNCTIONS else "constant"
            raise self.error(f"cannot assign to '{name}': it is a built-in {kind}", target.pos)
        if name in self.free:
            raise self.error(
                f"cannot assign to '{name}': it is already used as an input variable", target.pos
            )

    def _statement(self, k: int, allow_outputs: bool) -> tuple[int, list[int], list[str | None]]:
        """Parse one statement from token k; return the index after it, its values and their names."""
        tokens, graph = self.tokens, self.graph
        values: list[int] = []
        stack: list[tuple[str, object, int, int]] = []  # (kind, payload, pos, values at open)
        frames = 0  # open brackets on the stack
        expect_operand = True
        names: list[str | None] = []
        lone_name: str | None = None  # the current output is exactly one bound name
        start = len(values)
        self._output_comma = tokens[k].pos

        def reduce() -> None:
            kind, payload, _, _ = stack.pop()
            if kind == "neg":
                values.append(graph.neg(values.pop()))
            else:
                right = values.pop()
                values.append(graph.apply(payload, values.pop(), right))  # type: ignore[arg-type]

        def close_output(token: Token) -> None:
            nonlocal lone_name
            while stack:
                reduce()
            names.append(lone_name)
            lone_name = None

        while True:
            token = tokens[k]
            kind = token.kind
            if kind == "sep" and token.text == "\n" and frames:
                k += 1  # a newline inside brackets continues the line
                continue
            if expect_operand:
                lone_candidate = len(values) == start + len(names) and not stack
                if kind == "num":
                    value = float(token.text)
                    if value == float("inf"):
                        raise self.error(f"number {token.text} is too large for float64", token.pos)
                    values.append(graph.const(value))
                    expect_operand = False
                elif kind == "name":
                    is_call = tokens[k + 1].kind == "("
                    if is_call:
                        self._open_call(token, stack, values)
                        frames += 1
                        k += 2
                        if tokens[k].kind == ")":
                            spec = FUNCTIONS[token.text]
                            raise self.error(
                                f"{token.text}() takes {spec.arity} argument{'s' * (spec.arity > 1)}"
                                " (0 given)", token.pos, ArityError)
                        continue
                    values.append(self._name(token))
                    expect_operand = False
                    if lone_candidate and token.text in self.bindings:
                        after = tokens[k + 1]
                        if after.kind in ("sep", "end", ","):
                            lone_name = token.text
                elif kind == "(":
                    stack.append(("(", None, token.pos, len(values)))
                    frames += 1
                elif kind == "op" and token.text == "-":
                    stack.append(("neg", None, token.pos, 0))
                elif kind == "op" and token.text == "+":
                    pass  # unary plus
                elif kind in ("sep", "end"):
                    if not values and not stack and not names:
                        raise self.error("empty expression" if allow_outputs else "no value after '='", token.pos)
                    raise self.error(f"expected an operand before {_describe(token)}", token.pos)
                else:
                    raise self.error(f"expected an operand, found {_describe(token)}", token.pos)
                k += 1
                continue
            # expecting an operator (or a closing bracket, comma or the end of the statement)
            if kind == "op":
                prec = _PRECEDENCE[token.text]
                right_assoc = token.text in ("**", "^")
                while stack and stack[-1][0] in ("bin", "neg"):
                    top_prec = _NEG_PRECEDENCE if stack[-1][0] == "neg" else stack[-1][3]
                    if top_prec > prec or (top_prec == prec and not right_assoc):
                        reduce()
                    else:
                        break
                op = BINARY_INFIX["**" if token.text == "^" else token.text].name
                stack.append(("bin", op, token.pos, prec))
                expect_operand = True
            elif kind == ")":
                while stack and stack[-1][0] in ("bin", "neg"):
                    reduce()
                if not stack:
                    raise self.error("unmatched ')'", token.pos)
                frame_kind, spec, pos, base = stack.pop()
                frames -= 1
                if frame_kind == "call":
                    self._finish_call(spec, pos, values, base)  # type: ignore[arg-type]
            elif kind == ",":
                while stack and stack[-1][0] in ("bin", "neg"):
                    reduce()
                if stack and stack[-1][0] == "call":
                    expect_operand = True
                elif stack:
                    raise self.error("',' inside brackets: tuples are not part of the language", token.pos)
                elif not allow_outputs:
                    raise self.error("a binding takes one value: ',' is not allowed here", token.pos)
                else:
                    if len(names) == 0:
                        self._output_comma = token.pos
                    close_output(token)
                    expect_operand = True
            elif kind in ("sep", "end"):
                if frames:
                    opener = next(entry for entry in stack if entry[0] in ("(", "call"))
                    what = f"{opener[1].function}(" if opener[0] == "call" else "("  # type: ignore[union-attr]
                    raise self.error(f"'{what}' is never closed ({frames} unclosed)", opener[2])
                close_output(token)
                return k, values[start:], names
            elif kind == "=":
                raise self.error("unexpected '=': a binding must start its statement (name = ...)", token.pos)
            elif kind == "name" and token.text in _PYTHON_WORDS:
                raise self.error(f"'{token.text}' is not part of the language (Python syntax)", token.pos)
            else:
                raise self.error(f"expected an operator, found {_describe(token)}", token.pos)
            k += 1

    def _name(self, token: Token) -> int:
        name = token.text
        if name in self.bindings:
            return self.bindings[name]
        if name in CONSTANTS:
            return self.graph.const(CONSTANTS[name])
        if name in FUNCTIONS:
            raise self.error(f"'{name}' is a function: call it as {name}(...)", token.pos)
        self.free.setdefault(name, token.pos)
        return self.graph.var(name)

    def _open_call(self, token: Token, stack: list, values: list[int]) -> None:
        name = token.text
        spec = FUNCTIONS.get(name)
        if spec is None:
            if name in self.bindings or name in CONSTANTS or name in self.free:
                raise self.error(f"'{name}' is not a function (use '*' to multiply)", token.pos)
            close = difflib.get_close_matches(name, list(FUNCTIONS), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else " (to multiply, write '*')"
            raise self.error(f"unknown function '{name}'{hint}", token.pos, UnknownFunctionError)
        stack.append(("call", spec, token.pos, len(values)))

    def _finish_call(self, spec, pos: int, values: list[int], base: int) -> None:
        given = len(values) - base
        if given != spec.arity:
            plural = "s" if spec.arity > 1 else ""
            raise self.error(f"{spec.function}() takes {spec.arity} argument{plural} ({given} given)", pos, ArityError)
        args = values[base:]
        del values[base:]
        values.append(self.graph.apply(spec.name, *args))


def parse(text: str) -> Graph:
    """Parse a graphc program into a Graph.

    >>> g = parse("u = x*y; sin(u) + u**2")
    >>> g.variables, g.output_names
    (['x', 'y'], ['f'])
    """
    if not isinstance(text, str):
        raise ParseError(f"expected program text (str), got {type(text).__name__}", "", 0)
    return _Parser(text).parse()

