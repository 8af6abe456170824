"""Fill fields: the grouped query, joined onto every value of the filled dimensions.

The governed, grouped query is built as always, then wrapped::

    WITH base AS (<grouped query>),
         frame AS (SELECT <dims> FROM base
                   UNION
                   SELECT o.<others>, v.<filled> FROM (SELECT DISTINCT <others> FROM base) o
                   CROSS JOIN (VALUES <domain>) v)
    SELECT * FROM (SELECT frame.<dims>, base.<measures> FROM frame LEFT JOIN base ON ...)
    ORDER BY ... LIMIT ...

so every combination of the other dimensions the user's own rows have gets every value of the
domain (Looker's fill), and values the data has outside the domain (NULL dates, a value
``all_values`` forgot) are kept, never dropped. The data's rows come first in the UNION so its
column types lead (a DATE bucket literal joins a TIMESTAMP bucket), and the sort and limit
move to the outside: they apply to the filled rows, and so do table calculations, which
wrap this query as any other (a running total sees the filled rows, their measures NULL).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlglot import exp

from assay.errors import InvalidQuery, NotSupported
from assay.semantic.access import offered_values
from assay.semantic.compiler.resolve import Resolution, Selected
from assay.semantic.fill_fields import (
    DATE_GRAINS,
    FIXED_GRAINS,
    Bounds,
    date_buckets,
    date_literals,
    filter_bounds,
    value_literal,
)
from assay.semantic.model import SemanticModel
from assay.semantic.viewer import Viewer

#: Most combinations several filled fields may make together (each alone: MAX_BUCKETS).
MAX_COMBINATIONS = 100_000
_BASE = "$omni_fill_base"
_FRAME = "$omni_fill_frame"
_OTHERS = "$omni_fill_others"
_OUTER = "$omni_fill"
_VALUE = "$omni_fill_value"


@dataclass(frozen=True, slots=True)
class Filled:
    """The wrapped tree, and why a requested fill was not made (for the summary)."""

    tree: exp.Select
    warnings: tuple[str, ...]


def fill(
    tree: exp.Select,
    res: Resolution,
    names: Sequence[str],
    *,
    model: SemanticModel,
    now: datetime,
    viewer: Viewer | None,
) -> Filled:
    """``tree`` (the built query, with its ORDER BY and LIMIT) with ``names`` filled."""
    selected = {s.alias: s for s in res.selected}
    warnings: list[str] = []
    domains: dict[str, list[exp.Expr]] = {}
    for name in names:
        sel = selected.get(name)
        if sel is None:  # an invalid grain: the field is in missing_fields, not the result
            warnings.append(f"fill_fields: {name!r} was not filled: it is not in the result")
            continue
        values = _domain(model, sel, res, now, viewer)
        if values is None:
            warnings.append(
                f"fill_fields: {name!r} was not filled: a date series is filled only between "
                "the bounds of a date filter on the same field, and this query's filters "
                "leave it unbounded"
            )
            continue
        if values:  # an empty range or no value offered: nothing to add
            domains[name] = values
    if not domains:
        return Filled(tree, tuple(warnings))
    combinations = math.prod(len(v) for v in domains.values())
    if combinations > MAX_COMBINATIONS:
        sizes = " x ".join(f"{len(v):,}" for v in domains.values())
        raise InvalidQuery(
            f"query.fill_fields: filling {', '.join(map(repr, domains))} together makes "
            f"{sizes} = {combinations:,} value combinations for each combination of the other "
            f"fields, more than {MAX_COMBINATIONS:,}; fill fewer fields or narrow the date filters"
        )
    return Filled(_wrap(tree, res, domains), tuple(warnings))


def _domain(
    model: SemanticModel, sel: Selected, res: Resolution, now: datetime, viewer: Viewer | None
) -> list[exp.Expr] | None:
    """The values ``sel`` is filled with; None when a date grain has no bounding filter."""
    name = sel.alias
    d = sel.dimension
    if d is None:
        raise InvalidQuery(
            f"query.fill_fields: {name!r} is a measure; only dimensions can be filled"
        )
    if sel.masked:
        raise NotSupported(
            f"query.fill_fields: {name!r} is masked for you; a masked field cannot be filled"
        )
    grain = sel.ref.grain
    if grain in DATE_GRAINS and d.durations is None:
        bounds, on_buckets = _bounds(sel, res, now)
        if bounds.start is None or bounds.end is None:
            return None
        buckets = date_buckets(name, grain, bounds, sel.calendar, on_buckets=on_buckets)
        return date_literals(buckets, grain)
    if grain in FIXED_GRAINS:
        return [value_literal(v, name) for v in FIXED_GRAINS[grain]]
    if grain not in (None, "raw"):
        raise NotSupported(
            f"query.fill_fields: {name!r} cannot be filled: the grain {grain!r} has no fixed "
            f"set of values Assay fills (date grains {', '.join(DATE_GRAINS)} with a bounding "
            f"date filter, and {', '.join(FIXED_GRAINS)}); remove it from fill_fields"
        )
    if d.all_values is not None:
        return [value_literal(v, name) for v in _offered(model, sel, res, viewer, d.all_values)]
    if (d.data_type or "").upper() == "BOOLEAN":
        return [exp.Boolean(this=True), exp.Boolean(this=False)]
    raise NotSupported(
        f"query.fill_fields: {name!r} cannot be filled: it has no known set of values (fill "
        "works for date grains, day/month/quarter/hour grains, booleans and dimensions with "
        "all_values in the model); declare all_values or remove it from fill_fields"
    )


def _bounds(sel: Selected, res: Resolution, now: datetime) -> tuple[Bounds, bool]:
    """The range the query's date filters on ``sel``'s field leave, and whether it bounds the
    buckets themselves (a filter on the same grain) rather than the raw dates."""
    raw, buckets = Bounds(), Bounds()
    for target, f in res.where:
        if target.ref.key != sel.ref.key:
            continue
        if target.ref.grain in (None, "raw"):
            raw = raw.meet(filter_bounds(f, now, target.calendar))
        elif target.ref.grain == sel.ref.grain:
            buckets = buckets.meet(filter_bounds(f, now, target.calendar))
    if buckets.start is not None and buckets.end is not None:
        return buckets, True
    return raw, False


def _offered(
    model: SemanticModel,
    sel: Selected,
    res: Resolution,
    viewer: Viewer | None,
    values: tuple[object, ...],
) -> tuple[object, ...]:
    """``all_values`` this user may see: a topic's access filter on the field keeps only the
    values their rows could have, so a fill never shows them one they may not see."""
    topic = res.scope.topic
    if topic is None:
        return values
    return offered_values(model, topic, viewer, sel.ref.key, values)


def _id(name: str) -> exp.Identifier:
    return exp.Identifier(this=name, quoted=True)


def _col(name: str, table: str) -> exp.Column:
    return exp.Column(this=_id(name), table=_id(table))


def _table(name: str, alias: str | None = None) -> exp.Table:
    table = exp.Table(this=_id(name))
    if alias is not None:
        table.set("alias", exp.TableAlias(this=_id(alias)))
    return table


def _wrap(tree: exp.Select, res: Resolution, domains: dict[str, list[exp.Expr]]) -> exp.Select:
    aliases = [s.alias for s in res.selected]
    dims = [s.alias for s in res.selected if s.dimension is not None]
    others = [a for a in dims if a not in domains]
    order, limit, offset = tree.args.get("order"), tree.args.get("limit"), tree.args.get("offset")
    for ordered in order.expressions if order is not None else []:
        target = ordered.this
        if not (isinstance(target, exp.Column) and not target.table and target.name in aliases):
            raise NotSupported(
                "query.fill_fields: the query sorts by a field's order_by_field, which filled "
                "rows do not have; sort by the query's own fields or remove fill_fields"
            )
    inner_with = tree.args.get("with_")
    for key in ("order", "limit", "offset", "with_"):
        tree.set(key, None)
    ctes: list[exp.CTE] = list(inner_with.expressions) if inner_with is not None else []
    ctes.append(_cte(_BASE, tree))
    ctes.append(_cte(_FRAME, _frame(dims, others, domains)))
    on = [exp.NullSafeEQ(this=_col(a, _FRAME), expression=_col(a, _BASE)) for a in dims]
    joined = exp.Select(
        expressions=[
            exp.Alias(this=_col(a, _FRAME if a in dims else _BASE), alias=_id(a)) for a in aliases
        ]
    )
    joined.set("from_", exp.From(this=_table(_FRAME)))
    joined.append("joins", exp.Join(this=_table(_BASE), side="LEFT", on=exp.and_(*on)))
    # Columns by name, not ``*``: table calculations number these rows with a further
    # column, and MySQL allows none beside a bare ``*``.
    outer = exp.Select(expressions=[exp.Alias(this=_col(a, _OUTER), alias=_id(a)) for a in aliases])
    outer.set("with_", exp.With(expressions=ctes))
    outer.set("from_", exp.From(this=joined.subquery(_id(_OUTER))))
    outer.set("order", order)
    outer.set("limit", limit)
    outer.set("offset", offset)
    return outer


def _cte(name: str, body: exp.Expr) -> exp.CTE:
    return exp.CTE(this=body, alias=exp.TableAlias(this=_id(name)))


def _frame(dims: list[str], others: list[str], domains: dict[str, list[exp.Expr]]) -> exp.Expr:
    """Every row to show: the data's own dimension values, and each existing combination of
    the other dimensions with every value of the filled ones."""
    data = exp.Select(expressions=[_col(a, _BASE) for a in dims])
    data.set("from_", exp.From(this=_table(_BASE)))
    filled = exp.Select()
    sources: list[exp.Expr] = []
    if others:
        existing = exp.Select(expressions=[_col(a, _BASE) for a in others], distinct=exp.Distinct())
        existing.set("from_", exp.From(this=_table(_BASE)))
        sources.append(existing.subquery(_id(_OTHERS)))
    for i, (name, values) in enumerate(domains.items()):
        table = f"{_VALUE}_{i}"
        rows = [exp.Tuple(expressions=[v]) for v in values]
        alias = exp.TableAlias(this=_id(table), columns=[_id(name)])
        sources.append(exp.Values(expressions=rows, alias=alias))
    for a in dims:
        filled.append("expressions", _col(a, _OTHERS if a in others else _source(a, domains)))
    filled.set("from_", exp.From(this=sources[0]))
    for source in sources[1:]:
        filled.append("joins", exp.Join(this=source, kind="CROSS"))
    return exp.union(data, filled, distinct=True)


def _source(name: str, domains: dict[str, list[exp.Expr]]) -> str:
    return f"{_VALUE}_{list(domains).index(name)}"
