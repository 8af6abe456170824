"""Phrases the planner reads off a question's tokens: dates and periods, grains, number
comparisons and rankings. Each parser marks the tokens it used, so they are not matched to
fields again."""

from __future__ import annotations

import re
from typing import Any

_GRAINS = {"month": "month", "quarter": "quarter", "year": "year", "week": "week", "day": "date"}
_GRAIN_ADJ = {
    "monthly": "month",
    "quarterly": "quarter",
    "yearly": "year",
    "annual": "year",
    "annually": "year",
    "weekly": "week",
    "daily": "date",
}
MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_ORDINAL = {
    "first": 1,
    "1st": 1,
    "second": 2,
    "2nd": 2,
    "third": 3,
    "3rd": 3,
    "fourth": 4,
    "4th": 4,
    "last": 4,
}
_DESC = {"most", "highest", "largest", "biggest", "greatest", "best", "maximum", "top", "max"}
_ASC = {"least", "lowest", "smallest", "fewest", "worst", "minimum", "bottom", "min"}
_GT = {
    ("over",),
    ("above",),
    ("more", "than"),
    ("greater", "than"),
    ("exceeding",),
    ("higher", "than"),
    ("larger", "than"),
    ("at", "least"),
}
_LT = {
    ("under",),
    ("below",),
    ("less", "than"),
    ("fewer", "than"),
    ("lower", "than"),
    ("smaller", "than"),
    ("at", "most"),
}
NEGATIONS = {"not", "non", "excluding", "except", "without", "exclude"}
GROUP_LEAD = {"by", "per", "each", "every", "across"}
#: a passive's auxiliaries: "orders (that) were returned ... by customers" names who did it
PASSIVE = {"was", "were", "been", "being", "is", "are", "be", "get", "got"}


def agentive_by(toks: list[str], at: int) -> bool:
    """Whether ``by`` at ``at`` names who did something ("returned by customers in ASIA",
    "orders placed by ...") rather than a breakdown ("revenue by customer"): a past
    participle before it in the same clause, after a passive auxiliary or right before
    "by". A breakdown there would answer another question, one row per customer."""
    for i in range(at - 1, max(-1, at - 6), -1):
        word = toks[i]
        if word in {",", "and", "or", "for", "with"}:
            return False
        if _participle(word) and (
            i == at - 1 or any(t in PASSIVE for t in toks[max(0, i - 3) : i])
        ):
            return True
    return False


def _participle(word: str) -> bool:
    irregular = {"sold", "bought", "made", "paid", "sent", "held", "kept", "done"}
    return (len(word) > 4 and word.endswith("ed")) or word in irregular


def date_filter(toks: list[str], used: list[bool]) -> dict[str, Any] | None:
    n = len(toks)

    def year(i: int) -> int | None:
        if 0 <= i < n and re.fullmatch(r"(19|20)\d\d", toks[i]) and not used[i]:
            return int(toks[i])
        return None

    for i in range(n):
        if toks[i] in ("quarter", "q") and i > 0 and toks[i - 1] in _ORDINAL:
            j = i + 2 if i + 1 < n and toks[i + 1] in ("of", "in") else i + 1
            y = year(j)
            if y:
                mark(used, i - 1, j + 1)
                return unit_filter(f"{y} Q{_ORDINAL[toks[i - 1]]}")
        m = re.fullmatch(r"q([1-4])", toks[i])
        if m:
            y = (
                year(i + 1) or year(i + 2)
                if i + 1 < n and toks[i + 1] in ("of", "in")
                else year(i + 1)
            )
            y = y or year(i - 1)
            if y:
                mark(used, max(i - 1, 0), min(i + 3, n))
                return unit_filter(f"{y} Q{m.group(1)}")
        if toks[i] in MONTHS and year(i + 1):
            mark(used, i, i + 2)
            return unit_filter(f"{toks[i + 1]}-{MONTHS.index(toks[i]) + 1:02d}")
        if toks[i] == "between" and year(i + 1) and i + 3 < n and year(i + 3):
            mark(used, i, i + 4)
            return {
                "type": "date",
                "kind": "BETWEEN",
                "left_side": f"{toks[i + 1]}-01-01",
                "right_side": f"{int(toks[i + 3]) + 1}-01-01",
            }
        if toks[i] in ("before", "after", "since") and year(i + 1):
            y = int(toks[i + 1])
            mark(used, i, i + 2)
            if toks[i] == "before":
                return {"type": "date", "kind": "BEFORE", "right_side": f"{y}-01-01"}
            start = y + 1 if toks[i] == "after" else y
            return {"type": "date", "kind": "ON_OR_AFTER", "left_side": f"{start}-01-01"}
    for i in range(n):
        prev = toks[i - 1] if i else ""
        if year(i) and prev not in {"over", "above", "under", "below", "than", "least", "most"}:
            used[i] = True
            return unit_filter(toks[i])
    return None


