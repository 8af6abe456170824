"""Compile OmniSQL (``userEditedSQL`` over ``${view.field}`` references) into a governed model
query (semantic layer), as Omni plans it (omni-query-features.md 7.3).

The statement is resolved exactly as a semantic query is: its references are the query's
fields, so what the user may not see is refused as if absent, and the topic's access filters,
``always_where``/``always_having`` and joins' ``where_sql`` join its WHERE and HAVING through
the compiler's own builders. Joins come from the topic, only those the references (and the
rules) need. Aggregates that a join would repeat are refused rather than inflated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime

from sqlglot import exp

from assay.errors import InvalidQuery, NotSupported, PermissionDenied, UnknownField
from assay.semantic.compiler import CompiledQuery, FieldMeta, _joins_with_their_rules, _meta
from assay.semantic.compiler.build import (
    BuildInput,
    Values,
    _direct_aggregate,
    _having,
    _paren,
    _where,
    dimension_value,
    from_and_joins,
    measure_value,
    render,
)
from assay.semantic.compiler.lod_dims import with_lod_joins
from assay.semantic.compiler.omnisql_parse import Statement, parse_statement
from assay.semantic.compiler.resolve import (
    Resolution,
    Selected,
    base_measures,
    multiplied_views,
    resolve,
    rule_measures,
)
from assay.semantic.model import Measure, SemanticModel
from assay.semantic.query import FieldRef, SemanticQuery, parse_field
from assay.semantic.viewer import QUERY_SQL, Viewer

# Aggregates a repeated row cannot change: they are safe over a one-to-many join.
_REPEAT_SAFE = (exp.Min, exp.Max)


def compile_omnisql(
    model: SemanticModel,
    q: SemanticQuery,
    target: str,
    now: datetime,
    viewer: Viewer | None,
) -> CompiledQuery:
    """``q.sql`` as a governed query for ``viewer`` in ``target``'s SQL.

    Raises:
        PermissionDenied: the user's role may not write SQL on this model.
        QueryError: the statement is refused (named), or a reference does not resolve.
    """
    assert q.sql is not None
    if viewer is not None and not viewer.may(QUERY_SQL):
        raise PermissionDenied(
            "Permission denied - your role on this model may not run queries based on "
            "manually written SQL (userEditedSQL)"
        )
    try:
        return _compile(model, q.sql, target, now, viewer)
    except RecursionError:  # sqlglot reads and writes trees recursively
        raise InvalidQuery("userEditedSQL is nested too deeply to plan") from None


def _compile(
    model: SemanticModel, sql: str, target: str, now: datetime, viewer: Viewer | None
) -> CompiledQuery:
    st = parse_statement(sql, model.dialect)
    refs = {p: _field(text) for p, text in st.refs.items() if text != st.source}
    topic = st.source if st.source in model.topics else None
    model = model.in_topic(topic)  # a topic with its own views: its variant of the model
    scope_query = SemanticQuery(
        fields=tuple({r.text: r for r in refs.values()}.values()),
        topic=topic,
        table=None if topic else st.source,
    )
    res = resolve(model, scope_query, dialect=target, viewer=viewer, require_fields=False)
    if res.missing:
        raise UnknownField(
            f'Field "{res.missing[0]}" not found: its view has no such field or grain'
        )
    by_text = {s.ref.text: s for s in res.selected}
    sel = {p: by_text[r.text] for p, r in refs.items()}
    joins = _joins_with_their_rules(res.scope, res, viewer)
    multiplied = multiplied_views(res.scope, joins)
    bases = _bases(model, res, sel.values())
    _refuse_repeated(model, st, sel, bases, multiplied, res.scope.base_view)
    inp = BuildInput(model, res, joins, multiplied, (), st.limit, st.offset, now, target, viewer)
    inp = with_lod_joins(inp)  # level of detail dimensions join the FROM
    tree, fields = _build(inp, st, sel, bases)
    return CompiledQuery(
        sql=render(tree, target),
        expression=tree,
        dialect=target,
        fields=tuple(fields),
        missing_fields=(),
        base_view=res.scope.base_view,
        topic=topic,
        joined_views=tuple(s.view for s in joins),
        deduplicated_views=(),
        limit=st.limit,
        offset=st.offset,
    )


def probe(compiled: CompiledQuery) -> CompiledQuery:
    """The same statement with one row past its LIMIT, which tells whether the LIMIT cut rows
    (the query object's ``limit`` does not bound OmniSQL, so it cannot be raised there)."""
    if compiled.limit is None:
        return compiled
    tree = compiled.expression.copy()
    assert isinstance(tree, exp.Select)
    tree.set("limit", exp.Limit(expression=exp.Literal.number(compiled.limit + 1)))
    return dataclasses.replace(
        compiled, sql=render(tree, compiled.dialect), expression=tree, limit=compiled.limit + 1
    )


def _field(text: str) -> FieldRef:
    try:
        return parse_field(text)
    except InvalidQuery:
        raise InvalidQuery(
            f"userEditedSQL: ${{{text}}} is not a field reference: write ${{view.field}} or "
            "${view.field[grain]}"
        ) from None


def _bases(model: SemanticModel, res: Resolution, selected: Iterable[Selected]) -> list[Measure]:
    """Every base measure the statement and the topic's HAVING rules aggregate."""
    out: list[Measure] = []
    measures = [s.measure for s in selected if s.measure is not None]
    measures += [s.measure for s, _ in res.having if s.measure is not None]
    for m in measures:
        out += [b for b in base_measures(model, m) if b not in out]
    out += [b for b in rule_measures(model, res.rule_having) if b not in out]
    return out


def _refuse_repeated(
    model: SemanticModel,
    st: Statement,
    sel: dict[str, Selected],
    bases: list[Measure],
    multiplied: set[str],
    base_view: str,
) -> None:
    """Refuse what a one-to-many join would count twice (the semantic path de-duplicates
    measures; here that would change the user's SQL, so it is refused by name)."""
    for m in bases:
        if m.lod is not None:
            raise NotSupported(
                f"userEditedSQL: measure {m.key} has a level_of_detail, which OmniSQL does not "
                "compute yet; ask for it with query fields, which do"
            )
        if m.view in multiplied or m.distinct_key is not None:
            raise NotSupported(
                f"userEditedSQL: measure {m.key} would be repeated by the statement's joins "
                f"(rows of {m.view!r} repeat): OmniSQL does not de-duplicate measures yet; ask "
                "for it with query fields, which does"
            )
    for agg in st.select.find_all(exp.AggFunc):
        if isinstance(agg, _REPEAT_SAFE) or (
            isinstance(agg, exp.Count) and isinstance(agg.this, exp.Distinct)
        ):
            continue
        views: set[str] = set()
        for col in agg.find_all(exp.Column):
            s = sel.get(col.name)
            if s is not None and s.measure is not None:
                raise InvalidQuery(
                    f"userEditedSQL: {st.shown(agg)} aggregates the measure "
                    f"${{{s.ref.text}}}, which is already an aggregate"
                )
            if s is not None and s.dimension is not None:
                views |= s.dimension.views_used
        if isinstance(agg, exp.Count) and not views:
            views = {base_view}  # COUNT(*): rows of the base view
        if views & multiplied:
            raise NotSupported(
                f"userEditedSQL: {agg.key.upper()} over rows of {sorted(views & multiplied)} "
                "would count rows a one-to-many join repeats; use COUNT(DISTINCT ...), a "
                "governed measure from a query's fields, or drop the fields that need the join"
            )


class _Items:
    """The output columns: a bare reference is named ``view.field`` (its alias ignored,
    repeats collapsed), an expression ``<base view>.<alias>``."""

    def __init__(self, base_view: str) -> None:
        self.base_view = base_view
        self.names: list[str] = []
        self.values: list[exp.Expr] = []
        self.fields: list[FieldMeta] = []
        self.position: dict[int, int] = {}  # the statement's 1-based position -> the output's
        self.by_alias: dict[str, int] = {}
        self.bare: set[str] = set()

    def add(
        self, at: int, name: str, value: exp.Expr, meta: FieldMeta, alias: str | None, bare: bool
    ) -> None:
        if name in self.names:
            if not (bare and name in self.bare):
                raise InvalidQuery(f"userEditedSQL: two select items are named {name!r}")
            self.position[at] = self.names.index(name) + 1
        else:
            self.names.append(name)
            self.values.append(value)
            self.fields.append(meta)
            self.position[at] = len(self.names)
            if bare:
                self.bare.add(name)
        if alias:
            self.by_alias[alias] = self.position[at]


def _build(
    inp: BuildInput, st: Statement, sel: dict[str, Selected], bases: list[Measure]
) -> tuple[exp.Select, list[FieldMeta]]:
    model = inp.model
    value_of = Values({b.key: _direct_aggregate(inp, b) for b in bases})

    def value(node: exp.Expr) -> exp.Expr:
        def swap(n: exp.Expr) -> exp.Expr:
            s = sel.get(n.name) if isinstance(n, exp.Column) else None
            if s is None:
                return n
            if s.dimension is not None:
                return dimension_value(inp, s)
            assert s.measure is not None
            return _paren(measure_value(model, s.measure, value_of))

        return node.copy().transform(swap, copy=False)

    items = _Items(inp.res.scope.base_view)
    for at, item in enumerate(st.select.expressions, start=1):
        inner = item.this if isinstance(item, exp.Alias) else item
        alias = item.alias if isinstance(item, exp.Alias) else None
        s = sel.get(inner.name) if isinstance(inner, exp.Column) else None
        if s is not None:
            items.add(at, s.ref.text, value(inner), _meta(s), alias, bare=True)
            continue
        if alias is None:
            if not (isinstance(inner, exp.Count) and isinstance(inner.this, exp.Star)):
                raise InvalidQuery(
                    f"userEditedSQL: select item {at} ({st.shown(inner)}) needs a name: add AS name"
                )
            alias = "count"
        name = f"{items.base_view}.{alias}"
        aggregated = bool(inner.find(exp.AggFunc)) or any(
            sel[c.name].measure is not None for c in inner.find_all(exp.Column) if c.name in sel
        )
        meta = FieldMeta(
            field_name=alias, view_name=items.base_view, fully_qualified_name=name, label=alias,
            data_type=None, is_dimension=not aggregated,
        )  # fmt: skip
        items.add(at, name, value(inner), meta, alias, bare=False)

    def clause(node: exp.Expr) -> exp.Expr:
        """An expression of WHERE, HAVING, GROUP BY or ORDER BY: a name of a select item
        stands for that item (never for a column of the table, as SQL engines may read it)."""

        def swap(n: exp.Expr) -> exp.Expr:
            if isinstance(n, exp.Column) and n.name not in sel:
                return items.values[items.by_alias[n.name] - 1].copy()
            return n

        return value(node.copy().transform(swap, copy=False))

    def positional(node: exp.Expr, what: str) -> exp.Expr:
        if isinstance(node, exp.Literal) and node.is_int:
            at = int(node.this)
            if at not in items.position:
                raise InvalidQuery(f"userEditedSQL: {what} {at} is not a select item")
            return exp.Literal.number(items.position[at])
        if isinstance(node, exp.Column) and node.name in items.by_alias and node.name not in sel:
            return exp.Literal.number(items.by_alias[node.name])
        return clause(node)

    select = from_and_joins(inp)
    for name, v in zip(items.names, items.values, strict=True):
        select.append("expressions", exp.Alias(this=v, alias=exp.to_identifier(name, quoted=True)))
    user_where = st.select.args.get("where")
    if user_where is not None:
        _refuse_aggregates(user_where.this, sel, "WHERE")
    where = [c for c in (_where(inp), user_where and clause(user_where.this)) if c is not None]
    if where:
        select.set("where", exp.Where(this=exp.and_(*(_paren(c) for c in where))))
    group = st.select.args.get("group")
    if group is not None:
        keys = [positional(e, "GROUP BY") for e in group.expressions]
        select.set("group", exp.Group(expressions=keys))
    user_having = st.select.args.get("having")
    if (inp.res.having or inp.res.rule_having) and not _aggregated(st, sel):
        topic = inp.res.scope.topic
        raise InvalidQuery(
            f"userEditedSQL: topic {topic.name if topic else ''!r} filters groups "
            "(always_having), so a statement on it must aggregate: add GROUP BY"
        )
    having = [
        c
        for c in (_having(inp, value_of, inp.res.having), user_having and clause(user_having.this))
        if c is not None
    ]
    if having:
        select.set("having", exp.Having(this=exp.and_(*(_paren(c) for c in having))))
    order = st.select.args.get("order")
    if order is not None:
        ordered = []
        for key in order.expressions:
            copied = key.copy()
            copied.set("this", positional(key.this, "ORDER BY"))
            ordered.append(copied)
        select.set("order", exp.Order(expressions=ordered))
    if st.limit is not None:
        select.set("limit", exp.Limit(expression=exp.Literal.number(st.limit)))
    if st.offset:
        select.set("offset", exp.Offset(expression=exp.Literal.number(st.offset)))
    return select, items.fields


def _aggregated(st: Statement, sel: dict[str, Selected]) -> bool:
    """Whether the statement makes groups (GROUP BY, an aggregate or a measure)."""
    if st.select.args.get("group") or st.select.find(exp.AggFunc):
        return True
    return any(s.measure is not None for s in sel.values())


def _refuse_aggregates(node: exp.Expr, sel: dict[str, Selected], clause: str) -> None:
    for col in node.find_all(exp.Column):
        s = sel.get(col.name)
        if s is not None and s.measure is not None:
            raise InvalidQuery(
                f"userEditedSQL: the measure ${{{s.ref.text}}} cannot be in {clause}: filter "
                "groups in HAVING"
            )
    if node.find(exp.AggFunc):
        raise InvalidQuery(f"userEditedSQL: an aggregate cannot be in {clause}: use HAVING")
