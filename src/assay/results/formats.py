"""Values as people read them: Omni's field formats (``usdcurrency_2``, ``number_0``,
``percent_1``, ``billions_1`` ...) for ``formatResults``, and date grains as text
(``orders.o_orderdate[year]`` reads ``1995``, not ``1995-01-01 00:00:00``) for the results
meant for people: CSV, JSON, XLSX and the terminal. The Arrow result keeps typed timestamps:
Omni's clients decode them as such."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import pyarrow as pa

_CURRENCIES = {"usd": "$", "eur": "€", "gbp": "£", "aud": "A$", "": "$"}
_FORMAT = re.compile(
    r"^(?P<kind>number|percent|(?P<cur>usd|eur|gbp|aud)?currency|(?:big)?(?P<bigcur>usd)?"
    r"(?P<scale>billions|millions|thousands|big)|id)(?:_(?P<digits>\d))?$"
)
_SCALES = {"billions": (1e9, "B"), "millions": (1e6, "M"), "thousands": (1e3, "K")}


def format_value(value: Any, fmt: str | None) -> Any:
    """The value as text under ``fmt``; numbers without a format get thousands separators.
    Values that are not numbers, and formats Assay does not know, pass through unchanged."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return value
    m = _FORMAT.match(fmt or "")
    if fmt and not m:
        return value
    if m is None:
        return f"{value:,}"
    kind, digits = m.group("kind"), m.group("digits")
    places = int(digits) if digits is not None else None
    number = float(value) if not isinstance(value, int) else value
    if kind == "id":
        return str(value)
    if kind == "percent":
        return f"{number * 100:,.{places if places is not None else 0}f}%"
    if m.group("scale"):
        scale = m.group("scale")
        if scale == "big":
            scale = next((s for s, (f, _) in _SCALES.items() if abs(number) >= f), "")
        divisor, suffix = _SCALES.get(scale, (1, ""))
        sign = "-" if number < 0 else ""
        symbol = "$" if m.group("bigcur") or kind.startswith("bigcurrency") else ""
        shown = abs(number) / divisor
        return f"{sign}{symbol}{shown:,.{places if places is not None else 1}f}{suffix}"
    if kind.endswith("currency"):
        symbol = _CURRENCIES[m.group("cur") or ""]
        sign = "-" if number < 0 else ""
        return f"{sign}{symbol}{abs(number):,.{places if places is not None else 2}f}"
    return f"{number:,.{places}f}" if places is not None else f"{number:,}"


#: A truncating grain's bucket as text, by its field's ``date_type``. Year and month are as
#: Omni shows them; the others are Assay's choice (docs/query-api.md, "Date grains as text").
#: Built apart, as strftime has no directive for them: a quarter reads ``1995-Q1``, a
#: millisecond ``1995-03-08 14:05:09.250``.
GRAIN_PATTERNS: Final = {
    "YEAR": "%Y",
    "MONTH": "%Y-%m",
    "WEEK": "%Y-%m-%d",  # the week's first day, a Monday
    "DATE": "%Y-%m-%d",
    "HOUR": "%Y-%m-%d %H:%M",
    "MINUTE": "%Y-%m-%d %H:%M",
    "SECOND": "%Y-%m-%d %H:%M:%S",
}
TEXT_GRAINS: Final = frozenset({*GRAIN_PATTERNS, "QUARTER", "MILLISECOND"})


def grain_text(value: dt.date, date_type: str | None) -> str | None:
    """One bucket as text; ``None`` when ``date_type`` is not a truncating grain."""
    grain = (date_type or "").upper()
    if grain == "QUARTER":
        return f"{value.year:04d}-Q{(value.month - 1) // 3 + 1}"
    if grain == "MILLISECOND":
        micros = value.microsecond if isinstance(value, dt.datetime) else 0
        return f"{grain_text(value, 'SECOND')}.{micros // 1000:03d}"
    pattern = GRAIN_PATTERNS.get(grain)
    if pattern is None:
        return None
    return f"{value.year:04d}{value.strftime(pattern.removeprefix('%Y'))}"


def grains_as_text(table: pa.Table, date_types: Sequence[str | None]) -> pa.Table:
    """``table`` with each date or timestamp column of a truncating grain as text (one
    ``date_type`` per column, by position); other columns, and nulls, are unchanged."""
    columns = list(table.columns)
    changed = False
    for i, (column, date_type) in enumerate(zip(columns, date_types, strict=True)):
        grain = (date_type or "").upper()
        kind = column.type
        if grain in TEXT_GRAINS and (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
            columns[i] = _column_text(column, grain)
            changed = True
    return pa.table(columns, names=table.column_names) if changed else table


def _column_text(column: pa.ChunkedArray, grain: str) -> pa.ChunkedArray:
    """Vectorised, and built from the date's parts rather than with Arrow's strftime, which
    costs about ten times more (bench/grain_text.py: 0.04-0.2 s against about 1 s for a
    million rows); the tests hold this and ``grain_text`` to the same text."""
    import pyarrow.compute as pc  # noqa: PLC0415 (60 ms to import; only documents need it)

    def padded(part: pa.ChunkedArray, width: int) -> pa.ChunkedArray:
        return pc.utf8_lpad(pc.cast(part, pa.string()), width, "0")

    def joined(left: pa.ChunkedArray, right: pa.ChunkedArray, between: str) -> pa.ChunkedArray:
        return pc.binary_join_element_wise(left, right, between)

    if pa.types.is_date(column.type):
        column = column.cast(pa.timestamp("s"))  # Arrow has no hour of a date: midnight
    elif column.type.tz is not None:
        column = pc.local_timestamp(column)  # the wall-clock time in its zone, as strftime
    year = padded(pc.year(column), 4)
    if grain == "YEAR":
        return year
    if grain == "QUARTER":
        return joined(year, pc.cast(pc.quarter(column), pa.string()), "-Q")
    if grain == "MONTH":
        return joined(year, padded(pc.month(column), 2), "-")
    day = pc.cast(column.cast(pa.date32()), pa.string())  # ISO: 1995-03-08
    if grain in ("WEEK", "DATE"):
        return day
    clock = joined(padded(pc.hour(column), 2), padded(pc.minute(column), 2), ":")
    if grain in ("SECOND", "MILLISECOND"):
        clock = joined(clock, padded(pc.second(column), 2), ":")
    if grain == "MILLISECOND":
        clock = joined(clock, padded(pc.millisecond(column), 3), ".")
    return joined(day, clock, " ")


def date_types_of(names: Sequence[str], fields: Mapping[str, Any]) -> list[str | None]:
    """Each column's ``date_type`` from a result's ``summary.fields`` (keyed by column name)."""
    return [(fields.get(name) or {}).get("date_type") for name in names]


def formatted_table(table: pa.Table, fields: Mapping[str, Any]) -> pa.Table:
    """Every value as text in its field's format (``formatResults``)."""
    columns = []
    for name in table.column_names:
        fmt = (fields.get(name) or {}).get("format")
        values = [format_value(v, fmt) for v in table.column(name).to_pylist()]
        columns.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
    return pa.table(columns, names=table.column_names)
