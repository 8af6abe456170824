"""``column_totals`` of Omni's query JSON, read and checked (semantic layer, pure).

Which rows a key asks for (a grand total, subtotals by a dimension, one measure's total) is
decided when the query is compiled, once the fields are known to be dimensions or measures;
here the request's shape is checked and each key must name a field of the query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assay.errors import InvalidQuery, NotSupported, did_you_mean

if TYPE_CHECKING:
    from assay.semantic.query import FieldRef

GRAND_TOTAL = "::total::"
# Keys of the query object whose meaning together with totals Assay has not settled yet:
# accepted alone (once built), they would otherwise be combined with totals silently wrong.
_NOT_WITH_TOTALS = {
    "pivots": (
        "pivots: a totals row per pivot column (the rows re-aggregated within each column, "
        "numbered apart from the pivot rows) is not built yet"
    ),
    "calculations": (
        "table calculations: what a calculation shows on totals rows, and whether they count "
        "in its windows, is not settled"
    ),
    "fill_fields": (
        "fill fields: whether filled rows (NULL measures) make subtotal rows of their own is "
        "not settled"
    ),
}


@dataclass(frozen=True, slots=True)
class ColumnTotals:
    """What ``column_totals`` asks for: ``grand`` (``::total::``), and the fields keyed, in
    the order the query selects them."""

    grand: bool
    fields: tuple[FieldRef, ...]


def parse_column_totals(obj: Mapping[str, Any], fields: Sequence[FieldRef]) -> ColumnTotals | None:
    """``query.column_totals``, or None when absent or empty. Raises ``InvalidQuery`` naming
    a malformed entry or a key that is not a field of the query, ``NotSupported`` for a
    combination with a feature totals do not work with yet."""
    raw = obj.get("column_totals")
    if raw in (None, {}):
        return None
    if not isinstance(raw, Mapping):
        raise InvalidQuery(
            'query.column_totals: expected an object such as {"::total::": {"type": '
            f'"aggregation"}}}}, got {type(raw).__name__}'
        )
    for key, what in _NOT_WITH_TOTALS.items():
        if obj.get(key):
            raise NotSupported(
                f"query.column_totals together with query.{key}: totals with {what}; "
                "remove one of them"
            )
    if obj.get("offset"):
        raise NotSupported(
            "query.column_totals together with query.offset: totals of a page of rows are not "
            "supported yet; remove one of them"
        )
    grand = False
    keyed: set[str] = set()
    names = {_normal(f.text): f for f in fields}
    for key, value in raw.items():
        check_total_kind(key, value)
        if key == GRAND_TOTAL:
            grand = True
            continue
        ref = names.get(_normal(key)) if isinstance(key, str) else None
        if ref is None:
            hint = did_you_mean(str(key), [GRAND_TOTAL, *(f.text for f in fields)])
            raise InvalidQuery(
                f"query.column_totals: {key!r} is neither {GRAND_TOTAL!r} nor a field of the "
                f"query's fields.{hint}"
            )
        keyed.add(ref.text)
    return ColumnTotals(grand, tuple(f for f in fields if f.text in keyed))


def check_total_kind(key: Any, value: Any) -> None:
    """One ``column_totals`` entry's value: ``{"type": "aggregation"}``, the only kind of
    total there is (for semantic and raw SQL queries alike)."""
    if not isinstance(value, Mapping) or value.get("type") != "aggregation" or len(value) != 1:
        raise InvalidQuery(
            f'query.column_totals[{key!r}]: expected {{"type": "aggregation"}} (the only '
            f"kind of total), got {value!r}"
        )


def _normal(text: str) -> str:
    """Field names compare as the query's fields do: spaces around them do not count."""
    return "".join(text.split())
