"""Column totals: the query's rows plus grand-total and subtotal rows, in one statement.

Totals are the measures re-aggregated by the database over the rows each total covers, never
sums of the shown cells: a count distinct, an average, a median or a de-duplicated fan-out
measure is only right that way. Where the whole query is one aggregation (no de-duplicated
measure groups) and the dialect has them, the levels are ``GROUP BY GROUPING SETS`` of one
scan; otherwise (MySQL/MariaDB, which lack grouping sets, and the fan-out plan, whose groups
are joined CTEs) each level is the same semantic query compiled with fewer dimensions, and the
levels are put together with ``UNION ALL``. Both give the same rows.

The rows are numbered within each kind (detail, each subtotal level, the grand total) and the
limit applies per kind, as in Omni. Unlike Omni, the rows are not first cut at ``limit x
levels`` in the overall order: that cut can drop the grand total, which comes last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlglot import exp

from assay.errors import InvalidQuery, NotSupported
from assay.semantic.column_totals import ColumnTotals
from assay.semantic.compiler.build import BuildInput, build, own_ctes
from assay.semantic.compiler.resolve import Selected
from assay.semantic.query import Sort

GROUPING = "$omni_group_grouping"
INDICATOR = "$omni_column_total_indicator"
TOTAL_SORT = "$omni_total_sort"
_ROW = "$omni_row"  # the row's number within its kind; not in the result
GRAND_TOTAL_VALUE = "column_total"
SUBTOTAL_PREFIX = "column_subtotal::"
# No GROUPING SETS: these dialects get the UNION ALL plan.
_NO_GROUPING_SETS = frozenset({"mysql"})


@dataclass(frozen=True, slots=True)
class Level:
    """One kind of row: the first ``depth`` dimensions kept, the others rolled up."""

    depth: int
    grouping: int  # the GROUPING() bitmask of its rows (1 = rolled up, first dimension highest)
    indicator: str | None
    measures: frozenset[str] | None = None  # the measure columns it fills; None: all


@dataclass(frozen=True, slots=True)
class TotalsPlan:
    tree: exp.Select
    helper_columns: tuple[str, ...]  # after the fields, all ``$omni_``


def levels_of(dims: list[Selected], measures: list[Selected], totals: ColumnTotals) -> list[Level]:
    """The row kinds ``totals`` asks for, the detail rows first."""
    n = len(dims)
    if not dims:
        raise NotSupported(
            "query.column_totals needs a dimension in query.fields: with measures only, the "
            "one result row is already the total; remove column_totals"
        )
    if not measures:
        raise NotSupported(
            "query.column_totals needs a measure in query.fields: a total row of dimensions "
            "alone has nothing to total; add a measure or remove column_totals"
        )
    levels = [Level(n, 0, None)]
    depths: set[int] = set()
    grand: set[str] = {m.alias for m in measures} if totals.grand else set()
    for ref in totals.fields:
        index = next((i for i, d in enumerate(dims) if d.ref.text == ref.text), None)
        if index is not None:
            if index == n - 1:
                raise InvalidQuery(
                    f"query.column_totals[{ref.text!r}]: a subtotal by the last dimension is the "
                    f"detail row itself; key an earlier dimension of query.fields, or "
                    f'"::total::" for a grand total'
                )
            depths.add(index + 1)
        elif (measure := next((m for m in measures if m.ref.text == ref.text), None)) is not None:
            grand.add(measure.alias)
        # else: a field dropped into missing_fields (an invalid grain): reported there
    for depth in sorted(depths, reverse=True):
        levels.append(
            Level(depth, 2 ** (n - depth) - 1, f"{SUBTOTAL_PREFIX}{dims[depth - 1].ref.text}")
        )
    if grand:
        filled = None if len(grand) == len(measures) else frozenset(grand)
        levels.append(Level(0, 2**n - 1, GRAND_TOTAL_VALUE, filled))
    return levels


def build_with_totals(inp: BuildInput, totals: ColumnTotals) -> TotalsPlan:
    """The query with the totals rows ``totals`` asks for: grouping sets where they can be,
    else the UNION ALL plan."""
    res = inp.res
    dims = [s for s in res.selected if s.dimension is not None]
    measures = [s for s in res.selected if s.measure is not None]
    if res.having or res.rule_having:
        what = "a filter on a measure" if res.having else "the model's always_having_sql"
        raise NotSupported(
            f"query.column_totals with {what}: whether totals cover the groups the filter "
            "keeps or all rows is not settled yet; remove column_totals or the measure filter"
        )
    sorts = list(inp.sorts) or _default_sorts(dims, measures)
    for s in sorts:
        if s.field in res.sort_keys:
            raise NotSupported(
                f"query.column_totals with a sort on {s.field!r}, which sorts by another field "
                "(order_by_field): not supported yet; remove column_totals or that sort"
            )
    levels = levels_of(dims, measures, totals)
    plain = replace(inp, limit=None, offset=0)
    full = build(plain)
    union = inp.dialect in _NO_GROUPING_SETS or full.args.get("with_") is not None
    grouped = _union_of_levels(plain, dims, levels) if union else _grouping_sets(full, dims, levels)
    return _ordered_and_limited(inp, grouped, dims, measures, levels, sorts)


def _default_sorts(dims: list[Selected], measures: list[Selected]) -> list[Sort]:
    """Omni's default, as the query without totals has it: the first measure, largest first."""
    return [Sort(measures[0].alias, True)] if measures else [Sort(dims[0].alias, False)]


