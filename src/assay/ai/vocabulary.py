"""The planner's vocabulary: phrases the model declares, indexed for matching questions.

Everything here comes from the model's metadata: labels, names, synonyms, descriptions,
``ai_context`` ("word = 'VALUE'" pairs), ``all_values`` / ``sample_values`` and timeframes.
Nothing is specific to one model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from assay.semantic.model import Dimension, Measure, SemanticModel

Kind = Literal["measure", "dimension", "value"]

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_NUMERIC_FORMATS = ("number", "usd", "eur", "gbp", "currency", "percent", "big")


def singular(token: str) -> str:
    """A crude singular form: ``customers`` -> ``customer``, ``classes`` -> ``class``."""
    if len(token) <= 3 or token.endswith(("ss", "us", "is")):
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith(("sses", "shes", "ches", "xes")):
        return token[:-2]
    if token.endswith("s"):
        return token[:-1]
    return token


def tokens(text: str) -> list[str]:
    """Lower-case word tokens, singularised; ``'s`` and punctuation dropped."""
    out = []
    for raw in _WORD.findall(text.lower().replace("_", " ")):
        word = raw.split("'")[0]
        if word:
            out.append(singular(word))
    return out


@dataclass(frozen=True, slots=True)
class Entry:
    """One meaning of a phrase: a field, or a value of a dimension."""

    kind: Kind
    key: str  # view.field
    source: str  # "label", "synonym", "name", "value", "ai_context", "view label"
    value: str | None = None
    phrase: str = ""


@dataclass(slots=True)
class Vocabulary:
    model: SemanticModel
    phrases: dict[tuple[str, ...], list[Entry]] = field(default_factory=dict)
    max_len: int = 1

    def add(self, text: str, entry: Entry) -> None:
        toks = tuple(tokens(text))
        if not toks or all(t.isdigit() for t in toks):
            return
        entries = self.phrases.setdefault(toks, [])
        if any(
            e.kind == entry.kind and e.key == entry.key and e.value == entry.value for e in entries
        ):
            return
        entries.append(Entry(entry.kind, entry.key, entry.source, entry.value, " ".join(toks)))
        self.max_len = max(self.max_len, len(toks))

    def lookup(self, toks: Sequence[str]) -> list[Entry]:
        return self.phrases.get(tuple(toks), [])

    def dimension(self, key: str) -> Dimension:
        view, _, name = key.partition(".")
        return self.model.views[view].dimensions[name]

    def is_measure(self, key: str) -> bool:
        view, _, name = key.partition(".")
        return name in self.model.views[view].measures

    def measure(self, key: str) -> Measure:
        return self.model.measure(key)


def is_date(dim: Dimension) -> bool:
    return bool(dim.timeframes) or (dim.data_type or "").upper() in ("DATE", "TIMESTAMP")


def is_numeric(dim: Dimension) -> bool:
    if is_date(dim) or dim.all_values or dim.primary_key:
        return False
    if (dim.data_type or "").upper() in ("NUMBER", "INTEGER", "BIGINT", "DOUBLE", "DECIMAL"):
        return True
    return (dim.format or "").lower().startswith(_NUMERIC_FORMATS)


def _values(dim: Dimension) -> list[str]:
    found = [*(dim.all_values or ()), *(dim.sample_values or ())]
    return [v for v in found if isinstance(v, str)]


_PAIR = re.compile(r"(?<![\w.])([A-Za-z][A-Za-z /-]*?)\s*=\s*'([^']+)'")
_QUOTED_MEANS = re.compile(
    r'((?:"[^"]+"(?:\s*(?:or|,|and)\s*)?)+)[^"\'.;]*?(?:\bmeans?\b|=)'
    r'([^.;(]*?\'[^\']+\'(?:[^.;"(]*?\'[^\']+\')*)'
)
_WORDS_MEAN = re.compile(
    r"(?<![\w.])([A-Za-z][A-Za-z ]*?)\s+(?:means|mean)\s+(?:[\w.]+\s*=\s*)?'([^']+)'"
)
_SPLIT = re.compile(r"\s*(?:/|\bor\b|,)\s*")
_NOISE = re.compile(r"^(?:the|a|an|and|map|means?|values?|words?)\b", re.I)


def value_pairs(text: str) -> list[tuple[str, str]]:
    """``(phrase, VALUE)`` pairs stated in free text: ``urgent = '1-URGENT'``,
    ``"By air" or "air shipments" means 'AIR'``, ``Returned items means x = 'R'``."""
    pairs: list[tuple[str, str]] = []
    for quoted, tail in _QUOTED_MEANS.findall(text):
        for value in re.findall(r"'([^']+)'", tail):
            pairs.extend(
                (_NOISE.sub("", q).strip(), value) for q in re.findall(r'"([^"]+)"', quoted)
            )
    plain = re.sub(r'"[^"]*"', " ; ", _QUOTED_MEANS.sub(" ; ", text))
    for chunk in re.split(r"[;:.()\n]", plain):
        for left, value in [*_PAIR.findall(chunk), *_WORDS_MEAN.findall(chunk)]:
            said = left.strip()
            if re.search(r"[a-z]_[a-z]|\.", said) or "_" in said:
                continue  # a field reference such as l_shipmode, not a word
            last = re.split(r"\s*,\s*", said)[-1]
            for part in _SPLIT.split(last):
                phrase = _NOISE.sub("", part.strip()).strip()
                if phrase and len(phrase.split()) <= 4:
                    pairs.append((phrase, value))
    return pairs


