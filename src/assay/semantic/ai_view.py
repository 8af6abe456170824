"""The model as the AI planner sees it: only the topics of the model's ``ai_chat_topics``, and
in each topic only the fields its ``ai_fields`` select (on top of its ``fields``); a field no
such topic offers is gone from its view too, so no word of a question can reach it.

This narrows what the planner is told of, not what may be queried: Omni documents ``ai_fields``
as "what the AI is aware of, not what it has access to". So a query the planner writes still
compiles against the whole model (as its user: access rules apply as to any query), and a
person's own query is never narrowed."""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import replace

from assay.semantic.model import SemanticModel, Topic, View

_SEEN: weakref.WeakKeyDictionary[SemanticModel, SemanticModel] = weakref.WeakKeyDictionary()


def as_seen_by_ai(model: SemanticModel) -> SemanticModel:
    """``model`` (whole, or as one user sees it) narrowed for the AI planner; the model itself
    when nothing narrows it. Made once per model object."""
    found = _SEEN.get(model)
    if found is not None:
        return found
    chat = model.ai_chat_topics
    narrowed = any(t.ai_field_patterns is not None for t in model.topics.values())
    if chat is None and not narrowed:
        return model
    topics = {
        name: replace(topic, narrowed_by=topic.ai_field_patterns)
        for name, topic in model.topics.items()
        if chat is None or name in chat
    }
    views = {name: _offered(view, topics.values()) for name, view in model.views.items()}
    seen = replace(
        model, views=views, topics=topics, source=model.source or model, viewer=model.viewer
    )
    _SEEN[model] = seen
    return seen


def _offered(view: View, topics: Iterable[Topic]) -> View:
    """``view`` with only the fields some topic the AI sees offers it."""
    joined = [t for t in topics if view.name in t.views]

    def offered(name: str, tags: Iterable[str]) -> bool:
        return any(t.exposes(view.name, name, tags) for t in joined)

    return replace(
        view,
        dimensions={n: d for n, d in view.dimensions.items() if offered(n, d.tags)},
        measures={n: m for n, m in view.measures.items() if offered(n, m.tags)},
    )
