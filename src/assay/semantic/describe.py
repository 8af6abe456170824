"""Omni's JSON description of a model: topic list entries, topic detail, view entries.

Pure functions from a loaded ``SemanticModel`` to the payloads of
``GET /api/v1/models/{id}/topic``, ``.../topic/{name}`` and ``.../view``, shaped like the real
topic payload Omni returns (docs/reference/order_items.topic.json):

- a topic carries its views (sorted by name, as Omni lists them), one relationship per join
  step, ``join_via_map`` (each joined view -> the views between the base view and it) and its
  sample queries;
- a view carries ``dimensions`` and ``measures`` lists of field entries;
- a dimension with timeframes is one entry for the field itself (the group parent, its raw
  value) plus one entry per other timeframe, ``o_orderdate[month]``, marked with ``date_type``;
- measures are ``type: aggregation`` (with an upper-case ``aggregate_type``) or, for measures
  combining other measures or written as raw aggregate SQL, ``type: metric`` with ``sql``;
- keys whose value Assay does not know are left out, as Omni leaves them out.

Field SQL (``display_sql``) is the loaded, resolved SQL (columns qualified by view alias)
rather than the ``${}`` text the model file had: the loader keeps only the resolved tree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlglot import exp

from assay.semantic.access import in_topic
from assay.semantic.filters import Filter
from assay.semantic.model import (
    Dimension,
    Measure,
    Relationship,
    SemanticModel,
    Topic,
    View,
    exposed,
)
from assay.semantic.templates import AttributeRef, MeasureRef, Ref, TemplateError, parse_template
from assay.semantic.timeframes import grain_expression, grain_type
from assay.semantic.timezones import localized

# Omni's operator names for the join conditions it reports parsed (``on``).
_OPERATORS: dict[type[exp.Binary], str] = {
    exp.EQ: "EQUALS",
    exp.NEQ: "NOT_EQUALS",
    exp.GT: "GREATER_THAN",
    exp.GTE: "GREATER_THAN_OR_EQUAL",
    exp.LT: "LESS_THAN",
    exp.LTE: "LESS_THAN_OR_EQUAL",
    exp.And: "AND",
    exp.Or: "OR",
    exp.Add: "PLUS",
    exp.Sub: "MINUS",
    exp.Mul: "MULTIPLY",
    exp.Div: "DIVIDE",
}
_SIMPLE_AGGREGATES: dict[str, type[exp.Func]] = {
    "sum": exp.Sum,
    "average": exp.Avg,
    "min": exp.Min,
    "max": exp.Max,
    "median": exp.Median,
}
# Truncating timeframes from finest to coarsest: a coarser one drills into the finer ones.
_DRILL_ORDER = ("second", "minute", "hour", "date", "week", "month", "quarter", "year")


# ---------------------------------------------------------------- public payloads


def topic_summary(model: SemanticModel, topic: Topic) -> dict[str, Any]:
    """One entry of ``GET /models/{id}/topic``."""
    del model  # every field of the list entry is on the topic itself
    return _clean(
        {
            "name": topic.name,
            "base_view_name": topic.base_view,
            "label": topic.label,
            "description": topic.description,
            "group_label": topic.group_label,
            "hidden": topic.hidden,
        }
    )


def topic_payload(model: SemanticModel, topic: Topic) -> dict[str, Any]:
    """The ``topic`` object of ``GET /models/{id}/topic/{name}``: with the topic's own
    views and fields, when it has them."""
    model = in_topic(model, topic.name)
    topic = model.topics.get(topic.name, topic)
    joined = list(topic.joins)
    return _clean(
        {
            "name": topic.name,
            "base_view_name": topic.base_view,
            "label": topic.label,
            "description": topic.description,
            "ai_context": topic.ai_context,
            "group_label": topic.group_label,
            "hidden": topic.hidden,
            "default_row_limit": topic.default_row_limit,
            "default_filters": _filters(topic.default_filters),
            "always_where_filters": _filters(topic.always_where_filters),
            "always_having_filters": _filters(topic.always_having_filters),
            "ignored_props": [],
            "join_via_map": {v: [s.view for s in topic.path_to(v)[:-1]] for v in joined},
            "join_via_map_key_order": joined,
            "relationships": [
                _relationship(model, step.relationship)
                for step in topic.joins.values()
                # a user who may not see a view joined through sees no edge naming it
                if step.relationship.left in model.views and step.relationship.right in model.views
            ],
            "views": [
                _view_entry(model, model.views[name], topic.field_patterns)
                for name in sorted(topic.views)
            ],
            "sample_queries": [
                _clean(
                    {
                        "label": sq.label,
                        "query": _jsonable(sq.query),
                        "prompt": sq.prompt,
                        "ai_context": sq.ai_context,
                    }
                )
                for sq in topic.sample_queries
            ],
            "ide_file_name": topic.file or f"{topic.name}.topic",
        }
    )


def view_payload(model: SemanticModel, view: View) -> dict[str, Any]:
    """One entry of ``GET /models/{id}/view``: the view with all its fields.

    ``fields`` is the flat ``{name, type}`` list the endpoint documents; ``dimensions`` and
    ``measures`` are the same field entries a topic payload carries.
    """
    entry = _view_entry(model, view, None)
    entry["fields"] = [
        *({"name": name, "type": "dimension"} for name in view.dimensions),
        *({"name": name, "type": "measure"} for name in view.measures),
    ]
    return entry


# ---------------------------------------------------------------- views and fields


def _view_entry(
    model: SemanticModel, view: View, patterns: tuple[str, ...] | None
) -> dict[str, Any]:
    def keep(name: str, tags: Iterable[str]) -> bool:
        return exposed(patterns, view.name, name, tags, view.tags)

    dims = [d for d in view.dimensions.values() if keep(d.name, d.tags)]
    measures = [m for m in view.measures.values() if keep(m.name, m.tags)]
    source = view.source
    table = source if isinstance(source, exp.Table) else None
    pk = view.primary_key
    return _clean(
        {
            "name": view.name,
            "label": view.label,
            "description": view.description,
            "ai_context": view.ai_context,
            "hidden": view.hidden,
            "catalog": (table.catalog or None) if table is not None else None,
            "schema": (table.db or None) if table is not None else None,
            "table_name": table.name if table is not None else None,
            "sql": _sql(source.this, model.dialect) if isinstance(source, exp.Subquery) else None,
            "ide_file_name": view.file or None,
            "yaml_path": view.file or None,
            "primary_key": [{"type": "field", "field_name": pk.key}]
            if pk is not None and any(d.name == pk.name for d in dims)
            else [],
            "filter_only_fields": [],
            "dimensions": [e for d in dims for e in _dimension_entries(model, d)],
            "measures": [_measure_entry(model, m) for m in measures],
        }
    )


def _dimension_entries(model: SemanticModel, d: Dimension) -> list[dict[str, Any]]:
    """The field itself, then (for a date with timeframes) one entry per other timeframe.

    Timeframe entries carry what tells them apart (``date_type``, type, SQL) and the group
    they belong to, not copies of the field's synonyms, AI context and values."""
    base = _clean(
        {
            "field_name": d.name,
            "view_name": d.view,
            "fully_qualified_name": d.key,
            "data_type": d.data_type or "UNKNOWN",
            "label": d.label,
            "description": d.description,
            "is_dimension": True,
            "primary_key": d.primary_key,
            "hidden": d.hidden,
            "format": d.format.upper() if d.format else None,
            "group_label": d.group_label,
            "synonyms": list(d.synonyms) or None,
            "ai_context": d.ai_context,
            "all_values": _jsonable(d.all_values),
            "sample_values": _jsonable(d.sample_values),
            "tags": list(d.tags) or None,
            "display_sql": _sql(d.expr, model.dialect),
        }
    )
    if d.timeframes is None:
        return [base]
    grains = [g for g in d.timeframes if g != "raw"]
    group = {
        "time_frames": [None if g == "raw" else g.upper() for g in d.timeframes],
        "parent_field": d.name,
        "parent_label": d.label,
        "group_label": d.group_label or d.label,
    }
    entries = [{**base, **group, "is_group_parent_field": True}]
    for grain in grains:
        name = f"{d.name}[{grain}]"
        coarseness = _DRILL_ORDER.index(grain) if grain in _DRILL_ORDER else 0
        finer = [g for g in _DRILL_ORDER[:coarseness] if g in grains]
        entry = {
            "field_name": name,
            "view_name": d.view,
            "fully_qualified_name": f"{d.view}.{name}",
            "data_type": grain_type(grain),
            "date_type": grain.upper(),
            "label": " ".join(w.capitalize() for w in grain.split("_")),
            "description": d.description,
            "is_dimension": True,
            "primary_key": False,
            "hidden": d.hidden,
            **group,
            "drill_fields": [f"{d.view}.{d.name}[{g}]" for g in finer] or None,
            "display_sql": _sql(
                grain_expression(d.expr, grain, model.dialect, model.calendar_of(d)), model.dialect
            ),
        }
        entries.append(_clean(entry))
    return entries


