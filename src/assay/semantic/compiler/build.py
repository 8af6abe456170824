"""Build the sqlglot tree for a resolved query: one SELECT when no measure's rows are
repeated by the joins, else the grouped plan of ``compiler.grouped``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from assay.semantic.access import bind, has_attributes
from assay.semantic.compiler.resolve import Resolution, Selected, base_measures, rule_measures
from assay.semantic.filters import Filter, depends_on_clock, filter_condition
from assay.semantic.model import JoinStep, Measure, SemanticModel
from assay.semantic.query import Sort
from assay.semantic.templates import MeasureRef
from assay.semantic.timezones import localized
from assay.semantic.viewer import Viewer

# Expressions that never need parentheses where they are spliced in (Var: a rendered fragment).
_ATOMIC = (exp.Column, exp.Func, exp.Paren, exp.Literal, exp.Var)
_JOIN_SIDES = {"always_left": "LEFT", "inner": "", "full_outer": "FULL", "cross": "CROSS"}
_SIMPLE_AGGS: dict[str, type[exp.Func]] = {
    "sum": exp.Sum,
    "average": exp.Avg,
    "min": exp.Min,
    "max": exp.Max,
    "median": exp.Median,
}


@dataclass(frozen=True, slots=True)
class BuildInput:
    model: SemanticModel
    res: Resolution
    joins: list[JoinStep]
    multiplied: set[str]
    sorts: tuple[Sort, ...]
    limit: int | None
    offset: int
    now: datetime
    dialect: str
    viewer: Viewer | None = None
    #: the level of detail dimensions' inner aggregates, joined to the query's rows
    #: (``compiler.lod_dims``): every FROM of the query carries them
    lod_joins: tuple[exp.Join, ...] = ()

    def bound(self, tree: exp.Expr, where: str) -> exp.Expr | None:
        """``tree`` with the user's attribute values bound, when it reads any (such SQL is
        the user's own, so it is never kept among the model's rendered fragments)."""
        if not self.model.attributes_used or not has_attributes(tree):
            return None
        return bind(tree, self.viewer, where)


def _id(name: str) -> exp.Identifier:
    return exp.Identifier(this=name, quoted=True)


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=_id(name), table=exp.to_identifier(table) if table else None)


def _join_tree(model: SemanticModel, base: str, joins: list[JoinStep]) -> exp.Select:
    select = exp.Select(expressions=[exp.Star()])
    select.set("from_", exp.From(this=model.views[base].source.copy()))
    for step in joins:
        rel = step.relationship
        side = _JOIN_SIDES[rel.join_type]
        join = exp.Join(this=model.views[step.view].source.copy())
        if side == "CROSS":
            join.set("kind", "CROSS")
        else:
            if side:
                join.set("side", side)
            join.set("on", rel.on.copy())
        select.append("joins", join)
    return select


def from_and_joins(inp: BuildInput) -> exp.Select:
    """A SELECT with the query's FROM and JOINs; their text is cached like other fragments."""
    base = inp.res.scope.base_view
    # Keyed by every edge, not just the views: two topics may reach a view by different paths,
    # or by the same path with a topic's own relationship.
    edges = ",".join(
        f"{s.parent}>{s.view}" + (f"@{s.relationship.topic}" if s.relationship.topic else "")
        for s in inp.joins
    )
    key = (inp.dialect, f"from:{base}:{edges}")
    text = inp.model.fragments.get(key)
    if text is None:
        tree = _join_tree(inp.model, base, inp.joins)
        own = inp.bound(tree, "the SQL of a joined view or join condition")
        text = render(own or tree, inp.dialect).removeprefix("SELECT * FROM ")
        if own is None:
            inp.model.fragments[key] = text
    select = exp.Select()
    select.set("from_", exp.From(this=exp.Var(this=text)))
    for join in inp.lod_joins:
        select.append("joins", join.copy())
    return select


