"""Level of detail measures: an aggregate of an aggregate, as one group of the fan-out plan.

A measure ``avg_lifetime_revenue`` (``aggregate_type: average``, ``level_of_detail:
{aggregate_type: sum, fixed: [customer.c_custkey]}``) by ``nation.n_name`` compiles to::

    SELECT p.d0, AVG(l.v) AS m0
    FROM (SELECT DISTINCT <n_name> AS d0, <c_custkey> AS k0 FROM <joins> WHERE <filters>) AS p
    JOIN (SELECT <c_custkey> AS k0, SUM(<o_totalprice>) AS v FROM <joins> WHERE <filters>
          GROUP BY 1) AS l ON p.k0 IS NOT DISTINCT FROM l.k0
    GROUP BY 1

``l`` is the inner aggregate, one row per value of the grain (none: one row, cross joined);
``p`` the query's groups paired with the grain values their rows hold, so each grain value
counts once in each group it appears in (Omni's intermediate ``GROUP BY (query dims,
$lod_grain_key)``). The grain is the ``fixed`` fields, or known per query: the query's
dimensions with the ``always_include`` fields (each inner row then lies in one group), or
without the ``always_exclude`` ones (a coarser value repeated in each group it covers; an
excluded field the query does not group by changes nothing; every timeframe of it leaves).
Decisions:

- Both read the query's own rows: the same joins, the query's filters and the model's row
  rules (access filters, ``always_where_sql``, ``where_sql``, the topic's
  ``always_where_filters``) bound to the user, so a user an access filter holds gets the inner
  aggregate of their rows only. ``cancel_query_filters: true`` keeps the query's filters out
  of ``l`` only: the rules stay (governed means per user), and ``p`` still holds just the
  grain values of the query's rows.
- The inner aggregate is exact under fan-out: when the query's joins repeat the measure's
  view, it is taken over rows de-duplicated on the view's primary key (``build``'s
  ``deduplicated_group``), as any measure is.
- The groups are the query's grain values (``p`` holds every one), so the group joins the
  other measure groups on the grain as ``build._grouped_select`` expects.
"""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from assay.semantic.compiler.build import (
    BuildInput,
    _col,
    _id,
    _paren,
    aggregate,
    dimension_value,
    from_and_joins,
)
from assay.semantic.compiler.grouped import (
    deduplicated_group,
    dim_projection,
    direct_group,
    group_by,
)
from assay.semantic.compiler.resolve import Selected
from assay.semantic.filters import filter_condition
from assay.semantic.model import Dimension, Measure
from assay.semantic.query import FieldRef


def lod_group(
    inp: BuildInput,
    dims: list[Selected],
    dim_names: list[str],
    m: Measure,
    column: str,
    where: exp.Expr | None,
) -> exp.Select:
    """The group of one level of detail measure ``m``: the query's grain (``dim_names``) and
    ``m``'s value as ``column``."""
    lod = m.lod
    assert lod is not None
    grain = _grain(inp, dims, m)
    keys = [f"k{i}" for i in range(len(grain))]
    inner_col = {lod.inner.key: "v"}
    inner_where = _rules_only(inp) if lod.cancel_query_filters else where
    view = lod.inner.view
    if view in inp.multiplied:
        inner = deduplicated_group(inp, view, grain, keys, [lod.inner], inner_col, inner_where)
    else:
        inner = direct_group(inp, grain, keys, [lod.inner], inner_col, inner_where)
    # The outer aggregate over the inner values: the measure with the column as its input.
    value = _col("v", "l")
    outer = replace(m, input=value, filters=(), lod=None, distinct_key=None)
    agg = aggregate(inp.model, outer, inp.now, inp.dialect)
    select = exp.Select()
    l_table = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("l")))
    if not dims and (not lod.cancel_query_filters or not keys):
        # One group: every grain value counts once, and ``l`` holds each exactly once (all
        # of the query's, unless cancel_query_filters let in grain values the query has not).
        select.set("from_", exp.From(this=l_table))
    else:
        pairs = from_and_joins(inp)
        pairs.set("distinct", exp.Distinct())
        for proj in [*dim_projection(inp, dims, dim_names), *dim_projection(inp, grain, keys)]:
            pairs.append("expressions", proj)
        if where is not None:
            pairs.set("where", exp.Where(this=where.copy()))
        p_table = exp.Subquery(this=pairs, alias=exp.TableAlias(this=exp.to_identifier("p")))
        select.set("from_", exp.From(this=p_table))
        join = exp.Join(this=l_table)
        on = [exp.NullSafeEQ(this=_col(k, "p"), expression=_col(k, "l")) for k in keys]
        if on:
            join.set("on", exp.and_(*on))
        else:
            join.set("kind", "CROSS")
        select.append("joins", join)
        for name in dim_names:
            select.append("expressions", exp.Alias(this=_col(name, "p"), alias=_id(name)))
    select.append("expressions", exp.Alias(this=agg, alias=_id(column)))
    select.set("group", group_by(len(dims)))
    return select


def _grain(inp: BuildInput, dims: list[Selected], m: Measure) -> list[Selected]:
    """The inner aggregate's grain for this query, as selected dimensions (their SQL is
    cached as the field's): the ``fixed`` fields, or the query's dimensions (``dims``, with
    their timeframes) with the ``always_include`` fields or without the ``always_exclude``
    ones."""
    lod = m.lod
    assert lod is not None
    topic = inp.res.scope.topic

    def selected(d: Dimension) -> Selected:
        ref = FieldRef(d.key, d.view, d.name, None)
        return Selected(ref, dimension=d, expr=d.expr, calendar=inp.model.calendar_of(d, topic))

    if lod.grain == "always_exclude":
        left_out = {d.key for d in lod.fields}
        return [s for s in dims if s.dimension is None or s.dimension.key not in left_out]
    listed = [selected(d) for d in lod.fields]
    if lod.grain == "fixed":
        return listed
    # A listed field the query already groups by (without a timeframe) is in the grain once.
    present = {s.dimension.key for s in dims if s.dimension is not None and s.ref.grain is None}
    return [*dims, *(s for s in listed if s.ref.key not in present)]


def _rules_only(inp: BuildInput) -> exp.Expr | None:
    """The query's WHERE without the query's own filters: the model's row rules (access
    filters, ``always_*_sql``, ``where_sql``, the topic's ``always_where_filters``), which
    ``cancel_query_filters`` never cancels."""
    res = inp.res
    conds: list[exp.Expr] = [
        filter_condition(
            f, dimension_value(inp, sel), now=inp.now, dialect=inp.dialect, calendar=sel.calendar
        )
        for sel, f in res.rule_filters
    ]
    conds += [_paren(c.copy()) for c in res.rule_where]
    return exp.and_(*conds) if conds else None