def _measure_entry(model: SemanticModel, m: Measure) -> dict[str, Any]:
    metric = m.aggregate_type is None
    formula = m.derived if m.derived is not None else m.custom
    display = _sql(formula, model.dialect) if formula is not None else _aggregate_sql(model, m)
    return _clean(
        {
            "type": "metric" if metric else "aggregation",
            "field_name": m.name,
            "view_name": m.view,
            "fully_qualified_name": m.key,
            "aggregate_type": None if metric else str(m.aggregate_type).upper(),
            "percentile": m.percentile,
            "filters": None if metric else {f.field: _filter(f.filter) for f in m.filters},
            "data_type": m.data_type,
            "ignored": False,
            "label": m.label,
            "description": m.description,
            "is_dimension": False,
            "hidden": m.hidden,
            "format": m.format.upper() if m.format else None,
            "group_label": m.group_label,
            "synonyms": list(m.synonyms) or None,
            "ai_context": m.ai_context,
            "tags": list(m.tags) or None,
            "sql": display if metric else None,
            "display_sql": display,
            "original_sql_for_aggregation": _sql(m.input, model.dialect)
            if m.input is not None
            else None,
        }
    )


def _aggregate_sql(model: SemanticModel, m: Measure) -> str:
    """The measure's aggregate over its input, without its filters (listed apart)."""
    value = m.input.unnest().copy() if m.input is not None else None
    if m.lod is not None:  # the aggregate of the inner one: AVG(SUM(x)); the grain not shown
        value = exp.Var(this=_aggregate_sql(model, m.lod.inner))
    at = (m.aggregate_type or "").removesuffix("_distinct_on")  # the key is not shown
    tree: exp.Expr
    if value is None:
        tree = exp.Count(this=exp.Star())
    elif at == "count":
        tree = exp.Count(this=value)
    elif at == "count_distinct":
        tree = exp.Count(this=exp.Distinct(expressions=[value]))
    elif at == "percentile":
        tree = exp.PercentileCont(
            this=value, expression=exp.Literal.number((m.percentile or 0) / 100)
        )
    elif at == "list":
        tree = exp.ArrayAgg(this=exp.Distinct(expressions=[value]))
    else:
        tree = _SIMPLE_AGGREGATES[str(at)](this=value)
    return _sql(tree, model.dialect)