def unit_filter(text: str) -> dict[str, Any]:
    return {"type": "date", "kind": "TIME_FOR_UNIT_DURATION", "left_side": text}


def mark(used: list[bool], a: int, b: int) -> None:
    for i in range(max(a, 0), min(b, len(used))):
        used[i] = True


def grain(toks: list[str], used: list[bool]) -> str | None:
    for i, t in enumerate(toks):
        if used[i]:
            continue
        if t in _GRAIN_ADJ:
            used[i] = True
            return _GRAIN_ADJ[t]
        # "by month", "a month"; "best month", "which year": the grain is what is ranked
        lead = GROUP_LEAD | _DESC | _ASC | {"a", "and", ",", "which", "what"}
        if t in _GRAINS and i > 0 and toks[i - 1] in lead:
            used[i] = True
            return _GRAINS[t]
    return None


def number_value(text: str, raw: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value / 100 if raw.endswith("%") else value


def comparisons(
    toks: list[str], raw: list[str], used: list[bool]
) -> list[tuple[int, dict[str, Any]]]:
    out: list[tuple[int, dict[str, Any]]] = []
    n = len(toks)
    for i in range(n):
        if used[i]:
            continue
        if toks[i] in ("negative", "positive"):
            used[i] = True
            kind = "LESS_THAN" if toks[i] == "negative" else "GREATER_THAN"
            out.append((i, {"type": "number", "kind": kind, "values": ["0"]}))
            continue
        if toks[i] == "between" and i + 3 < n and toks[i + 2] == "and":
            lo, hi = number_value(toks[i + 1], raw[i + 1]), number_value(toks[i + 3], raw[i + 3])
            if lo is not None and hi is not None:
                mark(used, i, i + 4)
                out.append(
                    (
                        i,
                        {
                            "type": "number",
                            "kind": "BETWEEN",
                            "is_inclusive": True,
                            "values": [format_number(lo), format_number(hi)],
                        },
                    )
                )
                continue
        for words, kind in [(w, "GREATER_THAN") for w in _GT] + [(w, "LESS_THAN") for w in _LT]:
            k = len(words)
            if tuple(toks[i : i + k]) == words and i + k < n:
                value = number_value(toks[i + k], raw[i + k])
                if value is not None:
                    mark(used, i, i + k + 1)
                    f: dict[str, Any] = {
                        "type": "number",
                        "kind": kind,
                        "values": [format_number(value)],
                    }
                    if words[0] == "at":
                        f["is_inclusive"] = True
                    out.append((i, f))
                    break
    return out


def format_number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def ranking(toks: list[str], used: list[bool]) -> tuple[int | None, int | None, bool | None]:
    """(index of the ranked entity's phrase, limit, descending) for "top 5 X", "which X most"."""
    desc: bool | None = None
    slot: int | None = None
    limit: int | None = None
    for i, t in enumerate(toks):
        if used[i]:
            continue
        if t in ("top", "bottom", "best", "worst") and i + 1 < len(toks):
            desc = t in ("top", "best")
            used[i] = True
            if toks[i + 1].isdigit():
                limit, slot = int(toks[i + 1]), i + 2
                used[i + 1] = True
            else:
                slot = i + 1
        elif t in _DESC and desc is None:
            desc, used[i] = True, True
        elif t in _ASC and desc is None:
            desc, used[i] = False, True
    if slot is None:
        for i, t in enumerate(toks):
            if t in ("which", "what") and i + 1 < len(toks):
                j = i + 1
                if toks[j].isdigit():
                    limit, used[j] = int(toks[j]), True
                    j += 1
                slot = j
                break
    if desc is None:
        return slot, None, None
    return slot, limit, desc
