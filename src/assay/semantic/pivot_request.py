"""The pivot keys of Omni's query object (``pivots``, ``column_limit``), read and checked.

Omni's planner drops what it does not understand; Assay refuses instead, so a pivot that
would be silently ignored is an error naming the key (semantic layer: no engines, no HTTP).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assay.errors import InvalidQuery, NotSupported, did_you_mean

#: A pivot value as a sort's ``pivot_value_map`` gives it.
PivotValue = str | int | float | bool | None
#: Omni's default number of pivot columns (spec section 1.3).
DEFAULT_COLUMN_LIMIT = 50
#: Features another part of the query object adds, not yet combined with pivots.
_NOT_WITH_PIVOTS = {
    "column_totals": "column totals (a totals row per pivot column)",
    "transposed_measures": "transposed measures",
    "period_over_period_computations": "period-over-period computations",
}


@dataclass(frozen=True, slots=True)
class PivotRequest:
    fields: tuple[str, ...] = ()
    column_limit: int = DEFAULT_COLUMN_LIMIT
    #: measures totalled across each pivot row's columns (``row_totals``)
    row_totals: tuple[str, ...] = ()


def parse_pivots(obj: Mapping[str, Any], fields: Sequence[str]) -> PivotRequest:
    """``pivots`` (field names, each also in ``fields``) and ``column_limit``.

    ``fields``: the query's field names as written; a pivot must repeat one exactly, since
    the result's columns are named by those strings.
    """
    raw = obj.get("pivots")
    limit = _column_limit(obj.get("column_limit"))
    if raw is None or raw == []:
        _no_column_sorts(obj.get("sorts"))
        if obj.get("row_totals"):
            raise InvalidQuery(
                "query.row_totals: row totals add up a pivot row's columns, and this query "
                "has no pivots; remove 'row_totals' or add 'pivots'"
            )
        return PivotRequest(column_limit=limit)
    if not isinstance(raw, list):
        raise InvalidQuery(
            f"query.pivots: expected a list of field names, got {type(raw).__name__}"
        )
    out: list[str] = []
    for i, name in enumerate(raw):
        if not isinstance(name, str):
            raise InvalidQuery(
                f"query.pivots[{i}]: expected a field name (a string such as "
                f'"orders.o_orderstatus"), got {type(name).__name__}'
            )
        if name not in fields:
            raise InvalidQuery(
                f'query.pivots[{i}]: "{name}" is not in query.fields; a pivot field must also '
                f"be one of the query's fields.{did_you_mean(name, fields)}"
            )
        if name not in out:
            out.append(name)
    for key, what in _NOT_WITH_PIVOTS.items():
        if obj.get(key):
            raise NotSupported(
                f"query.{key} with query.pivots: {what} of a pivoted query are not supported "
                f"yet; remove {key!r} or 'pivots'"
            )
    return PivotRequest(tuple(out), limit, _row_totals(obj.get("row_totals"), fields))


def _row_totals(raw: Any, fields: Sequence[str]) -> tuple[str, ...]:
    """``row_totals``: {measure: {"type": "aggregation"}}, the only total type Omni sends."""
    if raw is None or raw == {}:
        return ()
    if not isinstance(raw, Mapping):
        raise InvalidQuery(
            'query.row_totals: expected an object of measure -> {"type": "aggregation"}'
        )
    out: list[str] = []
    for name, how in raw.items():
        where = f"query.row_totals[{name!r}]"
        if name not in fields:
            raise InvalidQuery(
                f'{where}: "{name}" is not in query.fields; row totals are keyed by the '
                f"query's measures.{did_you_mean(name, fields)}"
            )
        if not isinstance(how, Mapping) or how.get("type") != "aggregation":
            raise NotSupported(
                f'{where}: only {{"type": "aggregation"}} totals are supported, got {how!r}'
            )
        out.append(name)
    return tuple(out)


def _no_column_sorts(sorts: Any) -> None:
    """Column sorts and pivot values name pivot columns: without pivots they would be
    dropped unseen."""
    for i, item in enumerate(sorts if isinstance(sorts, list) else []):
        if not isinstance(item, Mapping):
            continue
        for key in ("is_column_sort", "pivot_value_map"):
            if item.get(key):
                raise InvalidQuery(
                    f"query.sorts[{i}].{key}: it names pivot columns, and this query has no "
                    f"pivots; remove {key} or add 'pivots'"
                )


def _column_limit(raw: Any) -> int:
    if raw is None:
        return DEFAULT_COLUMN_LIMIT
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise InvalidQuery(f"query.column_limit: expected a positive integer, got {raw!r}")
    return raw


def sort_pivot_keys(
    item: Mapping[str, Any], i: int
) -> tuple[bool, tuple[tuple[str, PivotValue], ...]]:
    """Whether a sort orders pivot columns (``is_column_sort``), and the pivot value a sort
    on a pivoted measure reads (``pivot_value_map``: pivot field -> value)."""
    column_sort = item.get("is_column_sort")
    if column_sort is not None and not isinstance(column_sort, bool):
        raise InvalidQuery(
            f"query.sorts[{i}].is_column_sort: expected true or false, got {column_sort!r}"
        )
    raw = item.get("pivot_value_map")
    if raw is None or raw == {}:
        return bool(column_sort), ()
    where = f"query.sorts[{i}].pivot_value_map"
    if not isinstance(raw, Mapping):
        raise InvalidQuery(f"{where}: expected an object of pivot field -> value")
    for name, value in raw.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidQuery(f"{where}[{name!r}]: expected a value, got {value!r}")
    return bool(column_sort), tuple(raw.items())