def own_ctes(tree: exp.Expr, prefix: str) -> exp.Expr:
    """The tree with its CTEs renamed apart: some dialects (Spark) have them hoisted to the
    top of the statement, where two parts' CTEs (a totals level's, a row total's) would
    otherwise share names."""
    with_ = tree.args.get("with_")
    if with_ is None:
        return tree
    names = {cte.alias for cte in with_.expressions}

    def rename(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Identifier) and node.this in names:
            return exp.Identifier(this=prefix + node.this, quoted=node.quoted)
        return node

    return tree.transform(rename, copy=False)


@cache
def dialect_named(name: str) -> Dialect:
    """One instance per dialect: sqlglot builds a new one per lookup, which costs."""
    return Dialect.get_or_raise(name)


def render(tree: exp.Expr, dialect: str) -> str:
    """SQL text of a tree built for this query alone (so no defensive copy is needed)."""
    return dialect_named(dialect).generate(localized(tree, dialect), copy=False)


def aggregate(
    model: SemanticModel,
    m: Measure,
    now: datetime,
    dialect: str,
    *,
    one_row_each: bool = False,
    topic_week_start: int | None = None,
) -> exp.Expr:
    """The aggregate expression of a base measure over row-level (qualified) columns.

    ``one_row_each``: every joined row is exactly one row of the measure's view (it is the
    base view and not repeated), so a count needs no key and ``COUNT(*)`` is exact.
    ``topic_week_start``: the query's topic's week start, which a filter's dimension's own
    overrides (Omni: the most specific setting wins).
    """
    if m.custom is not None:
        return m.custom.copy()
    cond = None
    if m.filters:
        topical = model.calendar.with_week_start(topic_week_start)
        cond = exp.and_(
            *(
                filter_condition(
                    f.filter,
                    f.target,
                    now=now,
                    dialect=dialect,
                    calendar=topical.with_week_start(f.week_start),
                )
                for f in m.filters
            )
        )
    if m.distinct_key is not None:
        has_key = exp.Not(this=exp.Is(this=_paren(m.distinct_key.copy()), expression=exp.Null()))
        cond = has_key if cond is None else exp.and_(cond, has_key)
    value = m.input.copy() if m.input is not None else None
    if m.aggregate_type == "count":
        pk = None if one_row_each else model.views[m.view].primary_key
        arg = value if value is not None else (pk.expr.copy() if pk else None)
        if cond is not None:
            arg = exp.Case(ifs=[exp.If(this=cond, true=arg or exp.Literal.number(1))])
        return exp.Count(this=arg if arg is not None else exp.Star())
    assert value is not None
    if cond is not None:
        value = exp.Case(ifs=[exp.If(this=cond, true=value)])
    # Over de-duplicated rows, a *_distinct_on measure is its plain aggregate.
    at = (m.aggregate_type or "").removesuffix("_distinct_on")
    if at == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[value]))
    if at == "percentile":
        assert m.percentile is not None
        fraction = exp.Literal.number(m.percentile / 100)
        if dialect == "spark":
            # sqlglot writes PERCENTILE_CONT(x, p), which Spark refuses (it wants WITHIN
            # GROUP, and sqlglot turns that form into PERCENTILE_APPROX: an estimate).
            # Spark's PERCENTILE is exact and interpolates linearly, as PERCENTILE_CONT does.
            return exp.Quantile(this=value, quantile=fraction)
        return exp.PercentileCont(this=value, expression=fraction)
    if at == "list":
        return exp.ArrayAgg(this=exp.Distinct(expressions=[value]))
    return _SIMPLE_AGGS[at](this=value)


def fragment(inp: BuildInput, key: str, make: Callable[[], exp.Expr]) -> exp.Expr:
    """A model fragment as a leaf holding its SQL, rendered once per model and dialect.

    sqlglot spends as long rendering a tree as building it; fields recur across queries, so
    their text is kept on the (immutable) model. The text comes from sqlglot rendering the
    fragment's tree, never from query input; it is parenthesised so it splices safely.
    """
    cache_key = (inp.dialect, key)
    text = inp.model.fragments.get(cache_key)
    if text is None:
        tree = make()
        own = inp.bound(tree, f"the SQL of {key.split(':', 1)[-1]}")
        if own is not None:
            return _paren(own)
        text = render(tree, inp.dialect)
        if not isinstance(tree, _ATOMIC):
            text = f"({text})"
        inp.model.fragments[cache_key] = text
    return exp.Var(this=text)


