"""Accounting for every word of a question (the ai layer): which tokens a plan used, which
are filler, and which carry meaning the plan did not place.

A deterministic planner can know what it did not understand. A word that carries meaning and
is not in the plan means the plan answers some other question, so the planner refuses and
names the word instead of presenting a number that silently answers something else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from assay.ai.phrases import MONTHS
from assay.ai.vocabulary import Vocabulary, singular, tokens
from assay.semantic.model import SemanticModel

# Function words: articles, prepositions, pronouns, auxiliaries, question words and the verbs
# of asking. They never name data; everything else must be placed or the answer is refused.
FILLER = frozenset(
    """
    a an the of in on at for to from by per with within into onto about as and or nor but
    is are was were be been being am do doe did done does have has had having it its that
    this these those there here then than so such we our ours us you your i me my mine they
    them their what which who whom whose how when where why whats what's please can could
    would should will shall may might must show list give tell find get display see want
    know let need each every all any some both either only just also ever far so
    up out over through between among across during ok okay s
    now same instead again too still but
    """.split()  # noqa: SIM905 (a word list reads best as text)
)
# Words that say how to aggregate: placed when the plan has a measure.
TOGETHER = frozenset({"altogether", "combined", "together"})  # one figure for named values
AGGREGATE = frozenset({"total", "overall", "number", "count", "sum", "many", "much"}) | TOGETHER
# Words asking to set named values side by side, or to split a figure: placed when the plan
# groups by something.
COMPARE = frozenset(
    """
    compare compared comparison comparing v vs versus against break broken down breakdown split
    group grouped
    """.split()  # noqa: SIM905
)
# Words of calculations over a result: a share of a total and a change from one period to the
# next are planned (``calculated``); when such a word is left unplaced, the refusal says what
# can be asked instead.
CALCULATION = frozenset(
    """
    growth grow grew increase increased decrease decreased change changed percent percentage
    share proportion ratio yoy mom qoq trend cumulative running rank difference delta
    """.split()  # noqa: SIM905
)


# "#" splits a word as the vocabulary does ("Brand#12" is "brand 12"); letters are any
# script's, so a question in another language is named in the refusal as written
_TOKEN = re.compile(r"\d[\d,]*(?:\.\d+)?%?|[^\W\d_][^\W_]*(?:'[a-z]+)?|[,%]")


def tokenize(question: str) -> tuple[list[str], list[str], list[str]]:
    """The question's words as written (``raw``, what a refusal names), lower-cased without
    thousands separators or "'s" (``low``), and singular (``toks``, what is matched)."""
    raw = _TOKEN.findall(question)
    low = [
        re.sub(r"'[a-z]+$", "", t.lower().rstrip("%").replace(",", "")) if t not in ",%" else t
        for t in raw
    ]
    low = ["percent" if t == "%" else t for t in low]  # "what % of orders"
    return raw, low, [singular(t) for t in low]


def stem(word: str) -> str:
    """A crude stem, enough to see that "shipped", "ships" and "shipping" say the same."""
    w = word.lower()
    for suffix in ("ing", "ed", "es", "s"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            break
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiou":
        w = w[:-1]
    return w


def field_stems(model: SemanticModel, keys: Iterable[str]) -> set[str]:
    """Stems of what the model says about ``keys`` and their views (labels, synonyms,
    descriptions): a word the model uses to describe a field the plan uses is explained by
    it ("placed" for orders, "One row per order placed by a customer")."""
    out: set[str] = set()
    for key in keys:
        view_name, _, name = key.split("[")[0].partition(".")
        view = model.views.get(view_name)
        if view is None:
            continue
        fld: Any = view.measures.get(name) or view.dimensions.get(name)
        texts = [view.label, view.description or ""]
        if fld is not None:
            texts += [fld.label, fld.description or "", *fld.synonyms]
        for text in texts:
            out.update(stem(t) for t in tokens(text))
    # the model's own sample questions show how people ask for a measure ("brings in")
    wanted = {k.split("[")[0] for k in keys}
    for topic in model.topics.values():
        for sample in topic.sample_queries:
            fields = {str(f).split("[")[0] for f in sample.query.get("fields", ())}
            measures = {f for f in fields if _is_measure(model, f)}
            if sample.prompt and measures and measures <= wanted:
                out.update(stem(t) for t in tokens(sample.prompt))
    return out


def _is_measure(model: SemanticModel, key: str) -> bool:
    view, _, name = key.partition(".")
    return view in model.views and name in model.views[view].measures


def names_entity(model: SemanticModel, words: Sequence[str], views: Iterable[str]) -> bool:
    """Whether ``words`` all come from the label of one of ``views``: "items" for the line
    items a query counts rows of names what the rows are, not a field left out."""
    for view in views:
        label = {stem(t) for t in tokens(model.views[view].label)}
        if words and all(stem(w) in label for w in words):
            return True
    return False


def measures_named_by(voc: Vocabulary, word: str) -> set[str]:
    """The measures whose label or synonyms hold ``word`` (by stem): "sold" names the measure
    whose synonyms say "units sold"."""
    want = stem(word)
    found: set[str] = set()
    for phrase, entries in voc.phrases.items():
        if len(phrase) > 1 and any(stem(t) == want for t in phrase):
            found.update(e.key for e in entries if e.kind == "measure")
    return found


def unplaced_words(
    raw: Sequence[str],
    toks: Sequence[str],
    placed: Sequence[bool],
    *,
    has_measure: bool,
    has_group: bool,
    explained: set[str],
    matched: set[int],
) -> list[str]:
    """The words of the question (as the user wrote them) that carry meaning and that the
    plan did not place; ``placed[i]`` is True for tokens a parser or a used phrase took.

    A word the model describes a used field with ("placed" for orders) is explained by it,
    unless the word itself names a field or value (``matched``): a name the plan left out
    ("suppliers" when the nation filtered is the customer's) changes the question.
    """
    out: list[str] = []
    for i, tok in enumerate(toks):
        if placed[i] or tok == "," or tok in FILLER or raw[i].lower() in FILLER:
            continue
        if tok in AGGREGATE:  # how to aggregate: placed by a measure, never by prose
            if has_measure:
                continue
            out.append(raw[i])
            continue
        if tok in COMPARE and has_group:
            continue
        if i not in matched and stem(tok) in explained:
            continue
        out.append(raw[i])
    return out


def refusal(words: Sequence[str]) -> str:
    """Why no query ran, naming the words that could not be placed."""
    quoted = ", ".join(f"'{w}'" for w in dict.fromkeys(words))
    text = (
        f"Sorry, I can't answer that from this model: I could not map {quoted} to any field "
        "or value it declares, so I ran no query rather than guess."
    )
    if any(w.lower() in CALCULATION for w in words):
        text += (
            " The calculations over a result I can make are a share of a total by one "
            'dimension ("share of revenue by region") and the change from one period to the '
            'next ("revenue growth year over year"); running totals, ranks, ratios and trends '
            "are not built yet."
        )
    return text


def unknown_proper_nouns(
    raw: Sequence[str], toks: Sequence[str], used: Sequence[bool], spans: Sequence[tuple[int, int]]
) -> list[str]:
    """Capitalised words nothing matched ("Berlin", "Acme"): names of things the model does
    not hold, refused before a topic is even chosen."""
    covered = {i for a, b in spans for i in range(a, b)}
    out = []
    for i, word in enumerate(raw):
        if i == 0 or i in covered or used[i] or not word[:1].isupper():
            continue
        if toks[i] in FILLER or toks[i] in MONTHS or raw[i - 1] in (".", "?"):
            continue
        out.append(word)
    return out


def refuse(
    question: str,
    raw: Sequence[str],
    toks: Sequence[str],
    used: Sequence[bool],
    spans: Sequence[tuple[int, int]],
) -> str:
    """A refusal naming every word of the question nothing matched."""
    covered = {i for a, b in spans for i in range(a, b)}
    words = [
        raw[i]
        for i, t in enumerate(toks)
        if i not in covered and not used[i] and t not in FILLER and t != "," and not t.isdigit()
    ]
    return refusal(words or [question.strip()])
