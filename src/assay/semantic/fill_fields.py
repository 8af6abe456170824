"""``fill_fields``: which values a filled dimension must show (semantic layer, pure).

A fill shows every value of a dimension's domain, with NULL measures where the data has no
row. The domain is known without reading data: the buckets of a date grain between the
bounds of the query's own date filter on that field (Omni: "If the date series is unbounded
on either side, Omni will not fill"), a grain's fixed set (weekdays, months, quarters, hours),
TRUE/FALSE for a boolean, or the ``all_values`` the model declares. Anything else (free text,
numbers) has no domain and is refused by name rather than filled with what happens to be in
the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlglot import exp

from assay.errors import InvalidQuery, NotSupported, did_you_mean
from assay.semantic.calendar import Calendar
from assay.semantic.dates import DateGrammarError, interval_span, parse_span, shift, truncate
from assay.semantic.filters import Filter, date_literal

#: Most buckets one fill may add: a daily series over 27 years, an hourly one over 14 months.
MAX_BUCKETS = 10_000
#: Date grains filled from a bounding filter, with the unit ``dates.truncate`` uses for each.
DATE_GRAINS = {
    "date": "day", "week": "week", "month": "month", "quarter": "quarter", "year": "year",
    "hour": "hour",
}  # fmt: skip
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
#: Grains whose values are a fixed set, whatever the dates (as the grain SQL writes them).
FIXED_GRAINS: dict[str, tuple[str | int, ...]] = {
    "day_of_week_name": _DAYS,
    "day_of_week_num": tuple(range(1, 8)),
    "month_name": _MONTHS,
    "month_num": tuple(range(1, 13)),
    "quarter_of_year": (1, 2, 3, 4),
    "hour_of_day": tuple(range(24)),
}
#: Other query keys whose combination with a fill is not built: refused by name.
_NOT_WITH = {
    "column_totals": "column totals",
    "row_totals": "row totals",
}


def parse_fill_fields(obj: Mapping[str, Any], fields: Sequence[str]) -> tuple[str, ...]:
    """``query.fill_fields``: names exactly as written in ``fields`` (grain included)."""
    raw = obj.get("fill_fields")
    if raw in (None, []):
        return ()
    if not isinstance(raw, list) or not all(isinstance(f, str) for f in raw):
        raise InvalidQuery("query.fill_fields: expected a list of field names from query.fields")
    for key, what in _NOT_WITH.items():
        if obj.get(key):
            raise NotSupported(
                f"query.fill_fields together with {key}: filling {what} is not supported; "
                f"remove fill_fields or {key!r}"
            )
    out: list[str] = []
    for name in raw:
        if name not in fields:
            hint = did_you_mean(name, fields)
            raise InvalidQuery(
                f"query.fill_fields: {name!r} is not in query.fields; a filled field must be "
                f"one of the query's fields, written the same way (grain included).{hint}"
            )
        if name not in out:
            out.append(name)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Bounds:
    """The half-open range ``[start, end)`` a field's date filters leave; either may be open."""

    start: datetime | None = None
    end: datetime | None = None

    def meet(self, other: Bounds) -> Bounds:
        starts = [s for s in (self.start, other.start) if s is not None]
        ends = [e for e in (self.end, other.end) if e is not None]
        return Bounds(max(starts) if starts else None, min(ends) if ends else None)


def filter_bounds(f: Filter, now: datetime, calendar: Calendar) -> Bounds:
    """The range a date filter keeps, resolved at ``now`` as the filter's SQL is; a filter
    that keeps no single range (negated, OR, a day of week) bounds nothing."""
    if f.is_negative:
        return Bounds()
    if f.type == "composite":
        if f.conjunction != "AND":
            return Bounds()
        out = Bounds()
        for sub in f.filters:
            out = out.meet(filter_bounds(sub, now, calendar))
        return out
    if f.type != "date":
        return Bounds()
    vals = [str(v) for v in f.values]
    left = f.left_side or (vals[0] if vals else None)
    right = f.right_side or (vals[1] if len(vals) > 1 else None)
    try:
        if f.kind == "BEFORE":
            edge = f.right_side or f.left_side or (vals[0] if vals else None)
            return Bounds(end=parse_span(edge, now, calendar).start) if edge else Bounds()
        if left is None:
            return Bounds()
        if f.kind == "ON_OR_AFTER":
            return Bounds(start=parse_span(left, now, calendar).start)
        if f.kind == "TIME_FOR_UNIT_DURATION":
            span = parse_span(left, now, calendar)
            return Bounds(span.start, span.end)
        if f.kind == "TIME_FOR_INTERVAL_DURATION" and right is not None:
            span = interval_span(left, right, now, calendar)
            return Bounds(span.start, span.end)
        if f.kind == "BETWEEN" and right is not None:
            return Bounds(
                parse_span(left, now, calendar).start, parse_span(right, now, calendar).start
            )
    except DateGrammarError:  # the filter's own SQL refuses it with its message
        return Bounds()
    return Bounds()


def date_buckets(
    name: str, grain: str, bounds: Bounds, calendar: Calendar, *, on_buckets: bool
) -> list[datetime]:
    """The starts of the ``grain`` buckets the range touches, as the grain SQL computes them.

    ``on_buckets``: the range bounds the bucket starts themselves (a filter on the same
    grain), so a bucket starting before ``start`` is out; otherwise the range bounds the raw
    dates, and the bucket holding ``start`` is in.
    """
    assert bounds.start is not None and bounds.end is not None
    unit = DATE_GRAINS[grain]
    bucket = truncate(bounds.start, unit, calendar)
    if on_buckets and bucket < bounds.start:
        bucket = shift(bucket, unit, 1)
    out: list[datetime] = []
    while bucket < bounds.end:
        if len(out) == MAX_BUCKETS:
            raise InvalidQuery(
                f"query.fill_fields: filling {name!r} would add more than {MAX_BUCKETS:,} "
                "rows; narrow its date filter or use a coarser grain"
            )
        out.append(bucket)
        bucket = shift(bucket, unit, 1)
    return out


def date_literals(buckets: Sequence[datetime], grain: str) -> list[exp.Expr]:
    """Bucket starts as the typed literals date filters use: DATE for day and longer grains;
    TIMESTAMP for hours, midnight included, so one series never mixes the two types."""
    if grain != "hour":
        return [date_literal(b) for b in buckets]
    timestamp = exp.DataType(this=exp.DataType.Type.TIMESTAMP)
    return [exp.Cast(this=exp.Literal.string(b.isoformat(sep=" ")), to=timestamp) for b in buckets]


def value_literal(value: Any, name: str) -> exp.Expr:
    """A domain value (a fixed grain's, or one of ``all_values``) as a SQL literal."""
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    raise NotSupported(
        f"query.fill_fields: {name!r} declares the value {value!r} in all_values, which is "
        "neither text, a number nor a boolean; remove it from fill_fields"
    )
