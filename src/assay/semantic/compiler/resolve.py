"""Resolve a query against a model: which view it starts from, what each field and filter
means, which joins it needs, and which measures those joins would multiply; and, for the user
it runs as, what they may name and which of the topic's row rules hold them.

What a user may not see is refused exactly as what does not exist (the same message, and
suggestions drawn only from what they may see), so a refusal tells them nothing more.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from sqlglot import exp

from assay.errors import (
    FanoutNeedsPrimaryKey,
    Forbidden,
    InvalidQuery,
    NotSupported,
    PermissionDenied,
    QueryError,
    UnknownField,
    UnknownTopic,
)
from assay.errors import did_you_mean as _did_you_mean
from assay.semantic.access import (
    Visibility,
    access_filter_condition,
    attribute_values,
    bind,
    visibility,
)
from assay.semantic.calendar import ISO, Calendar
from assay.semantic.filters import Filter, with_user_values
from assay.semantic.model import Dimension, JoinStep, Measure, SemanticModel, Topic
from assay.semantic.query import FieldRef, SemanticQuery, parse_field
from assay.semantic.templates import AttributeRef, MeasureRef
from assay.semantic.timeframes import FISCAL, GRAINS, grain_expression
from assay.semantic.viewer import QUERY_FULL_MODEL, QUERY_TOPICS, Viewer


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a query runs: a topic's join tree, or the model's relationships from a view."""

    base_view: str
    joins: Mapping[str, JoinStep]
    topic: Topic | None

    @property
    def views(self) -> list[str]:
        return [self.base_view, *self.joins]

    def path_to(self, view: str) -> list[JoinStep]:
        path: list[JoinStep] = []
        while view != self.base_view:
            step = self.joins[view]
            path.append(step)
            view = step.parent
        return path[::-1]


@dataclass(frozen=True, slots=True)
class Selected:
    """A requested field, resolved: a dimension (with its grain applied) or a measure."""

    ref: FieldRef
    dimension: Dimension | None = None
    measure: Measure | None = None
    expr: exp.Expr | None = None  # the row-level expression of a dimension
    #: shown hashed (``mask_unless_access_grants``: the user lacks the grant)
    masked: bool = False
    #: the weeks and fiscal years of a dimension's grains and date filters
    calendar: Calendar = ISO

    @property
    def alias(self) -> str:
        return self.ref.text


@dataclass
class Resolution:
    scope: Scope
    selected: list[Selected] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    where: list[tuple[Selected, Filter]] = field(default_factory=list)
    having: list[tuple[Selected, Filter]] = field(default_factory=list)
    #: OR-groups of WHERE filters (MULTI_FIELD_FILTER controls), each ANDed with the rest
    where_any: list[list[tuple[Selected, Filter]]] = field(default_factory=list)
    views: set[str] = field(default_factory=set)
    #: the model's own row rules (access filters, always_*_sql, where_sql), bound to the user
    rule_where: list[exp.Expr] = field(default_factory=list)
    #: the topic's always_*_filters among ``where``: rules too, which a level of detail's
    #: cancel_query_filters (it drops the query's filters) keeps
    rule_filters: list[tuple[Selected, Filter]] = field(default_factory=list)
    rule_having: list[exp.Expr] = field(default_factory=list)  # over MeasureRef nodes
    #: what sorting by a selected dimension sorts by (its ``order_by_field``), by alias
    sort_keys: dict[str, Selected] = field(default_factory=dict)


def resolve_scope(
    model: SemanticModel,
    query: SemanticQuery,
    viewer: Viewer | None = None,
    vis: Visibility | None = None,
) -> Scope:
    if query.topic:
        topic = model.topics.get(query.topic)
        if topic is None or (vis is not None and not vis.topic(model, topic)):
            seen = [n for n, t in model.topics.items() if vis is None or vis.topic(model, t)]
            hint = _did_you_mean(query.topic, seen)
            raise UnknownTopic(f"No such topic {query.topic!r} in model {model.name!r}.{hint}")
        if query.table and (
            query.table not in topic.views or not _view_visible(model, query.table, vis)
        ):
            raise UnknownTopic(
                f"View {query.table!r} is not part of topic {topic.name!r}; "
                f"its base view is {topic.base_view!r}"
            )
        return Scope(topic.base_view, topic.joins, topic)
    if viewer is not None and not viewer.may(QUERY_FULL_MODEL):
        raise PermissionDenied(
            "Permission denied - your role on this model queries through topics only: "
            "name one with join_paths_from_topic_name"
        )
    base = query.table or (query.fields[0].view if query.fields else None)
    if base is None:
        raise InvalidQuery("The query needs fields, and a table or join_paths_from_topic_name")
    if base not in model.views or not _view_visible(model, base, vis):
        seen = [v for v in model.views if _view_visible(model, v, vis)]
        seen += [n for n, t in model.topics.items() if vis is None or vis.topic(model, t)]
        raise UnknownTopic(f'No such view "{base}".{_did_you_mean(base, seen)}')
    if _held_by_row_rules(model, viewer):
        raise Forbidden(
            f"Model {model.name!r} has row-level access rules for you, which apply through "
            "its topics: query through a topic (join_paths_from_topic_name)"
        )
    return Scope(base, _relationship_tree(model, base), None)


