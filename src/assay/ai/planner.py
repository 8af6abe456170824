"""The built-in planner: offline and deterministic, question -> semantic queries or a refusal.

It reads only what the model declares (see ``vocabulary``): phrases map to measures,
dimensions and values; grain words, years, comparisons and rankings become timeframes,
filters, sorts and limits; the topic is the one that joins every chosen field.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assay.ai import accounting, calculated, matching, phrases
from assay.ai.matching import Span
from assay.ai.plans import Plan, PlannedQuery, PlanStep
from assay.ai.vocabulary import (
    Vocabulary,
    build_vocabulary,
    is_date,
    is_numeric,
    main_date_dimension,
)
from assay.semantic.model import SemanticModel, Topic

__all__ = ["Plan", "PlanStep", "PlannedQuery", "plan", "vocabulary_for"]


_VOCABS: weakref.WeakKeyDictionary[SemanticModel, Vocabulary] = weakref.WeakKeyDictionary()


@dataclass(slots=True)
class _State:
    measures: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)  # dimension keys, date ones with [grain]
    filters: dict[str, dict[str, Any]] = field(default_factory=dict)
    sort_desc: bool | None = None
    limit: int | None = None
    provenance: list[str] = field(default_factory=list)
    only_topic: str | None = None  # the caller chose the topic
    placed: set[int] = field(default_factory=set)  # tokens used outside spans ("excluding")


def vocabulary_for(model: SemanticModel) -> Vocabulary:
    voc = _VOCABS.get(model)
    if voc is None:
        voc = _VOCABS[model] = build_vocabulary(model)
    return voc


def plan(
    question: str,
    model: SemanticModel,
    *,
    conversation: Sequence[PlanStep] = (),
    topic: str | None = None,
) -> Plan:
    """Plan ``question`` against ``model``: one semantic query, or a polite refusal. With
    ``topic`` (the caller chose it), only that topic is considered."""
    if topic is not None and topic not in model.topics:
        return Plan(refusal=f"This model has no topic named {topic}.")
    if not question.strip():
        return Plan(refusal="There is no question to answer: the prompt is empty.")
    voc = vocabulary_for(model)
    raw, low, toks = accounting.tokenize(question)
    used = [False] * len(toks)
    st = _State(only_topic=topic)
    previous = _previous_query(conversation)
    ask = calculated.detect(toks, used) or calculated.carried(previous)
    date_filter = phrases.date_filter(toks, used)
    grain = phrases.grain(toks, used) or (ask.grain if ask else None)
    if ask is not None and ask.kind == "change" and grain is None:
        grain = calculated.grain_of_period(date_filter)  # "growth in 1995": by year
    comparisons = phrases.comparisons(toks, raw, used)
    before_ranking = list(used)
    rank_slot, rank_n, desc = phrases.ranking(toks, used)
    rank_words = [i for i, (a, b) in enumerate(zip(before_ranking, used, strict=True)) if b > a]
    parsed = list(used)  # what the phrase parsers took, before fields are matched
    spans = matching.match(voc, toks, used)
    matching.assign_roles(voc, spans, toks, rank_slot)

    for sp in spans:
        text = " ".join(low[sp.start : sp.end])
        if sp.role == "measure":
            key = matching.pick(sp, "measure").key
            if st.measures and not matching.joined_by_and(toks, spans, sp):
                continue
            sp.placed = True
            if key not in st.measures:
                st.measures.append(key)
                st.provenance.append(
                    f"matched '{text}' to {key} via {matching.pick(sp, 'measure').source}"
                )
    negated_values: dict[str, bool] = {}
    value_spans = [sp for sp in spans if sp.role == "value"]
    nothing_asked = not st.measures and not any(
        sp.role in ("group", "filter_target") for sp in spans
    )
    if nothing_asked and not value_spans and previous is None:
        return Plan(
            refusal=accounting.refuse(question, raw, toks, used, [(s.start, s.end) for s in spans])
        )
    if not st.measures and desc is not None:
        _measure_from_verb(voc, toks, raw, parsed, spans, st)
    st.sort_desc = desc
    st.limit = rank_n
    planned = _finish(
        voc,
        model,
        question,
        toks,
        low,
        raw,
        used,
        spans,
        st,
        date_filter,
        grain,
        comparisons,
        negated_values,
        previous,
    )
    if not planned.queries:
        return planned
    planned = _account(model, voc, planned, raw, toks, parsed, spans, st, rank_words)
    if ask is None or not planned.queries:
        return planned
    ranked = rank_words if desc is not None else []
    return calculated.apply(ask, planned, model, voc, raw, ranked=ranked)


def _measure_from_verb(
    voc: Vocabulary, toks: list[str], raw: list[str], used: list[bool], spans: list[Span],
    st: _State,
) -> None:  # fmt: skip
    """A ranking with no measure named ("which part sold the most") ranks by the one measure
    whose synonyms hold the question's verb ("units sold"); none or several: nothing."""
    covered = {i for sp in spans for i in range(sp.start, sp.end)}
    for i, tok in enumerate(toks):
        if used[i] or i in covered or tok in accounting.FILLER or not tok.isalpha():
            continue
        named = accounting.measures_named_by(voc, tok)
        if len(named) == 1:
            key = named.pop()
            st.measures.append(key)
            used[i] = True
            st.provenance.append(f"matched '{raw[i]}' to {key}, whose synonyms use that word")
            return


