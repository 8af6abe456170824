"""Calculations a question asks for over its result (the ai layer): a share of a total ("what
share of revenue comes from each region") and the change from one period to the next
("revenue growth year over year"), planned as Omni table calculations.

Table calculations run after the limit, on the rows returned, in the order of the query's
sort (docs/query-api.md). So each plan here is shaped so that those rows *are* the whole
answer, and a question for which they would not be is refused by name:

- a share has no limit, one dimension, an additive measure (a sum or a count) and groups that
  split the measure's rows (each row in one group: no one-to-many join between them), and no
  condition on a value (in "percent of revenue from ASIA" the total is every region's, which
  a filter to ASIA would remove);
- a change is one series of periods sorted oldest first, and no other dimension: the row
  before would otherwise be another series'. "Growth in 1995" is 1995 against 1994, so the
  filter is widened to both periods.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from assay.ai.plans import Plan, PlannedQuery
from assay.ai.vocabulary import Vocabulary
from assay.semantic.model import SemanticModel, Topic

SHARE_WORDS = frozenset({"share", "percent", "percentage", "proportion", "fraction", "pct"})
CHANGE_WORDS = frozenset(
    """
    growth grow grew grown growing change changed increase increased decrease decreased
    decline declined
    """.split()  # noqa: SIM905 (a word list reads best as text)
)
_OVER_ABBREVIATIONS = {"yoy": "year", "mom": "month", "qoq": "quarter", "wow": "week"}
_PERIODS = {"year": "year", "month": "month", "quarter": "quarter", "week": "week", "day": "date"}
# Verbs of a share ("comes from", "accounts for", "makes up"): placed with the share word.
_SHARE_VERBS = frozenset(
    """
    come came account accounted contribute contributed make made represent represented
    """.split()  # noqa: SIM905 (a word list reads best as text)
)
_PREVIOUS = frozenset({"previous", "prior", "preceding"})
_CHANGE_EXTRAS = frozenset({"rate", "percent", "percentage"})  # "growth rate", "% change"
_ADDITIVE = frozenset({"sum", "count"})

PERCENT_OF_TOTAL = "Omni.OMNI_PERCENT_OF_TOTAL"
PERCENT_CHANGE = "Omni.OMNI_PERCENT_CHANGE_FROM_PREVIOUS"
DIFFERENCE = "SqlStdOperatorTable.MINUS"  # a change in the measure's own units
_OFFSET = "Omni.OMNI_OFFSET_MULTI"


@dataclass(frozen=True, slots=True)
class Ask:
    """A calculation the question asks for: its kind, the tokens saying so, and the period a
    change is over when the question names it ("month over month")."""

    kind: Literal["share", "change"]
    words: tuple[int, ...] = ()  # every token it placed ("comes from" with "share")
    main: tuple[int, ...] = ()  # the tokens that name it, for a refusal
    grain: str | None = None


def detect(toks: list[str], used: list[bool]) -> Ask | None:
    """The calculation ``toks`` ask for, marking its words used; None when they ask none.

    "Percent" next to a change word is the change's ("percent change"); a share and a change
    in one question ask two things, so the share words are left unplaced (and named)."""
    n = len(toks)
    grain: str | None = None
    change: list[int] = []
    for i, t in enumerate(toks):
        if used[i]:
            continue
        if t in _OVER_ABBREVIATIONS:
            grain = grain or _OVER_ABBREVIATIONS[t]
            change.append(i)
        elif t in _PERIODS and i + 2 < n and toks[i + 1] in ("over", "on", "to"):
            if toks[i + 2] == t:  # "year over year", "month on month"
                grain = grain or _PERIODS[t]
                change += [i, i + 1, i + 2]
        elif t in _PREVIOUS and i + 1 < n and toks[i + 1] in _PERIODS:
            grain = grain or _PERIODS[toks[i + 1]]  # "versus the previous year"
            change += [i, i + 1]
        elif t in CHANGE_WORDS:
            change.append(i)
    if change:
        near = {j for i in change for j in (i - 1, i + 1)}
        main = tuple(sorted(set(change)))
        change += [j for j in near if 0 <= j < n and toks[j] in _CHANGE_EXTRAS and not used[j]]
        for i in change:
            used[i] = True
        return Ask("change", tuple(sorted(set(change))), main, grain)
    share = [i for i, t in enumerate(toks) if not used[i] and t in SHARE_WORDS]
    if not share:
        return None
    main = tuple(share)
    share += [i for i, t in enumerate(toks) if not used[i] and t in _SHARE_VERBS]
    for i in share:
        used[i] = True
    return Ask("share", tuple(sorted(share)), main)


def carried(previous: dict[str, Any] | None) -> Ask | None:
    """The calculation an earlier query of the conversation made, so that a follow-up ("only
    for 1996") keeps answering a share or a change."""
    for calc in (previous or {}).get("calculations") or ():
        operator = (calc.get("sql_expression") or {}).get("operator")
        if operator == PERCENT_OF_TOTAL:
            return Ask("share")
        if operator == PERCENT_CHANGE:
            return Ask("change")
    return None


def grain_of_period(date_filter: dict[str, Any] | None) -> str | None:
    """The grain a single named period is in ("1995": year, "1995 Q3": quarter, "1995-03":
    month), for "growth in 1995": that period against the one before."""
    if not date_filter or date_filter.get("kind") != "TIME_FOR_UNIT_DURATION":
        return None
    text = str(date_filter.get("left_side", ""))
    if re.fullmatch(r"\d{4}", text):
        return "year"
    if re.fullmatch(r"\d{4} Q[1-4]", text):
        return "quarter"
    if re.fullmatch(r"\d{4}-\d{2}", text):
        return "month"
    return None


def _with_previous(date_filter: dict[str, Any]) -> dict[str, Any] | None:
    """A single period's filter widened to the period before it too (end exclusive)."""
    text = str(date_filter.get("left_side", ""))
    m = re.fullmatch(r"(\d{4})(?: Q([1-4])|-(\d{2}))?", text)
    if m is None:
        return None
    year = int(m.group(1))
    if m.group(2):
        start, months = dt.date(year, 3 * int(m.group(2)) - 2, 1), 3
    elif m.group(3):
        start, months = dt.date(year, int(m.group(3)), 1), 1
    else:
        start, months = dt.date(year, 1, 1), 12
    return {
        "type": "date",
        "kind": "BETWEEN",
        "left_side": _add_months(start, -months).isoformat(),
        "right_side": _add_months(start, months).isoformat(),
    }


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _field(key: str) -> dict[str, Any]:
    return {"type": "field", "field_name": key, "for_calc": True}


def _call(operator: str, *operands: dict[str, Any]) -> dict[str, Any]:
    return {"type": "call", "operator": operator, "operands": list(operands)}


def _literal(value: int) -> dict[str, Any]:
    return {"type": "literal", "value": value}


def _label(model: SemanticModel, key: str) -> str:
    return model.measure(key).label


def _refuse(plan: Plan, words: Sequence[str], why: str) -> Plan:
    quoted = ", ".join(f"'{w}'" for w in dict.fromkeys(words))
    text = (
        f"Sorry, I can't answer {quoted} exactly: {why}, so I ran no query rather than show a "
        "figure that means something else."
    )
    return Plan(refusal=text, topic=plan.topic)


def apply(
    ask: Ask,
    planned: Plan,
    model: SemanticModel,
    voc: Vocabulary,
    raw: Sequence[str],
    *,
    ranked: Sequence[int] = (),
) -> Plan:
    """``planned`` (one query, every word accounted for) with the calculation ``ask`` wants,
    or a refusal naming the words that cannot be answered exactly. ``ranked``: the tokens of
    a ranking ("top 5", "most"), which a calculation over the rows shown cannot honour."""
    first = planned.queries[0]
    query = dict(first.query)
    said = [raw[i] for i in ask.main] or ["share" if ask.kind == "share" else "change"]
    measures = [f for f in query["fields"] if "." in f and voc.is_measure(f.split("[")[0])]
    groups = [f for f in query["fields"] if f not in measures]
    if ranked:
        return _refuse(planned, [*said, *(raw[i] for i in ranked)], "a calculation is made "
                       "over the rows returned, and a ranking cuts them first")  # fmt: skip
    if not measures:
        return _refuse(planned, said, "the question names no amount to calculate it over")
    if ask.kind == "share":
        return _share(planned, first, query, model, voc, said, measures, groups)
    return _change(ask, planned, first, query, model, said, measures, groups)


def _share(
    planned: Plan,
    first: PlannedQuery,
    query: dict[str, Any],
    model: SemanticModel,
    voc: Vocabulary,
    said: list[str],
    measures: list[str],
    groups: list[str],
) -> Plan:
    conditions = {k: f for k, f in query.get("filters", {}).items() if f.get("type") != "date"}
    if conditions:
        named = [str(v) for f in conditions.values() for v in f.get("values") or ()]
        dims = ", ".join(_field_label(model, k) for k in conditions)
        why = (
            f"the total a share is of would include the rows the condition on {dims} removes, "
            "which a calculation over the rows returned cannot see (ask for the share by "
            f"{dims} to see each value's)"
        )
        return _refuse(planned, [*said, *named], why)
    if len(groups) != 1:
        why = (
            'a share needs the groups it is split into ("by region", "for each segment")'
            if not groups
            else "with more than one dimension it is unclear which total each share is of"
        )
        return _refuse(planned, said, why)
    topic = model.topics[query["join_paths_from_topic_name"]]
    group_view = groups[0].split(".")[0]
    for key in measures:
        measure = voc.measure(key)
        if measure.aggregate_type not in _ADDITIVE:
            return _refuse(planned, [*said, measure.label], f"{measure.label} is not a sum or "
                           "a count, so its values do not add up to a total")  # fmt: skip
        if not _one_group_each(topic, key.split(".")[0], group_view):
            return _refuse(planned, [*said, _field_label(model, groups[0])], "one "
                           f"{model.views[key.split('.')[0]].label} row can fall in several "
                           f"{_field_label(model, groups[0])} groups, so the shares would not "
                           "add up to the whole")  # fmt: skip
    calcs = [
        {
            "calc_name": f"share_of_{key.split('.')[1]}",
            "label": f"Share of {_label(model, key)}",
            "format": "percent_1",
            "sql_expression": _call(PERCENT_OF_TOTAL, _field(key)),
        }
        for key in measures
    ]
    query["fields"] = [*query["fields"], *(c["calc_name"] for c in calcs)]
    query["calculations"] = calcs
    query["limit"] = None  # every group: a share of the rows shown must be of all of them
    if not any("[" in g for g in groups):
        query["sorts"] = [{"column_name": measures[0], "sort_descending": True}]
    why = f"share of the total over all rows returned ('{' '.join(said)}')"
    return _done(planned, first, query, why, "Share of")


def _change(
    ask: Ask,
    planned: Plan,
    first: PlannedQuery,
    query: dict[str, Any],
    model: SemanticModel,
    said: list[str],
    measures: list[str],
    groups: list[str],
) -> Plan:
    dated = [g for g in groups if "[" in g]
    if not dated:
        return _refuse(planned, said, "the question names no period to compare (say \"year "
                       "over year\" or \"by month\")")  # fmt: skip
    others = [g for g in groups if g not in dated] + dated[1:]
    if others:
        return _refuse(planned, [*said, *(_field_label(model, g) for g in others)], "a change "
                       "from one period to the next is calculated down one series of periods, "
                       "and a second dimension would compare one series with another")  # fmt: skip
    period = dated[0]
    grain = period.split("[")[1].rstrip("]")
    if ask.grain is not None and ask.grain != grain:
        return _refuse(planned, said, f"each {grain} against the same {grain} a {ask.grain} "
                       f"before is not the row before it, which is what a calculation over the "
                       f"rows returned compares with")  # fmt: skip
    filters = dict(query.get("filters") or {})
    date_key = period.split("[")[0]
    single = filters.get(date_key)
    if single is not None and grain_of_period(single) == grain:
        widened = _with_previous(single)
        if widened is None:
            return _refuse(planned, said, "I could not tell the period before the one named")
        filters[date_key] = widened
    query["filters"] = filters
    query["sorts"] = [{"column_name": period, "sort_descending": False}]
    calcs: list[dict[str, Any]] = []
    for key in measures:
        name = key.split(".")[1]
        label = _label(model, key)
        previous = _call(_OFFSET, _field(key), _literal(-1), _literal(0), _literal(1), _literal(1))
        calcs += [
            {
                "calc_name": f"change_in_{name}",
                "label": f"Change in {label}",
                "format": model.measure(key).format,
                "sql_expression": _call(DIFFERENCE, _field(key), previous),
            },
            {
                "calc_name": f"pct_change_in_{name}",
                "label": f"% Change in {label}",
                "format": "percent_1",
                "sql_expression": _call(PERCENT_CHANGE, _field(key)),
            },
        ]
    query["fields"] = [*query["fields"], *(c["calc_name"] for c in calcs)]
    query["calculations"] = [{k: v for k, v in c.items() if v is not None} for c in calcs]
    why = f"change from the previous {grain} ('{' '.join(said)}'), oldest first"
    return _done(planned, first, query, why, "Change in")


def _done(planned: Plan, first: PlannedQuery, query: dict[str, Any], why: str, what: str) -> Plan:
    """The plan with its query calculated; the intent (the answer's heading) says so."""
    done = replace(first, query=query, intent=f"{what} {first.intent}",
                   provenance=[*first.provenance, why])  # fmt: skip
    return replace(planned, queries=[done])


def _field_label(model: SemanticModel, key: str) -> str:
    view, _, name = key.split("[", maxsplit=1)[0].partition(".")
    v = model.views[view]
    return v.dimensions[name].label if name in v.dimensions else v.measures[name].label


def _one_group_each(topic: Topic, measure_view: str, group_view: str) -> bool:
    """Whether each row of ``measure_view`` reaches exactly one row of ``group_view`` in the
    topic: every join walked from the one to the other is many-to-one or one-to-one, so the
    groups split the measure's rows and its values add up to the total."""
    to_measure = topic.path_to(measure_view)
    to_group = topic.path_to(group_view)
    common = 0
    while (
        common < min(len(to_measure), len(to_group))
        and to_measure[common].view == to_group[common].view
    ):
        common += 1
    walked = [(s, ("one_to_many", "one_to_one")) for s in to_measure[common:]]  # upwards
    walked += [(s, ("many_to_one", "one_to_one")) for s in to_group[common:]]  # downwards
    for step, fine in walked:
        rel = step.relationship
        if rel.left != step.parent:  # declared from the other side, or re-parented
            rel = rel.reversed()
        if rel.left != step.parent or rel.type not in fine:
            return False
    return True
