"""The parser: program text to a hash-consed :class:`Graph`.

Hand-written and iterative: a tokenizer loop and an operator-precedence (shunting-yard) loop
with explicit stacks for operators and brackets, so a 200,000-term sum or 10,000 nested calls
parse without recursion. Nothing here evaluates Python: no ``eval``, no ``ast``, no ``sympify``.

The language (Python's precedence; ``^`` is also power)::

    program   := statement ((";" | newline) statement)*
    statement := NAME ":" "[" dim ("," dim)* "]"          # a tensor input's declared shape
               | NAME "=" expr | expr ("," expr)*        # several outputs only on the last line
    expr      := expr ("+" | "-") expr | expr ("*" | "/" | "@") expr | ("-" | "+") expr
               | expr ("**" | "^") expr                  # right-associative, tighter than unary -
               | expr "[" item ("," item)* "]"           # indexing and slicing, integer literals
               | NUMBER | NAME | FUNCTION "(" arg ("," arg)* ")" | "(" expr ")"
    arg       := expr | "axis" "=" INT | "[" dim ("," dim)* "]"   # the last for reshape only
    dim       := INT | NAME | "-1"                       # "-1" for reshape only

The operators' spellings and binding powers are the op table's (``infix``, ``aliases``,
``precedence``, ``right``); a function is an elementwise op, a block op (``sum``, ``max`` of one
tensor, ``reshape``...) or a composite (``softmax``...). A shape the operands cannot take is a
ParseError at the operator or call, naming both shapes.

Names are letters (any script), digits and underscores, not starting with a digit; ``#`` starts
a comment; newlines inside brackets continue the line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from operator import itemgetter
from typing import TYPE_CHECKING

from graphc import user_blocks
from graphc.errors import ArityError, ParseError, UnknownFunctionError
from graphc.graph import MAX_NODES, Graph, checked_max_nodes, collector_paused
from graphc.ops import (
    BINARY_INFIX,
    BLOCK_FUNCTIONS,
    COMPARE,
    COMPOSITES,
    CONSTANTS,
    FUNCTIONS,
    INTERNAL_CALLS,
    OPS,
    RESERVED,
    WORD_OPERATORS,
    Derived,
    Op,
)
from graphc.parse_tensor import TensorSyntax
from graphc.shapes import Shape, ShapeError

if TYPE_CHECKING:
    from graphc.user_blocks import Block

# every name the language calls, sorted (the parser's indexes are derived from the op table: Derived)
_CALLABLE = Derived(lambda: dict.fromkeys(sorted({*FUNCTIONS, *BLOCK_FUNCTIONS, *COMPOSITES})))
_PYTHON_WORDS = frozenset(
    [
        "if",
        "else",
        "elif",
        "for",
        "while",
        "lambda",
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
    "<>": "'<>' is not part of the language: write '!='",
    "&": "bitwise operators are not part of the language",
    "|": "bitwise operators are not part of the language",
    "~": "bitwise operators are not part of the language",
    "{": "sets and dicts are not part of the language",
    "}": "sets and dicts are not part of the language",
    "'": "strings are not part of the language",
    '"': "strings are not part of the language",
    ".": "'.' is not part of the language (no attributes or methods)",
    "\\": "'\\' is not part of the language",
    "$": "'$' is not part of the language",
    "?": "'?' is not part of the language",
    "!": "'!' is not part of the language",
    "`": "'`' is not part of the language",
}


# A kind is "num", "name", "op", "(", ")", "[", "]", ":", ",", "=", "sep" or "end".
class Tokens:
    """The tokens of a text up to its first bad one, and the ParseError of that one (None if there
    is none, and the tokens end with an ``end`` token): token k is of kind ``kinds[k]``, its text is
    ``words[k]`` and it starts at ``starts[k]`` in the text.

    Parallel lists, not a (kind, text, start) tuple per token: made by the hundred thousand, the
    tuples would cost as much as the scanning. The fast path finds no starts: they are the full
    scanner's, found when first asked for (the parser needs them only for an error message).
    """

    def __init__(
        self,
        text: str,
        kinds: list[str],
        words: list[str],
        starts: list[int] | None = None,
        error: ParseError | None = None,
    ) -> None:
        self.text = text
        self.kinds = kinds
        self.words = words
        self._starts = starts
        self.error = error

    @property
    def starts(self) -> list[int]:
        if self._starts is None:  # the fast path's tokens, which are the full scanner's
            self._starts = _scan_full(self.text).starts
        return self._starts


Token = tuple[str, str, int]  # (kind, text, start), as tokenize yields them
_INF = float("inf")
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"


# The full scanner: one match per token, with the blanks and comment before it (the token is the group
# that matched, found by its index). A name is settled by the pattern when it is ASCII; a name
# candidate with other characters ("word": combining accents are not \w) is kept when
# str.isidentifier accepts it. Possessive repeats (*+) never give back what they took: nothing after
# them could use it.
_TOKEN = re.compile(
    r"(?:[ \t\r]+|\#[^\n]*)*+"
    r"(?:(?P<sep>[;\n])"
    rf"|(?P<num>{_NUMBER})(?P<bad_number>[\w.])?"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*+)(?![^\x00-\x7f])"
    r"|(?P<unsupported>//|<>)"  # before '/' and '<'
    r"|(?P<op>\*\*|[+\-*/^@]|[<>=!]=|[<>])"  # before '='
    r"|(?P<open>\()|(?P<close>\))|(?P<comma>,)|(?P<equals>=)"
    r"|(?P<lbracket>\[)|(?P<rbracket>\])|(?P<colon>:)"
    r"|(?P<word>(?:[^\W\d]|[^\x00-\x7f])(?:\w|[^\x00-\x7f])*+)"
    r"|(?P<bad>[\s\S])"
    r")?"  # nothing: only blanks are left
)
_GROUPS = sorted(_TOKEN.groupindex, key=_TOKEN.groupindex.__getitem__)
_RENAMED = {"open": "(", "close": ")", "comma": ",", "equals": "=", "word": "name"}
_RENAMED |= {"lbracket": "[", "rbracket": "]", "colon": ":"}
_KIND = [
    "",
    *(_RENAMED.get(g, g) for g in _GROUPS),
]
_CHECKED = frozenset(_TOKEN.groupindex[g] for g in ("bad_number", "word", "unsupported", "bad"))

# The fast path: one findall of the tokens of ordinary text (ASCII names, numbers, operators and
# brackets, with blanks and comments between them), taken only when they are certainly the full
# scanner's:
# - comments are blanked out first (the full scanner skips one wherever it meets a '#');
# - every character but the blanks (' ', '\t', '\r') lies in a token: the tokens' lengths and the
#   number of blanks add up to the text's length. So each token starts where the full scanner, past
#   the blanks, looks for the next one;
# - and it is what the full pattern matches there, since what the full pattern treats otherwise
#   starts no token here: any other character (non-ASCII, '.', '$', controls, other white space), a
#   number run into a letter, digit, '_' or '.' ("2x", "1.2.3", "1e": the lookahead after the atomic
#   group, which holds the full pattern's number and no shorter one), '//' and '=='.
# A match never starts inside a run of blanks, nor a number right after a letter, digit, '_' or '.'
# (no token of a tiled text does): else each position of a long run would be read again, in
# quadratic time.
_FAST = re.compile(
    r"(?<![ \t\r])[ \t\r]*+"
    rf"([A-Za-z_][A-Za-z0-9_]*+|[-+^@(),;\n\[\]:]|\*\*?+|/(?!/)|[<>!]=|<(?!>)|>|=(?!=)"
    rf"|(?<![\w.])(?>{_NUMBER})(?![\w.]))"
)
_COMMENT = re.compile(r"\#[^\n]*")
_ASCII_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"  # string's, without importing it
_FIRST = itemgetter(0)
# a fast token's kind by its first character
_FAST_KIND = {
    **dict.fromkeys(_ASCII_LETTERS + "_", "name"),
    **dict.fromkeys("0123456789.", "num"),
    **dict.fromkeys("+-*/^@<>!", "op"),
    "[": "[",
    "]": "]",
    ":": ":",
    "(": "(",
    ")": ")",
    ",": ",",
    "=": "=",
    ";": "sep",
    "\n": "sep",
}


def scan(text: str) -> Tokens:
    """The tokens of ``text`` up to its first bad one, and the ParseError of that one.

    Names are what ``str.isidentifier`` accepts (letters of any script, digits, underscores; not
    starting with a digit), compared exactly as written: no Unicode normalisation.

    >>> tokens = scan("sin(x)  # a comment")
    >>> tokens.kinds, tokens.words, tokens.starts, tokens.error
    (['name', '(', 'name', ')', 'end'], ['sin', '(', 'x', ')', ''], [0, 3, 4, 5, 19], None)
    """
    tokens = _scan_fast(text)
    return tokens if tokens is not None else _scan_full(text)


def _scan_fast(text: str) -> Tokens | None:
    """The tokens of ``text`` if the fast pattern's are certainly the full scanner's; else None."""
    plain = _COMMENT.sub(_spaces, text) if "#" in text else text
    if not plain.isascii() or "==" in plain:
        return None  # (no token would cover the first non-ASCII character; '==' is not '=' '=')
    words = _FAST.findall(plain)
    blanks = plain.count(" ") + plain.count("\t") + plain.count("\r")
    if len("".join(words)) + blanks != len(text):
        return None
    kinds = list(map(_FAST_KIND.__getitem__, map(_FIRST, words)))
    kinds.append("end")
    words.append("")
    return Tokens(text, kinds, words)


def _spaces(comment: re.Match[str]) -> str:
    return " " * len(comment[0])


def _scan_full(text: str) -> Tokens:
    kinds: list[str] = []
    words: list[str] = []
    starts: list[int] = []
    for m in _TOKEN.finditer(text):
        group = m.lastindex
        if group is None:
            break
        if group in _CHECKED:
            error = _token_error(text, m, _GROUPS[group - 1])
            if error is not None:
                return Tokens(text, kinds, words, starts, error)
        kinds.append(_KIND[group])
        words.append(m[group])
        starts.append(m.start(group))
    kinds.append("end")
    words.append("")
    starts.append(len(text))
    return Tokens(text, kinds, words, starts)


def _token_error(text: str, m: re.Match[str], group: str) -> ParseError | None:
    """The error of a token that the pattern alone does not settle; None for a good name."""
    word, i = m.group(group), m.start(group)
    if group == "word":
        if word.isidentifier():
            return None
        starts = word[0].isidentifier()
        bad = next((j for j in range(1, len(word)) if not ("a" + word[j]).isidentifier()), 0) if starts else 0
        return _bad_character(text, i + bad)
    if group == "bad_number":  # a number run into a letter, a digit, '_' or '.'
        return ParseError(f"invalid number '{text[m.start('num') : i + 1]}'", text, i)
    if group == "unsupported":
        return ParseError(_UNSUPPORTED[word], text, i)
    return _bad_character(text, i)


def tokenize(text: str) -> Iterator[Token]:
    """The tokens of ``text`` as (kind, text, start) tuples, ending with an ``end`` token; raises
    ParseError at the first bad one."""
    tokens = scan(text)
    yield from zip(tokens.kinds, tokens.words, tokens.starts)
    if tokens.error is not None:
        raise tokens.error


class _KindsBeforeError:
    """The kinds of the tokens before a bad one, by index: reading past them raises its error, so
    the first error reported is the first one in the text, as when the parser reads token by token.
    (The parser reads a token's kind before its text or start.)"""

    def __init__(self, kinds: list[str], error: ParseError) -> None:
        self._kinds = kinds
        self._error = error

    def __getitem__(self, k: int) -> str:
        if k < len(self._kinds):
            return self._kinds[k]
        raise self._error


def _bad_character(text: str, i: int) -> ParseError:
    two = text[i : i + 2]
    if two in _UNSUPPORTED:
        return ParseError(_UNSUPPORTED[two], text, i)
    ch = text[i]
    if ch in _UNSUPPORTED:
        return ParseError(_UNSUPPORTED[ch], text, i)
    import unicodedata  # an error's path only: not imported with graphc

    if unicodedata.category(ch)[0] == "C":
        return ParseError(f"control character U+{ord(ch):04X} is not allowed", text, i)
    return ParseError(f"unexpected character {ch!r} (U+{ord(ch):04X})", text, i)


def _describe(kind: str, word: str) -> str:
    if kind == "end":
        return "end of input"
    if kind == "sep":
        return "end of line" if word == "\n" else "';'"
    if kind == "num":
        return f"number {word}"
    if kind == "name":
        return f"name '{word}'"
    return f"'{word}'"


# An entry of the operator stack, a pending operator or an open bracket: a plain tuple
# (kind, op, k, prec, mark), for speed. kind is "bin" (binary operator), "neg" (unary minus), "("
# or "call"; op the op of "bin" and "call" entries; k the index of its token (an error's position);
# prec the binding power of "bin" and "neg" entries (at least 1), 0 for brackets; mark, for
# brackets, how many values were on the value stack when it opened.
_Entry = tuple[str, "Op | None", int, int, int]
_NEG = OPS["neg"]
_AND = OPS["and"]
# A binary operator's token: its op, its binding power, and the least binding power of a pending
# operator that it reduces (its own, plus one if it is right-associative); a comparison's is None
# (it chains: see _Parser._comparison).
_BINARY = Derived(
    lambda: {
        text: (op, op.precedence, None if op.chains else op.precedence + op.right)
        for text, op in BINARY_INFIX.items()
    }
)
# the elementwise functions of one operand that no block or composite shares a name with
_ONE_OPERAND = Derived(
    lambda: {
        name: spec
        for name, spec in FUNCTIONS.items()
        if spec.arity == 1 and name not in BLOCK_FUNCTIONS and name not in COMPOSITES
    }
)
_OUTPUT_END = frozenset(["sep", "end", ","])  # the kinds of token that may end an output
_STATEMENT_END = frozenset(["sep", "end"])


class _Parser(TensorSyntax):
    """Shunting-yard over the tokens: operands go on a value stack, operators and open brackets on
    an operator stack, and each reduction builds one node, so depth never meets the call stack.
    The tensor syntax (declarations, indexing, block calls) is TensorSyntax's."""

    def __init__(
        self, text: str, max_nodes: int | None = MAX_NODES, dims: dict[str, int] | None = None
    ) -> None:
        self.text = text
        self.tokens = scan(text)
        kinds, error = self.tokens.kinds, self.tokens.error
        if error is None:  # past the end, the end token again (the parser looks two ahead)
            kinds += ["end"] * 2  # (in place: these tokens are the parser's own)
        self.kinds: list[str] | _KindsBeforeError = (
            kinds if error is None else _KindsBeforeError(kinds, error)
        )
        self.words = self.tokens.words
        self.origins: list[str | None] | None = None  # the block each token came from, if any
        self.customs: dict[str, Block] = {}  # the user blocks with a VJP the program calls
        if user_blocks.uses_blocks(self.words):
            self._expand_blocks(kinds, error)
            kinds = self.tokens.kinds
        self.whole = error is None  # every token scanned: the fast path may look ahead freely
        self.graph = Graph()
        self.graph.max_nodes = max_nodes
        self.bindings: dict[str, int] = {}
        self.free: set[str] = set()  # names used as input variables
        self.inputs: dict[str, int] = {}  # the node of each name used as an input variable
        self.numbers: dict[str, int] = {}  # the constant node of each number's text read so far
        # the statement being parsed
        self.values: list[int] = []
        self.stack: list[_Entry] = []
        self.open_brackets = 0
        self.names: list[str | None] = []  # one per finished output: its binding's name, if any
        self.lone_name: str | None = None  # the current output is exactly this bound name
        self.first_comma = 0  # the index of the first ',' between outputs
        self.declared: dict[str, Shape] = {}  # tensor inputs' declared shapes
        self.dim_names: set[str] = set()  # the named dimensions of the declarations
        self.given_dims = checked_dims(dims)  # named dimensions given values before parsing
        self.keywords: dict[int, dict[str, object]] = {}  # an open call's (by its token) axis=, [dims]

    def error(self, message: str, k: int, cls: type[ParseError] = ParseError) -> ParseError:
        """The error of token k, at its start in the text (a block's token: at the block's call)."""
        origin = self.origins[k] if self.origins is not None and k < len(self.origins) else None
        if origin is not None:
            message = f"in block '{origin}': {message}"
        return cls(message, self.text, self.tokens.starts[k])

    def _expand_blocks(self, kinds: list[str], error: ParseError | None) -> None:
        """Replace the tokens by their expansion of user blocks (graphc.user_blocks)."""
        starts = self.tokens.starts
        count = len(kinds) - 2 if error is None else len(kinds)  # without the two extra ends
        expansion = user_blocks.Expansion(self.text, kinds[:count], self.words[:count], starts[:count])
        new_kinds, words, new_starts, self.origins = expansion.run()
        self.customs = expansion.customs
        self.tokens = Tokens(self.text, new_kinds, words, new_starts, error)
        if error is None:
            new_kinds += ["end"] * 2
        self.kinds = new_kinds if error is None else _KindsBeforeError(new_kinds, error)
        self.words = words

    # --- statements ------------------------------------------------------------------------------

    def parse(self) -> Graph:
        kinds, k = self.kinds, 0
        outputs: list[int] = []
        names: list[str | None] = []
        while True:
            kind = kinds[k]
            if kind == "end":
                break
            if kind == "sep":
                k += 1
                continue
            if kind == "name" and kinds[k + 1] == ":":
                k = self._declaration(k)
                continue
            if len(outputs) > 1:
                raise self.error(
                    "several outputs (',') are only allowed in the last statement", self.first_comma
                )
            target = found = None
            if kind == "name" and kinds[k + 1] == "=":
                target = self.words[k]
                self._check_target(target, k)
                k += 2
                if self.whole and kinds[k] == "name":
                    found = self._three_address(k)
            if found is not None:
                node, k = found
                outputs = [node]
            else:
                k = self._statement(k, binding=target is not None)
                outputs, names = self.values, self.names
            if target is not None:
                self.bindings[target] = outputs[0]
                names = [target]
        if not outputs:
            raise ParseError("empty program: nothing to compute", self.text, 0)
        default = ["f"] if len(outputs) == 1 else [f"f{i + 1}" for i in range(len(outputs))]
        self.graph.set_outputs(outputs, [name or d for name, d in zip(names, default, strict=True)])
        for name, node in self.bindings.items():
            self.graph.names.setdefault(node, name)
        return self.graph.pruned(copy=False)  # the graph is the parser's own

    def parse_expression(self) -> None:
        """Parse the text as one expression into ``self.values`` (no statements, one value)."""
        k = self._statement(0, binding=True)
        if self.kinds[k] != "end":
            raise self.error("expected one expression", k)
        if self.free:
            raise self.error(f"unknown name '{min(self.free)}'", 0)

    def _three_address(self, k: int) -> tuple[int, int] | None:
        """The node of a binding's value of the form ``b op c`` or ``f(b)`` (names, the statement's
        end after them) starting at token k, and the index of that end; None for any other form.

        Most of a generated program is made of these (B5's random DAGs entirely): read at once,
        they skip the shunting-yard's stacks.
        Each name resolves as the general path resolves it, in the same order, with its errors.
        """
        kinds, words = self.kinds, self.words
        if kinds[k + 1] == "op":
            if kinds[k + 2] != "name" or kinds[k + 3] not in _STATEMENT_END:
                return None
            if words[k] in WORD_OPERATORS or words[k + 2] in WORD_OPERATORS:
                return None  # ``and``, ``or``, ``not`` are operators, not operands: the general path says so
            op = _BINARY[words[k + 1]][0]
            if op.block:
                return None
            left, right = self._name(k), self._name(k + 2)
            return self._built(op, (left, right), k + 1), k + 3
        if kinds[k + 1] == "(" and kinds[k + 2] == "name" and kinds[k + 3] == ")":
            if words[k + 2] in WORD_OPERATORS:
                return None
            spec = FUNCTIONS.get(words[k])
            if spec is None or spec.arity != 1 or kinds[k + 4] not in _STATEMENT_END:
                return None  # the general path says what is wrong, or reads further
            return self._built(spec, (self._name(k + 2),), k), k + 4
        return None

    def _name(self, k: int) -> int:
        """The node of the name at token k, where an operand stands (not called)."""
        node = self.bindings.get(self.words[k])
        return self._unbound(self.words[k], k) if node is None else node

    def _check_target(self, name: str, k: int) -> None:
        if name in RESERVED:
            kind = "function" if name in _CALLABLE else "operator" if name in WORD_OPERATORS else "constant"
            raise self.error(f"cannot assign to '{name}': it is a built-in {kind}", k)
        if name in self.free:
            raise self.error(f"cannot assign to '{name}': it is already used as an input variable", k)

    def _statement(self, k: int, binding: bool) -> int:
        """Parse one statement from token k into ``self.values``; return the index of its end token.

        The loop reads the tokens that most of a program is made of itself (a name that is not
        called, where an operand is expected; a binary operator after one) and hands every other
        token to _operand or _operator: one method call fewer for most tokens."""
        values: list[int] = []
        stack: list[_Entry] = []
        self.values, self.stack, self.names = values, stack, []
        self.open_brackets, self.lone_name = 0, None
        kinds, words, bindings, inputs = self.kinds, self.words, self.bindings, self.inputs
        numbers = self.numbers
        expect_operand = True
        while True:
            kind = kinds[k]
            if kind == "sep" and self.open_brackets and words[k] == "\n":
                k += 1  # a newline inside brackets continues the line
            elif not expect_operand:
                if kind == "op":
                    op, prec, least = _BINARY[words[k]]
                    if least is None:
                        self._comparison(op, k)
                    else:
                        while stack and stack[-1][3] >= least:
                            self._reduce()
                        stack.append(("bin", op, k, prec, 0))
                    expect_operand = True
                elif kind == "sep" or kind == "end":
                    self._end_statement()
                    return k
                elif kind == "[":
                    values[-1], k = self._indexed(values[-1], k)
                    continue
                else:
                    expect_operand = self._operator(k, kind, binding)
                k += 1
            elif kind == "name" and (after := kinds[k + 1]) != "(" and after != "=":
                word = words[k]
                node = bindings.get(word)
                if node is None:
                    if word in WORD_OPERATORS:  # ``not``, or ``and``/``or`` out of place
                        k, expect_operand = self._operand(k, kind, binding)
                        continue
                    node = inputs.get(word)  # (what _unbound looks at first)
                    if node is None:
                        node = self._unbound(word, k)
                elif after in _OUTPUT_END and not stack and len(values) == len(self.names):
                    self.lone_name = word  # the output is exactly this bound name
                values.append(node)
                expect_operand = False
                k += 1
            elif kind == "num" and (node := numbers.get(words[k])) is not None:
                values.append(node)  # a number read before (_operand reads it the first time)
                expect_operand = False
                k += 1
            else:
                k, expect_operand = self._operand(k, kind, binding)

    def _end_statement(self) -> None:
        if self.open_brackets:
            k = next(entry[2] for entry in self.stack if entry[0] in ("(", "call", "fcall"))
            what = "(" if self.kinds[k] == "(" else f"{self.words[k]}("
            raise self.error(f"'{what}' is never closed ({self.open_brackets} unclosed)", k)
        self._close_output()

    def _close_output(self) -> None:
        while self.stack:
            self._reduce()
        self.names.append(self.lone_name)
        self.lone_name = None

    # --- operands: numbers, names, calls, "(" and prefix signs -----------------------------------

    def _operand(self, k: int, kind: str, binding: bool) -> tuple[int, bool]:
        """Read what may stand where an operand is expected, token k, if not a name that is not
        called (the loop reads those); return the next index and whether an operand is still
        expected (after a prefix sign or an opening bracket)."""
        word = self.words[k]
        if kind == "num":
            value = float(word)
            if value == _INF:
                raise self.error(f"number {word} is too large for float64", k)
            node = self.numbers[word] = self.graph.const(value)
            self.values.append(node)
            return k + 1, False
        if kind == "name" and word in WORD_OPERATORS:
            if word != "not":
                raise self.error(f"expected an operand before '{word}'", k)
            self.stack.append(("neg", WORD_OPERATORS[word], k, WORD_OPERATORS[word].precedence, 0))
            return k + 1, True
        if kind == "name":
            kinds = self.kinds
            if kinds[k + 1] == "=":
                return self._keyword(k), False
            if self.whole and kinds[k + 2] == "name" and kinds[k + 3] == ")":
                # f(name) with f elementwise: the commonest call, built at once
                spec = _ONE_OPERAND.get(word)
                inner = self.words[k + 2]
                if spec is not None and word not in self.customs and inner not in WORD_OPERATORS:
                    self.values.append(self._built(spec, (self._name(k + 2),), k))
                    return k + 4, False
            self._open_call(word, k)  # a call
            if self.kinds[k + 2] == ")":
                self._finish_call(self.stack.pop())
                return k + 3, False
            return k + 2, True
        if kind == "[":
            return self._dims_argument(k), False
        if kind == "(":
            self.stack.append(("(", None, k, 0, len(self.values)))
            self.open_brackets += 1
        elif word == "-":
            self.stack.append(("neg", None, k, _NEG.precedence, 0))
        elif word != "+":  # unary plus changes nothing
            if kind in ("sep", "end"):
                if not self.values and not self.stack and not self.names:
                    raise self.error("no value after '='" if binding else "empty expression", k)
                raise self.error(f"expected an operand before {_describe(kind, word)}", k)
            raise self.error(f"expected an operand, found {_describe(kind, word)}", k)
        return k + 1, True

    def _unbound(self, name: str, k: int) -> int:
        """The node of a name that no binding gives: a constant or an input variable."""
        node = self.inputs.get(name)
        if node is not None:
            return node
        if name in CONSTANTS:
            return self.graph.const(CONSTANTS[name])
        if name in _CALLABLE:
            raise self.error(f"'{name}' is a function: call it as {name}(...)", k)
        self.free.add(name)
        node = self.inputs[name] = self.graph.var(name, self.declared.get(name, ()))
        return node

    def _open_call(self, name: str, k: int) -> None:
        if name in BLOCK_FUNCTIONS or name in COMPOSITES or name in self.customs or name in INTERNAL_CALLS:
            self.stack.append(("fcall", None, k, 0, len(self.values)))
            self.open_brackets += 1
            return
        spec = FUNCTIONS.get(name)
        if spec is None:
            if name in self.bindings or name in CONSTANTS or name in self.free:
                raise self.error(f"'{name}' is not a function (use '*' to multiply)", k)
            import difflib  # only for this message: not on every import of graphc

            close = difflib.get_close_matches(name, _CALLABLE, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else " (to multiply, write '*')"
            raise self.error(f"unknown function '{name}'{hint}", k, UnknownFunctionError)
        self.stack.append(("call", spec, k, 0, len(self.values)))
        self.open_brackets += 1

    def _finish_call(self, entry: _Entry) -> None:
        kind, spec, k, _, mark = entry
        if kind == "fcall":
            spec = self._finish_block_call(k, mark)
            if spec is None:
                return
        assert spec is not None
        if self.keywords.pop(k, None) is not None:
            raise self.error(f"{spec.function}() takes no axis=", k)
        self.open_brackets -= 1
        given = len(self.values) - mark
        if given != spec.arity:
            plural = "s" if spec.arity > 1 else ""
            message = f"{spec.function}() takes {spec.arity} argument{plural} ({given} given)"
            raise self.error(message, k, ArityError)
        args = tuple(self.values[mark:])
        del self.values[mark:]
        self.values.append(self._built(spec, args, k))

    # --- operators: ")" and "," (the loop reads binary operators) --------------------------------

    def _operator(self, k: int, kind: str, binding: bool) -> bool:
        """Read what may follow an operand, token k, if not a binary operator or the end of the
        statement; return whether an operand is expected next."""
        if kind == ")":
            self._reduce_to_bracket()
            if not self.stack:
                raise self.error("unmatched ')'", k)
            entry = self.stack.pop()
            if entry[0] != "(":
                self._finish_call(entry)
            else:
                self.open_brackets -= 1
            return False
        if kind == ",":
            self._reduce_to_bracket()
            if self.stack and self.stack[-1][0] != "(":
                return True
            if self.stack:
                raise self.error("',' inside brackets: tuples are not part of the language", k)
            if binding:
                raise self.error("a binding takes one value: ',' is not allowed here", k)
            if not self.names:
                self.first_comma = k
            self._close_output()
            return True
        word = self.words[k]
        if kind == "name" and word in _BINARY:  # ``and``, ``or``
            op, prec, least = _BINARY[word]
            assert least is not None, "a word operator is not a comparison"
            while self.stack and self.stack[-1][3] >= least:
                self._reduce()
            self.stack.append(("bin", op, k, prec, 0))
            return True
        if kind == "=":
            raise self.error("unexpected '=': a binding must start its statement (name = ...)", k)
        if kind == "name" and word in _PYTHON_WORDS:
            raise self.error(f"'{word}' is not part of the language (Python syntax)", k)
        raise self.error(f"expected an operator, found {_describe(kind, word)}", k)

    def _comparison(self, op: Op, k: int) -> None:
        """Push comparison ``op`` (token k), chaining as Python does: in ``a < b < c`` the pending
        ``a < b`` is reduced, keeping ``b``, and ``(a < b) and (b < c)`` is what is built."""
        stack, values = self.stack, self.values
        shared = None
        while stack and stack[-1][3] >= COMPARE:
            top = stack[-1]
            if shared is None and top[0] == "bin" and top[1] is not None and top[1].chains:
                shared = values[-1]  # the pending comparison's right operand: this one's left
            self._reduce()
        if shared is not None:
            stack.append(("bin", _AND, k, COMPARE, 0))
            values.append(shared)
        stack.append(("bin", op, k, COMPARE, 0))

    def _reduce_to_bracket(self) -> None:
        stack = self.stack
        while stack and stack[-1][3]:  # an operator (a bracket's binding power is 0)
            self._reduce()

    def _reduce(self) -> None:
        kind, op, k, _, _ = self.stack.pop()
        values = self.values
        right = values.pop()
        if kind == "neg":  # a prefix operator: unary minus (op None) or ``not``
            values.append(self.graph.neg(right) if op is None else self._built(op, (right,), k))
        else:
            assert op is not None, "brackets are closed before the statement ends"
            graph = self.graph
            if graph.tensor or op.block:
                values.append(self._built(op, (values.pop(), right), k))
            else:  # scalars only: no shape to refuse (_built's work, one call fewer)
                values.append(graph.applied(op, (values.pop(), right)))

    def _built(self, op: Op, args: tuple[int, ...], k: int) -> int:
        """The node of ``op`` on ``args`` (a block op without params: ``@``); a shape the operands
        cannot take is a ParseError at token k."""
        try:
            return self.graph.block(op, args, None) if op.block else self.graph.applied(op, args)
        except ShapeError as err:
            raise self.error(str(err), k) from None


def checked_dims(dims: object) -> dict[str, int]:
    """``dims`` as a mapping of dimension names to whole numbers >= 1 (None: no names bound)."""
    if dims is None:
        return {}
    if not isinstance(dims, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 1
        for k, v in dims.items()
    ):
        raise ParseError(f"dims must map dimension names to whole numbers >= 1, got {dims!r}", "", 0)
    return dict(dims)


@collector_paused()
def parse(text: str, max_nodes: int | None = MAX_NODES, dims: dict[str, int] | None = None) -> Graph:
    """Parse a graphc program into a Graph.

    A program that would build more than ``max_nodes`` nodes raises ResourceError (None: no cap);
    the graph keeps the cap, and so do the graphs derived from it. ``dims`` gives named dimensions
    their values (``{"n": 7}``), so the graph's shapes are concrete.

    >>> g = parse("u = x*y; sin(u) + u**2")
    >>> g.variables, g.output_names
    (['x', 'y'], ['f'])
    """
    if not isinstance(text, str):
        raise ParseError(f"expected program text (str), got {type(text).__name__}", "", 0)
    return _Parser(text, checked_max_nodes(max_nodes), dims).parse()


def build_expression(kinds: list[str], words: list[str], graph: Graph, names: dict[str, int]) -> int:
    """The node of one expression's tokens built into ``graph``, each name in ``names`` standing
    for its node (a user block's VJP formula, built into a derivative graph)."""
    text = " ".join(words)
    parser = _Parser(text, graph.max_nodes)
    parser.graph = graph
    parser.bindings.update(names)
    parser.parse_expression()
    (node,) = parser.values
    return node
