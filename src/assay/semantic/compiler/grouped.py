"""The grouped plan of a query whose joins repeat some measure's rows.

Fan-out strategy: per-grain pre-aggregation. When the query's joins repeat the rows of a
measure's view (a one-to-many join), that view's measures are computed from
``SELECT DISTINCT <grain>, <primary key>, <measure inputs>`` over the joined rows, so each row
of the view counts once per group, and then aggregated by the grain. We chose this over
symmetric aggregates (SUM(DISTINCT hash(pk) * K + x)) because it is exact for every aggregate
(median, percentile, count_distinct and list cannot be made symmetric), has no hash-collision
or overflow risk across dialects, and runs at the speed of the de-duplication a person would
write by hand. Measures whose rows are not repeated are aggregated directly, and the groups are
joined on the grain with null-safe equality (every group has the same grain rows, since all are
computed from the same joined and filtered rows).

A ``*_distinct_on`` measure is de-duplicated the same way on its own key
(``custom_primary_key_sql``) instead of its view's primary key, whether or not the joins
repeat rows: its table may repeat them itself (order totals on every line of a pre-joined
table). Rows whose key is NULL are not aggregated, as with symmetric aggregates (there is no
key to count them once by).
"""

from __future__ import annotations

from sqlglot import exp

from assay.semantic.compiler.build import (
    BuildInput,
    Values,
    _cacheable,
    _col,
    _direct_aggregate,
    _finish,
    _having,
    _id,
    _topic_week_start,
    _where,
    aggregate,
    dimension_value,
    fragment,
    from_and_joins,
    measure_value,
    render,
)
from assay.semantic.compiler.resolve import Selected
from assay.semantic.model import Measure
from assay.semantic.query import Sort


def grouped_select(
    inp: BuildInput,
    dims: list[Selected],
    measures: list[Selected],
    bases: list[Measure],
    fanned: list[Measure],
    sorts: list[Sort],
    keys: dict[str, Selected],
) -> exp.Select:
    model = inp.model
    where = _where(inp)
    shown = len(dims)
    dims = [*dims, *keys.values()]  # the sort keys are grouped by, after the shown ones
    dim_names = [f"d{i}" for i in range(len(dims))]
    direct = [b for b in bases if b not in fanned]
    # Keyed by what the rows are de-duplicated on: a view (its primary key) or a distinct_on
    # key (trees compare by structure, so measures with the same key share their rows).
    deduplicated: dict[str | exp.Expr, list[Measure]] = {}
    for m in fanned:
        if m.lod is None:
            key = m.view if m.distinct_key is None else m.distinct_key
            deduplicated.setdefault(key, []).append(m)
    groups: list[tuple[str | exp.Expr | Measure | None, list[Measure]]] = []
    if direct or not fanned:
        groups.append((None, direct))
    groups += deduplicated.items()
    groups += [(m, [m]) for m in fanned if m.lod is not None]
    measure_col = {b.key: f"m{i}" for i, b in enumerate(bases)}
    ctes: list[exp.CTE] = []
    owner: dict[str, str] = {}
    for gi, (view, members) in enumerate(groups):
        name = f"g{gi}"
        for b in members:
            owner[b.key] = name
        if view is None:
            body = direct_group(inp, dims, dim_names, members, measure_col, where)
        elif isinstance(view, Measure):
            from assay.semantic.compiler.lod import lod_group  # noqa: PLC0415 (it builds on this module)

            body = lod_group(inp, dims, dim_names, view, measure_col[view.key], where)
        else:
            key_view = view if isinstance(view, str) else None
            body = deduplicated_group(inp, key_view, dims, dim_names, members, measure_col, where)
        ctes.append(exp.CTE(this=body, alias=exp.TableAlias(this=exp.to_identifier(name))))
    first = ctes[0].alias
    outer = exp.Select()
    outer.set("with_", exp.With(expressions=ctes))
    outer.set("from_", exp.From(this=exp.to_table(first)))
    for cte in ctes[1:]:
        name = cte.alias
        on = [exp.NullSafeEQ(this=_col(d, first), expression=_col(d, name)) for d in dim_names]
        join = exp.Join(this=exp.to_table(name))
        if on:
            join.set("on", exp.and_(*on))
        else:
            join.set("kind", "CROSS")
        outer.append("joins", join)
    value_of = Values({key: _col(measure_col[key], owner[key]) for key in measure_col})
    di = 0
    for sel in inp.res.selected:
        if sel.dimension is not None:
            value: exp.Expr = _col(dim_names[di], first)
            di += 1
        else:
            assert sel.measure is not None
            value = measure_value(model, sel.measure, value_of)
        outer.append("expressions", exp.Alias(this=value, alias=_id(sel.alias)))
    having = _having(inp, value_of, inp.res.having)
    if having is not None:
        outer.set("where", exp.Where(this=having))
    by: dict[str, exp.Expr] = {
        alias: _col(dim_names[shown + i], first) for i, alias in enumerate(keys)
    }
    return _finish(outer, inp, sorts, by)