def _account(
    model: SemanticModel,
    voc: Vocabulary,
    planned: Plan,
    raw: list[str],
    toks: list[str],
    used: list[bool],
    spans: list[Span],
    st: _State,
    rank_words: list[int],
) -> Plan:
    """The plan, if every word that carries meaning is in it; else a refusal naming the words
    it left out, so no number answers a question other than the one asked."""
    query = planned.queries[0].query
    keys = [*query["fields"], *query["filters"]]
    topic = model.topics[query["join_paths_from_topic_name"]]
    reached = {topic.base_view}
    for key in keys:
        view = key.split(".")[0]
        if view in topic.views:
            reached.update(step.view for step in topic.path_to(view))
    bases = {k.split("[")[0] for k in keys}
    for sp in spans:
        if sp.placed or sp.role == "absorbed":
            sp.placed = True
            continue
        for e in sp.entries:
            view = e.key.split(".")[0]
            counts_rows = (
                e.kind == "measure"
                and voc.measure(e.key).aggregate_type == "count"
                and not voc.measure(e.key).filters
            )
            # the entity the rows are ("orders" in "revenue for low priority orders"), or a
            # field the plan already uses, adds nothing the plan does not say
            if (counts_rows and view in reached) or (e.kind != "value" and e.key in bases):
                sp.placed = True
        if sp.role != "value" and accounting.names_entity(model, toks[sp.start : sp.end], reached):
            sp.placed = True
    placed = [u or i in st.placed for i, u in enumerate(used)]
    for i in rank_words if not st.measures else []:
        placed[i] = False
    for sp in spans:
        for i in range(sp.start, sp.end):
            placed[i] = placed[i] or sp.placed
    words = accounting.unplaced_words(
        raw,
        toks,
        placed,
        has_measure=bool(st.measures),
        has_group=bool(st.groups),
        explained=accounting.field_stems(model, keys),
        matched={i for sp in spans for i in range(sp.start, sp.end)},
    )
    if words:
        return Plan(refusal=accounting.refusal(words), topic=planned.topic)
    return planned


