"""Level of detail dimensions: one inner aggregate per dimension, joined back to each row.

A dimension ``lifetime_orders`` of ``orders`` (``sql: ${o_orderkey}``, ``level_of_detail:
{aggregate_type: count, fixed: [orders.o_custkey]}``) reads ``"_lod_orders_lifetime_orders"."v"``;
every FROM of the query (``build.from_and_joins``) then carries::

    LEFT JOIN (SELECT <o_custkey> AS k0, COUNT(<o_orderkey>) AS v FROM <joins> WHERE <inner>
               GROUP BY 1) AS "_lod_orders_lifetime_orders"
      ON <o_custkey> IS NOT DISTINCT FROM "_lod_orders_lifetime_orders".k0

so the value is a row-level column: it can be grouped by, filtered, sorted and aggregated
(``SUM(${lifetime_orders})``) like any dimension. The inner aggregate has one row per grain
value, so the join repeats no row. Decisions:

- The inner aggregate reads the query's own rows: the same joins, and the query's filters
  (Omni's default; ``cancel_query_filters: true`` keeps them out) except the filters on level
  of detail dimensions, which are the outer question (by customers with more than 10 orders:
  each customer's count is over all their orders, then the customers are filtered).
- The model's row rules (access filters, ``always_where_sql``, ``where_sql``, the topic's
  ``always_where_filters``) bound to the user always apply inside, so a user an access filter
  holds gets aggregates over their rows only. A rule that tests a level of detail dimension
  would be a rule about its own input: refused by name.
- Exact under fan-out: when the query's joins repeat the dimension's view, the inner
  aggregate is taken over rows de-duplicated on the view's primary key (as any measure).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from sqlglot import exp

from assay.errors import NotSupported
from assay.semantic.compiler.build import (
    BuildInput,
    _id,
    _paren,
    dimension_value,
)
from assay.semantic.compiler.grouped import deduplicated_group, direct_group
from assay.semantic.compiler.lod import _rules_only
from assay.semantic.compiler.resolve import Selected, base_measures, check_fanout, rule_measures
from assay.semantic.filters import filter_condition
from assay.semantic.model import Dimension, Measure
from assay.semantic.query import FieldRef


def with_lod_joins(inp: BuildInput) -> BuildInput:
    """``inp`` with the joins of the level of detail dimensions its trees read."""
    lods = inp.model.lod_dimensions
    if not lods:
        return inp
    used: dict[str, Dimension] = {}
    for tree in _trees(inp):
        for col in tree.find_all(exp.Column):
            d = lods.get(col.table)
            if d is not None:
                used.setdefault(col.table, d)
    if not used:
        return inp
    plain = replace(inp, lod_joins=())
    return replace(inp, lod_joins=tuple(_join(plain, d) for d in used.values()))


def _trees(inp: BuildInput) -> Iterator[exp.Expr]:
    """Every row-level tree of the query: its dimensions, filters, sorts and the inputs of
    its measures (with their filters and levels of detail)."""
    res = inp.res
    sels = [s for s in res.selected if s.dimension is not None]
    sels += [s for s, _ in res.where]
    sels += [s for group in res.where_any for s, _ in group]
    sels += list(res.sort_keys.values())
    yield from (s.expr for s in sels if s.expr is not None)
    yield from res.rule_where
    measures: list[Measure] = []
    for s in [*res.selected, *(s for s, _ in res.having)]:
        if s.measure is not None:
            measures += base_measures(inp.model, s.measure)
    measures += rule_measures(inp.model, res.rule_having)
    for m in measures:
        yield from _measure_trees(m)


def _measure_trees(m: Measure) -> Iterator[exp.Expr]:
    for tree in (m.input, m.custom, m.distinct_key):
        if tree is not None:
            yield tree
    yield from (f.target for f in m.filters)
    if m.lod is not None:
        yield from _measure_trees(m.lod.inner)
        yield from (d.expr for d in m.lod.fields)


def _join(inp: BuildInput, d: Dimension) -> exp.Join:
    """The LEFT JOIN of ``d``'s inner aggregate, keyed on its fixed fields (none: the one
    grand value, cross joined)."""
    lod = d.lod
    assert lod is not None
    topic = inp.res.scope.topic
    grain = [
        Selected(
            FieldRef(f.key, f.view, f.name, None),
            dimension=f,
            expr=f.expr,
            calendar=inp.model.calendar_of(f, topic),
        )
        for f in lod.fields
    ]
    keys = [f"k{i}" for i in range(len(grain))]
    where = _rules_only(inp) if lod.cancel_query_filters else _inner_where(inp)
    _check_rules(inp, d)
    column = {lod.inner.key: "v"}
    view = lod.inner.view
    if view in inp.multiplied:
        check_fanout(inp.model, [lod.inner], inp.multiplied)
        inner = deduplicated_group(inp, view, grain, keys, [lod.inner], column, where)
    else:
        inner = direct_group(inp, grain, keys, [lod.inner], column, where)
    alias = exp.TableAlias(this=_id(lod.alias))
    join = exp.Join(this=exp.Subquery(this=inner, alias=alias))
    if not keys:
        join.set("kind", "CROSS")
        return join
    on = [
        exp.NullSafeEQ(
            this=dimension_value(inp, sel),
            expression=exp.Column(this=_id(k), table=_id(lod.alias)),
        )
        for sel, k in zip(grain, keys, strict=True)
    ]
    join.set("side", "LEFT")
    join.set("on", exp.and_(*on))
    return join


def _reads_lod(inp: BuildInput, tree: exp.Expr | None) -> bool:
    lods = inp.model.lod_dimensions
    return tree is not None and any(c.table in lods for c in tree.find_all(exp.Column))


def _inner_where(inp: BuildInput) -> exp.Expr | None:
    """The query's WHERE without its filters on level of detail dimensions (those filter the
    rows the values are joined to, not the rows they aggregate)."""
    res = inp.res
    conds: list[exp.Expr] = [
        filter_condition(
            f, dimension_value(inp, sel), now=inp.now, dialect=inp.dialect, calendar=sel.calendar
        )
        for sel, f in res.where
        if not _reads_lod(inp, sel.expr)
    ]
    for group in res.where_any:
        if any(_reads_lod(inp, sel.expr) for sel, _ in group):
            continue
        any_of = [filter_condition(f, dimension_value(inp, sel), now=inp.now,
                                   dialect=inp.dialect, calendar=sel.calendar)
                  for sel, f in group]  # fmt: skip
        conds.append(exp.Paren(this=exp.or_(*any_of)))
    conds += [_paren(c.copy()) for c in res.rule_where]
    return exp.and_(*conds) if conds else None


def _check_rules(inp: BuildInput, d: Dimension) -> None:
    """A row rule (access filter, ``always_where_*``) on a level of detail dimension would
    restrict the rows that compute it by its own value: refused rather than guessed."""
    res = inp.res
    rules = [sel.expr for sel, _ in res.rule_filters] + list(res.rule_where)
    if any(_reads_lod(inp, tree) for tree in rules):
        raise NotSupported(
            f"Assay does not support a row rule (access filter or always_where) on a "
            f"level_of_detail dimension yet ({d.key} is in this query)"
        )