def dim_projection(inp: BuildInput, dims: list[Selected], dim_names: list[str]) -> list[exp.Expr]:
    return [
        exp.Alias(this=dimension_value(inp, sel), alias=_id(name))
        for sel, name in zip(dims, dim_names, strict=True)
    ]


def group_by(n: int) -> exp.Group | None:
    return exp.Group(expressions=[exp.Literal.number(i + 1) for i in range(n)]) if n else None


def direct_group(
    inp: BuildInput,
    dims: list[Selected],
    dim_names: list[str],
    members: list[Measure],
    measure_col: dict[str, str],
    where: exp.Expr | None,
) -> exp.Select:
    select = from_and_joins(inp)
    for proj in dim_projection(inp, dims, dim_names):
        select.append("expressions", proj)
    for m in members:
        agg = _direct_aggregate(inp, m)
        select.append("expressions", exp.Alias(this=agg, alias=_id(measure_col[m.key])))
    if where is not None:
        select.set("where", exp.Where(this=where.copy()))
    select.set("group", group_by(len(dims)))
    return select


def _leaf_alias(column: exp.Column) -> str:
    """The de-duplicated rows' name for a row-level column: the same column, the same name,
    so measures of one view share it and their rendered SQL can be cached."""
    return f"{column.table}__{column.name}"


def deduplicated_measure(inp: BuildInput, m: Measure) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A measure over the de-duplicated rows ``q``: its aggregate's SQL, and the row-level
    columns (alias, SQL) the rows must carry for it. Cached like other fragments."""
    week_start = _topic_week_start(inp)
    key = (inp.dialect, m.key if week_start is None else f"{m.key}:w{week_start}")
    cached = inp.model.deduplicated.get(key)
    if cached is not None:
        return cached
    leaves: dict[str, str] = {}

    def to_leaf(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.table:
            alias = _leaf_alias(node)
            leaves.setdefault(alias, render(node.copy(), inp.dialect))
            return _col(alias, "q")
        return node

    agg = aggregate(inp.model, m, inp.now, inp.dialect, topic_week_start=week_start)
    own = inp.bound(agg, f"the SQL of {m.key}")
    agg = (own or agg).transform(to_leaf, copy=False)
    result = (render(agg, inp.dialect), tuple(leaves.items()))
    if _cacheable(m) and own is None:
        inp.model.deduplicated[key] = result
    return result


def deduplicated_group(
    inp: BuildInput,
    view: str | None,
    dims: list[Selected],
    dim_names: list[str],
    members: list[Measure],
    measure_col: dict[str, str],
    where: exp.Expr | None,
) -> exp.Select:
    """Measures of a view whose rows the joins repeat: one row per (grain, primary key). With
    no ``view``, distinct_on measures: their key's columns are among the inputs their
    aggregate reads (it skips NULL keys), so the rows are one per (grain, key, value)."""
    inner = from_and_joins(inp)
    inner.set("distinct", exp.Distinct())
    for proj in dim_projection(inp, dims, dim_names):
        inner.append("expressions", proj)
    columns: dict[str, str] = {}
    pk = None if view is None else inp.model.views[view].primary_key
    assert view is None or pk is not None  # check_fanout refused the query otherwise
    if pk is not None and isinstance(pk.expr, exp.Column):
        columns[_leaf_alias(pk.expr)] = render(pk.expr.copy(), inp.dialect)
    elif pk is not None:
        key_value = fragment(inp, f"pk:{view}", pk.expr.copy)
        columns["__pk"] = (
            key_value.name if isinstance(key_value, exp.Var) else render(key_value, inp.dialect)
        )
    aggs: list[str] = []
    for m in members:
        text, leaves = deduplicated_measure(inp, m)
        aggs.append(text)
        columns.update(leaves)
    for alias, sql in columns.items():
        inner.append("expressions", exp.Alias(this=exp.Var(this=sql), alias=_id(alias)))
    if where is not None:
        inner.set("where", exp.Where(this=where.copy()))
    outer = exp.Select()
    subquery = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("q")))
    outer.set("from_", exp.From(this=subquery))
    for name in dim_names:
        outer.append("expressions", exp.Alias(this=_col(name, "q"), alias=_id(name)))
    for m, text in zip(members, aggs, strict=True):
        outer.append(
            "expressions", exp.Alias(this=exp.Var(this=text), alias=_id(measure_col[m.key]))
        )
    outer.set("group", group_by(len(dims)))
    return outer
