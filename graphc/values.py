"""Points and results as text: reading ``name=value`` assignments, checking a point, JSON numbers.

A point maps each input variable to a number or a NumPy array. Its text form (the CLI's ``--at``,
:func:`graphc.check`'s ``at="x=0,y=1"``) is ``name=value`` pairs separated by commas, where a value
is a constant expression (``pi/4``), a bracketed list of numbers (``[1, 2, 3]``; nested for a
matrix, ``[[1, 2], [3, 4]]``) or ``@FILE.npy``. Commas inside brackets do not separate pairs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from graphc.errors import EvaluationError, ParseError, PointError
from graphc.parse import parse

Value = float | np.ndarray

_LIST_TOKEN = re.compile(r"\s*(?:([\[\],])|([^\[\],\s]+))")


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets: ``x=atan2(1,2),y=[3,4]`` has two parts."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_array(text: str, where: str = "the list") -> np.ndarray:
    """A bracketed list of numbers, nested for more axes, as a float64 array.

    An explicit stack of open lists, no recursion; an error names the 1-based column in ``text``.

    >>> parse_array("[[1, 2], [3, 4.5]]").tolist()
    [[1.0, 2.0], [3.0, 4.5]]
    """
    stack: list[list[Any]] = []
    done: list[Any] | None = None
    expect_value = True  # a number or '[' may come next (else ',' or ']')
    position = 0
    text = text.rstrip()
    while position < len(text):
        m = _LIST_TOKEN.match(text, position)
        assert m is not None  # every character is a bracket, a comma, a space or part of a word
        punct, word = m.group(1), m.group(2)
        column = m.start(1 if punct else 2) + 1
        position = m.end()
        if done is not None:
            raise PointError(
                f"{where}: unexpected {m.group().strip()!r} after the closing ']' (column {column})"
            )
        if punct == "[" and expect_value:
            stack.append([])
        elif punct == "]" and stack and (not expect_value or not stack[-1]):
            finished = stack.pop()
            if stack:
                stack[-1].append(finished)
            else:
                done = finished
            expect_value = False
        elif punct == "," and stack and not expect_value:
            expect_value = True
        elif word is not None and stack and expect_value:
            try:
                stack[-1].append(float(word))
            except ValueError:
                raise PointError(f"{where}: {word!r} is not a number (column {column})") from None
            expect_value = False
        else:
            token = punct or word
            wanted = "a number or '['" if expect_value else "',' or ']'"
            raise PointError(f"{where}: expected {wanted}, got {token!r} (column {column})")
    if done is None:
        raise PointError(f"{where}: the list is not closed: {len(stack)} ']' missing at the end")
    try:
        return np.array(done, dtype=float)
    except ValueError:
        raise PointError(f"{where}: the rows have different lengths: a list must be rectangular") from None


def _load_npy(path: str, where: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise PointError(f"{where}: cannot read {path!r} as a .npy file: {reason}") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise PointError(f"{where}: {path!r} does not hold an array of real numbers")
    return np.asarray(array, dtype=float)


def _value(name: str, text: str, option: str) -> Value:
    where = f"{option}: the value of '{name}'"
    if text.startswith("["):
        return parse_array(text, where)
    if text.startswith("@"):
        return _load_npy(text[1:], where)
    try:
        graph = parse(text)
    except ParseError as err:
        raise PointError(f"{where} is not a number: {err}") from None
    value = graph.const_value(graph.outputs[0]) if len(graph.outputs) == 1 else None
    if value is None:
        raise PointError(f"{where} must be a number, got {text!r}")
    return value


def parse_assignments(items: Sequence[str], option: str = "--at") -> dict[str, Value]:
    """``name=value`` pairs separated by commas, from each item; ``option`` names them in errors.

    >>> parse_assignments(["x=pi/2, y=[1, 2]"])
    {'x': 1.5707963267948966, 'y': array([1., 2.])}
    """
    values: dict[str, Value] = {}
    for item in items:
        for part in _split_top_level(item):
            name, eq, value_text = part.partition("=")
            name, value_text = name.strip(), value_text.strip()
            if not eq or not name or not value_text:
                raise PointError(
                    f"{option} expects name=value pairs separated by commas, got {part.strip()!r}"
                )
            if not name.isidentifier():
                raise PointError(f"{option}: {name!r} is not a variable name")
            if name in values:
                raise PointError(f"{option}: variable '{name}' is given twice")
            values[name] = _value(name, value_text, option)
    return values


def check_point(
    variables: Sequence[str], at: Mapping[str, Any], option: str | None = None
) -> dict[str, Value]:
    """One number or float64 array per variable; an EvaluationError names a missing or unknown one.

    ``option`` (``"--at"``) names where the point came from, and the error says how to give a
    missing value.
    """
    prefix = f"{option}: " if option else ""
    unknown = [name for name in at if name not in variables]
    if unknown:
        listed = ", ".join(variables) or "none"
        raise EvaluationError(f"{prefix}unknown variable '{unknown[0]}' (the variables are: {listed})")
    missing = [name for name in variables if name not in at]
    if missing:
        hint = f": give it with {option} " + ",".join(f"{n}=..." for n in missing) if option else ""
        raise EvaluationError(f"missing value for {', '.join(missing)}{hint}")
    point: dict[str, Value] = {}
    for name in variables:
        value = at[name]
        try:
            point[name] = np.asarray(value, dtype=float) if isinstance(value, np.ndarray) else float(value)
        except (TypeError, ValueError):
            kind = type(value).__name__
            raise EvaluationError(f"variable '{name}': expected a number, got {kind}") from None
    return point


def json_number(value: Any) -> Any:
    """A number for JSON: a float, or the string "nan", "inf" or "-inf"; an array as nested lists.

    >>> json_number(float("inf")), json_number(np.array([[1.0, np.nan]]))
    ('inf', [[1.0, 'nan']])
    """
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        number = float(array)
        return number if math.isfinite(number) else str(number)
    finite = np.isfinite(array)
    if finite.all():
        return array.tolist()
    cells = array.astype(object)
    cells[~finite] = [str(v) for v in array[~finite]]
    return cells.tolist()


__all__ = ["Value", "check_point", "json_number", "parse_array", "parse_assignments"]