def _finish(
    voc: Vocabulary,
    model: SemanticModel,
    question: str,
    toks: list[str],
    low: list[str],
    raw: list[str],
    used: list[bool],
    spans: list[Span],
    st: _State,
    date_filter: dict[str, Any] | None,
    grain: str | None,
    comparisons: list[tuple[int, dict[str, Any]]],
    negated: dict[str, bool],
    previous: dict[str, Any] | None,
) -> Plan:
    unknown = accounting.unknown_proper_nouns(raw, toks, used, [(s.start, s.end) for s in spans])
    if unknown:
        return Plan(refusal=accounting.refusal(unknown))
    if previous is not None:
        for fld in previous["fields"]:
            base = fld.split("[")[0]
            if "." not in base:
                continue  # a calculation's column: the calculation is planned again
            if voc.is_measure(base):
                if not st.measures:
                    st.measures.append(fld)
            elif fld not in st.groups:
                st.groups.append(fld)
        for k, v in previous.get("filters", {}).items():
            st.filters.setdefault(k, v)
    group_spans = [sp for sp in spans if sp.role == "group"]
    value_spans = [sp for sp in spans if sp.role == "value"]
    target_spans = [sp for sp in spans if sp.role == "filter_target"]
    views: list[set[str]] = [{m.split(".")[0]} for m in st.measures]
    for sp in group_spans + value_spans + target_spans:
        views.append({e.key.split(".")[0] for e in sp.entries})
    topic = _pick_topic(model, st.measures, views, only=st.only_topic)
    if topic is None and st.only_topic is not None:
        only = set(model.topics[st.only_topic].views)
        missing = [opts for opts in views if not opts & only] or views  # else a measure
        return Plan(
            refusal=f"The topic {model.topics[st.only_topic].label} does not include everything "
            f"the question names ({', '.join(sorted(set().union(*missing)))}).",
            topic=st.only_topic,
        )
    if topic is None:
        return Plan(
            refusal="I could not find one topic that joins everything the question names "
            f"({', '.join(sorted(set().union(*views)))})."
        )
    tviews = set(model.topics[topic].views)
    if previous is not None and previous.get("join_paths_from_topic_name") != topic:
        _keep_what_topic_reaches(st, tviews)
    date_dim = main_date_dimension(model, topic)
    for sp in group_spans:
        sp.placed = True
        d = matching.pick(sp, "dimension", tviews)
        key = d.key
        if is_date(voc.dimension(key)):
            date_dim = key
            key = f"{key}[{grain or 'date'}]"
            grain = None
        if key not in st.groups:
            st.groups.append(key)
            st.provenance.append(
                f"grouped by {key} ('{' '.join(low[sp.start : sp.end])}', {d.source})"
            )
    if grain and date_dim:
        key = f"{date_dim}[{grain}]"
        if key not in st.groups:
            st.groups.insert(0, key)
        st.provenance.append(f"'{grain}' grain on {date_dim}, the model's date for time")
    if date_filter:
        if not date_dim:
            return Plan(
                refusal="The question names a period, but this topic has no date to filter."
            )
        st.filters[date_dim] = date_filter
        st.provenance.append(
            f"date filter {date_filter.get('left_side') or date_filter.get('kind')} on {date_dim}"
        )
    by_dim: dict[str, list[str]] = {}
    union: dict[str, bool] = {}  # "urgent or high": one figure; "ASIA and EUROPE": each
    together = any(t in accounting.TOGETHER for t in toks)  # "ASIA and EUROPE combined"
    # "suppliers in GERMANY": the nation reached through the supplier, not the customer's
    named = {e.key.split(".")[0] for sp in spans if sp.role == "measure" for e in sp.entries}
    near = _through(model.topics[topic], tviews, named)
    for sp in value_spans:
        sp.placed = True
        e = matching.pick(sp, "value", near)
        if "or" in toks[sp.start : sp.end] or (
            e.key in by_dim and "or" in toks[matching.last_end(spans, sp) : sp.start]
        ):
            union[e.key] = True
        vals = [x.value for x in sp.entries if x.kind == "value" and x.key == e.key and x.value]
        by_dim.setdefault(e.key, []).extend(v for v in vals if v not in by_dim.get(e.key, []))
        prior = [x.end for x in spans if x.end <= sp.start]
        first = max(sp.start - 3, max(prior, default=0))
        window = toks[first : sp.start]
        if any(t in phrases.NEGATIONS for t in window) or "other than" in " ".join(window):
            negated[e.key] = True
            st.placed.update(
                i for i in range(first, sp.start) if toks[i] in phrases.NEGATIONS | {"other"}
            )
        st.provenance.append(
            f"matched '{' '.join(low[sp.start : sp.end])}' to {e.key} = {vals} via {e.source}"
        )
    for key, vals in by_dim.items():
        f: dict[str, Any] = {"type": "string", "kind": "EQUALS", "values": vals}
        if negated.get(key):
            f["is_negative"] = True
        st.filters[key] = f
        st.groups = [g for g in st.groups if g != key]
        if len(vals) > 1 and not negated.get(key) and not union.get(key) and not together:
            st.groups.append(key)  # named side by side: one row for each
            st.provenance.append(f"one row for each of {', '.join(vals)}")
    for pos, filt in comparisons:
        target = matching.nearest_numeric(voc, target_spans, pos, near)
        if target is None:
            if not st.measures or not st.groups:
                # a condition on the one total of the question would only hide it
                said = _comparison_text(raw, pos, len(filt["values"]))
                return Plan(
                    refusal=f"Sorry, I could not tell which amount '{said}' applies to: the "
                    "question names no amount that condition could filter, so I ran no query "
                    "rather than guess."
                )
            target = st.measures[0]
        st.filters[target] = filt
        st.provenance.append(f"number filter {filt['kind']} {filt['values']} on {target}")
    for sp in target_spans if not st.measures else []:  # "list the market segments"
        d = matching.pick(sp, "dimension", tviews)
        dim = voc.dimension(d.key)
        fresh = d.key not in st.filters and d.key not in st.groups
        if fresh and not is_numeric(dim) and not is_date(dim):
            st.groups.append(d.key)
            sp.placed = True
    if not st.measures and not st.groups:
        return Plan(
            refusal=accounting.refuse(question, raw, toks, used, [(s.start, s.end) for s in spans])
        )
    fields = [*st.groups, *st.measures]
    query: dict[str, Any] = {
        "modelId": model.id,
        "table": model.topics[topic].base_view,
        "join_paths_from_topic_name": topic,
        "fields": fields,
        "filters": st.filters,
        "sorts": [],
    }
    sort_field = st.measures[0] if st.measures else None
    if st.sort_desc is not None and sort_field:
        query["sorts"] = [{"column_name": sort_field, "sort_descending": st.sort_desc}]
        query["limit"] = st.limit or (1 if st.groups else None) or 10
    elif any("[" in g for g in st.groups):
        g = next(g for g in st.groups if "[" in g)
        query["sorts"] = [{"column_name": g, "sort_descending": False}]
    elif st.groups and sort_field:
        query["sorts"] = [{"column_name": sort_field, "sort_descending": True}]
    intent = _intent(model, st, topic)
    return Plan(queries=[PlannedQuery(query, intent, st.provenance)], topic=topic)


