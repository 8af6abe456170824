"""The built-in planner: offline and deterministic, question -> semantic queries or a refusal.

It reads only what the model declares (see ``vocabulary``): phrases map to measures,
dimensions and values; grain words, years, comparisons and rankings become timeframes,
filters, sorts and limits; the topic is the one that joins every chosen field.
"""

from __future__ import annotations

import itertools
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assay.ai import phrases
from assay.ai.vocabulary import (
    Entry,
    Vocabulary,
    build_vocabulary,
    is_date,
    is_numeric,
    main_date_dimension,
    singular,
)
from assay.semantic.model import SemanticModel, Topic


@dataclass(frozen=True, slots=True)
class PlannedQuery:
    query: dict[str, Any]
    intent: str
    provenance: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Plan:
    queries: list[PlannedQuery] = field(default_factory=list)
    refusal: str | None = None
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One earlier turn of a conversation: its question and the plan made for it."""

    question: str
    plan: Plan


_VOCABS: weakref.WeakKeyDictionary[SemanticModel, Vocabulary] = weakref.WeakKeyDictionary()

_TOKEN = re.compile(r"\d[\d,]*(?:\.\d+)?%?|[A-Za-z][A-Za-z0-9#]*(?:'[a-z]+)?|[,]")
_STOP = frozenset(
    """
    a an the of in on at for to from by per with and or is are was were be been do does
    did we our us you your i me my what which who whose how many much show list give
    tell there have has had it its that this these those all each every me please can
    could would should will total overall number count placed generated made brought
    where when
    """.split()  # noqa: SIM905 (a word list reads best as text)
)


@dataclass(slots=True)
class _Span:
    start: int
    end: int
    entries: list[Entry]
    role: str = ""  # measure | group | value | filter_target | absorbed


@dataclass(slots=True)
class _State:
    measures: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)  # dimension keys, date ones with [grain]
    filters: dict[str, dict[str, Any]] = field(default_factory=dict)
    sort_desc: bool | None = None
    limit: int | None = None
    provenance: list[str] = field(default_factory=list)
    only_topic: str | None = None  # the caller chose the topic


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
    voc = vocabulary_for(model)
    raw = _TOKEN.findall(question)
    low = [
        re.sub(r"'[a-z]+$", "", t.lower().rstrip("%").replace(",", "")) if t != "," else ","
        for t in raw
    ]
    toks = [singular(t) for t in low]
    used = [False] * len(toks)
    st = _State(only_topic=topic)
    date_filter = phrases.date_filter(toks, used)
    grain = phrases.grain(toks, used)
    comparisons = phrases.comparisons(toks, raw, used)
    rank_slot, rank_n, desc = phrases.ranking(toks, used)
    spans = _match(voc, toks, used)
    _assign_roles(voc, spans, toks, rank_slot)

    previous = _previous_query(conversation)
    for sp in spans:
        text = " ".join(low[sp.start : sp.end])
        if sp.role == "measure":
            key = _pick(sp, "measure").key
            if st.measures and not _joined_by_and(toks, spans, sp):
                continue
            if key not in st.measures:
                st.measures.append(key)
                st.provenance.append(f"matched '{text}' to {key} via {_pick(sp, 'measure').source}")
    negated_values: dict[str, bool] = {}
    value_spans = [sp for sp in spans if sp.role == "value"]
    nothing_asked = not st.measures and not any(
        sp.role in ("group", "filter_target") for sp in spans
    )
    if nothing_asked and not value_spans and previous is None:
        return _refuse(question, toks, used, spans)
    st.sort_desc = desc
    st.limit = rank_n
    return _finish(
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


def _finish(
    voc: Vocabulary,
    model: SemanticModel,
    question: str,
    toks: list[str],
    low: list[str],
    raw: list[str],
    used: list[bool],
    spans: list[_Span],
    st: _State,
    date_filter: dict[str, Any] | None,
    grain: str | None,
    comparisons: list[tuple[int, dict[str, Any]]],
    negated: dict[str, bool],
    previous: dict[str, Any] | None,
) -> Plan:
    unknown = _unknown_proper_nouns(raw, toks, used, spans)
    if unknown:
        return Plan(refusal=_refusal_text(unknown))
    if previous is not None:
        for fld in previous["fields"]:
            base = fld.split("[")[0]
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
        return Plan(
            refusal=f"The topic {model.topics[st.only_topic].label} does not include everything "
            f"the question names ({', '.join(sorted(set().union(*views)))}).",
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
        d = _pick(sp, "dimension", tviews)
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
    for sp in value_spans:
        e = _pick(sp, "value", tviews)
        vals = [x.value for x in sp.entries if x.kind == "value" and x.key == e.key and x.value]
        by_dim.setdefault(e.key, []).extend(v for v in vals if v not in by_dim.get(e.key, []))
        prior = [x.end for x in spans if x.end <= sp.start]
        window = toks[max(sp.start - 3, max(prior, default=0)) : sp.start]
        if any(t in phrases.NEGATIONS for t in window) or "other than" in " ".join(window):
            negated[e.key] = True
        st.provenance.append(
            f"matched '{' '.join(low[sp.start : sp.end])}' to {e.key} = {vals} via {e.source}"
        )
    for key, vals in by_dim.items():
        f: dict[str, Any] = {"type": "string", "kind": "EQUALS", "values": vals}
        if negated.get(key):
            f["is_negative"] = True
        st.filters[key] = f
        st.groups = [g for g in st.groups if g != key]
    for pos, filt in comparisons:
        target = _nearest_numeric(voc, target_spans, pos, tviews)
        if target is None:
            if not st.measures:
                return Plan(refusal="I could not tell which amount the comparison applies to.")
            target = st.measures[0]
        st.filters[target] = filt
        st.provenance.append(f"number filter {filt['kind']} {filt['values']} on {target}")
    for sp in target_spans if not st.measures else []:  # "list the market segments"
        d = _pick(sp, "dimension", tviews)
        dim = voc.dimension(d.key)
        fresh = d.key not in st.filters and d.key not in st.groups
        if fresh and not is_numeric(dim) and not is_date(dim):
            st.groups.append(d.key)
    if not st.measures and not st.groups:
        return _refuse(question, toks, used, spans)
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


def _match(voc: Vocabulary, toks: list[str], used: list[bool]) -> list[_Span]:
    spans: list[_Span] = []
    i = 0
    while i < len(toks):
        if used[i] or toks[i] == ",":
            i += 1
            continue
        for k in range(min(voc.max_len, len(toks) - i), 0, -1):
            if any(used[i : i + k]):
                continue
            entries = voc.lookup(toks[i : i + k])
            if entries and _overtaken(voc, toks, used, i, k):
                entries = []
            if entries and not (k == 1 and toks[i] in _STOP and toks[i] not in ("us",)):
                spans.append(_Span(i, i + k, list(entries)))
                phrases.mark(used, i, i + k)
                i += k
                break
        else:
            i += 1
    return spans


def _overtaken(voc: Vocabulary, toks: list[str], used: list[bool], i: int, k: int) -> bool:
    """A longer phrase starts inside ``toks[i:i+k]`` and runs past it ("by [ship mode]")."""
    for j in range(i + 1, i + k):
        for m in range(min(voc.max_len, len(toks) - j), i + k - j, -1):
            if m < k and toks[i] not in _STOP:
                continue
            if not any(used[j : j + m]) and voc.lookup(toks[j : j + m]):
                return True
    return False


def _assign_roles(
    voc: Vocabulary, spans: list[_Span], toks: list[str], rank_slot: int | None
) -> None:
    grouping = False
    prev_end = -1
    for sp in spans:
        between = toks[prev_end : sp.start] if prev_end >= 0 else []
        lead = toks[sp.start - 1] if sp.start else ""
        if lead in phrases.GROUP_LEAD or (lead == "each" and sp.start > 1):
            grouping = True
        elif grouping and not all(t in ("and", ",", "the") for t in between):
            grouping = False
        kinds = {e.kind for e in sp.entries}
        slot = rank_slot is not None and rank_slot <= sp.start <= rank_slot + 1
        if (grouping or slot) and "dimension" in kinds:
            sp.role = "group"
        elif "value" in kinds and not (grouping and "dimension" in kinds):
            sp.role = "value"
        elif "measure" in kinds:
            sp.role = "measure"
        elif "dimension" in kinds:
            sp.role = "filter_target"
        prev_end = sp.end
    # a dimension named right after one of its values ("building segment") is that filter
    for a, b in itertools.pairwise(spans):
        if (
            a.role == "value"
            and b.start == a.end
            and b.role in ("filter_target", "measure", "group")
        ):
            keys = {e.key for e in a.entries}
            if (
                any(e.key in keys for e in b.entries if e.kind == "dimension")
                and b.role != "measure"
            ):
                b.role = "absorbed"


def _joined_by_and(toks: list[str], spans: list[_Span], sp: _Span) -> bool:
    before = [s for s in spans if s.end <= sp.start and s.role == "measure"]
    if not before:
        return False
    gap = toks[before[-1].end : sp.start]
    return bool(gap) and all(t in ("and", ",", "the") for t in gap)


def _pick(sp: _Span, kind: str, views: set[str] | None = None) -> Entry:
    cands = [e for e in sp.entries if e.kind == kind] or sp.entries
    if views:
        inside = [e for e in cands if e.key.split(".")[0] in views]
        cands = inside or cands
    return min(cands, key=lambda e: (e.source not in ("label", "synonym", "value"), len(e.key)))


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
        depth = sum(len(topic.path_to(next(iter(opts & tv)))) for opts in views)
        cand = (base_hit, depth, name)
        if best is None or cand < best:
            best = cand
    return best[2] if best else None


def _offers(model: SemanticModel, topic: Topic, key: str) -> bool:
    view, _, name = key.partition(".")
    measure = model.views[view].measures.get(name) if view in model.views else None
    return topic.exposes(view, name, measure.tags if measure else ())


def _nearest_numeric(voc: Vocabulary, spans: list[_Span], pos: int, views: set[str]) -> str | None:
    best: tuple[int, str] | None = None
    for sp in spans:
        for e in sp.entries:
            if (
                e.kind == "dimension"
                and e.key.split(".")[0] in views
                and is_numeric(voc.dimension(e.key))
            ):
                dist = abs(sp.start - pos) + (0 if sp.start < pos else 1)
                if best is None or dist < best[0]:
                    best = (dist, e.key)
    return best[1] if best else None


def _unknown_proper_nouns(
    raw: list[str], toks: list[str], used: list[bool], spans: list[_Span]
) -> list[str]:
    covered: set[int] = set()
    for sp in spans:
        covered.update(range(sp.start, sp.end))
    out = []
    for i, word in enumerate(raw):
        if i == 0 or i in covered or used[i] or not word[:1].isupper():
            continue
        if toks[i] in _STOP or toks[i] in phrases.MONTHS or raw[i - 1] in (".", "?"):
            continue
        out.append(word)
    return out


def _refusal_text(words: list[str]) -> str:
    quoted = ", ".join(f"'{w}'" for w in words)
    return (
        f"Sorry, I can't answer that from this model: I could not map {quoted} to any field "
        "or value it declares, so I ran no query rather than guess."
    )


def _refuse(question: str, toks: list[str], used: list[bool], spans: list[_Span]) -> Plan:
    covered: set[int] = set()
    for sp in spans:
        covered.update(range(sp.start, sp.end))
    words = [
        t
        for i, t in enumerate(toks)
        if i not in covered and not used[i] and t not in _STOP and t != "," and not t.isdigit()
    ]
    if not words:
        words = [question.strip()]
    return Plan(refusal=_refusal_text(words))
