"""Binding `?` parameters as SQL literals, for engines whose client binds them awkwardly.

ADBC binds parameters as Arrow columns (a lone None has no type), and Spark's positional
markers do not take dates in every version; the few parameters the steps pass (names, dates,
versions) are rendered as literals instead, quoted by the standard rule (a quote doubled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def literal(value: Any, double_type: str = "double precision") -> str:
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
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(literal(v, double_type) for v in value) + ")"
    raise TypeError(f"cannot bind a {type(value).__name__} as a SQL literal: {value!r}")


def bind(sql: str, params: Sequence[Any] | None, double_type: str = "double precision") -> str:
    """Replace each `?` outside quotes and comments with the next parameter as a literal."""
    if not params:
        return sql
    out: list[str] = []
    values = iter(params)
    i, n = 0, len(sql)
    used = 0
    while i < n:
        ch = sql[i]
        if ch in ("'", '"'):
            end = i + 1
            while end < n:
                if sql[end] == ch:
                    if end + 1 < n and sql[end + 1] == ch:
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i : end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif ch == "?":
            try:
                out.append(literal(next(values), double_type))
            except StopIteration:
                raise ValueError(f"more ? placeholders than parameters in: {sql}") from None
            used += 1
            i += 1
        else:
            out.append(ch)
            i += 1
    if used != len(params):
        raise ValueError(f"{len(params)} parameters for {used} ? placeholders in: {sql}")
    return "".join(out)
