"""Every user-facing failure of graphc is a :class:`GraphcError`.

The CLI prints ``graphc: error: <message>`` and exits with status 2 for any of them; Python
callers can catch the base class or a precise subclass.
"""

from __future__ import annotations


class GraphcError(Exception):
    """Base class of every error graphc raises on purpose."""


class ParseError(GraphcError, ValueError):
    """The text is not a graphc program.

    ``position`` is the 0-based offset into the whole text, ``line`` the 1-based line and
    ``column`` the 0-based column within that line. ``str(err)`` is one line; ``err.render()``
    adds the offending source line with a caret under the offending character.
    """

    def __init__(self, message: str, text: str = "", position: int = 0) -> None:
        position = max(0, min(position, len(text)))
        line_start = text.rfind("\n", 0, position) + 1
        line_end = text.find("\n", position)
        if line_end < 0:
            line_end = len(text)
        self.message = message
        self.text = text
        self.position = position
        self.line = text.count("\n", 0, position) + 1
        self.column = position - line_start
        self.source_line = text[line_start:line_end]
        where = f"line {self.line}, column {self.column + 1}" if "\n" in text else f"column {self.column + 1}"
        super().__init__(f"{message} (at {where})")

    def render(self, width: int = 100) -> str:
        """The message, the source line (a window of it if long) and a caret under the column."""
        line, col = self.source_line, self.column
        start = max(0, col - width // 2)
        shown = line[start : start + width]
        shown = "".join(ch if ch.isprintable() else "?" for ch in shown)
        prefix = "..." if start > 0 else ""
        caret = " " * (len(prefix) + col - start) + "^"
        return f"{self}\n  {prefix}{shown}\n  {caret}"


class UnknownFunctionError(ParseError):
    """A call of a name that is not a function of the language."""


class ArityError(ParseError):
    """A function called with the wrong number of arguments."""


class UnknownVariableError(GraphcError, KeyError):
    """A variable name that the graph does not have, where one is required."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class EvaluationError(GraphcError, TypeError):
    """A kernel was called with missing, surplus or unusable arguments."""


class PointError(EvaluationError, ValueError):
    """A point's text (``name=value`` pairs, the CLI's ``--at``) that graphc cannot read."""


class ResourceError(GraphcError):
    """An input too large to handle: a graph over its ``max_nodes`` limit, say."""


class BackendError(GraphcError):
    """A backend cannot compile or run a graph (unknown backend, missing library, ...)."""


class OutputError(EvaluationError, ValueError):
    """The ``out`` arrays given to :meth:`graphc.Kernel.into` cannot hold the results."""


class DataError(GraphcError, ValueError):
    """Serialised data (a pickled kernel, :meth:`graphc.Graph.from_data`) is not graphc's format."""


class TraceError(GraphcError, TypeError):
    """A traced value used where a number is needed at trace time (``if x > 0:``, ``float(x)``,
    ``len(x)``), or a function or NumPy call that tracing does not support."""
