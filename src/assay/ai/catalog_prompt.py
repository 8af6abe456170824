"""What an LLM planner is given: instructions, the semantic-query tool schema, and a compact
text catalogue of the semantic model for the system prompt.

The catalogue lists what the model declares and nothing else: topics (with their views,
descriptions, ``ai_context`` and sample questions), then every visible field with its key,
label, type, synonyms, ``ai_context`` and a few values. Hidden topics, views and fields are
left out.
"""

from __future__ import annotations

import json
from typing import Any

from assay.ai.vocabulary import is_date, is_numeric
from assay.semantic.model import Dimension, Measure, SemanticModel, Topic

_STRING_FILTER = {
    "type": "object",
    "properties": {
        "type": {"const": "string"},
        "kind": {"enum": ["EQUALS", "CONTAINS", "STARTS_WITH", "ENDS_WITH", "IS_EMPTY"]},
        "values": {"type": "array", "items": {"type": "string"}},
        "case_insensitive": {"type": "boolean"},
        "is_negative": {"type": "boolean"},
    },
    "required": ["type", "kind", "values"],
}
_NUMBER_FILTER = {
    "type": "object",
    "properties": {
        "type": {"const": "number"},
        "kind": {"enum": ["EQUALS", "GREATER_THAN", "LESS_THAN", "BETWEEN"]},
        "values": {"type": "array", "items": {"type": ["number", "string"]}},
        "is_inclusive": {"type": "boolean"},
        "is_negative": {"type": "boolean"},
    },
    "required": ["type", "kind", "values"],
}
_DATE_FILTER = {
    "type": "object",
    "description": 'A year: {"kind":"TIME_FOR_UNIT_DURATION","left_side":"1995"}; a range: '
    '{"kind":"BETWEEN","left_side":"1995-01-01","right_side":"1996-01-01"} (end exclusive); '
    '"last 30 days": {"kind":"TIME_FOR_INTERVAL_DURATION","left_side":"30 days ago",'
    '"right_side":"30 days"}.',
    "properties": {
        "type": {"const": "date"},
        "kind": {
            "enum": [
                "BETWEEN",
                "ON_OR_AFTER",
                "BEFORE",
                "TIME_FOR_INTERVAL_DURATION",
                "TIME_FOR_UNIT_DURATION",
                "IS_IN_MONTH_OF_YEAR",
                "IS_IN_QUARTER_OF_YEAR",
                "IS_ON_DAY_OF_WEEK",
            ]
        },
        "left_side": {"type": "string"},
        "right_side": {"type": "string"},
        "values": {"type": "array", "items": {"type": "string"}},
        "is_negative": {"type": "boolean"},
    },
    "required": ["type", "kind"],
}
QUERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "topic": {"type": "string", "description": "The topic name the query runs in."},
        "fields": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string"},
            "description": "Field keys view.field (dates: view.field[grain]); dimensions first.",
        },
        "filters": {
            "type": "object",
            "description": "Field key -> typed filter object (never a bare value).",
            "additionalProperties": {"anyOf": [_STRING_FILTER, _NUMBER_FILTER, _DATE_FILTER]},
        },
        "sorts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "column_name": {"type": "string"},
                    "sort_descending": {"type": "boolean"},
                },
                "required": ["column_name", "sort_descending"],
            },
        },
        "limit": {"type": "integer", "minimum": 1, "maximum": 5000},
        "intent": {"type": "string", "description": "One line: what this query answers."},
    },
    "required": ["topic", "fields", "intent"],
}
QUERY_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "semantic_query",
        "description": "Answer the question with one semantic query over the model's topics "
        "and fields. Never SQL.",
        "parameters": QUERY_SCHEMA,
    },
}
REFUSE_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "refuse",
        "description": "Decline politely when the model cannot answer the question.",
        "parameters": {
            "type": "object",
            "properties": {"reason": {"type": "string"}},
            "required": ["reason"],
        },
    },
}
INSTRUCTIONS = """\
You turn business questions into semantic queries over the model catalogued below.
Call the tool `semantic_query` with a topic, the fields to show (measures and dimensions, \
written view.field; dates with a grain, e.g. orders.o_orderdate[year]), typed filters, sorts, \
an optional limit and a one-line intent. Use only topics and fields listed in the catalogue, \
and filter values exactly as listed. Never write SQL or code: it is never run.
If the catalogue cannot answer the question, call `refuse` with a short, specific reason \
instead of guessing.
"""

