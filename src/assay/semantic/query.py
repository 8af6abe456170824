"""The semantic query: Omni's query JSON (``query`` in ``/query/run``), read and checked.

Unknown keys are ignored, as Omni's server does. Features Assay does not implement yet
(period over period ...) are refused by name, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from assay.errors import InvalidQuery, NotSupported
from assay.semantic.calculations import Calculation, parse_calculations
from assay.semantic.column_totals import ColumnTotals, parse_column_totals
from assay.semantic.fill_fields import parse_fill_fields
from assay.semantic.filters import Filter, FilterError, parse_json_filter
from assay.semantic.pivot_request import (
    DEFAULT_COLUMN_LIMIT,
    PivotValue,
    parse_pivots,
    sort_pivot_keys,
)
from assay.semantic.query_keys import QueryKeys, parse_query_keys
from assay.semantic.sql_mode import sql_mode

FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)(?:\[([^\]]*)\])?$")
NullSort = Literal["FIRST", "LAST", "DIALECT_DEFAULT", "OMNI_DEFAULT"]
_UNSUPPORTED = {
    "staticQueryReferences": "static query references",
    "period_over_period_computations": "period-over-period computations",
}
#: keys OmniSQL does not combine with yet: refused by name rather than dropped (its
#: ``limit`` is ignored, as Omni does: the SQL's own LIMIT bounds it)
_NOT_WITH_SQL = ("filters", "sorts", "offset", "pivots", "calculations", "column_totals",
                 "row_totals", "fill_fields", "controls", "staticQueryReferences",
                 "period_over_period_computations", "transposed_measures", "join_via_map",
                 "custom_summary_types")  # fmt: skip


@dataclass(frozen=True, slots=True)
class FieldRef:
    """``view.field[grain]`` as written in a query."""

    text: str
    view: str
    name: str
    grain: str | None

    @property
    def key(self) -> str:
        return f"{self.view}.{self.name}"


def parse_field(text: Any) -> FieldRef:
    if not isinstance(text, str) or not (m := FIELD.match(text.strip())):
        raise InvalidQuery(
            f"Invalid field name {text!r}: fields are written view.field or view.field[grain]"
        )
    grain = m.group(3)
    return FieldRef(text, m.group(1), m.group(2), grain.strip().lower() if grain else None)


@dataclass(frozen=True, slots=True)
class Sort:
    field: str
    descending: bool = False
    null_sort: NullSort = "OMNI_DEFAULT"
    column_sort: bool = False  # orders pivot columns (is_column_sort)
    #: a measure sorted by its value at one pivot value (pivot_value_map): (field, value) pairs
    pivot_values: tuple[tuple[str, PivotValue], ...] = ()


@dataclass(frozen=True, slots=True)
class SemanticQuery:
    fields: tuple[FieldRef, ...]
    model_id: str | None = None
    table: str | None = None
    topic: str | None = None
    filters: tuple[tuple[FieldRef, Filter], ...] = ()
    sorts: tuple[Sort, ...] = ()
    limit: int | None = None
    limit_given: bool = False
    offset: int = 0
    #: ``fill_fields``: names exactly as in ``fields`` (see ``semantic.fill_fields``)
    fill_fields: tuple[str, ...] = ()
    #: OmniSQL (``userEditedSQL`` to parse against the model); its SQL says what it selects
    sql: str | None = None
    #: table calculations, and the result's columns in order as ``fields`` lists them (field
    #: texts and calc names), which places each calculation's column
    calculations: tuple[Calculation, ...] = ()
    columns: tuple[str, ...] = ()
    column_totals: ColumnTotals | None = None
    pivots: tuple[str, ...] = ()
    column_limit: int = DEFAULT_COLUMN_LIMIT
    row_totals: tuple[str, ...] = ()
    #: transposed_measures, default_group_by, join_via_map, controls (``query_keys``)
    keys: QueryKeys = field(default_factory=QueryKeys)


def parse_query(obj: Any) -> SemanticQuery:
    """Read a query object; ``InvalidQuery`` names the offending key, ``NotSupported`` the
    feature."""
    if not isinstance(obj, Mapping):
        raise InvalidQuery(f"query must be a JSON object, not {type(obj).__name__}")
    sql = _parse_sql(obj)
    if sql is not None:
        return sql
    for key, what in _UNSUPPORTED.items():
        if obj.get(key):
            raise NotSupported(f"query.{key}: {what} are not supported yet; remove {key!r}")
    raw_fields = obj.get("fields")
    if not isinstance(raw_fields, list) or not all(isinstance(f, str) for f in raw_fields):
        raise InvalidQuery("query.fields: expected a list of field names")
    calculations = parse_calculations(obj)
    calc_names = {c.name for c in calculations}
    fields: list[FieldRef] = []
    for text in raw_fields:
        if text in calc_names:
            continue
        ref = parse_field(text)
        if ref.text not in {f.text for f in fields}:
            fields.append(ref)
    table = _opt_name(obj, "table")
    topic = _opt_name(obj, "join_paths_from_topic_name")
    filters = _parse_filters(obj.get("filters"))
    sorts = _parse_sorts(obj.get("sorts"))
    limit_given = "limit" in obj
    limit = obj.get("limit", None)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        # ASCII digits, and few: int() refuses "²" (a digit to isdigit) and 5000 digits.
        digits = isinstance(limit, str) and limit.isascii() and limit.isdigit()
        if digits and len(limit) < 19 and int(limit) > 0:
            limit = int(limit)
        else:
            raise InvalidQuery(f"query.limit: expected a positive integer or null, got {limit!r}")
    offset = obj.get("offset") or 0
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidQuery(f"query.offset: expected a non-negative integer, got {offset!r}")
    model_id = obj.get("modelId")
    pivots = parse_pivots(obj, [f.text for f in fields])
    return SemanticQuery(
        fields=tuple(fields),
        model_id=str(model_id) if model_id else None,
        table=table,
        topic=topic,
        filters=filters,
        sorts=sorts,
        limit=limit,
        limit_given=limit_given,
        offset=offset,
        fill_fields=parse_fill_fields(obj, [f.text for f in fields]),
        calculations=calculations,
        columns=tuple(dict.fromkeys(raw_fields)) if calculations else (),
        column_totals=parse_column_totals(obj, fields),
        pivots=pivots.fields,
        column_limit=pivots.column_limit,
        row_totals=pivots.row_totals,
        keys=parse_query_keys(obj, [f.text for f in fields], parse_field),
    )


def _parse_sql(obj: Mapping[str, Any]) -> SemanticQuery | None:
    """An OmniSQL query, or None for a semantic one. ``fields`` and ``table`` are ignored, as
    Omni does: the SQL says what is selected and from where."""
    text = obj.get("userEditedSQL")
    if text not in (None, "") and not isinstance(text, str):
        raise InvalidQuery(f"query.userEditedSQL: expected SQL text, got {text!r}")
    mode = sql_mode(obj)
    if mode == "semantic":
        return None
    if mode == "raw":  # the job runner sends it past the compiler (semantic.raw_sql)
        raise NotSupported(
            "query.userEditedSQL: raw SQL (rewriteSql: false) runs only as a query job "
            "(POST /api/v1/query/run), not through the semantic compiler"
        )
    for key in _NOT_WITH_SQL:
        if obj.get(key):
            raise NotSupported(
                f"query.{key} is not supported with userEditedSQL (OmniSQL) yet: write it in "
                f"the SQL (WHERE, ORDER BY ...) or remove {key!r}"
            )
    model_id = obj.get("modelId")
    return SemanticQuery(fields=(), model_id=str(model_id) if model_id else None, sql=str(text))


def _opt_name(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InvalidQuery(f"query.{key}: expected a name, got {value!r}")
    return value


def _parse_filters(raw: Any) -> tuple[tuple[FieldRef, Filter], ...]:
    if raw in (None, {}):
        return ()
    if not isinstance(raw, Mapping):
        raise InvalidQuery("query.filters: expected an object mapping field names to filters")
    out: list[tuple[FieldRef, Filter]] = []
    for key, value in raw.items():
        ref = parse_field(key)
        try:
            parsed = parse_json_filter(value, where=f"query.filters[{key!r}]")
        except FilterError as exc:
            raise InvalidQuery(str(exc)) from exc
        if parsed is not None and not parsed.is_noop:
            out.append((ref, parsed))
    return tuple(out)


def _parse_sorts(raw: Any) -> tuple[Sort, ...]:
    if raw in (None, []):
        return ()
    if not isinstance(raw, list):
        raise InvalidQuery("query.sorts: expected a list of {column_name, sort_descending}")
    out: list[Sort] = []
    for i, item in enumerate(raw):
        column, descending, null_sort = read_sort(item, i)
        column_sort, at = sort_pivot_keys(item, i)
        out.append(Sort(column, descending, null_sort, column_sort, at))
    return tuple(out)


def read_sort(item: Any, i: int) -> tuple[str, bool, NullSort]:
    """``sorts[i]``'s column, direction and NULL placement (shared with raw SQL's sorts)."""
    if not isinstance(item, Mapping) or not isinstance(item.get("column_name"), str):
        raise InvalidQuery(f"query.sorts[{i}]: expected {{column_name, sort_descending}}")
    null_sort = str(item.get("null_sort") or "OMNI_DEFAULT").upper()
    if null_sort not in ("FIRST", "LAST", "DIALECT_DEFAULT", "OMNI_DEFAULT"):
        raise InvalidQuery(
            f"query.sorts[{i}].null_sort: expected FIRST, LAST, DIALECT_DEFAULT or "
            f"OMNI_DEFAULT, got {null_sort!r}"
        )
    return item["column_name"], bool(item.get("sort_descending")), null_sort  # type: ignore[return-value]
