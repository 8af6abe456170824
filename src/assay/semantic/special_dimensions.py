"""Omni's special dimensions: ``groups`` (labelled buckets of values), ``bin_boundaries``
(numeric ranges) and ``duration`` (whole units between two moments), as SQL trees.

Each is built once, when the model loads, from sqlglot nodes that render to the same meaning
in every dialect Assay targets: a dimension's tree is inlined into other fields' SQL at load
time, so it cannot wait for the query's dialect. That is why a duration is counted from
calendar parts (``EXTRACT``, a day difference of dates) rather than a ``DATEDIFF(unit, ...)``,
whose meaning differs between databases (whole units elapsed on MySQL, Trino and Spark,
boundaries crossed on Snowflake and DuckDB).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from typing import Final

from sqlglot import exp

from assay.semantic.filters import PORTABLE, Filter, filter_condition

#: Omni's duration intervals; a duration dimension is queried as ``view.name[days]``
DURATION_UNITS: Final = (
    "seconds", "minutes", "hours", "days", "weeks", "months", "quarters", "years",
)  # fmt: skip
_SECONDS_IN: Final = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}
_MONTHS_IN: Final = {"months": 1, "quarters": 3, "years": 12}
# Group conditions read no clock (date conditions are refused in groups); any moment will do.
_NO_CLOCK = datetime(2000, 1, 1)


# ---------------------------------------------------------------- groups


def group_filter_problem(f: Filter) -> str | None:
    """Why ``f`` cannot be a group's condition, or None. Date conditions depend on the
    dialect and the clock, which a tree built at load time cannot; Omni's groups are for
    string fields in any case."""
    if f.type == "composite":
        return next((p for s in f.filters if (p := group_filter_problem(s))), None)
    if f.type == "date":
        return (
            "Assay does not support date conditions in groups yet (Omni's groups are for "
            "string fields): use is, not, contains, starts_with, ends_with or a number test"
        )
    return None


def group_case(
    target: exp.Expr, groups: Sequence[tuple[Filter, str]], otherwise: str | None
) -> exp.Case:
    """``CASE WHEN <first group's condition> THEN '<its name>' ... ELSE '<else>' END``: the
    first group whose filter holds names the row; rows no group takes get ``else`` (NULL
    without it)."""
    ifs = [
        exp.If(
            this=filter_condition(f, target, now=_NO_CLOCK, dialect=PORTABLE),
            true=exp.Literal.string(name),
        )
        for f, name in groups
    ]
    default = exp.Literal.string(otherwise) if otherwise is not None else None
    return exp.Case(ifs=ifs, default=default)


# ---------------------------------------------------------------- bins


def number_text(value: int | float | Decimal) -> str:
    """A boundary as a label shows it: ``21``, ``2.5``, ``1000000`` (no exponent, no
    trailing zeros: ``21.0`` reads ``21``)."""
    d = Decimal(str(value)).normalize()
    return f"{d:f}"


def bin_labels(boundaries: Sequence[int | float]) -> list[str]:
    """Omni's bucket labels: ``< 21``, ``>= 21 and < 65``, ``65 and above``. Each bucket holds
    its lower boundary and not its upper one."""
    texts = [number_text(b) for b in boundaries]
    middle = [f">= {lo} and < {hi}" for lo, hi in pairwise(texts)]
    return [f"< {texts[0]}", *middle, f"{texts[-1]} and above"]


def bin_case(target: exp.Expr, boundaries: Sequence[int | float]) -> exp.Case:
    """The bucket label of ``target``'s value (NULL for NULL); boundaries are increasing."""
    labels = bin_labels(boundaries)
    ifs = [
        exp.If(
            this=exp.LT(this=target.copy(), expression=_number(b)),
            true=exp.Literal.string(label),
        )
        for b, label in zip(boundaries, labels, strict=False)
    ]
    last = exp.GTE(this=target.copy(), expression=_number(boundaries[-1]))
    ifs.append(exp.If(this=last, true=exp.Literal.string(labels[-1])))
    return exp.Case(ifs=ifs)


def increasing_problem(boundaries: Sequence[int | float]) -> str | None:
    """Why ``boundaries`` cannot bin, or None: they must rise strictly, or buckets would be
    empty or overlap."""
    if not boundaries:
        return "bin_boundaries needs at least one boundary, e.g. [21, 65]"
    for i, (lo, hi) in enumerate(pairwise(boundaries)):
        if hi <= lo:
            fixed = ", ".join(number_text(b) for b in sorted(set(boundaries)))
            return (
                f"bin_boundaries must increase: {number_text(hi)} (position {i + 1}) "
                f"follows {number_text(lo)}. Did you mean [{fixed}]?"
            )
    return None


