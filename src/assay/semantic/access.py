"""What one user may see of a model, and which of its rows.

- ``granted``/``Visibility``: the access grants a user holds, and so which topics, views and
  fields they may see (``required_access_grants``; a topic also needs its base view).
- ``visible_model``: the model as that user sees it, for everything that shows or reads the
  model (topic payloads, the AI planner's vocabulary and prompts): what they may not see is
  absent, and a field an access filter restricts offers only the user's own values.
- ``bind``: ``{{ omni_attributes.NAME }}`` nodes replaced by the user's values as literals.
- ``access_filter_condition``: a topic's row filter for this user, as a predicate.

A missing value is never guessed: a rule that needs an attribute the user has no value for
refuses the query (``Forbidden``), naming the attribute, rather than return all rows or none.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlglot import exp

from assay.errors import Forbidden
from assay.semantic.model import (
    AccessFilter,
    Dimension,
    JoinStep,
    Measure,
    SemanticModel,
    Topic,
    View,
)
from assay.semantic.query import FIELD
from assay.semantic.templates import AttributeRef
from assay.semantic.viewer import Viewer

VARIANTS_PER_MODEL = 64
_variants_lock = threading.Lock()


def granted(model: SemanticModel, viewer: Viewer | None) -> frozenset[str]:
    """The model's access grants ``viewer`` holds: any of their values is allowed."""
    if viewer is None:
        return frozenset()
    return frozenset(
        g.name
        for g in model.grants.values()
        if not g.allowed.isdisjoint(viewer.values(g.attribute))
    )


@dataclass(frozen=True, slots=True)
class Visibility:
    """Which topics, views and fields a user may see and name in a query."""

    granted: frozenset[str]

    def view(self, view: View) -> bool:
        return view.grants.holds(self.granted)

    def field(self, view: View, item: Dimension | Measure) -> bool:
        return self.view(view) and item.grants.holds(self.granted)

    def topic(self, model: SemanticModel, topic: Topic) -> bool:
        base = model.views.get(topic.base_view)
        return topic.grants.holds(self.granted) and base is not None and self.view(base)


def visibility(model: SemanticModel, viewer: Viewer | None) -> Visibility | None:
    """None when the model has no access rules at all (everything is visible)."""
    if not model.governed:
        return None
    return Visibility(granted(model, viewer))


# ---------------------------------------------------------------- binding attributes


def bind(tree: exp.Expr, viewer: Viewer | None, where: str) -> exp.Expr:
    """A copy of ``tree`` with every user attribute replaced by the user's value as a literal
    (a list, inside ``IN (...)``). ``Forbidden`` when the user has no value, or several where
    the SQL takes one."""
    tree = tree.copy()
    for node in list(tree.find_all(exp.In)):
        items = node.expressions
        if any(isinstance(e, AttributeRef) for e in items):
            expanded: list[exp.Expr] = []
            for e in items:
                if isinstance(e, AttributeRef):
                    expanded.extend(
                        _literal(viewer, e.attribute, v)
                        for v in attribute_values(viewer, e.attribute, where)
                    )
                else:
                    expanded.append(e)
            node.set("expressions", expanded)

    def swap(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, AttributeRef):
            return node
        values = attribute_values(viewer, node.attribute, where)
        if len(values) > 1:
            raise Forbidden(
                f'User attribute "{node.attribute}" has {len(values)} values for this user, '
                f"and {where} takes one: the model can use a multi-valued attribute inside "
                f"IN ({{{{ omni_attributes.{node.attribute} }}}})"
            )
        return _literal(viewer, node.attribute, values[0])

    return tree.transform(swap, copy=False)


def has_attributes(tree: exp.Expr) -> bool:
    return tree.find(AttributeRef) is not None


def attribute_values(viewer: Viewer | None, attribute: str, where: str) -> tuple[str, ...]:
    """The user's values of ``attribute``; ``Forbidden`` when there are none."""
    values = viewer.values(attribute) if viewer is not None else ()
    if not values:
        raise Forbidden(
            f'User attribute "{attribute}" has no value for this user, and {where} needs it: '
            "set it for the user (SCIM, or assay users set) or give the attribute a default"
        )
    return values


def _literal(viewer: Viewer | None, attribute: str, value: str) -> exp.Expr:
    if viewer is not None and attribute in viewer.numeric:
        return exp.Literal.number(value)
    return exp.Literal.string(value)


def access_filter_condition(
    f: AccessFilter, target: exp.Expr, viewer: Viewer | None, topic: str
) -> exp.Expr | None:
    """The WHERE predicate ``f`` puts on this user's rows; None when a value of theirs is one
    of ``values_for_unfiltered``."""
    values = attribute_values(
        viewer, f.attribute, f"the access filter on {f.field} in topic {topic!r}"
    )
    if not f.unfiltered.isdisjoint(values):
        return None
    literals = [_literal(viewer, f.attribute, v) for v in values]
    if f.wildcards:
        return exp.or_(*(exp.Like(this=target.copy(), expression=lit) for lit in literals))
    if len(literals) == 1:
        return exp.EQ(this=target.copy(), expression=literals[0])
    return exp.In(this=target.copy(), expressions=literals)


# ---------------------------------------------------------------- the model as a user sees it


def visible_model(model: SemanticModel, viewer: Viewer | None) -> SemanticModel:
    """``model`` as ``viewer`` sees it: what they may not see removed, access-filtered fields
    offering only their values. Compiling against it compiles against the whole model as
    that user (``compile_query`` follows ``source``). Variants are kept per model for users
    who would see the same thing."""
    model = model.source or model
    if not model.governed:
        return model
    key = viewer.fingerprint(model.attributes_used) if viewer is not None else ""
    with _variants_lock:
        hit = model.variants.get(key)
        if hit is not None:
            model.variants.move_to_end(key)
            return hit  # type: ignore[no-any-return]
    variant = _cut(model, viewer)
    with _variants_lock:
        model.variants[key] = variant
        while len(model.variants) > VARIANTS_PER_MODEL:
            model.variants.popitem(last=False)
    return variant