_MAX_VALUES = 8
_MAX_TEXT = 240


def _short(text: str | None, limit: int = _MAX_TEXT) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _dimension_type(dim: Dimension) -> str:
    if is_date(dim):
        grains = ", ".join(dim.timeframes or ("date", "week", "month", "quarter", "year"))
        return f"date dimension (grains: {grains}; write {dim.view}.{dim.name}[grain])"
    if (dim.data_type or "").upper() == "BOOLEAN":
        return "boolean dimension"
    if is_numeric(dim):
        return "number dimension"
    return "string dimension"


def _field_line(key: str, item: Dimension | Measure) -> str:
    kind = "measure" if isinstance(item, Measure) else _dimension_type(item)
    parts = [f"- {key}: {item.label} [{kind}]"]
    if item.synonyms:
        parts.append("synonyms: " + ", ".join(item.synonyms))
    if item.description:
        parts.append("about: " + _short(item.description))
    if item.ai_context:
        parts.append("context: " + _short(item.ai_context))
    if isinstance(item, Dimension):
        values = [*(item.all_values or ()), *(item.sample_values or ())][:_MAX_VALUES]
        if values:
            parts.append("values: " + ", ".join(json.dumps(v, default=str) for v in values))
    return "; ".join(parts)


def _topic_lines(topic: Topic) -> list[str]:
    lines = [
        f'Topic "{topic.name}" ({topic.label}): base view {topic.base_view}; '
        f"views {', '.join(topic.views)}"
    ]
    if topic.description:
        lines.append("  about: " + _short(topic.description, 600))
    if topic.ai_context:
        lines.append("  context: " + topic.ai_context.strip().replace("\n", "\n  "))
    for sample in topic.sample_queries[:3]:
        if sample.prompt:
            shown = {k: v for k, v in sample.query.items() if k in ("fields", "filters", "sorts")}
            lines.append(f"  example: {sample.prompt!r} -> {json.dumps(shown, default=str)}")
    return lines


def model_catalog(model: SemanticModel, topic: str | None = None) -> str:
    """The catalogue of ``model`` (only ``topic`` and its fields when given) as text."""
    topics = [
        t
        for name, t in model.topics.items()
        if (name == topic if topic is not None else not t.hidden)
    ]
    lines = [f"Model {model.name!r}" + (f" ({model.label})" if model.label else "")]
    if model.description:
        lines.append("about: " + _short(model.description, 600))
    if model.ai_context:
        lines.append("context: " + model.ai_context.strip())
    lines.append("")
    lines.append("TOPICS")
    for t in topics:
        lines.extend(_topic_lines(t))
    lines.append("")
    lines.append("FIELDS (key: label [type]; fields are always written view.field)")
    seen: set[str] = set()
    for t in topics:
        for view_name in t.views:
            view = model.views.get(view_name)
            if view is None or view.hidden or view_name in seen:
                continue
            seen.add(view_name)
            lines.append(f"View {view_name} ({view.label})")
            items: list[tuple[str, Dimension | Measure]] = [
                *view.dimensions.items(),
                *view.measures.items(),
            ]
            for name, item in items:
                if item.hidden or not any(
                    view_name in o.views and o.exposes(view_name, name, item.tags) for o in topics
                ):
                    continue
                lines.append(_field_line(f"{view_name}.{name}", item))
    return "\n".join(lines)