def dimension_value(inp: BuildInput, sel: Selected) -> exp.Expr:
    expr = sel.expr
    assert expr is not None
    masked = ":masked" if sel.masked else ""
    # A topic's week start changes a field's weeks: the text is kept per week start.
    week = f":w{sel.calendar.week_start}" if sel.calendar.week_start else ""
    return fragment(inp, f"dim:{sel.ref.key}[{sel.ref.grain or ''}]{masked}{week}", expr.copy)


def _topic_week_start(inp: BuildInput) -> int | None:
    topic = inp.res.scope.topic
    return None if topic is None else topic.week_start


def _direct_aggregate(inp: BuildInput, m: Measure) -> exp.Expr:
    """A measure aggregated straight over the joined rows (its view's rows are not repeated)."""
    base = m.view == inp.res.scope.base_view

    week_start = _topic_week_start(inp)

    def make() -> exp.Expr:
        return aggregate(
            inp.model, m, inp.now, inp.dialect, one_row_each=base, topic_week_start=week_start
        )

    if _cacheable(m):
        week = "" if week_start is None else f":w{week_start}"
        return fragment(inp, f"agg:{m.key}:{base}{week}", make)
    tree = make()
    return inp.bound(tree, f"the SQL of {m.key}") or tree


def _cacheable(m: Measure) -> bool:
    """A measure's SQL can be kept unless a filter of it reads the clock ("last 30 days")."""
    return not any(depends_on_clock(f.filter) for f in m.filters)


def _paren(e: exp.Expr) -> exp.Expr:
    return e if isinstance(e, _ATOMIC) else exp.Paren(this=e)


class Values:
    """Each base measure's value expression, handed out once and copied after that (trees
    cannot be shared between two places in one query)."""

    def __init__(self, values: dict[str, exp.Expr]) -> None:
        self._values = values
        self._used: set[str] = set()

    def take(self, key: str) -> exp.Expr:
        if key in self._used:
            return self._values[key].copy()
        self._used.add(key)
        return self._values[key]


def measure_value(model: SemanticModel, m: Measure, base_value: Values) -> exp.Expr:
    """A measure in terms of its base measures' values."""
    if m.derived is None:
        return base_value.take(m.key)
    return derived_value(model, m.derived, base_value)


def derived_value(model: SemanticModel, tree: exp.Expr, base_value: Values) -> exp.Expr:
    """An expression over ``MeasureRef`` nodes in terms of the base measures' values."""

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, MeasureRef):
            target = model.measure(node.measure_key)
            return _paren(measure_value(model, target, base_value))
        return node

    return tree.copy().transform(swap, copy=False)


def build(inp: BuildInput) -> exp.Expr:
    res = inp.res
    dims = [s for s in res.selected if s.dimension is not None]
    measures = [s for s in res.selected if s.measure is not None]
    having_measures = [s.measure for s, _ in res.having if s.measure is not None]
    bases: list[Measure] = []
    for m in [*(s.measure for s in measures if s.measure), *having_measures]:
        for b in base_measures(inp.model, m):
            if b not in bases:
                bases.append(b)
    for b in rule_measures(inp.model, res.rule_having):
        if b not in bases:
            bases.append(b)
    # A level of detail measure is a group of its own (compiler.lod), so it takes this plan.
    fanned = [
        b
        for b in bases
        if b.view in inp.multiplied or b.distinct_key is not None or b.lod is not None
    ]
    sorts = _sorts(inp, dims, measures)
    # A dimension with an order_by_field sorts by that field, which joins the grouping (as
    # in Omni, it is added to the query without being shown).
    keys = {s.field: res.sort_keys[s.field] for s in sorts if s.field in res.sort_keys}
    if not fanned:
        return _single_select(inp, dims, measures, bases, sorts, keys)
    from assay.semantic.compiler.grouped import grouped_select  # noqa: PLC0415 (it builds on this module)

    return grouped_select(inp, dims, measures, bases, fanned, sorts, keys)