def _comparison_text(raw: list[str], pos: int, numbers: int) -> str:
    """The words of a number condition as written: up to its last number ("over 300,000")."""
    end = pos
    for end in range(pos, len(raw)):
        numbers -= raw[end][:1].isdigit()
        if numbers <= 0:
            break
    return " ".join(raw[pos : end + 1])


def _through(topic: Topic, tviews: set[str], named: set[str]) -> set[str]:
    """The topic's views whose join path passes through a view the question names as an
    entity; all of them when none does."""
    near = {v for v in tviews if named & {step.view for step in topic.path_to(v)[:-1]}}
    return near or tviews


def _keep_what_topic_reaches(st: _State, tviews: set[str]) -> None:
    """A follow-up that moved to another topic ("how many customers?" after revenue by ship
    mode) keeps the earlier groups and filters that topic can reach, and drops the rest: a
    query naming a view the topic does not join would only fail."""

    def reached(key: str) -> bool:
        return key.partition(".")[0] in tviews

    dropped = [g for g in st.groups if not reached(g)] + [k for k in st.filters if not reached(k)]
    st.groups = [g for g in st.groups if reached(g)]
    st.filters = {k: v for k, v in st.filters.items() if reached(k)}
    if dropped:
        st.provenance.append(f"left out of the new topic: {', '.join(dropped)}")


def _previous_query(conversation: Sequence[PlanStep]) -> dict[str, Any] | None:
    for step in reversed(conversation):
        if step.plan.queries:
            return step.plan.queries[-1].query
    return None


def _intent(model: SemanticModel, st: _State, topic: str) -> str:
    def label(key: str) -> str:
        base, _, grain = key.partition("[")
        view, _, name = base.partition(".")
        v = model.views[view]
        lab = v.measures[name].label if name in v.measures else v.dimensions[name].label
        return f"{lab} ({grain.rstrip(']')})" if grain else lab

    text = ", ".join(label(m) for m in st.measures) or "rows"
    if st.groups:
        text += " by " + ", ".join(label(g) for g in st.groups)
    if st.filters:
        text += " where " + ", ".join(label(k) for k in st.filters)
    if st.sort_desc is not None:
        text += f", {'top' if st.sort_desc else 'bottom'} {st.limit or 1}"
    return f"{text} (topic {model.topics[topic].label})"


def _pick_topic(
    model: SemanticModel, measures: list[str], views: list[set[str]], only: str | None = None
) -> str | None:
    best: tuple[int, int, str] | None = None
    for name, topic in model.topics.items():
        tv = set(topic.views)
        if only is not None and name != only:
            continue
        if (topic.hidden and name != only) or not all(opts & tv for opts in views):
            continue
        if not all(_offers(model, topic, m) for m in measures):  # `fields`, `ai_fields`
            continue
        base_hit = 0 if measures and measures[0].split(".")[0] == topic.base_view else 1
        # the nearest of a phrase's views (a set: its order would differ between processes)
        depth = sum(min(len(topic.path_to(v)) for v in opts & tv) for opts in views)
        cand = (base_hit, depth, name)
        if best is None or cand < best:
            best = cand
    return best[2] if best else None


def _offers(model: SemanticModel, topic: Topic, key: str) -> bool:
    view, _, name = key.partition(".")
    measure = model.views[view].measures.get(name) if view in model.views else None
    return topic.exposes(view, name, measure.tags if measure else ())