# ---------------------------------------------------------------- relationships


def _relationship(model: SemanticModel, rel: Relationship) -> dict[str, Any]:
    return {
        "id": f"{rel.left}_{rel.right}",
        "left_view_name": rel.left,
        "right_view_name": rel.right,
        "join_type": rel.join_type.upper(),
        "type": rel.type.upper(),
        "on": _parsed_on(rel, model.dialect),
        "sql": rel.sql,
        "ignored": False,
        "bidirectional": False,
    }


def _parsed_on(rel: Relationship, dialect: str) -> dict[str, Any]:
    """The join condition as Omni reports it: calls over ``{"type": "field"}`` operands."""
    try:
        tree = parse_template(rel.sql, own_view=rel.left, dialect=dialect).tree
    except TemplateError:  # the loader accepted it, so this is not expected
        return {"type": "sql", "sql": rel.sql}
    return _parsed(tree, dialect, rel.left)


def _parsed(node: exp.Expr, dialect: str, own_view: str) -> dict[str, Any]:
    if isinstance(node, exp.Paren):
        return _parsed(node.this, dialect, own_view)
    if isinstance(node, Ref):
        return {"type": "field", "field_name": f"{node.view or own_view}.{node.field}"}
    if isinstance(node, exp.Binary) and type(node) in _OPERATORS:
        return {
            "type": "call",
            "operator": f"SqlStdOperatorTable.{_OPERATORS[type(node)]}",
            "operands": [
                _parsed(node.left, dialect, own_view),
                _parsed(node.right, dialect, own_view),
            ],
            "distinct": False,
        }
    return {"type": "sql", "sql": _sql(node, dialect)}


# ---------------------------------------------------------------- helpers


def _sql(tree: exp.Expr, dialect: str) -> str:
    """``tree`` as SQL; references to fields or measures are shown as ``${view.field}``, and
    user attributes as ``{{ omni_attributes.NAME }}``."""

    def show(node: exp.Expr) -> exp.Expr:
        if isinstance(node, MeasureRef):
            return exp.var(f"${{{node.measure_key}}}")
        if isinstance(node, AttributeRef):  # as the model writes it: never a user's value
            return exp.var(f"{{{{ omni_attributes.{node.attribute} }}}}")
        if isinstance(node, Ref):
            return exp.var(f"${{{node.view + '.' if node.view else ''}{node.field}}}")
        if isinstance(node, exp.Paren) and isinstance(node.parent, exp.Func):
            inner: exp.Expr = node.this  # SUM((a * b)): a resolved field's parentheses
            return inner
        return node

    return localized(tree.unnest().transform(show), dialect).sql(dialect=dialect)


def _filters(filters: Iterable[tuple[str, Filter]]) -> dict[str, Any]:
    return {name: _filter(f) for name, f in filters}


def _filter(f: Filter) -> dict[str, Any]:
    out: dict[str, Any] = _jsonable(dataclasses.asdict(f))
    return out


def _jsonable(value: Any) -> Any:
    """``value`` with tuples as lists and dates as ISO text, so ``json.dumps`` takes it."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _clean(entry: Mapping[str, Any]) -> dict[str, Any]:
    """``entry`` without the keys Assay has no value for."""
    return {k: v for k, v in entry.items() if v is not None}