def _number(value: int | float) -> exp.Expr:
    return exp.Literal.number(number_text(value))


# ---------------------------------------------------------------- durations


def duration_expression(start: exp.Expr, end: exp.Expr, unit: str) -> exp.Expr:
    """Whole ``unit``s from ``start`` to ``end``, truncated toward zero (negative when the
    end comes first; NULL when either is): 23 hours are 0 days, 31 January to 29 February
    is 0 months, and a week is 7 days.

    Seconds to weeks count elapsed time (fractions of a second are ignored); months,
    quarters and years count calendar months, less one when the end's day and time of the
    month fall before the start's.
    """
    s, e = _timestamp(start), _timestamp(end)
    if unit in _SECONDS_IN:
        days = exp.DateDiff(this=_as_date(e), expression=_as_date(s), unit=exp.var("DAY"))
        elapsed = exp.Add(
            this=exp.Mul(this=days, expression=exp.Literal.number(86400)),
            expression=exp.Sub(this=_second_of_day(e), expression=_second_of_day(s)),
        )
        return _truncated(elapsed, _SECONDS_IN[unit])
    calendar_months = exp.Add(
        this=exp.Mul(
            this=exp.Paren(this=exp.Sub(this=_part("YEAR", e), expression=_part("YEAR", s))),
            expression=exp.Literal.number(12),
        ),
        expression=exp.Paren(this=exp.Sub(this=_part("MONTH", e), expression=_part("MONTH", s))),
    )
    into_end, into_start = _second_of_month(e), _second_of_month(s)
    zero = exp.Literal.number(0)
    one = exp.Literal.number(1)
    whole = exp.Case(
        ifs=[
            exp.If(
                this=exp.and_(
                    exp.GT(this=calendar_months.copy(), expression=zero.copy()),
                    exp.LT(this=into_end.copy(), expression=into_start.copy()),
                ),
                true=exp.Sub(this=calendar_months.copy(), expression=one.copy()),
            ),
            exp.If(
                this=exp.and_(
                    exp.LT(this=calendar_months.copy(), expression=zero.copy()),
                    exp.GT(this=into_end, expression=into_start),
                ),
                true=exp.Add(this=calendar_months.copy(), expression=one),
            ),
        ],
        default=calendar_months,
    )
    return _truncated(whole, _MONTHS_IN[unit])


def _timestamp(value: exp.Expr) -> exp.Expr:
    """A DATE or TIMESTAMP as a TIMESTAMP, so time parts read 0 for dates on every engine
    (BigQuery refuses EXTRACT(HOUR FROM <date>))."""
    return exp.Cast(this=value.copy(), to=exp.DataType.build("timestamp"))


def _as_date(value: exp.Expr) -> exp.Expr:
    return exp.Cast(this=value.copy(), to=exp.DataType.build("date"))


def _part(unit: str, value: exp.Expr) -> exp.Expr:
    return exp.Extract(this=exp.var(unit), expression=value.copy())


def _second_of_day(value: exp.Expr) -> exp.Expr:
    """Whole seconds since midnight (PostgreSQL and Spark give seconds with a fraction)."""
    hours = exp.Mul(this=_part("HOUR", value), expression=exp.Literal.number(3600))
    minutes = exp.Mul(this=_part("MINUTE", value), expression=exp.Literal.number(60))
    seconds = exp.Floor(this=_part("SECOND", value))
    return exp.Paren(this=exp.Add(this=exp.Add(this=hours, expression=minutes), expression=seconds))


def _second_of_month(value: exp.Expr) -> exp.Expr:
    """How far into its month a moment is, in seconds: day of month, then time of day."""
    day = exp.Mul(this=_part("DAY", value), expression=exp.Literal.number(86400))
    return exp.Paren(this=exp.Add(this=day, expression=_second_of_day(value)))


def _truncated(amount: exp.Expr, per_unit: int) -> exp.Expr:
    """``amount / per_unit`` truncated toward zero, as a BIGINT: SIGN * FLOOR(ABS / n), since
    integer division and casts round differently between databases."""
    amount = exp.Paren(this=amount)
    if per_unit == 1:  # already whole
        whole: exp.Expr = amount
    else:
        whole = exp.Mul(
            this=exp.Sign(this=amount.copy()),
            expression=exp.Floor(
                this=exp.Div(this=exp.Abs(this=amount), expression=exp.Literal.number(per_unit))
            ),
        )
    return exp.Cast(this=whole, to=exp.DataType.build("bigint"))
