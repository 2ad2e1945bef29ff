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
from graphc.graph import MAX_NODES, Graph, checked_max_nodes
from graphc.ops import BINARY_INFIX, CONSTANTS, FUNCTIONS, OPS, RESERVED, Op

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 4, "^": 4}
_PYTHON_WORDS = frozenset(
    [
        "if",
        "else",
        "elif",
        "for",
        "while",
        "lambda",
        "and",
        "or",
        "not",
        "in",
        "is",
        "def",
        "class",
        "return",
        "import",
        "from",
        "with",
    ]
)
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
    # a name candidate: a word, with any non-ASCII characters (combining accents are not \w);
    # the tokenizer then keeps exactly what str.isidentifier accepts
    r"|(?P<name>(?:[^\W\d]|[^\x00-\x7f])(?:\w|[^\x00-\x7f])*)"
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
        kind = m.lastgroup or "bad"
        if kind == "space":
            continue
        i, word = m.start(), m.group()
        if kind == "num":
            end = m.end()
            if end < n and (text[end].isalnum() or text[end] in "_."):
                raise ParseError(f"invalid number '{text[i : end + 1]}'", text, end)
        elif kind == "name":
            if not word.isidentifier():
                starts = word[0].isidentifier()
                bad = (
                    next((j for j in range(1, len(word)) if not ("a" + word[j]).isidentifier()), 0)
                    if starts
                    else 0
                )
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


class _Entry(NamedTuple):
    """An entry of the operator stack: a pending operator or an open bracket."""

    kind: str  # "bin" (binary operator), "neg" (unary minus), "(" or "call"
    op: Op | None  # the op of "bin" and "call" entries
    pos: int  # where it stands in the text
    prec: int  # binding power of "bin" and "neg" entries
    mark: int  # for brackets: how many values were on the value stack when it opened


