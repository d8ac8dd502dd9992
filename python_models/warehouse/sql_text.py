"""Binding `?` parameters as SQL literals, for engines whose client binds them awkwardly.

ADBC binds parameters as Arrow columns (a lone None has no type), and Spark's positional
markers do not take dates in every version; the few parameters the steps pass (names, dates,
versions) are rendered as literals instead, quoted by the standard rule (a quote doubled).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def standard_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def spark_string(value: str) -> str:
    """A Spark string literal. Spark reads a backslash as an escape and 'it''s' as two
    adjacent literals ('its'): a backslash is doubled and a quote written as \\u0027, so the
    literal holds no quote (the statement splitter and backtick_identifiers stay simple)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\u0027") + "'"


def quote_ident(identifier: str) -> str:
    """An identifier as a quoted SQL name (a double quote doubled)."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(
    value: Any,
    double_type: str = "double precision",
    string: Callable[[str], str] = standard_string,
) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(value)
        word = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return f"cast('{word}' as {double_type})"
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return f"timestamp '{value.replace(tzinfo=None).isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"date '{value.isoformat()}'"
    if isinstance(value, str):
        return string(value)
    if isinstance(value, list | tuple):
        return "(" + ", ".join(literal(v, double_type, string) for v in value) + ")"
    raise TypeError(f"cannot bind a {type(value).__name__} as a SQL literal: {value!r}")


def _code_positions(sql: str) -> list[int]:
    """Indexes of the characters outside quotes ('', "", $$ $$) and -- comments."""
    positions: list[int] = []
    i, n = 0, len(sql)
    while i < n:
        if sql.startswith("$$", i):
            end = sql.find("$$", i + 2)
            i = n if end < 0 else end + 2
        elif sql[i] in ("'", '"'):
            quote, i = sql[i], i + 1
            while i < n:
                if sql[i] == quote:
                    if sql.startswith(quote * 2, i):
                        i += 2
                        continue
                    break
                i += 1
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
        else:
            positions.append(i)
            i += 1
    return positions


def bind(
    sql: str,
    params: Sequence[Any] | None,
    double_type: str = "double precision",
    string: Callable[[str], str] = standard_string,
) -> str:
    """Replace each `?` outside quotes and comments with the next parameter as a literal."""
    if not params:
        return sql
    marks = [i for i in _code_positions(sql) if sql[i] == "?"]
    if len(marks) != len(params):
        raise ValueError(f"{len(params)} parameters for {len(marks)} ? placeholders in: {sql}")
    out, last = [], 0
    for mark, value in zip(marks, params, strict=True):
        out += [sql[last:mark], literal(value, double_type, string)]
        last = mark + 1
    return "".join(out) + sql[last:]


def split_statements(sql: str) -> list[str]:
    """The statements of a script, split at semicolons outside quotes and comments."""
    cuts = [i for i in _code_positions(sql) if sql[i] == ";"]
    pieces, last = [], 0
    for cut in [*cuts, len(sql)]:
        piece = sql[last:cut].strip()
        if piece and any(not line.strip().startswith("--") for line in piece.splitlines()):
            pieces.append(piece)
        last = cut + 1
    return pieces