def _held_by_row_rules(model: SemanticModel, viewer: Viewer | None) -> bool:
    """Whether some topic's row rules restrict this user: a query without a topic would skip
    them. An access filter does unless the user holds one of its unfiltered values;
    ``always_where_sql`` and ``always_having_sql`` always do."""
    for topic in model.topics.values():
        if topic.always_where is not None or topic.always_having is not None:
            return True
        for f in topic.access_filters:
            values = viewer.values(f.attribute) if viewer is not None else ()
            if f.unfiltered.isdisjoint(values):
                return True
    return False


def _view_visible(model: SemanticModel, name: str, vis: Visibility | None) -> bool:
    return vis is None or vis.view(model.views[name])


@lru_cache(maxsize=256)
def _relationship_tree(model: SemanticModel, base: str) -> Mapping[str, JoinStep]:
    """Without a topic, every view reachable through relationships, by the shortest path."""
    joins: dict[str, JoinStep] = {}
    queue = deque([base])
    while queue:
        view = queue.popleft()
        for rel in model.relationships:
            for oriented in (rel, rel.reversed()):
                if oriented.left == view and oriented.right not in joins and oriented.right != base:
                    joins[oriented.right] = JoinStep(view, oriented.right, oriented)
                    queue.append(oriented.right)
    return joins


def resolve(
    model: SemanticModel,
    query: SemanticQuery,
    *,
    dialect: str,
    viewer: Viewer | None = None,
    require_fields: bool = True,
) -> Resolution:
    """``require_fields``: refuse a query that selects no field (OmniSQL may select only
    ``COUNT(*)``, and still holds the topic's rules)."""
    if viewer is not None and not viewer.may(QUERY_TOPICS):
        raise PermissionDenied("Permission denied - querier role required on the model")
    vis = visibility(model, viewer)
    scope = resolve_scope(model, query, viewer, vis)
    res = Resolution(scope)
    for ref in query.fields:
        sel = _select(model, scope, ref, dialect=dialect, for_query=True, vis=vis)
        if sel is None:
            res.missing.append(ref.text)
        else:
            res.selected.append(sel)
    if require_fields and not res.selected:
        raise InvalidQuery(
            "The query selects no valid field"
            + (f" (dropped: {', '.join(res.missing)})" if res.missing else "")
        )
    filtered: set[str] = set()
    for ref, flt in query.filters:
        sel = _select(model, scope, ref, dialect=dialect, for_query=False, vis=vis)
        if sel is None:
            raise InvalidQuery(f"Filter on {ref.text!r}: that grain does not exist for the field")
        filtered.add(ref.key)
        _add_filter(model, res, sel, _users_own(flt, viewer, ref.text))
    for group in query.keys.filter_groups:
        res.where_any.append([])
        for ref, flt in group:
            sel = _select(model, scope, ref, dialect=dialect, for_query=False, vis=vis)
            if sel is None or sel.measure is not None:
                raise NotSupported(
                    f"query.controls: {ref.text!r} cannot be in a MULTI_FIELD_FILTER: "
                    + ("that grain does not exist for the field" if sel is None else
                       "filters on measures are not supported there; put it in query.filters")
                )  # fmt: skip
            res.where_any[-1].append((sel, _users_own(flt, viewer, ref.text)))
            res.views |= _views_of(model, sel)
    topic = scope.topic
    if topic is not None:
        defaults = [(f, flt) for f, flt in topic.default_filters if f not in filtered]
        rules = [*topic.always_where_filters, *topic.always_having_filters]
        for key, flt in [*topic.always_where_filters, *defaults, *topic.always_having_filters]:
            sel = _select(model, scope, parse_field(key), dialect=dialect, for_query=False)
            if sel is not None:
                _add_filter(model, res, sel, flt)
                if sel.dimension is not None and any(flt is f for _, f in rules):
                    res.rule_filters.append((sel, flt))
        _topic_rules(model, res, topic, viewer)
    for sel in res.selected:
        res.views |= _views_of(model, sel)
        sort_key = _sort_key(model, sel, vis)
        if sort_key is not None:
            res.sort_keys[sel.alias] = sort_key
    return res