class _Parser:
    """Shunting-yard over the tokens: operands go on a value stack, operators and open brackets on
    an operator stack, and each reduction builds one node, so depth never meets the call stack."""

    def __init__(self, text: str, max_nodes: int | None = MAX_NODES) -> None:
        self.text = text
        self.tokens = _Lookahead(text)
        self.graph = Graph()
        self.graph.max_nodes = max_nodes
        self.bindings: dict[str, int] = {}
        self.free: set[str] = set()  # names used as input variables
        # the statement being parsed
        self.values: list[int] = []
        self.stack: list[_Entry] = []
        self.open_brackets = 0
        self.names: list[str | None] = []  # one per finished output: its binding's name, if any
        self.lone_name: str | None = None  # the current output is exactly this bound name
        self.first_comma = 0

    def error(self, message: str, pos: int, cls: type[ParseError] = ParseError) -> ParseError:
        return cls(message, self.text, pos)

    # --- statements ------------------------------------------------------------------------------

    def parse(self) -> Graph:
        tokens, k = self.tokens, 0
        outputs: list[int] = []
        names: list[str | None] = []
        while tokens[k].kind != "end":
            if tokens[k].kind == "sep":
                k += 1
                continue
            if len(outputs) > 1:
                raise self.error(
                    "several outputs (',') are only allowed in the last statement", self.first_comma
                )
            target = None
            if tokens[k].kind == "name" and tokens[k + 1].kind == "=":
                target = tokens[k]
                self._check_target(target)
                k += 2
            k = self._statement(k, binding=target is not None)
            outputs, names = self.values, self.names
            if target is not None:
                self.bindings[target.text] = outputs[0]
                names = [target.text]
        if not outputs:
            raise self.error("empty program: nothing to compute", 0)
        default = ["f"] if len(outputs) == 1 else [f"f{i + 1}" for i in range(len(outputs))]
        self.graph.set_outputs(outputs, [name or d for name, d in zip(names, default, strict=True)])
        return self.graph.pruned()

    def _check_target(self, target: Token) -> None:
        name = target.text
        if name in RESERVED:
            kind = "function" if name in FUNCTIONS else "constant"
            raise self.error(f"cannot assign to '{name}': it is a built-in {kind}", target.pos)
        if name in self.free:
            raise self.error(
                f"cannot assign to '{name}': it is already used as an input variable", target.pos
            )

    def _statement(self, k: int, binding: bool) -> int:
        """Parse one statement from token k into ``self.values``; return the index of its end token."""
        self.values, self.stack, self.names = [], [], []
        self.open_brackets, self.lone_name = 0, None
        expect_operand = True
        while True:
            token = self.tokens[k]
            if token.kind == "sep" and token.text == "\n" and self.open_brackets:
                pass  # a newline inside brackets continues the line
            elif expect_operand:
                k, expect_operand = self._operand(k, binding)
                continue
            elif token.kind in ("sep", "end"):
                self._end_statement(token)
                return k
            else:
                expect_operand = self._operator(token, binding)
            k += 1

    def _end_statement(self, token: Token) -> None:
        if self.open_brackets:
            opener = next(entry for entry in self.stack if entry.kind in ("(", "call"))
            what = f"{opener.op.function}(" if opener.op is not None else "("
            raise self.error(f"'{what}' is never closed ({self.open_brackets} unclosed)", opener.pos)
        self._close_output()

    def _close_output(self) -> None:
        while self.stack:
            self._reduce()
        self.names.append(self.lone_name)
        self.lone_name = None

    # --- operands: numbers, names, calls, "(" and prefix signs -----------------------------------

    def _operand(self, k: int, binding: bool) -> tuple[int, bool]:
        """Read what may stand where an operand is expected; return the next index and whether an
        operand is still expected (after a prefix sign or an opening bracket)."""
        token, tokens = self.tokens[k], self.tokens
        if token.kind == "num":
            value = float(token.text)
            if value == float("inf"):
                raise self.error(f"number {token.text} is too large for float64", token.pos)
            self.values.append(self.graph.const(value))
            return k + 1, False
        if token.kind == "name" and tokens[k + 1].kind == "(":
            self._open_call(token)
            if tokens[k + 2].kind == ")":
                self._finish_call(self.stack.pop())
                return k + 3, False
            return k + 2, True
        if token.kind == "name":
            at_output_start = not self.stack and len(self.values) == len(self.names)
            self.values.append(self._name(token))
            if at_output_start and token.text in self.bindings and tokens[k + 1].kind in ("sep", "end", ","):
                self.lone_name = token.text
            return k + 1, False
        if token.kind == "(":
            self.stack.append(_Entry("(", None, token.pos, 0, len(self.values)))
            self.open_brackets += 1
        elif token.text == "-":
            self.stack.append(_Entry("neg", None, token.pos, OPS["neg"].precedence, 0))
        elif token.text != "+":  # unary plus changes nothing
            if token.kind in ("sep", "end"):
                if not self.values and not self.stack and not self.names:
                    raise self.error("no value after '='" if binding else "empty expression", token.pos)
                raise self.error(f"expected an operand before {_describe(token)}", token.pos)
            raise self.error(f"expected an operand, found {_describe(token)}", token.pos)
        return k + 1, True

    def _name(self, token: Token) -> int:
        name = token.text
        if name in self.bindings:
            return self.bindings[name]
        if name in CONSTANTS:
            return self.graph.const(CONSTANTS[name])
        if name in FUNCTIONS:
            raise self.error(f"'{name}' is a function: call it as {name}(...)", token.pos)
        self.free.add(name)
        return self.graph.var(name)

    def _open_call(self, token: Token) -> None:
        name = token.text
        spec = FUNCTIONS.get(name)
        if spec is None:
            if name in self.bindings or name in CONSTANTS or name in self.free:
                raise self.error(f"'{name}' is not a function (use '*' to multiply)", token.pos)
            close = difflib.get_close_matches(name, list(FUNCTIONS), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else " (to multiply, write '*')"
            raise self.error(f"unknown function '{name}'{hint}", token.pos, UnknownFunctionError)
        self.stack.append(_Entry("call", spec, token.pos, 0, len(self.values)))
        self.open_brackets += 1

    def _finish_call(self, entry: _Entry) -> None:
        spec = entry.op
        assert spec is not None
        self.open_brackets -= 1
        given = len(self.values) - entry.mark
        if given != spec.arity:
            plural = "s" if spec.arity > 1 else ""
            message = f"{spec.function}() takes {spec.arity} argument{plural} ({given} given)"
            raise self.error(message, entry.pos, ArityError)
        args = self.values[entry.mark :]
        del self.values[entry.mark :]
        self.values.append(self.graph.apply(spec.name, *args))

    # --- operators: binary operators, ")" and "," ------------------------------------------------

    def _operator(self, token: Token, binding: bool) -> bool:
        """Read what may follow an operand; return whether an operand is expected next."""
        if token.kind == "op":
            prec = _PRECEDENCE[token.text]
            right_assoc = token.text in ("**", "^")
            while self.stack and self.stack[-1].kind in ("bin", "neg"):
                top = self.stack[-1].prec
                if top < prec or (top == prec and right_assoc):
                    break
                self._reduce()
            op = BINARY_INFIX["**" if token.text == "^" else token.text]
            self.stack.append(_Entry("bin", op, token.pos, prec, 0))
            return True
        if token.kind == ")":
            self._reduce_to_bracket()
            if not self.stack:
                raise self.error("unmatched ')'", token.pos)
            entry = self.stack.pop()
            if entry.kind == "call":
                self._finish_call(entry)
            else:
                self.open_brackets -= 1
            return False
        if token.kind == ",":
            self._reduce_to_bracket()
            if self.stack and self.stack[-1].kind == "call":
                return True
            if self.stack:
                raise self.error("',' inside brackets: tuples are not part of the language", token.pos)
            if binding:
                raise self.error("a binding takes one value: ',' is not allowed here", token.pos)
            if not self.names:
                self.first_comma = token.pos
            self._close_output()
            return True
        if token.kind == "=":
            raise self.error("unexpected '=': a binding must start its statement (name = ...)", token.pos)
        if token.kind == "name" and token.text in _PYTHON_WORDS:
            raise self.error(f"'{token.text}' is not part of the language (Python syntax)", token.pos)
        raise self.error(f"expected an operator, found {_describe(token)}", token.pos)

    def _reduce_to_bracket(self) -> None:
        while self.stack and self.stack[-1].kind in ("bin", "neg"):
            self._reduce()

    def _reduce(self) -> None:
        entry = self.stack.pop()
        values = self.values
        if entry.kind == "neg":
            values.append(self.graph.neg(values.pop()))
        else:
            assert entry.op is not None, "brackets are closed before the statement ends"
            right = values.pop()
            values.append(self.graph.apply(entry.op.name, values.pop(), right))


def parse(text: str, max_nodes: int | None = MAX_NODES) -> Graph:
    """Parse a graphc program into a Graph.

    A program that would build more than ``max_nodes`` nodes raises ResourceError (None: no cap);
    the graph keeps the cap, and so do the graphs derived from it.

    >>> g = parse("u = x*y; sin(u) + u**2")
    >>> g.variables, g.output_names
    (['x', 'y'], ['f'])
    """
    if not isinstance(text, str):
        raise ParseError(f"expected program text (str), got {type(text).__name__}", "", 0)
    return _Parser(text, checked_max_nodes(max_nodes)).parse()