def _grouping_sets(select: exp.Expr, dims: list[Selected], levels: list[Level]) -> exp.Expr:
    """The one-scan plan: the query's GROUP BY turned into one grouping set per level."""
    assert isinstance(select, exp.Select)
    select.set("order", None)
    select.set("limit", None)
    is_dim = {d.alias for d in dims}
    values = [p.this for p in select.expressions if isinstance(p, exp.Alias) and p.alias in is_dim]
    sets = [exp.Tuple(expressions=[v.copy() for v in values[: lv.depth]]) for lv in levels]
    select.set("group", exp.Group(grouping_sets=[exp.GroupingSets(expressions=sets)]))
    n = len(values)
    # A sum of one-argument GROUPING()s: BigQuery and Spark take only one argument.
    bits: exp.Expr = exp.Literal.number(0)
    for i, v in enumerate(values):
        bit = exp.Mul(
            this=exp.Grouping(expressions=[v.copy()]),
            expression=exp.Literal.number(2 ** (n - 1 - i)),
        )
        bits = bit if i == 0 else exp.Add(this=bits, expression=bit)
    select.append("expressions", exp.Alias(this=bits, alias=_id(GROUPING)))
    return select


def _union_of_levels(inp: BuildInput, dims: list[Selected], levels: list[Level]) -> exp.Expr:
    """Each level compiled as the query without the rolled-up dimensions (so every engine,
    and the de-duplicating fan-out plan, aggregates it as it would that query), the rolled-up
    columns NULL, all levels in one ``UNION ALL``."""
    branches: list[exp.Expr] = []
    for k, lv in enumerate(levels):
        kept = {d.alias for d in dims[: lv.depth]}
        rolled = {d.alias for d in dims} - kept
        res = replace(
            inp.res,
            selected=[s for s in inp.res.selected if s.alias not in rolled],
            sort_keys={},
        )
        name = f"$omni_level_{k}"
        tree = own_ctes(build(replace(inp, res=res, sorts=())), f"l{k}_")
        tree.set("order", None)
        branch = exp.Select()
        for s in inp.res.selected:
            value: exp.Expr = exp.Null() if s.alias in rolled else _col(s.alias, name)
            branch.append("expressions", exp.Alias(this=value, alias=_id(s.alias)))
        branch.append(
            "expressions", exp.Alias(this=exp.Literal.number(lv.grouping), alias=_id(GROUPING))
        )
        branch.set("from_", exp.From(this=exp.Subquery(this=tree, alias=_alias(name))))
        branches.append(branch)
    out = branches[0]
    for b in branches[1:]:
        out = exp.Union(this=out, expression=b, distinct=False)
    return out


