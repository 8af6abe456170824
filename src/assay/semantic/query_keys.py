"""The remaining keys of Omni's query object, read and checked: ``transposed_measures``,
``default_group_by``, ``join_via_map``, ``controls`` and ``custom_summary_types``.

Omni's planner drops what it does not understand; Assay reads each of these keys or refuses
it by name, so a key that would change the answer is never silently ignored (semantic layer:
no engines, no HTTP). What a key means against a model is checked when compiling.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assay.errors import InvalidQuery, NotSupported, did_you_mean
from assay.semantic.filters import Filter, FilterError, parse_json_filter

if TYPE_CHECKING:
    from assay.semantic.query import FieldRef

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: the control type an API caller needs (cross-field OR, spec 6); the others are dashboard
#: controls whose effect is already in ``fields`` and ``filters`` when a query is copied
MULTI_FIELD_FILTER = "MULTI_FIELD_FILTER"
#: features not yet combined with ``transposed_measures`` (``pivots``: see pivot_request)
_NOT_WITH_TRANSPOSED = {
    "column_totals": "column totals",
    "calculations": "table calculations",
    "fill_fields": "fill fields",
}

#: one OR-group of a MULTI_FIELD_FILTER control: (field, filter) pairs, any of which holds
FilterGroup = tuple[tuple["FieldRef", Filter], ...]


@dataclass(frozen=True, slots=True)
class QueryKeys:
    #: measures (names as in ``fields``) turned into rows of measure_name/order/value
    transposed_measures: tuple[str, ...] = ()
    #: False: a query without measures is not grouped (duplicate rows stay)
    default_group_by: bool = True
    #: (view, the views between the base view and it), in request order
    join_via_map: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: MULTI_FIELD_FILTER controls: each group is ORed within, ANDed with everything else
    filter_groups: tuple[FilterGroup, ...] = ()


def parse_query_keys(
    obj: Mapping[str, Any], fields: Sequence[str], read_field: Callable[[Any], FieldRef]
) -> QueryKeys:
    """Read the keys; ``fields``: the query's field names as written; ``read_field``: how a
    field name is parsed (``query.parse_field``; passed in, since that module imports this)."""
    _custom_summary_types(obj.get("custom_summary_types"))
    return QueryKeys(
        transposed_measures=_transposed(obj, fields),
        default_group_by=_default_group_by(obj.get("default_group_by")),
        join_via_map=_join_via_map(obj.get("join_via_map")),
        filter_groups=_controls(obj.get("controls"), read_field),
    )


def _transposed(obj: Mapping[str, Any], fields: Sequence[str]) -> tuple[str, ...]:
    raw = obj.get("transposed_measures")
    if raw is None or raw == []:
        return ()
    if not isinstance(raw, list) or not all(isinstance(m, str) for m in raw):
        raise InvalidQuery(
            "query.transposed_measures: expected a list of measure names from fields "
            f'(such as ["orders.count"]), got {raw!r}'
        )
    for name in raw:
        if name not in fields:
            raise InvalidQuery(
                f"query.transposed_measures: {name!r} is not in query.fields; a transposed "
                "measure must be one of the query's measures." + did_you_mean(name, fields)
            )
    if len(set(raw)) < len(raw):
        twice = next(m for m in raw if raw.count(m) > 1)
        raise InvalidQuery(f"query.transposed_measures: {twice!r} is listed twice")
    for key, what in _NOT_WITH_TRANSPOSED.items():
        if obj.get(key):
            raise NotSupported(
                f"query.transposed_measures: {what} together with transposed measures are not "
                f"supported yet; remove {key!r} or 'transposed_measures'"
            )
    return tuple(raw)


def _default_group_by(raw: Any) -> bool:
    if raw is None:
        return True
    if not isinstance(raw, bool):
        raise InvalidQuery(f"query.default_group_by: expected true or false, got {raw!r}")
    return raw


def _join_via_map(raw: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if raw is None or raw == {}:
        return ()
    shape = ('expected an object mapping a view to the views it is joined through, such as '
             '{"customer": ["orders"]}')  # fmt: skip
    if not isinstance(raw, Mapping):
        raise InvalidQuery(f"query.join_via_map: {shape}, got {raw!r}")
    out: list[tuple[str, tuple[str, ...]]] = []
    for view, path in raw.items():
        names = path if isinstance(path, list) else None
        if (
            not _NAME.match(str(view))
            or names is None
            or not all(isinstance(v, str) and _NAME.match(v) for v in names)
        ):
            raise InvalidQuery(f"query.join_via_map[{view!r}]: {shape}, got {path!r}")
        out.append((str(view), tuple(names)))
    return tuple(out)


def _controls(raw: Any, read_field: Callable[[Any], FieldRef]) -> tuple[FilterGroup, ...]:
    if raw is None or raw == []:
        return ()
    if not isinstance(raw, list):
        raise InvalidQuery(f"query.controls: expected a list of controls, got {raw!r}")
    groups: list[FilterGroup] = []
    for i, control in enumerate(raw):
        where = f"query.controls[{i}]"
        if not isinstance(control, Mapping):
            raise InvalidQuery(f"{where}: expected a control object, got {control!r}")
        kind = control.get("type")
        if kind != MULTI_FIELD_FILTER:
            raise NotSupported(
                f"{where}: controls of type {kind!r} are not supported; only "
                f"{MULTI_FIELD_FILTER} (an OR of filters on several fields) is. Apply the "
                "control's choice to fields and filters, or remove it"
            )
        groups += _multi_field_filter(control, where, read_field)
    return tuple(groups)


def _multi_field_filter(
    control: Mapping[str, Any], where: str, read_field: Callable[[Any], FieldRef]
) -> list[FilterGroup]:
    """OR: one group of all its filters. AND: each filter is its own group (ANDed, as the
    query's ``filters`` are). Filters that filter nothing (an empty composite, a boolean with
    no value) are left out, as an unset control is: such a member never widens the OR to
    every row."""
    conjunction = control.get("conjunction")
    if conjunction not in ("OR", "AND"):
        raise InvalidQuery(f'{where}.conjunction: expected "OR" or "AND", got {conjunction!r}')
    members = control.get("filters")
    if not isinstance(members, list) or not members:
        raise InvalidQuery(f"{where}.filters: expected a non-empty list of "
                           '{"fieldName": ..., "filter": {typed filter}}')  # fmt: skip
    pairs: list[tuple[FieldRef, Filter]] = []
    for j, member in enumerate(members):
        at = f"{where}.filters[{j}]"
        if not isinstance(member, Mapping) or not isinstance(member.get("fieldName"), str):
            raise InvalidQuery(f'{at}: expected {{"fieldName": ..., "filter": {{...}}}}')
        ref = read_field(member["fieldName"])
        try:
            parsed = parse_json_filter(member.get("filter"), where=f"{at}.filter")
        except FilterError as exc:
            raise InvalidQuery(str(exc)) from exc
        if parsed is not None and not parsed.is_noop:
            pairs.append((ref, parsed))
    if not pairs:
        return []
    if conjunction == "AND":
        return [(pair,) for pair in pairs]
    return [tuple(pairs)]


def _custom_summary_types(raw: Any) -> None:
    if raw is None or raw == {}:
        return
    if not isinstance(raw, Mapping):
        raise InvalidQuery(f"query.custom_summary_types: expected an object, got {raw!r}")
    raise NotSupported(
        "query.custom_summary_types: custom summary types are not supported (the shape of "
        "their values is not documented, so Assay does not guess it); send {} or remove "
        "'custom_summary_types'"
    )