def _sort_key(model: SemanticModel, sel: Selected, vis: Visibility | None) -> Selected | None:
    """The dimension a selected one sorts by (``order_by_field``; same view, no grain). Not
    when the user may not see it, or sees it hashed: its order would tell what they may not
    know, and a hash's order is no order; the dimension then sorts by its own values."""
    dim = sel.dimension
    if dim is None or dim.order_by is None or sel.ref.grain is not None:
        return None
    view = model.views[dim.view]
    target = view.dimensions[dim.order_by]
    hidden = vis is not None and not vis.field(view, target)
    hashed = vis is not None and target.mask is not None and not target.mask.holds(vis.granted)
    if hidden or hashed:
        return None
    ref = FieldRef(target.key, target.view, target.name, None)
    return Selected(ref, dimension=target, expr=target.expr, calendar=sel.calendar)


def _users_own(flt: Filter, viewer: Viewer | None, field: str) -> Filter:
    """A query filter with its ``user_attribute`` parts bound to the user's values."""
    where = f"the filter on {field}"
    return with_user_values(flt, lambda name: attribute_values(viewer, name, where))


def _topic_rules(
    model: SemanticModel, res: Resolution, topic: Topic, viewer: Viewer | None
) -> None:
    """The topic's access filters and always-applied SQL, as this user's conditions. An
    access filter's view is joined even when the query selects nothing from it."""
    for f in topic.access_filters:
        view, _, name = f.field.partition(".")
        dim = model.views[view].dimensions[name]
        cond = access_filter_condition(f, dim.expr, viewer, topic.name)
        if cond is not None:
            res.rule_where.append(bound(cond, viewer, f"the access filter on {f.field}"))
            res.views |= dim.views_used
    where = topic.always_where
    if where is not None:
        res.rule_where.append(
            bound(where.tree, viewer, f"always_where_sql of topic {topic.name!r}")
        )
        res.views |= where.views_used
    having = topic.always_having
    if having is not None:
        tree = bound(having.tree, viewer, f"always_having_sql of topic {topic.name!r}")
        res.rule_having.append(tree)
        for m in rule_measures(model, [tree]):
            res.views |= m.views_used


def bound(tree: exp.Expr, viewer: Viewer | None, where: str) -> exp.Expr:
    """``tree`` with the user's attribute values in place (a copy either way: the model's
    trees are shared by every query)."""
    return bind(tree, viewer, where) if tree.find(AttributeRef) else tree.copy()


def rule_measures(model: SemanticModel, trees: Iterable[exp.Expr]) -> list[Measure]:
    """The base measures the HAVING rules read."""
    out: list[Measure] = []
    for tree in trees:
        for ref in tree.find_all(MeasureRef):
            for m in base_measures(model, model.measure(ref.measure_key)):
                if m not in out:
                    out.append(m)
    return out


def _add_filter(model: SemanticModel, res: Resolution, sel: Selected, flt: Filter) -> None:
    """A filter on a measure is a HAVING condition; on a dimension, a WHERE condition."""
    (res.having if sel.measure is not None else res.where).append((sel, flt))
    res.views |= _views_of(model, sel)


def _views_of(model: SemanticModel, sel: Selected) -> frozenset[str]:
    if sel.dimension is not None:
        return sel.dimension.views_used
    assert sel.measure is not None
    return frozenset().union(*(m.views_used for m in base_measures(model, sel.measure)))


def base_measures(model: SemanticModel, measure: Measure) -> list[Measure]:
    """The aggregate measures behind ``measure`` (itself, or those a derived one combines)."""
    if measure.derived is None:
        return [measure]
    out: list[Measure] = []
    for ref in measure.derived.find_all(MeasureRef):
        for m in base_measures(model, model.measure(ref.measure_key)):
            if m not in out:
                out.append(m)
    return out


