"""Every word of a question accounted for in a plan someone else made (an LLM's).

The built-in planner knows which words it placed. An LLM's query is checked the same way
after the fact: the question is read with the same parsers and vocabulary (dates, grains,
number conditions, rankings, shares and changes; fields and values by the model's labels,
synonyms and value words), and each part counts as placed only if the query does what it
says: a date word needs a date filter, a value word a filter holding that value, a field's
name that field. What is left is judged as the built-in planner judges it (filler, words the
model uses to describe the fields the query uses), so "how many orders were cancelled"
answered with every order is caught, whoever planned it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assay.ai import accounting, calculated, matching, phrases
from assay.ai.planner import vocabulary_for
from assay.semantic.model import SemanticModel


def unaccounted(
    question: str, model: SemanticModel, queries: Sequence[dict[str, Any]]
) -> list[str]:
    """The words of ``question`` (as written) that carry meaning and that no query of
    ``queries`` places; empty when the plan accounts for all of them."""
    raw, _, toks = accounting.tokenize(question)
    if not toks:
        return []
    voc = vocabulary_for(model)
    keys = {k for q in queries for k in [*q.get("fields", ()), *(q.get("filters") or {})]}
    bases = {k.split("[")[0] for k in keys}
    filters: dict[str, list[Any]] = {}
    for q in queries:
        for key, f in (q.get("filters") or {}).items():
            if isinstance(f, dict):
                filters.setdefault(key.split("[")[0], []).append(f)
    kinds = {f.get("type") for fs in filters.values() for f in fs}
    used = [False] * len(toks)
    placed = [False] * len(toks)

    def parsed(found: object, done: bool, before: list[bool]) -> None:
        # the tokens a parser just took are placed only if the plan does what they say
        for i, (a, b) in enumerate(zip(before, used, strict=True)):
            if b and not a:
                placed[i] = bool(found) and done

    before = list(used)
    ask = calculated.detect(toks, used)
    parsed(ask, any(q.get("calculations") for q in queries), before)
    before = list(used)
    parsed(phrases.date_filter(toks, used), "date" in kinds, before)
    before = list(used)
    parsed(phrases.grain(toks, used), any("[" in k for k in keys), before)
    before = list(used)
    parsed(
        phrases.comparisons(toks, raw, used),
        "number" in kinds or _measure_filter(voc, filters),
        before,
    )
    before = list(used)
    _, _, desc = phrases.ranking(toks, used)
    ranked = any(q.get("sorts") and q.get("limit") for q in queries)
    parsed(desc is not None, ranked, before)
    for i, tok in enumerate(toks):  # "which", "what" the ranking parser looked at: filler
        placed[i] = placed[i] or (used[i] and tok in accounting.FILLER)
    negated = any(f.get("is_negative") for fs in filters.values() for f in fs)
    for i, tok in enumerate(toks):  # "not", "excluding": placed by a negated filter
        placed[i] = placed[i] or (negated and tok in phrases.NEGATIONS)
    spans = matching.match(voc, toks, used)
    reached = _reached(model, queries)
    for sp in spans:
        hit = False
        for e in sp.entries:
            if e.kind == "value":
                hit = hit or any(_holds(f, e.value) for f in filters.get(e.key, ()))
            else:
                hit = hit or e.key in bases
            counts_rows = (
                e.kind == "measure"
                and voc.measure(e.key).aggregate_type == "count"
                and not voc.measure(e.key).filters
            )
            hit = hit or (counts_rows and e.key.split(".")[0] in reached)
        words = toks[sp.start : sp.end]
        if not hit and all(e.kind != "value" for e in sp.entries):
            hit = accounting.names_entity(model, words, reached)
        for i in range(sp.start, sp.end):
            placed[i] = hit
    measures = any(voc.is_measure(b) for b in _field_bases(queries))
    return accounting.unplaced_words(
        raw,
        toks,
        placed,
        has_measure=measures,
        has_group=any(not voc.is_measure(b) for b in _field_bases(queries)),
        explained=accounting.field_stems(model, sorted(keys)),
        matched={i for sp in spans for i in range(sp.start, sp.end)},
    )


def _field_bases(queries: Sequence[dict[str, Any]]) -> set[str]:
    return {f.split("[")[0] for q in queries for f in q.get("fields", ()) if "." in f}


def _measure_filter(voc: Any, filters: dict[str, list[Any]]) -> bool:
    """A condition on an amount may be written as a filter on a measure (HAVING)."""
    return any("." in k and voc.is_measure(k) for k in filters)


def _holds(f: Any, value: str | None) -> bool:
    values = f.get("values") if isinstance(f, dict) else None
    return value is not None and isinstance(values, list) and value in values


def _reached(model: SemanticModel, queries: Sequence[dict[str, Any]]) -> set[str]:
    """The views a plan's joins pass through: the entity its rows are ("orders") is placed
    by a query over them."""
    out: set[str] = set()
    for q in queries:
        topic = model.topics.get(str(q.get("join_paths_from_topic_name")))
        if topic is None:
            continue
        out.add(topic.base_view)
        for key in [*q.get("fields", ()), *(q.get("filters") or {})]:
            view = key.split(".")[0]
            if view in topic.views:
                out.update(step.view for step in topic.path_to(view))
    return out
