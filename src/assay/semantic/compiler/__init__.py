"""Compile a semantic query against a model into SQL for a dialect.

resolve (scope, fields, filters) -> joins (only those needed) -> fan-out check -> build
(sqlglot tree) -> render. Model SQL was parsed once at load time; compiling copies trees.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlglot import exp

from assay.errors import InvalidQuery, UnknownField
from assay.semantic.access import visibility
from assay.semantic.compiler.build import BuildInput, build, render
from assay.semantic.compiler.calcs import PivotCells, calculate
from assay.semantic.compiler.fill_plan import fill
from assay.semantic.compiler.join_via import reroute
from assay.semantic.compiler.lod_dims import with_lod_joins
from assay.semantic.compiler.pivot import COL_NUM, ROW_NUM, pivot_columns, pivoted
from assay.semantic.compiler.resolve import (
    Resolution,
    Scope,
    Selected,
    base_measures,
    bound,
    check_fanout,
    multiplied_views,
    needed_joins,
    resolve,
    rule_measures,
)
from assay.semantic.compiler.totals import INDICATOR, build_with_totals
from assay.semantic.compiler.transpose import check_transposable, transpose, transposed_meta
from assay.semantic.compiler.ungrouped import ungroup, ungroups
from assay.semantic.model import JoinStep, SemanticModel
from assay.semantic.query import SemanticQuery, parse_query
from assay.semantic.timeframes import grain_type
from assay.semantic.timezones import localized
from assay.semantic.viewer import Viewer

DIALECTS = ("duckdb", "postgres", "mysql", "snowflake", "bigquery", "trino", "spark")


@dataclass(frozen=True, slots=True)
class FieldMeta:
    """What ``summary.fields`` says about one output column."""

    field_name: str
    view_name: str
    fully_qualified_name: str
    label: str
    data_type: str | None
    is_dimension: bool
    aggregate_type: str | None = None
    date_type: str | None = None
    format: str | None = None
    description: str | None = None
    hidden: bool = False
    is_calc: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = {
            "field_name": self.field_name,
            "view_name": self.view_name,
            "fully_qualified_name": self.fully_qualified_name,
            "label": self.label,
            "data_type": self.data_type,
            "is_dimension": self.is_dimension,
            "is_calc": self.is_calc,
            "aggregate_type": self.aggregate_type,
            "date_type": self.date_type,
            "format": self.format,
            "description": self.description,
            "hidden": self.hidden,
        }
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    sql: str
    expression: exp.Expr
    dialect: str
    fields: tuple[FieldMeta, ...]
    missing_fields: tuple[str, ...]
    base_view: str
    topic: str | None
    joined_views: tuple[str, ...]
    deduplicated_views: tuple[str, ...]
    limit: int | None
    offset: int
    #: what the summary warns of (a fill not made, and why)
    warnings: tuple[str, ...] = ()
    #: table calculations that cannot be evaluated, and why (their cells show #ERROR!)
    invalid_calculations: Mapping[str, str] = field(default_factory=dict)
    calculated: bool = False  # has table calculations: they see only the rows shown
    #: result columns after the fields (``$omni_`` helpers, not in ``summary.fields``)
    helper_columns: tuple[str, ...] = ()
    #: the column whose values are kinds of rows (detail rows NULL) that ``limit`` counts
    #: separately: it cuts each kind, and ``row_limit_reached`` says whether detail rows were cut
    limit_per: str | None = None
    #: pivot fields: ``limit`` counts pivot rows, and two ``$omni_pivot_*`` columns follow
    pivots: tuple[str, ...] = ()
    #: measures totalled across each pivot row (a ``$omni_row_total_indicator`` column follows)
    row_totals: tuple[str, ...] = ()
    #: how many measures ``transposed_measures`` turns into rows (each query row: that many)
    transposed: int = 0
    # the pretty SQL once generated: a compiled query is cached and shown in the summary of
    # every run of it, and generating it (about 0.2 ms) would otherwise be paid on each
    _pretty: list[str] = field(default_factory=list, init=False, compare=False, repr=False)

    @property
    def columns(self) -> list[str]:
        names = [f.fully_qualified_name for f in self.fields]
        pivot = pivot_columns(self.row_totals) if self.pivots else ()
        return [*names, *self.helper_columns, *pivot]

    @property
    def row_cap(self) -> int | None:
        """The most SQL rows to keep; None when the SQL bounds them itself (a pivoted query
        limits pivot rows, each of several cells)."""
        if self.pivots or self.limit is None:
            return None
        return self.limit * max(1, self.transposed)

    def pretty_sql(self) -> str:
        if not self._pretty:
            tree = localized(self.expression, self.dialect)
            self._pretty.append(tree.sql(dialect=self.dialect, pretty=True))
        return self._pretty[0]


def compile_query(
    model: SemanticModel,
    query: SemanticQuery | Mapping[str, Any],
    *,
    dialect: str | None = None,
    now: datetime | None = None,
    default_limit: int = 1000,
    viewer: Viewer | None = None,
    calc_rows: int | None = None,
) -> CompiledQuery:
    """Compile ``query`` (Omni query JSON or a parsed ``SemanticQuery``) to SQL, as ``viewer``.

    Raises ``QueryError`` subclasses (PLAN errors) naming the problem; an invalid grain is not
    an error but lands in ``missing_fields``, as Omni does. The query is governed as
    ``viewer`` (their grants, access filters and attribute values; ``PermissionDenied`` when
    their role may not run it). Without a viewer it runs as no one: a model's access rules
    then refuse it, since no one holds a grant or an attribute value. A model cut for one user
    (``semantic.access.visible_model``) compiles as that user against the whole model.
    ``calc_rows``: table calculations see only the first that many rows (for the job
    runner's probe, which fetches a row past the limit); such compiles are not cached.
    """
    if model.source is not None:
        viewer = viewer or model.viewer
        model = model.source
    # A topic with its own views compiles against its variant of the model (own caches too).
    model = model.in_topic(
        query.get("join_paths_from_topic_name") if isinstance(query, Mapping) else query.topic
    )
    target = dialect or model.dialect
    if calc_rows is not None:
        q = parse_query(query) if isinstance(query, Mapping) else query
        return _compile(model, q, target, now or _clock(model), default_limit, viewer, calc_rows)
    if isinstance(query, Mapping):
        when = now or _clock(model)
        key = _cache_key(model, query, target, default_limit, when, viewer)
        if key is not None:
            hit = _CACHE.get(model, key)
            if hit is None:
                hit = _compile(model, parse_query(query), target, when, default_limit, viewer)
                _CACHE.put(model, key, hit)
            return hit
        return _compile(model, parse_query(query), target, when, default_limit, viewer)
    return _compile(model, query, target, now or _clock(model), default_limit, viewer)


def _clock(model: SemanticModel) -> datetime:
    """Now, as relative dates ("today", "last 7 days") read it: wall time in the model's query
    zone (else its database zone) when it sets ``timezone``, else the server's clock."""
    return model.zones.now() if model.zones is not None else datetime.now()


def _cache_key(
    model: SemanticModel,
    query: Mapping[str, Any],
    dialect: str,
    limit: int,
    now: datetime,
    viewer: Viewer | None,
) -> str | None:
    """Key of a repeated query, or None when it cannot be keyed (not JSON-serialisable).

    A query whose filters could read the clock is keyed to the minute, so "last 30 days"
    never serves yesterday's dates. On a model with access rules the key holds what of the
    user the rules read (their role and those attribute values): users alike share entries.
    """
    try:
        text = json.dumps(query, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    clock = now.strftime("%Y%m%d%H%M") if model.clock_filters or '"date"' in text else ""
    who = viewer.resolved_role if viewer is not None else "-"
    if viewer is not None and '"user_attribute"' in text:  # a filter on the user's values
        who = viewer.fingerprint(viewer.attributes)
    elif model.governed:
        who = viewer.fingerprint(model.attributes_used) if viewer is not None else "-"
    return f"{dialect}|{limit}|{clock}|{who}|{text}"


class _CompileCache:
    """A small LRU of compiled queries per model (a model is immutable, so no invalidation)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()

    def get(self, model: SemanticModel, key: str) -> CompiledQuery | None:
        with self._lock:
            entries = model.compiled
            hit = entries.get(key)
            if hit is not None:
                entries.move_to_end(key)
            return hit

    def put(self, model: SemanticModel, key: str, value: CompiledQuery) -> None:
        with self._lock:
            model.compiled[key] = value
            while len(model.compiled) > self.size:
                model.compiled.popitem(last=False)


_CACHE = _CompileCache(1024)


def _compile(
    model: SemanticModel,
    q: SemanticQuery,
    target: str,
    now: datetime,
    default_limit: int,
    viewer: Viewer | None,
    calc_rows: int | None = None,
) -> CompiledQuery:
    if target not in DIALECTS:
        raise InvalidQuery(f"Unknown dialect {target!r}: expected one of {', '.join(DIALECTS)}")
    if q.sql is not None:  # OmniSQL: SQL over the model's fields, governed the same way
        from assay.semantic.compiler.omnisql import compile_omnisql  # noqa: PLC0415 (it builds on this module)

        return compile_omnisql(model, q, target, now, viewer)
    res = resolve(model, q, dialect=target, viewer=viewer)
    if q.keys.join_via_map:
        res.scope = reroute(model, res.scope, q.keys.join_via_map, visibility(model, viewer))
    transposed = q.keys.transposed_measures
    if transposed:
        check_transposable(res.selected, transposed)
    aliases = {s.alias for s in res.selected}
    sorts = tuple(s for s in q.sorts if s.field in aliases)
    for s in q.sorts:
        if s.field not in aliases and s.field not in res.missing:
            raise UnknownField(
                f'Cannot sort by "{s.field}": sorts must name a field of the query '
                f"({', '.join(sorted(aliases))})"
            )
    joins = _joins_with_their_rules(res.scope, res, viewer)
    multiplied = multiplied_views(res.scope, joins)
    measured = [*res.selected, *(sel for sel, _ in res.having)]
    measures = [b for s in measured if s.measure for b in base_measures(model, s.measure)]
    measures += rule_measures(model, res.rule_having)
    check_fanout(model, measures, multiplied)
    topic = res.scope.topic
    limit = (
        q.limit
        if q.limit_given
        else (
            (topic.default_row_limit if topic else None) or model.default_row_limit or default_limit
        )
    )
    inp = BuildInput(model, res, joins, multiplied, sorts, limit, q.offset, now, target, viewer)
    inp = with_lod_joins(inp)  # level of detail dimensions join the FROM
    helpers: tuple[str, ...] = ()
    warnings: list[str] = []

    def filled(base: exp.Select) -> exp.Select:
        done = fill(base, res, q.fill_fields, model=model, now=now, viewer=viewer)
        warnings.extend(done.warnings)
        return done.tree

    tree: exp.Expr
    if q.pivots:
        fill_base = filled if q.fill_fields else None
        tree = pivoted(inp, q.pivots, q.column_limit, q.row_totals, fill_base)
    elif q.column_totals is None:
        tree = build(inp)
        if ungroups(q, res):
            tree = ungroup(tree)
        if q.fill_fields:
            assert isinstance(tree, exp.Select)
            tree = filled(tree)
    else:
        totals = build_with_totals(inp, q.column_totals)
        tree, helpers = totals.tree, totals.helper_columns
    fields = tuple(_meta(s) for s in res.selected)
    invalid: dict[str, str] = {}
    if q.calculations:
        aliases_in_order = [s.alias for s in res.selected]
        cells = PivotCells(ROW_NUM, COL_NUM, q.column_limit) if q.pivots else None
        calc = calculate(tree, q.calculations, q.columns, aliases_in_order, res.missing,
                         offset=q.offset, window_rows=calc_rows, dialect=target,
                         pivot=cells)  # fmt: skip
        tree, invalid = calc.tree, calc.invalid
        metas = {f.fully_qualified_name: f for f in fields}
        fields = tuple(metas.get(c) or _calc_meta(q, c) for c in calc.columns)
    if transposed:
        assert isinstance(tree, exp.Select)
        tree = transpose(tree, [s.alias for s in res.selected], transposed, target)
        fields = transposed_meta(fields, transposed)
    return CompiledQuery(
        sql=render(tree, target),
        expression=tree,
        dialect=target,
        fields=fields,
        missing_fields=tuple(res.missing),
        base_view=res.scope.base_view,
        topic=topic.name if topic else None,
        joined_views=tuple(s.view for s in joins),
        deduplicated_views=tuple(sorted({m.view for m in measures} & multiplied)),
        limit=limit,
        offset=q.offset,
        warnings=tuple(warnings),
        invalid_calculations=invalid,
        calculated=bool(q.calculations),
        helper_columns=helpers,
        limit_per=INDICATOR if helpers else None,
        pivots=q.pivots,
        row_totals=q.row_totals,
        transposed=len(transposed),
    )


def _joins_with_their_rules(scope: Scope, res: Resolution, viewer: Viewer | None) -> list[JoinStep]:
    """The joins the query needs, and each one's ``where_sql`` as a condition: a join's
    condition may read further views, which then join too."""
    joins = needed_joins(scope, res.views)
    while True:
        wanted = set(res.views)
        for step in joins:
            if step.relationship.where is not None:
                wanted |= step.relationship.where.views_used
        if wanted <= res.views:
            break
        res.views |= wanted
        joins = needed_joins(scope, res.views)
    for step in joins:
        where = step.relationship.where
        if where is not None:
            rel = step.relationship
            res.rule_where.append(
                bound(where.tree, viewer, f"where_sql of the join {rel.left} -> {rel.right}")
            )
    return joins


def _meta(sel: Selected) -> FieldMeta:
    ref = sel.ref
    name = ref.name + (f"[{ref.grain}]" if ref.grain else "")
    if sel.dimension is not None:
        d = sel.dimension
        grain = ref.grain
        label = (
            d.label
            if not grain or grain == "raw"
            else f"{d.label} {grain.replace('_', ' ').title()}"
        )
        data_type = grain_type(grain) if grain else d.data_type
        date_type = grain.upper() if grain else None
        if d.durations is not None:  # whole days, weeks ...: a number, not a date grain
            data_type, date_type = "NUMBER", None
        return FieldMeta(
            field_name=name, view_name=ref.view, fully_qualified_name=ref.text, label=label,
            data_type=data_type, is_dimension=True, date_type=date_type, format=d.format,
            description=d.description, hidden=d.hidden,
        )  # fmt: skip
    m = sel.measure
    assert m is not None
    return FieldMeta(
        field_name=name, view_name=ref.view, fully_qualified_name=ref.text, label=m.label,
        data_type=m.data_type, is_dimension=False, aggregate_type=m.aggregate_type,
        format=m.format, description=m.description, hidden=m.hidden,
    )  # fmt: skip


def _calc_meta(q: SemanticQuery, name: str) -> FieldMeta:
    c = next(c for c in q.calculations if c.name == name)
    return FieldMeta(
        field_name=name, view_name="", fully_qualified_name=name, label=c.label or name,
        data_type=None, is_dimension=False, format=c.format, description=c.description,
        is_calc=True,
    )  # fmt: skip
