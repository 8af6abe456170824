"""Filters: Omni's typed JSON filters (API) and YAML filter syntax (model files), both read
into one ``Filter`` value, and turned into sqlglot conditions on a field's expression.

Values become sqlglot literals, never SQL text. Negation: a negated string filter keeps NULLs
("is not X" includes rows with no value, as Omni's UI reads it); negated number and date
filters follow SQL (NULL rows are dropped).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from sqlglot import exp

from assay.errors import did_you_mean
from assay.semantic.calendar import ISO, Calendar
from assay.semantic.dates import (
    DateGrammarError,
    Span,
    as_date_or_datetime,
    interval_span,
    parse_span,
)
from assay.semantic.timeframes import grain_expression

FilterType = Literal["string", "number", "date", "boolean", "null", "composite", "user_attribute"]
STRING_KINDS = ("EQUALS", "CONTAINS", "STARTS_WITH", "ENDS_WITH", "SQL_LIKE", "IS_EMPTY")
NUMBER_KINDS = ("EQUALS", "GREATER_THAN", "LESS_THAN", "BETWEEN")
# Date-part filters test the same value as the matching timeframe, built the same way.
_PART_KINDS = {
    "IS_ON_DAY_OF_WEEK": "day_of_week_num",
    "IS_ON_DAY_OF_MONTH": "day_of_month",
    "IS_ON_DAY_OF_YEAR": "day_of_year",
    "IS_IN_MONTH_OF_YEAR": "month_num",
    "IS_IN_QUARTER_OF_YEAR": "quarter_of_year",
    "IS_IN_WEEK_OF_YEAR": "week_of_year",
    "IS_AT_HOUR_OF_DAY": "hour_of_day",
    "IS_ON_DAY_OF_QUARTER": "day_of_quarter",
}
_NOT_YET = {"QUERY_OFFSET"}
DATE_KINDS = (
    "BETWEEN", "ON_OR_AFTER", "BEFORE", "TIME_FOR_INTERVAL_DURATION", "TIME_FOR_UNIT_DURATION",
    *_PART_KINDS,
)  # fmt: skip
_DAY_NAMES = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_MONTH_NAMES = ["january", "february", "march", "april", "may", "june", "july", "august",
                "september", "october", "november", "december"]  # fmt: skip


class FilterError(ValueError):
    """A filter that cannot be read; the message says where and why."""


# Composite filters nest at most this deep: reading, and sqlglot rendering the condition,
# recurse once per level, and a 7 KB request 200 levels deep would otherwise end in a
# RecursionError (a 500) instead of a clear refusal. People nest two or three levels.
MAX_NESTING = 32


def _check_nesting(depth: int, where: str) -> None:
    if depth >= MAX_NESTING:
        raise FilterError(f"{where}: composite filters nest at most {MAX_NESTING} levels deep")


@dataclass(frozen=True, slots=True)
class Filter:
    """One condition on one field, normalised from either syntax."""

    type: FilterType
    kind: str = ""
    values: tuple[Any, ...] = ()
    is_negative: bool = False
    case_insensitive: bool = False
    is_inclusive: bool = False
    left_side: str | None = None
    right_side: str | None = None
    conjunction: Literal["AND", "OR"] = "AND"
    filters: tuple[Filter, ...] = ()
    treat_nulls_as_false: bool = False

    @property
    def is_noop(self) -> bool:
        return self.type == "composite" and not self.filters


# ---------------------------------------------------------------- JSON (API) filters


def parse_json_filter(obj: Any, *, where: str, _depth: int = 0) -> Filter | None:
    """Read one typed filter object; ``None`` for filters Omni ignores (a boolean with a null
    ``is_negative``). ``_depth``: how many composites this one is inside."""
    if not isinstance(obj, Mapping):
        raise FilterError(
            f"{where}: a filter must be a typed object such as "
            f'{{"type": "string", "kind": "EQUALS", "values": ["x"]}}, not {obj!r}'
        )
    kind_of = obj.get("type")
    neg = bool(obj.get("is_negative") or False)
    if kind_of == "boolean":
        if obj.get("is_negative") is None:
            return None
        return Filter(
            "boolean", is_negative=neg, treat_nulls_as_false=bool(obj.get("treat_nulls_as_false"))
        )
    if kind_of == "null":
        return Filter("null", is_negative=neg)
    if kind_of == "composite":
        conj = str(obj.get("conjunction", "AND")).upper()
        if conj not in ("AND", "OR"):
            raise FilterError(f"{where}: conjunction must be AND or OR, not {conj!r}")
        subs = obj.get("filters")
        if not isinstance(subs, list):
            raise FilterError(f"{where}: a composite filter needs a 'filters' list")
        _check_nesting(_depth, where)
        parts = [
            parse_json_filter(s, where=f"{where}.filters[{i}]", _depth=_depth + 1)
            for i, s in enumerate(subs)
        ]
        if not any(parts):
            return None  # an empty composite constrains nothing
        return Filter(
            "composite",
            conjunction="OR" if conj == "OR" else "AND",
            filters=tuple(p for p in parts if p),
            is_negative=neg,
        )
    if kind_of == "user_attribute":
        name = obj.get("user_attribute_name")
        if not isinstance(name, str) or not name.strip():
            raise FilterError(f"{where}: a user_attribute filter needs 'user_attribute_name'")
        # The field equals the querying user's values, bound when the query compiles.
        return Filter("user_attribute", "EQUALS", (name.strip(),), is_negative=neg)
    if kind_of not in ("string", "number", "date"):
        hint = did_you_mean(
            str(kind_of),
            ("string", "number", "date", "boolean", "null", "composite", "user_attribute"),
        )
        if kind_of == "query":
            hint = " Filters of this type are not supported yet."
        raise FilterError(f"{where}: unknown filter type {kind_of!r}.{hint}")
    kinds = {"string": STRING_KINDS, "number": NUMBER_KINDS, "date": (*DATE_KINDS, *_NOT_YET)}
    kind = str(obj.get("kind", "EQUALS")).upper()
    if kind not in kinds[kind_of]:
        raise FilterError(
            f"{where}: unknown {kind_of} filter kind {kind!r}.{did_you_mean(kind, kinds[kind_of])}"
        )
    if kind in _NOT_YET:
        raise FilterError(f"{where}: date filters of kind {kind} are not supported yet")
    values = obj.get("values")
    if values is None and not (
        kind_of == "date" and (obj.get("left_side") or obj.get("right_side"))
    ):
        raise FilterError(f"{where}: a {kind_of} filter of kind {kind} needs 'values'")
    if values is not None and not isinstance(values, list):
        values = [values]
    f = Filter(
        kind_of, kind, tuple(values or ()), is_negative=neg,
        case_insensitive=bool(obj.get("case_insensitive")),
        is_inclusive=bool(obj.get("is_inclusive")),
        left_side=_opt_str(obj.get("left_side")), right_side=_opt_str(obj.get("right_side")),
    )  # fmt: skip
    _check_values(f, where)
    return f


def _opt_str(v: Any) -> str | None:
    return None if v is None or v == "" else str(v)


def _check_values(f: Filter, where: str) -> None:
    """Everything about a filter that can be wrong is found when it is read, with its place."""
    if f.type == "number":
        if not f.values:
            raise FilterError(f"{where}: a number {f.kind} filter needs at least one value")
        for v in f.values:
            _number(v, where)
        if f.kind == "BETWEEN" and len(f.values) != 2:
            raise FilterError(f"{where}: BETWEEN needs exactly two values, got {len(f.values)}")
        if f.kind in ("GREATER_THAN", "LESS_THAN") and len(f.values) != 1:
            raise FilterError(f"{where}: {f.kind} needs exactly one value")
    if f.type == "string" and f.kind != "IS_EMPTY" and not f.values:
        raise FilterError(f"{where}: a string {f.kind} filter needs at least one value")
    if f.type == "date":
        _check_date(f, where)


def _check_date(f: Filter, where: str) -> None:
    if f.kind in _PART_KINDS:
        if not f.values:
            raise FilterError(f"{where}: {f.kind} needs at least one value")
        for v in f.values:
            _date_part_value(f.kind, v, where)
        return
    texts = [str(v) for v in f.values]
    left = f.left_side or (texts[0] if texts else None)
    right = f.right_side or (texts[1] if len(texts) > 1 else None)
    if f.kind == "BEFORE":
        left, right = None, f.right_side or f.left_side or (texts[0] if texts else None)
        if right is None:
            raise FilterError(f"{where}: a BEFORE date filter needs right_side or values")
    elif left is None:
        raise FilterError(f"{where}: a {f.kind} date filter needs left_side or values")
    if f.kind in ("BETWEEN", "TIME_FOR_INTERVAL_DURATION") and right is None:
        raise FilterError(f"{where}: a {f.kind} date filter needs right_side (or two values)")
    try:
        # The grammar does not depend on the clock, but the range does ("7990 years from now"
        # reads, and is past year 9999 from 2010 on): what resolves at both ends of the clocks
        # a server runs at resolves at any clock between, so a query never fails on it later.
        for reference in _REFERENCES:
            if f.kind == "TIME_FOR_INTERVAL_DURATION" and left and right:
                interval_span(left, right, reference)
                continue
            for text in (left, right):
                if text is not None:
                    parse_span(text, reference)
    except DateGrammarError as exc:
        raise FilterError(f"{where}: {exc}") from exc


def _number(v: Any, where: str) -> exp.Expr:
    if isinstance(v, bool):
        raise FilterError(f"{where}: {v!r} is not a number")
    try:
        d = Decimal(str(v).strip())
    except InvalidOperation:
        raise FilterError(f"{where}: {v!r} is not a number") from None
    if not d.is_finite():
        raise FilterError(f"{where}: {v!r} is not a finite number")
    return exp.Literal.number(str(d))


_REFERENCES = (datetime(1970, 1, 1), datetime(2100, 12, 31, 23, 59, 59))

# ---------------------------------------------------------------- YAML filter syntax

_NUMBER_OPS = {
    "greater_than": ("GREATER_THAN", False), "greater_than_or_equal_to": ("GREATER_THAN", True),
    "less_than": ("LESS_THAN", False), "less_than_or_equal_to": ("LESS_THAN", True),
}  # fmt: skip
_STRING_OPS = {"contains": "CONTAINS", "starts_with": "STARTS_WITH", "ends_with": "ENDS_WITH"}
_DATE_PART_OPS = {
    "day_of_week": "IS_ON_DAY_OF_WEEK", "day_of_month": "IS_ON_DAY_OF_MONTH",
    "day_of_year": "IS_ON_DAY_OF_YEAR", "month_of_year": "IS_IN_MONTH_OF_YEAR",
    "quarter_of_year": "IS_IN_QUARTER_OF_YEAR", "hour_of_day": "IS_AT_HOUR_OF_DAY",
    "week_of_year": "IS_IN_WEEK_OF_YEAR", "day_of_quarter": "IS_ON_DAY_OF_QUARTER",
}  # fmt: skip
_YAML_NOT_YET = (
    "date_offset_from_query", "cancel_query_filter", "field_name_in_query",
    "field_name_not_in_query",
)  # fmt: skip
YAML_OPERATORS = (
    "is", "not", "is_not", "and", "or", "between", "before", "on_or_after", "between_dates",
    "time_for_duration", "case_insensitive", *_NUMBER_OPS, *_STRING_OPS, *_DATE_PART_OPS,
)  # fmt: skip


def parse_yaml_filter(obj: Any, *, where: str, _depth: int = 0) -> Filter:
    """Read ``{operator: value, ...}`` (several operators are ANDed); ``_depth``: how many
    and/or lists this one is inside."""
    if not isinstance(obj, Mapping) or not obj:
        raise FilterError(
            f"{where}: expected {{operator: value}}, e.g. {{is: Complete}}; got {obj!r}"
        )
    ci = bool(obj.get("case_insensitive"))
    parts = [
        _yaml_operator(str(op), value, where=f"{where}.{op}", case_insensitive=ci, depth=_depth)
        for op, value in obj.items()
        if op != "case_insensitive"
    ]
    if not parts:
        raise FilterError(f"{where}: case_insensitive needs another operator beside it")
    return parts[0] if len(parts) == 1 else Filter("composite", filters=tuple(parts))


def _yaml_operator(
    op: str, value: Any, *, where: str, case_insensitive: bool, depth: int
) -> Filter:
    negate = False
    base = op
    if op in _YAML_NOT_YET:
        raise FilterError(f"{where}: the {op!r} filter operator is not supported yet")
    if op in ("not_and", "not_or"):
        raise FilterError(f"{where}: {op!r} is not an operator; negate each condition inside "
                          f"'{op[4:]}' instead (e.g. not_contains, not)")  # fmt: skip
    if op in ("not", "is_not"):
        negate, base = True, "is"
    elif op.startswith("not_") and op[4:] in YAML_OPERATORS:
        negate, base = True, op[4:]
    values = tuple(value) if isinstance(value, list) else (value,)
    if base in ("and", "or"):
        if not isinstance(value, list) or not value:
            raise FilterError(f"{where}: '{op}' takes a non-empty list of conditions")
        _check_nesting(depth, where)
        subs = tuple(
            parse_yaml_filter(v, where=f"{where}[{i}]", _depth=depth + 1)
            for i, v in enumerate(value)
        )
        return Filter("composite", conjunction=base.upper(), filters=subs)  # type: ignore[arg-type]
    if base == "is":
        f = _yaml_is(values, where)
        # "is false" is already a negation: "not: false" must undo it, not repeat it.
        return replace(f, is_negative=f.is_negative != negate, case_insensitive=case_insensitive)
    if base in _NUMBER_OPS:
        kind, inclusive = _NUMBER_OPS[base]
        f = Filter("number", kind, values, is_negative=negate, is_inclusive=inclusive)
    elif base == "between":
        # YAML 'between' reads as inclusive on both ends, as people say it.
        f = Filter("number", "BETWEEN", values, is_negative=negate, is_inclusive=True)
    elif base in _STRING_OPS:
        f = Filter("string", _STRING_OPS[base], tuple(str(v) for v in values), is_negative=negate,
                   case_insensitive=case_insensitive)  # fmt: skip
    elif base in ("before", "on_or_after") and not values:
        raise FilterError(f"{where}: '{op}' takes a date")
    elif base == "before":
        f = Filter("date", "BEFORE", right_side=_date_text(values[0]), is_negative=negate)
    elif base == "on_or_after":
        f = Filter("date", "ON_OR_AFTER", left_side=_date_text(values[0]), is_negative=negate)
    elif base in ("between_dates", "time_for_duration"):
        if len(values) != 2:
            raise FilterError(f"{where}: '{op}' takes [start, end]")
        kind = "BETWEEN" if base == "between_dates" else "TIME_FOR_INTERVAL_DURATION"
        f = Filter("date", kind, left_side=_date_text(values[0]), right_side=_date_text(values[1]),
                   is_negative=negate)  # fmt: skip
    elif base in _DATE_PART_OPS:
        f = Filter("date", _DATE_PART_OPS[base], values, is_negative=negate)
    else:
        raise FilterError(
            f"{where}: unknown filter operator {op!r}.{did_you_mean(op, YAML_OPERATORS)}"
        )
    _check_values(f, where)
    return f


def _date_text(v: Any) -> str:
    return v.isoformat(sep=" ") if isinstance(v, datetime) else str(v)


def _yaml_is(values: tuple[Any, ...], where: str) -> Filter:
    first = values[0] if values else None
    if first is None or first == "null":
        return Filter("null")
    if isinstance(first, bool) or first in ("true", "false", "falsey"):
        truthy = first is True or first == "true"
        return Filter("boolean", is_negative=not truthy, treat_nulls_as_false=first == "falsey")
    if isinstance(first, (int, float, Decimal)):
        f = Filter("number", "EQUALS", values)
        _check_values(f, where)
        return f
    if isinstance(first, (date, datetime)):
        f = Filter("date", "TIME_FOR_UNIT_DURATION", left_side=_date_text(first))
        _check_values(f, where)  # a YAML timestamp with a time zone is not in the grammar
        return f
    return Filter("string", "EQUALS", tuple(str(v) for v in values))


# ---------------------------------------------------------------- to SQL

_ABSOLUTE_DATE = re.compile(
    r"^(\d{4}([-/ ]?(q[1-4]|\d{1,2}))*([ t]\d{1,2}(:\d{2}){0,2})?|fy ?\d{4}([ -]?q[1-4])?)$"
)


def with_user_values(f: Filter, values_of: Callable[[str], tuple[str, ...]]) -> Filter:
    """``f`` with each ``user_attribute`` filter replaced by a string filter on the user's
    values (``values_of`` raises when the user has none)."""
    if f.type == "composite":
        return replace(f, filters=tuple(with_user_values(s, values_of) for s in f.filters))
    if f.type != "user_attribute":
        return f
    return Filter("string", "EQUALS", values_of(str(f.values[0])), is_negative=f.is_negative)


def depends_on_clock(f: Filter) -> bool:
    """Whether the condition changes with the current time ("last month", "30 days ago")."""
    if f.type == "composite":
        return any(depends_on_clock(s) for s in f.filters)
    if f.type != "date" or f.kind in _PART_KINDS:
        return False
    texts = [f.left_side, f.right_side, *(str(v) for v in f.values)]
    if f.kind == "TIME_FOR_INTERVAL_DURATION":  # the right side is a duration, not a moment
        texts = [f.left_side or (str(f.values[0]) if f.values else None)]
    return any(t and not _ABSOLUTE_DATE.match(t.strip().lower()) for t in texts)


def filter_condition(
    f: Filter,
    target: exp.Expr,
    *,
    now: datetime,
    dialect: str = "duckdb",
    calendar: Calendar = ISO,
) -> exp.Expr:
    """The condition ``f`` puts on ``target`` (a field's expression; copied, never mutated),
    for ``dialect``: date parts and prefix tests use functions that database has; weeks and
    fiscal periods are those of the field's ``calendar``."""
    if isinstance(target, (exp.Binary, exp.Not, exp.Neg)):
        target = exp.Paren(this=target.copy())  # never re-parent the model's own tree
    if f.type == "composite":
        parts = [
            filter_condition(s, target, now=now, dialect=dialect, calendar=calendar)
            for s in f.filters
        ]
        # copy=False: the parts are new trees; copying them again at every level of nesting
        # made a 30-level composite take seconds (sqlglot's and_/or_ copy by default).
        joined: exp.Expr = (
            exp.and_(*parts, copy=False) if f.conjunction == "AND" else exp.or_(*parts, copy=False)
        )
        return exp.Not(this=exp.Paren(this=joined)) if f.is_negative else joined
    if f.type == "user_attribute":  # the compiler binds it to the user's values first
        raise FilterError(f"user attribute {f.values[0]!r} is not bound to a user's values")
    if f.type == "null":
        isnull = exp.Is(this=target.copy(), expression=exp.Null())
        return exp.Not(this=isnull) if f.is_negative else isnull
    if f.type == "boolean":
        value = exp.EQ(this=target.copy(), expression=exp.Boolean(this=not f.is_negative))
        if f.is_negative and f.treat_nulls_as_false:
            return exp.Paren(this=exp.or_(value, exp.Is(this=target.copy(), expression=exp.Null())))
        return value
    if f.type == "number":
        return _negate(_number_condition(f, target), f.is_negative, target, keep_nulls=False)
    if f.type == "date":
        try:
            cond: exp.Expr = _date_condition(f, target, now, dialect, calendar)
        except DateGrammarError as exc:
            raise FilterError(str(exc)) from exc
        return _negate(cond, f.is_negative, target, keep_nulls=False)
    # "is not empty" means a value is there; other negated string tests keep NULL rows.
    keep = f.kind != "IS_EMPTY"
    return _negate(_string_condition(f, target, dialect), f.is_negative, target, keep_nulls=keep)


def _negate(cond: exp.Expr, neg: bool, target: exp.Expr, *, keep_nulls: bool) -> exp.Expr:
    if not neg:
        return cond
    negated = exp.Not(this=exp.Paren(this=cond))
    if keep_nulls:
        return exp.Paren(this=exp.or_(negated, exp.Is(this=target.copy(), expression=exp.Null())))
    return negated


def _in_or_eq(target: exp.Expr, literals: Sequence[exp.Expr]) -> exp.Expr:
    if len(literals) == 1:
        return exp.EQ(this=target, expression=literals[0])
    return exp.In(this=target, expressions=list(literals))


def _number_condition(f: Filter, target: exp.Expr) -> exp.Expr:
    nums = [_number(v, "filter") for v in f.values]
    t = target.copy()
    if f.kind == "EQUALS":
        return _in_or_eq(t, nums)
    if f.kind == "GREATER_THAN":
        return (exp.GTE if f.is_inclusive else exp.GT)(this=t, expression=nums[0])
    if f.kind == "LESS_THAN":
        return (exp.LTE if f.is_inclusive else exp.LT)(this=t, expression=nums[0])
    # BETWEEN: lower bound inclusive; upper exclusive unless is_inclusive (Omni's server).
    upper = (exp.LTE if f.is_inclusive else exp.LT)(this=target.copy(), expression=nums[1])
    return exp.and_(exp.GTE(this=t, expression=nums[0]), upper)


#: not a database: conditions that sqlglot renders alike for every dialect (built once, at
#: load time, for SQL that is inlined into any query), at the cost of a plainer construct
PORTABLE = "portable"
# Dialects without STARTS_WITH / ENDS_WITH functions compare the LEFT / RIGHT characters.
_NO_STARTS_WITH = {"mysql", PORTABLE}
_NO_ENDS_WITH = {"mysql", "postgres", PORTABLE}


def _affix(kind: str, subject: exp.Expr, lit: exp.Expr, text: str, dialect: str) -> exp.Expr:
    starts = kind == "STARTS_WITH"
    if dialect in (_NO_STARTS_WITH if starts else _NO_ENDS_WITH):
        take = exp.Left if starts else exp.Right
        cut = take(this=subject, expression=exp.Literal.number(len(text)))
        return exp.EQ(this=cut, expression=lit)
    if starts:
        return exp.StartsWith(this=subject, expression=lit)
    return exp.EndsWith(this=subject, expression=lit)


def _string_condition(f: Filter, target: exp.Expr, dialect: str) -> exp.Expr:
    t = target.copy()
    if f.kind == "IS_EMPTY":
        empty = exp.EQ(this=target.copy(), expression=exp.Literal.string(""))
        return exp.Paren(this=exp.or_(exp.Is(this=t, expression=exp.Null()), empty))
    ci = f.case_insensitive

    def side(e: exp.Expr) -> exp.Expr:
        return exp.Lower(this=e) if ci else e

    texts = [str(v) for v in f.values]
    lits = [side(exp.Literal.string(v)) for v in texts]
    if f.kind == "EQUALS":
        return _in_or_eq(side(t), lits)
    conds: list[exp.Expr] = []
    for text, lit in zip(texts, lits, strict=True):
        subject = side(target.copy())
        if f.kind == "CONTAINS":
            position = exp.StrPosition(this=subject, substr=lit)
            conds.append(exp.GT(this=position, expression=exp.Literal.number(0)))
        elif f.kind in ("STARTS_WITH", "ENDS_WITH"):
            conds.append(_affix(f.kind, subject, lit, text, dialect))
        else:  # SQL_LIKE: the value is a LIKE pattern by definition
            conds.append(exp.Like(this=subject, expression=lit))
    return conds[0] if len(conds) == 1 else exp.Paren(this=exp.or_(*conds))


def date_literal(moment: datetime) -> exp.Expr:
    value = as_date_or_datetime(moment)
    if isinstance(value, datetime):
        text, kind = value.isoformat(sep=" "), exp.DataType.Type.TIMESTAMP
    else:
        text, kind = value.isoformat(), exp.DataType.Type.DATE
    return exp.Cast(this=exp.Literal.string(text), to=exp.DataType(this=kind))


def _span_condition(target: exp.Expr, span: Span) -> exp.Expr:
    return exp.and_(
        exp.GTE(this=target.copy(), expression=date_literal(span.start)),
        exp.LT(this=target.copy(), expression=date_literal(span.end)),
    )


def _date_condition(
    f: Filter, target: exp.Expr, now: datetime, dialect: str, calendar: Calendar
) -> exp.Expr:
    vals = [str(v) for v in f.values]
    left = f.left_side or (vals[0] if vals else None)
    right = f.right_side or (vals[1] if len(vals) > 1 else None)
    if f.kind in _PART_KINDS:
        part = grain_expression(target, _PART_KINDS[f.kind], dialect, calendar)
        values = [_date_part_value(f.kind, v, "filter", calendar) for v in f.values]
        return _in_or_eq(part, values)
    if f.kind == "BEFORE":
        edge = f.right_side or f.left_side or (vals[0] if vals else None)
        if edge is None:
            raise FilterError("a BEFORE date filter needs right_side or values")
        edge_span = parse_span(edge, now, calendar)
        return exp.LT(this=target.copy(), expression=date_literal(edge_span.start))
    if left is None:
        raise FilterError(f"a {f.kind} date filter needs left_side or values")
    start = parse_span(left, now, calendar)
    if f.kind == "ON_OR_AFTER":
        return exp.GTE(this=target.copy(), expression=date_literal(start.start))
    if f.kind == "TIME_FOR_UNIT_DURATION":
        return _span_condition(target, start)
    if right is None:
        raise FilterError(f"a {f.kind} date filter needs right_side (or two values)")
    if f.kind == "TIME_FOR_INTERVAL_DURATION":
        return _span_condition(target, interval_span(left, right, now, calendar))
    end = parse_span(right, now, calendar).start
    return _span_condition(target, Span(start.start, end))  # BETWEEN


def _date_part_value(kind: str, v: Any, where: str, calendar: Calendar = ISO) -> exp.Expr:
    """A day named is that day whatever the week start; a number counts as the field's
    ``day_of_week_num`` does, from the calendar's first day of the week."""
    text = str(v).strip().lower()
    names = {"IS_ON_DAY_OF_WEEK": _DAY_NAMES, "IS_IN_MONTH_OF_YEAR": _MONTH_NAMES}.get(kind)
    if names:
        for i, name in enumerate(names):
            if text in (name, name[:3]):
                days_in = i - calendar.week_start if kind == "IS_ON_DAY_OF_WEEK" else i
                return exp.Literal.number(days_in % len(names) + 1)
    if text.isdigit():
        try:
            return exp.Literal.number(int(text))
        except ValueError:  # a digit int() does not read ("²"), or thousands of them
            pass
    hint = did_you_mean(text, names or [])
    raise FilterError(f"{where}: {v!r} is not a valid value for {kind}.{hint}")
