"""Phrases of a question matched to the model's vocabulary (the ai layer): the longest
phrase wins, and each span gets the role it plays in the plan (measure, group, value, filter
target) from the words around it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from assay.ai import phrases
from assay.ai.vocabulary import Entry, Vocabulary, is_numeric

STOP = frozenset(
    """
    a an the of in on at for to from by per with and or is are was were be been do does
    did we our us you your i me my what which who whose how many much show list give
    tell there have has had it its that this these those all each every me please can
    could would should will total overall number count placed generated made brought
    where when
    """.split()  # noqa: SIM905 (a word list reads best as text)
)


@dataclass(slots=True)
class Span:
    start: int
    end: int
    entries: list[Entry]
    role: str = ""  # measure | group | value | filter_target | absorbed
    placed: bool = False  # the plan used it (accounting: every word is placed or filler)


def match(voc: Vocabulary, toks: list[str], used: list[bool]) -> list[Span]:
    spans: list[Span] = []
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
            if entries and not (k == 1 and toks[i] in STOP and toks[i] not in ("us",)):
                spans.append(Span(i, i + k, list(entries)))
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
            if m < k and toks[i] not in STOP:
                continue
            if not any(used[j : j + m]) and voc.lookup(toks[j : j + m]):
                return True
    return False


def _agent(after: list[Span], toks: list[str], sp: Span) -> bool:
    """``by <sp>`` names who did something, qualified by a value ("returned by customers in
    ASIA", "placed by customers from GERMANY"), not a breakdown ("shipped by ship mode")."""
    qualified = bool(after) and after[0].start == sp.end + 1 and toks[sp.end] in ("in", "from")
    kinds = {e.kind for e in after[0].entries} if after else set()
    return qualified and "value" in kinds and phrases.agentive_by(toks, sp.start - 1)


def assign_roles(
    voc: Vocabulary, spans: list[Span], toks: list[str], rank_slot: int | None
) -> None:
    grouping = False
    prev_end = -1
    for n, sp in enumerate(spans):
        between = toks[prev_end : sp.start] if prev_end >= 0 else []
        lead = toks[sp.start - 1] if sp.start else ""
        if lead == "by" and _agent(spans[n + 1 :], toks, sp):
            grouping = False  # who did it, not a breakdown: its value is the filter
        elif lead in phrases.GROUP_LEAD or (lead == "each" and sp.start > 1):
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


def joined_by_and(toks: list[str], spans: list[Span], sp: Span) -> bool:
    before = [s for s in spans if s.end <= sp.start and s.role == "measure"]
    if not before:
        return False
    gap = toks[before[-1].end : sp.start]
    return bool(gap) and all(t in ("and", ",", "the") for t in gap)


def pick(sp: Span, kind: str, views: set[str] | None = None) -> Entry:
    cands = [e for e in sp.entries if e.kind == kind] or sp.entries
    if views:
        inside = [e for e in cands if e.key.split(".")[0] in views]
        cands = inside or cands
    # a field's own label beats another's synonym ("nation": the view labelled Nation)
    rank = {"label": 0, "synonym": 1, "value": 1}
    return min(cands, key=lambda e: (rank.get(e.source, 2), len(e.key)))


def nearest_numeric(voc: Vocabulary, spans: list[Span], pos: int, views: set[str]) -> str | None:
    """The numeric dimension named nearest a number condition ("balance over 5000")."""
    best: tuple[int, str, Span] | None = None
    for sp in spans:
        numeric = [
            e
            for e in sp.entries
            if e.kind == "dimension"
            and e.key.split(".")[0] in views
            and is_numeric(voc.dimension(e.key))
        ]
        if numeric:
            key = pick(Span(sp.start, sp.end, numeric), "dimension").key
            dist = abs(sp.start - pos) + (0 if sp.start < pos else 1)
            if best is None or dist < best[0]:
                best = (dist, key, sp)
    if best is None:
        return None
    best[2].placed = True
    return best[1]


def last_end(spans: list[Span], sp: Span) -> int:
    return max((x.end for x in spans if x.end <= sp.start), default=0)