def _where(inp: BuildInput) -> exp.Expr | None:
    conds = [
        filter_condition(
            f, dimension_value(inp, sel), now=inp.now, dialect=inp.dialect, calendar=sel.calendar
        )
        for sel, f in inp.res.where
    ]
    for group in inp.res.where_any:  # a control's OR, bracketed: it never widens the rest
        any_of = [filter_condition(f, dimension_value(inp, sel), now=inp.now,
                                   dialect=inp.dialect, calendar=sel.calendar)
                  for sel, f in group]  # fmt: skip
        conds.append(exp.Paren(this=exp.or_(*any_of)))
    conds += [_paren(c.copy()) for c in inp.res.rule_where]
    return exp.and_(*conds) if conds else None


def _having(
    inp: BuildInput, value_of: Values, targets: list[tuple[Selected, Filter]]
) -> exp.Expr | None:
    conds = []
    for sel, f in targets:
        assert sel.measure is not None
        conds.append(
            filter_condition(
                f,
                measure_value(inp.model, sel.measure, value_of),
                now=inp.now,
                dialect=inp.dialect,
            )
        )
    conds += [_paren(derived_value(inp.model, c, value_of)) for c in inp.res.rule_having]
    return exp.and_(*conds) if conds else None


def _finish(
    select: exp.Select, inp: BuildInput, sorts: list[Sort], by: dict[str, exp.Expr]
) -> exp.Select:
    """ORDER BY, LIMIT, OFFSET; ``by``: what a sorted field sorts by, when not itself."""
    order = _order(sorts, by)
    if order:
        select.set("order", exp.Order(expressions=order))
    if inp.limit is not None:
        select.set("limit", exp.Limit(expression=exp.Literal.number(inp.limit)))
    if inp.offset:
        select.set("offset", exp.Offset(expression=exp.Literal.number(inp.offset)))
    return select


def _sorts(inp: BuildInput, dims: list[Selected], measures: list[Selected]) -> list[Sort]:
    sorts = list(inp.sorts)
    if not sorts:
        # Omni's default: the first measure, largest first; else the first dimension.
        if measures:
            sorts = [Sort(measures[0].alias, True)]
        elif dims:
            sorts = [Sort(dims[0].alias, False)]
    return sorts


def _order(sorts: list[Sort], by: dict[str, exp.Expr]) -> list[exp.Ordered]:
    out = []
    for s in sorts:
        nulls_first: bool | None
        if s.null_sort == "FIRST":
            nulls_first = True
        elif s.null_sort == "DIALECT_DEFAULT":
            nulls_first = None
        else:  # LAST, and OMNI_DEFAULT: NULLs last either way, so every engine agrees
            nulls_first = False
        target = by[s.field].copy() if s.field in by else _col(s.field)
        ordered = exp.Ordered(this=target, desc=s.descending)
        if nulls_first is not None:
            ordered.set("nulls_first", nulls_first)
        out.append(ordered)
    return out


def _single_select(
    inp: BuildInput,
    dims: list[Selected],
    measures: list[Selected],
    bases: list[Measure],
    sorts: list[Sort],
    keys: dict[str, Selected],
) -> exp.Select:
    model = inp.model
    select = from_and_joins(inp)
    value_of = Values({b.key: _direct_aggregate(inp, b) for b in bases})
    for sel in inp.res.selected:
        if sel.dimension is not None:
            value = dimension_value(inp, sel)
        else:
            assert sel.measure is not None
            value = measure_value(model, sel.measure, value_of)
        select.append("expressions", exp.Alias(this=value, alias=_id(sel.alias)))
    where = _where(inp)
    if where is not None:
        select.set("where", exp.Where(this=where))
    if dims:
        positions: list[exp.Expr] = [
            exp.Literal.number(i + 1)
            for i, sel in enumerate(inp.res.selected)
            if sel.dimension is not None
        ]
        by = {alias: dimension_value(inp, key) for alias, key in keys.items()}
        positions += [value.copy() for value in by.values()]
        select.set("group", exp.Group(expressions=positions))
    having = _having(inp, value_of, inp.res.having)
    if having is not None:
        select.set("having", exp.Having(this=having))
    return _finish(select, inp, sorts, by if dims else {})