def _select(
    model: SemanticModel,
    scope: Scope,
    ref: FieldRef,
    *,
    dialect: str,
    for_query: bool,
    vis: Visibility | None = None,
) -> Selected | None:
    """Resolve one field reference; ``None`` when only its grain is invalid (a missing field).
    ``vis``: what the user may name (None: the model's own rules, which may name anything)."""
    view = model.views.get(ref.view)
    if view is not None and vis is not None and not vis.view(view):
        view = None  # a view the user may not see is, for them, no view at all
    if view is None or ref.view not in scope.views:
        candidates = _visible_fields(model, scope.views, vis)
        where = f"topic {scope.topic.name!r}" if scope.topic else f"view {scope.base_view!r}"
        if view is None:
            raise UnknownField(
                f'No such field "{ref.key}": no view "{ref.view}".'
                + _did_you_mean(ref.key, candidates)
            )
        raise UnknownField(
            f'Field "{ref.key}" is not available from {where}: view '
            f'"{ref.view}" is not joined there.' + _did_you_mean(ref.key, candidates)
        )
    dim = view.dimensions.get(ref.name)
    measure = view.measures.get(ref.name)
    item: Dimension | Measure | None = dim if dim is not None else measure
    if item is None or (vis is not None and not vis.field(view, item)):
        candidates = _visible_fields(model, [ref.view], vis)
        hint = _elsewhere(model, scope, ref.name, vis) or _did_you_mean(ref.key, candidates)
        raise UnknownField(f'No such field "{ref.key}".{hint}')
    topic = scope.topic
    tags = item.tags
    if topic is not None and not topic.exposes(ref.view, ref.name, tags):
        raise UnknownField(f'Field "{ref.key}" is not exposed by topic "{topic.name}"')
    if measure is not None:
        return None if ref.grain else Selected(ref, measure=measure)
    assert dim is not None
    masked = vis is not None and dim.mask is not None and not dim.mask.holds(vis.granted)
    calendar = model.calendar_of(dim, topic)
    if dim.durations is not None and ref.grain is not None:
        duration = dim.duration(ref.grain)
        if duration is None:
            return None  # not one of its intervals: a missing field, as an unknown grain
        expr = duration
    elif ref.grain is None:
        expr = dim.expr
    elif not _has_grain(model, dim, ref.grain):
        return None
    else:
        expr = grain_expression(dim.expr, ref.grain, dialect, calendar)
    if masked:  # the values, and every filter on them, become their hashes for this user
        text = exp.Cast(this=expr.copy(), to=exp.DataType.build("text"))
        expr = exp.MD5(this=text)
    return Selected(ref, dimension=dim, expr=expr, masked=masked, calendar=calendar)


def _has_grain(model: SemanticModel, dim: Dimension, grain: str) -> bool:
    """Omni's fiscal grains exist only in a model with a fiscal_month_offset."""
    if grain not in GRAINS or (grain in FISCAL and not model.fiscal):
        return False
    if dim.timeframes is not None:
        return grain in dim.timeframes or grain == "raw"
    return dim.data_type in (None, "TIMESTAMP")


def _visible_fields(
    model: SemanticModel, views: Iterable[str], vis: Visibility | None
) -> list[str]:
    out = []
    for name in views:
        v = model.views[name]
        if vis is not None and not vis.view(v):
            continue
        items: list[Dimension | Measure] = [*v.dimensions.values(), *v.measures.values()]
        out += [f"{name}.{i.name}" for i in items if vis is None or vis.field(v, i)]
    return out


def _elsewhere(model: SemanticModel, scope: Scope, name: str, vis: Visibility | None) -> str:
    """The same field name on another view in scope: the likeliest fix for a wrong view."""
    exact = [p for p in _visible_fields(model, scope.views, vis) if p.endswith(f".{name}")]
    return f' Did you mean "{exact[0]}"?' if exact else ""


# ---------------------------------------------------------------- joins and fan-out


def needed_joins(scope: Scope, views: Iterable[str]) -> list[JoinStep]:
    """The join steps that reach ``views`` from the base, parents before children."""
    wanted: set[str] = set()
    for view in views:
        if view == scope.base_view:
            continue
        if view not in scope.joins:
            where = f"topic {scope.topic.name!r}" if scope.topic else f"view {scope.base_view!r}"
            raise QueryError(f"The query needs view {view!r}, which {where} does not join")
        wanted.update(step.view for step in scope.path_to(view))
    return [step for v, step in scope.joins.items() if v in wanted]


def multiplied_views(scope: Scope, joins: list[JoinStep]) -> set[str]:
    """Views whose rows the joins repeat, so their measures would be over-counted.

    For each join edge parent -> child: a to-many edge repeats every row on the parent's side;
    a many-to-one edge repeats every row on the child's side (the child's subtree).
    """
    joined = [scope.base_view, *(s.view for s in joins)]
    below: dict[str, set[str]] = {v: {v} for v in joined}
    for step in reversed(joins):  # children come after parents, so fold upwards
        below[step.parent] |= below[step.view]
    out: set[str] = set()
    for step in joins:
        rel = step.relationship
        side = below[step.view]
        if rel.multiplies_left:
            out |= set(joined) - side
        if rel.multiplies_right:
            out |= side
    return out


def check_fanout(model: SemanticModel, measures: Iterable[Measure], multiplied: set[str]) -> None:
    for m in measures:
        if m.distinct_key is not None:
            continue  # de-duplicated on its own key
        if m.view in multiplied and model.views[m.view].primary_key is None:
            raise FanoutNeedsPrimaryKey(
                f"Measure {m.key} would be over-counted: the query's joins repeat rows of view "
                f"{m.view!r}, and {m.view!r} has no primary_key to count each row once. Add "
                f"primary_key: true to a unique dimension of {m.view!r}, or drop the fields that "
                "need the one-to-many join."
            )