def _ordered_and_limited(
    inp: BuildInput,
    grouped: exp.Expr,
    dims: list[Selected],
    measures: list[Selected],
    levels: list[Level],
    sorts: list[Sort],
) -> TotalsPlan:
    g = _col(GROUPING)
    n = len(dims)
    # Sorting groups first keeps each subtotal right after its group's rows: down to the
    # deepest subtotal, each dimension sorts after a flag that is 1 where it is rolled up.
    deepest = max((lv.depth for lv in levels if 0 < lv.depth < n), default=0)
    ssorts = [f"$omni_ssort_{i}" for i in range(deepest)]
    helpers = (*ssorts, GROUPING, INDICATOR, TOTAL_SORT)
    grand = next((lv for lv in levels if lv.depth == 0), None)
    labelled = exp.Select()
    for s in inp.res.selected:
        value: exp.Expr = _col(s.alias)
        if (
            s.measure is not None
            and grand
            and grand.measures is not None
            and s.alias not in grand.measures
        ):
            value = _case([(_eq(g, grand.grouping), exp.Null())], value)
        labelled.append("expressions", exp.Alias(this=value, alias=_id(s.alias)))
    for i, name in enumerate(ssorts):
        rolled = exp.GTE(this=g.copy(), expression=exp.Literal.number(2 ** (n - i) - 1))
        flag = _case([(rolled, exp.Literal.number(1))], exp.Literal.number(0))
        labelled.append("expressions", exp.Alias(this=flag, alias=_id(name)))
    labelled.append("expressions", exp.Alias(this=g.copy(), alias=_id(GROUPING)))
    kinds = [
        (_eq(g, lv.grouping), exp.Literal.string(lv.indicator)) for lv in levels if lv.indicator
    ]
    labelled.append("expressions", exp.Alias(this=_case(kinds, exp.Null()), alias=_id(INDICATOR)))
    labelled.append("expressions", exp.Alias(this=g.copy(), alias=_id(TOTAL_SORT)))
    labelled.set("from_", exp.From(this=exp.Subquery(this=grouped, alias=_alias("$omni_grouped"))))

    by_field = {s.field: s for s in sorts}
    order: list[exp.Ordered] = []
    for i, name in enumerate(ssorts):
        order.append(exp.Ordered(this=_col(name), desc=False))
        dim = dims[i]
        order.append(_ordered(dim.alias, by_field.get(dim.alias)))
    order.append(exp.Ordered(this=_col(TOTAL_SORT), desc=False))
    order += [_ordered(s.field, s) for s in sorts]
    order += [_ordered(d.alias, None) for d in dims]  # a total order: the numbering is stable

    columns = [*(s.alias for s in inp.res.selected), *helpers]
    outer = exp.Select(expressions=[_col(c) for c in columns])
    if inp.limit is None:
        outer.set(
            "from_", exp.From(this=exp.Subquery(this=labelled, alias=_alias("$omni_labelled")))
        )
    else:
        numbered = exp.Select(
            expressions=[exp.Column(this=exp.Star(), table=_id("$omni_labelled"))]
        )
        window = exp.Window(
            this=exp.RowNumber(),
            partition_by=[_col(GROUPING)],
            order=exp.Order(expressions=[o.copy() for o in order]),
        )
        numbered.append("expressions", exp.Alias(this=window, alias=_id(_ROW)))
        numbered.set(
            "from_", exp.From(this=exp.Subquery(this=labelled, alias=_alias("$omni_labelled")))
        )
        outer.set(
            "from_", exp.From(this=exp.Subquery(this=numbered, alias=_alias("$omni_numbered")))
        )
        outer.set(
            "where",
            exp.Where(this=exp.LTE(this=_col(_ROW), expression=exp.Literal.number(inp.limit))),
        )
    outer.set("order", exp.Order(expressions=order))
    return TotalsPlan(outer, helpers)


def _ordered(alias: str, sort: Sort | None) -> exp.Ordered:
    """As the query without totals sorts (NULLs last unless asked), ascending when unsorted."""
    desc = bool(sort and sort.descending)
    null_sort = sort.null_sort if sort else "OMNI_DEFAULT"
    ordered = exp.Ordered(this=_col(alias), desc=desc)
    if null_sort != "DIALECT_DEFAULT":
        ordered.set("nulls_first", null_sort == "FIRST")
    return ordered


def _case(ifs: Sequence[tuple[exp.Expr, exp.Expr]], default: exp.Expr) -> exp.Case:
    return exp.Case(ifs=[exp.If(this=c, true=v) for c, v in ifs], default=default)


def _eq(column: exp.Expr, value: int) -> exp.EQ:
    return exp.EQ(this=column.copy(), expression=exp.Literal.number(value))


def _id(name: str) -> exp.Identifier:
    return exp.Identifier(this=name, quoted=True)


def _alias(name: str) -> exp.TableAlias:
    return exp.TableAlias(this=_id(name))


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=_id(name), table=_id(table) if table else None)
