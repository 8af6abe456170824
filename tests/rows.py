"""Comparing result rows from two queries: exact for strings, dates and decimals; floats
within a relative 1e-9 (parallel aggregation may sum doubles in any order)."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def _norm(value: Any) -> Any:
    if isinstance(value, datetime) and value.time() == datetime.min.time():
        return value.date()
    return value


def same_value(a: Any, b: Any) -> bool:
    a, b = _norm(a), _norm(b)
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a == b
    if isinstance(a, date) and isinstance(b, date):
        return a == b
    return (bool(a == b) and type(a) is type(b)) or (a is None and b is None)


def _key(row: tuple[Any, ...]) -> str:
    return repr(
        tuple(round(float(v), 6) if isinstance(v, float | Decimal) else _norm(v) for v in row)
    )


def assert_same_rows(
    got: list[tuple[Any, ...]],
    want: list[tuple[Any, ...]],
    *,
    ordered: bool,
    nonempty: bool = False,
) -> None:
    """``nonempty``: no rows at all fails too (a case that selects nothing proves nothing)."""
    assert got or not nonempty, "the query returned no rows: the case proves nothing"
    assert len(got) == len(want), f"{len(got)} rows, expected {len(want)}"
    if not ordered:
        got, want = sorted(got, key=_key), sorted(want, key=_key)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert len(g) == len(w), f"row {i}: {len(g)} columns, expected {len(w)}"
        for j, (a, b) in enumerate(zip(g, w, strict=True)):
            assert same_value(a, b), f"row {i} column {j}: {a!r} != {b!r}\n got  {g}\n want {w}"


def _whole(value: Any) -> Any:
    """Whole numbers as ints (a hand-written ``m / 3`` is a fraction on PostgreSQL: its whole
    part is the count), CHAR padding dropped."""
    if isinstance(value, float | Decimal):
        return int(value)
    return value.rstrip() if isinstance(value, str) else value


def whole_number_rows(engine: Any, sql: str) -> list[tuple[Any, ...]]:
    """``sql``'s rows on ``engine``, numbers cut to whole numbers (``_whole``)."""
    return [tuple(_whole(v) for v in r.values()) for r in engine.execute(sql).to_pylist()]