def in_topic(model: SemanticModel, topic: str) -> SemanticModel:
    """``model`` (whole, or as one user sees it) as queries through ``topic`` see it: the
    topic's variant when it has views of its own (``SemanticModel.topic_models``), cut for
    the same user."""
    variant = model.in_topic(topic)
    if variant is (model.source or model):
        return model
    return visible_model(variant, model.viewer) if model.source is not None else variant


def _cut(model: SemanticModel, viewer: Viewer | None) -> SemanticModel:
    vis = Visibility(granted(model, viewer))
    topics_seen = [t for t in model.topics.values() if vis.topic(model, t)]
    allowed = _offered_values(model, topics_seen, viewer)
    views: dict[str, View] = {}
    for v in model.views.values():
        if not vis.view(v):
            continue
        dims = {
            n: _restricted(d, allowed.get(d.key))
            for n, d in v.dimensions.items()
            if vis.field(v, d)
        }
        measures = {n: m for n, m in v.measures.items() if vis.field(v, m)}
        views[v.name] = replace(v, dimensions=dims, measures=measures)
    topics = {t.name: _topic_seen(t, views) for t in topics_seen}
    relationships = tuple(r for r in model.relationships if r.left in views and r.right in views)
    return replace(
        model,
        views=views,
        topics=topics,
        relationships=relationships,
        # caches of its own: nothing of the whole model's is shared with a cut of it
        fragments={},
        deduplicated={},
        compiled=OrderedDict(),
        variants=OrderedDict(),
        source=model,
        viewer=_narrowed(viewer, model.attributes_used),
    )


def _narrowed(viewer: Viewer | None, names: frozenset[str]) -> Viewer | None:
    """What of the user the cut is for: it is shared by every user alike in these, so it
    holds nothing else of them (a query filtering on another attribute of "theirs" then has
    no value for it, and is refused rather than given someone else's)."""
    if viewer is None:
        return None
    values = {n: viewer.values(n) for n in names if viewer.values(n)}
    return replace(viewer, user_id="", attributes=values, numeric=viewer.numeric & names)


def _topic_seen(topic: Topic, views: Mapping[str, View]) -> Topic:
    """The topic without the views, filters and sample queries the user may not see; a view
    joined through a hidden one hangs from its nearest visible ancestor (for display only:
    queries compile against the whole topic)."""
    joins: dict[str, JoinStep] = {}
    for name, step in topic.joins.items():
        if name not in views:
            continue
        parent = step.parent
        while parent != topic.base_view and parent not in views:
            parent = topic.joins[parent].parent
        joins[name] = step if parent == step.parent else JoinStep(parent, name, step.relationship)

    def seen(key: str) -> bool:
        m = FIELD.match(key)
        if m is None:
            return False
        view = views.get(m.group(1))
        return view is not None and m.group(2) in (*view.dimensions, *view.measures)

    def filters(items: Iterable[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
        return tuple((k, f) for k, f in items if seen(k))

    samples = tuple(
        sq for sq in topic.sample_queries if all(seen(k) for k in _query_keys(sq.query))
    )
    return replace(
        topic,
        joins=joins,
        default_filters=filters(topic.default_filters),
        always_where_filters=filters(topic.always_where_filters),
        always_having_filters=filters(topic.always_having_filters),
        sample_queries=samples,
    )


def _query_keys(query: Mapping[str, Any]) -> list[str]:
    keys = [str(f) for f in query.get("fields") or []]
    keys += [str(k) for k in (query.get("filters") or {})]
    keys += [str(s.get("column_name", "")) for s in query.get("sorts") or [] if isinstance(s, dict)]
    return keys


def _offered_values(
    model: SemanticModel, topics: Iterable[Topic], viewer: Viewer | None
) -> dict[str, list[re.Pattern[str]]]:
    """For each field an access filter restricts for this user (in any topic they see): the
    patterns its values must match to be offered to them."""
    out: dict[str, list[re.Pattern[str]]] = {}
    for topic in topics:
        for f in topic.access_filters:
            values = viewer.values(f.attribute) if viewer is not None else ()
            if values and not f.unfiltered.isdisjoint(values):
                continue
            patterns = [_like(v) if f.wildcards else re.compile(re.escape(v)) for v in values]
            out.setdefault(f.field, []).extend(patterns)
    return out


def offered_values(
    model: SemanticModel, topic: Topic, viewer: Viewer | None, key: str, values: tuple[Any, ...]
) -> tuple[Any, ...]:
    """Those of ``values`` (a dimension's declared values) that ``topic``'s access filters
    let this user see: what may be shown to them without coming from their own rows."""
    patterns = _offered_values(model, [topic], viewer).get(key)
    if patterns is None:
        return values
    return tuple(v for v in values if any(p.fullmatch(str(v)) for p in patterns))


def _like(pattern: str) -> re.Pattern[str]:
    """A SQL LIKE pattern as a regular expression (``%`` any text, ``_`` one character)."""
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def _restricted(d: Dimension, patterns: list[re.Pattern[str]] | None) -> Dimension:
    if patterns is None:
        return d

    def keep(values: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        if values is None:
            return None
        return tuple(v for v in values if any(p.fullmatch(str(v)) for p in patterns))

    return replace(d, all_values=keep(d.all_values), sample_values=keep(d.sample_values))