def code_labels(text: str, values: Sequence[str]) -> list[tuple[str, str]]:
    """``(words, CODE)`` pairs a description states for a dimension's own coded values:
    ``"R = returned, A = accepted"`` -> ``("returned", "R")``, ``("accepted", "A")``.

    Only values the dimension lists are read, so a stray ``x = y`` in prose binds nothing.
    """
    pairs: list[tuple[str, str]] = []
    for value in values:
        said = rf"(?<![\w#-]){re.escape(value)}\s*=\s*([A-Za-z][A-Za-z -]*?)\s*(?=[,;.(]|$)"
        for words in re.findall(said, text):
            if len(words.split()) <= 4:
                pairs.append((words, value))
    return pairs


def build_vocabulary(model: SemanticModel) -> Vocabulary:
    """Index every visible field's label, name and synonyms, and every known value."""
    voc = Vocabulary(model)
    value_dims: dict[str, list[Dimension]] = {}
    for view in model.views.values():
        if view.hidden:
            continue
        for m in view.measures.values():
            if m.hidden:
                continue
            for text, source in _field_texts(m.label, m.name, m.synonyms):
                voc.add(text, Entry("measure", m.key, source))
            if m.aggregate_type == "count" and not m.filters:
                plural = re.sub(r"\(.*?\)", "", view.label)
                voc.add(plural, Entry("measure", m.key, "view label"))
                voc.add(f"number of {plural}", Entry("measure", m.key, "view label"))
        for d in view.dimensions.values():
            if d.hidden:
                continue
            for text, source in _field_texts(d.label, d.name, d.synonyms):
                voc.add(text, Entry("dimension", d.key, source))
            for value in _values(d):
                value_dims.setdefault(value, []).append(d)
                for text in _value_texts(value):
                    voc.add(text, Entry("value", d.key, "value", value))
    # "word = 'VALUE'" pairs: a dimension's own ai_context binds to it; view, topic and model
    # ai_context binds to every dimension that declares VALUE.
    for view in model.views.values():
        for d in view.dimensions.values():
            for phrase, value in code_labels(d.description or "", _values(d)):
                voc.add(phrase, Entry("value", d.key, "description", value))
            for phrase, value in value_pairs(f"{d.ai_context or ''}\n{d.description or ''}"):
                # A dimension that lists its values binds only those (a user's list may be
                # cut to what they may see); one that lists none binds any it names.
                if value in _values(d) or (d.all_values is None and d.sample_values is None):
                    voc.add(phrase, Entry("value", d.key, "ai_context", value))
    contexts = [model.ai_context, *(v.ai_context for v in model.views.values())]
    contexts += [t.ai_context for t in model.topics.values()]
    for ctx in contexts:
        for said, value in value_pairs(ctx or ""):
            for d in value_dims.get(value, []):
                voc.add(said, Entry("value", d.key, "ai_context", value))
    return voc


def _field_texts(label: str, name: str, synonyms: Iterable[str]) -> list[tuple[str, str]]:
    out = [(label, "label"), (name, "name")]
    out += [(s, "synonym") for s in synonyms]
    return out


def _value_texts(value: str) -> list[str]:
    texts = [value]
    coded = re.match(r"^\d+\s*-\s*(.+)$", value)  # "1-URGENT" -> "URGENT"
    if coded:
        texts.append(coded.group(1))
    # single characters (codes like 'R') are matched only through ai_context words
    return [t for t in texts if len(t.strip()) >= 3]


def main_date_dimension(model: SemanticModel, topic_name: str) -> str | None:
    """The date dimension the model names for "over time" questions in this topic."""
    topic = model.topics[topic_name]
    views = set(topic.views)
    texts = [topic.ai_context, model.ai_context]
    texts += [model.views[v].ai_context for v in topic.views]
    for text in texts:
        for sentence in re.split(r"(?<=[.\n])\s+|\n\s*-", text or ""):
            if "over time" not in sentence.lower():
                continue
            for ref in re.findall(r"\b([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)", sentence):
                view, name = ref
                dim = model.views.get(view)
                if (
                    view in views
                    and dim
                    and name in dim.dimensions
                    and is_date(dim.dimensions[name])
                ):
                    return f"{view}.{name}"
    for view in topic.views:
        for d in model.views[view].dimensions.values():
            if is_date(d) and not d.hidden:
                return d.key
    return None
