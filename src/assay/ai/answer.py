"""The answer to a question: ``generate_query`` and ``summarize`` actions of an AI job's result.

Pure functions over a plan and the tables its queries returned. Every number the markdown
shows is a cell of a result (formatted with its field's format), a row count, or a value the
plan itself filtered on; nothing is computed or made up.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa

from assay.ai.calculated import DIFFERENCE, PERCENT_CHANGE, PERCENT_OF_TOTAL
from assay.ai.plans import Plan, PlannedQuery
from assay.results.formats import format_value, grain_text
from assay.semantic.compiler import FieldMeta
from assay.semantic.model import SemanticModel

SMALL_TABLE = 20  # rows shown whole in the answer
PREVIEW_ROWS = 10  # rows shown of a larger result


@dataclass(frozen=True, slots=True)
class QueryResult:
    """A query's rows, with a display label (and optionally a format, a date grain and whether
    it is a dimension) for each column; ``total_rows`` when ``table`` holds only the first."""

    table: pa.Table
    labels: list[str]
    formats: Sequence[str | None] = ()
    grains: Sequence[str | None] = ()
    dimensions: Sequence[bool] = ()
    total_rows: int | None = None

    @classmethod
    def from_fields(
        cls, table: pa.Table, fields: Sequence[FieldMeta], total_rows: int | None = None
    ) -> QueryResult:
        return cls(
            table,
            [f.label for f in fields],
            [f.format for f in fields],
            [f.date_type for f in fields],
            [f.is_dimension for f in fields],
            total_rows,
        )

    @property
    def total(self) -> int:
        return self.table.num_rows if self.total_rows is None else self.total_rows

    def is_dimension(self, i: int) -> bool:
        if i < len(self.dimensions):
            return self.dimensions[i]
        t = self.table.schema.field(i).type
        return not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))

    def shown(self, i: int, value: Any) -> str:
        """One cell as the answer shows it."""
        if value is None:
            return "(none)"
        if isinstance(value, dt.date):
            return _date_text(value, self.grains[i] if i < len(self.grains) else None)
        fmt = self.formats[i] if i < len(self.formats) else None
        if fmt is None and isinstance(value, (float, Decimal)) and math.isfinite(value):
            number = float(value)
            if abs(number) >= 1 or number == 0:
                return f"{number:,.2f}"
            return format(Decimal(f"{number:.4g}"), "f")
        return str(format_value(value, fmt))


@dataclass(frozen=True, slots=True)
class QueryFailed:
    message: str


Outcome = QueryResult | QueryFailed


def csv_result(table: pa.Table, labels: list[str], max_rows: int = 100) -> tuple[str, bool]:
    """The first ``max_rows`` rows as CSV under a header of display labels, and whether rows
    were left out. Numbers are written plainly: no exponent, no separators, decimals kept."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(labels)
    for row in table.slice(0, max_rows).to_pylist():
        writer.writerow([_plain(v) for v in row.values()])
    return out.getvalue().rstrip("\n"), table.num_rows > max_rows


def query_action(planned: PlannedQuery, outcome: Outcome, at: dt.datetime) -> dict[str, Any]:
    """The ``generate_query`` action for one planned query and what running it gave."""
    result: dict[str, Any] = {
        "queryName": query_name(planned),
        "status": "success",
        "query": planned.query,
        "csvResult": "",
        "csvResultWasTruncated": False,
        "hasResults": False,
        "totalRowCount": 0,
    }
    if isinstance(outcome, QueryFailed):
        result["status"] = "error"
        result["error"] = outcome.message
    else:
        text, cut = csv_result(outcome.table, outcome.labels)
        result["csvResult"] = text
        result["csvResultWasTruncated"] = cut or outcome.total > outcome.table.num_rows
        result["hasResults"] = outcome.total > 0
        result["totalRowCount"] = outcome.total
    what, topic = _split_intent(planned.intent)
    what = re.sub(r" where (.*?)(, (?:top|bottom) \d+)?$", r"\2 (filtered on \1)", what)
    where = f" in the {topic} topic" if topic else ""
    return {
        "type": "generate_query",
        "message": f"I'll generate a query to find {what}{where}.",
        "timestamp": timestamp(at),
        "result": result,
    }


def summarize_action(markdown: str, at: dt.datetime) -> dict[str, Any]:
    return {"type": "summarize", "message": markdown, "timestamp": timestamp(at)}


def timestamp(at: dt.datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z`` (a naive time is taken as UTC)."""
    utc = at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def query_name(planned: PlannedQuery) -> str:
    """A short title from the intent: "Top 5 Customer Name by Revenue", "Order Count"."""
    what, _ = _split_intent(planned.intent)
    rank = re.search(r", (top|bottom) (\d+)$", what)
    what = what[: rank.start()] if rank else what
    what = re.sub(r" where .*$", "", what)
    if rank:
        measure, _, groups = what.partition(" by ")
        head = rank.group(1).title() + ("" if rank.group(2) == "1" else f" {rank.group(2)}")
        return f"{head} {groups} by {measure}" if groups else f"{head} {measure}"
    return what


def answer_markdown(
    question: str,
    plan: Plan,
    outcomes: Sequence[Outcome],
    *,
    model: SemanticModel | None = None,
) -> str:
    """The markdown answer; ``outcomes`` go with ``plan.queries`` in order. ``model`` (when
    given) names the filtered fields and topic by their labels."""
    if plan.refusal is not None or not plan.queries:
        return _refusal(question, plan, model)
    parts: list[str] = []
    for planned, outcome in zip(plan.queries, outcomes, strict=False):
        parts.append(f"### {query_name(planned)}")
        if isinstance(outcome, QueryFailed):
            parts.append(
                f"The query could not be run, so I have no numbers to report: {outcome.message}"
            )
        else:
            parts.append(_body(planned, outcome))
            arithmetic = _arithmetic(planned, outcome)
            if arithmetic:
                parts.append(arithmetic)
        parts.append(_assumptions(planned, plan, model, outcome))
    return "\n\n".join(parts)


def _body(planned: PlannedQuery, res: QueryResult) -> str:
    t = res.table
    if t.num_rows == 0:
        return "No rows matched the question."
    rows = t.slice(0, SMALL_TABLE if res.total <= SMALL_TABLE else PREVIEW_ROWS).to_pylist()
    n_cols = t.num_columns
    dims = [i for i in range(n_cols) if res.is_dimension(i)]
    values = [i for i in range(n_cols) if i not in dims]
    cells = [[res.shown(i, v) for i, v in enumerate(row.values())] for row in rows]
    if not dims and len(cells) == 1:
        return "\n".join(f"**{res.labels[i]}**: {cells[0][i]}." for i in values)
    sorts = planned.query.get("sorts") or []
    ranked = bool(planned.query.get("limit")) and bool(sorts) and bool(dims) and bool(values)
    note = ""
    if len(cells) < res.total:
        note = f"\n\nShowing the first {len(cells)} of {res.total:,} rows."
    if ranked:
        word = "lowest" if not sorts[0].get("sort_descending", True) else "highest"
        if len(cells) == 1:
            who = " / ".join(cells[0][i] for i in dims)
            how = ", ".join(f"{res.labels[i]} {cells[0][i]}" for i in values)
            if len(values) == 1:
                how = cells[0][values[0]]
            return f"**{who}** has the {word} {res.labels[values[0]]}: {how}."
        lines = []
        for n, c in enumerate(cells, 1):
            how = ", ".join(f"{res.labels[i]} {c[i]}" for i in values)
            lines.append(f"{n}. **{' / '.join(c[i] for i in dims)}**: {how}")
        return "\n".join(lines) + note
    head = "| " + " | ".join(_cell(x) for x in res.labels) + " |"
    rule = "|" + "|".join("---:" if i in values else "---" for i in range(n_cols)) + "|"
    body = ["| " + " | ".join(_cell(x) for x in c) + " |" for c in cells]
    return "\n".join([head, rule, *body]) + note


def _arithmetic(planned: PlannedQuery, res: QueryResult) -> str:
    """How each calculation of the answer was made, in words and with the cells it used: a
    figure computed from others is only worth as much as knowing what it divides by."""
    cols = res.table.column_names
    if res.table.num_rows == 0:
        return ""
    said: list[str] = []
    calcs = planned.query.get("calculations") or ()
    differences = {
        c["sql_expression"]["operands"][0].get("field_name"): c["calc_name"]
        for c in calcs
        if (c.get("sql_expression") or {}).get("operator") == DIFFERENCE
        and c.get("calc_name") in cols
    }
    for calc in calcs:
        expr = calc.get("sql_expression") or {}
        operands = expr.get("operands") or [{}]
        measure = operands[0].get("field_name")
        if calc.get("calc_name") not in cols or measure not in cols:
            continue
        label = res.labels[cols.index(calc["calc_name"])]
        of = res.labels[cols.index(measure)]
        if expr.get("operator") == PERCENT_OF_TOTAL:
            said.append(
                f"**{label}** is each row's {of} divided by the sum of {of} over all "
                f"{res.total:,} rows of the result, so the shares add up to 100%."
            )
        elif expr.get("operator") == PERCENT_CHANGE:
            diff = cols.index(differences[measure]) if measure in differences else None
            said.append(_change_text(res, cols.index(measure), cols.index(calc["calc_name"]), diff))
    return "\n\n".join(said)


_STEP_MONTHS = {"YEAR": 12, "QUARTER": 3, "MONTH": 1}


def _change_text(res: QueryResult, measure: int, pct: int, diff: int | None) -> str:
    """A change from the previous row, said with the last comparison's cells and any period
    the rows skip (the previous row is then not the previous period)."""
    dated = next((i for i in range(len(res.grains)) if res.grains[i]), None)
    grain = str(res.grains[dated]).lower() if dated is not None else "period"
    rows = res.table.to_pylist()
    values = [list(r.values()) for r in rows]
    of, label = res.labels[measure], res.labels[pct]
    change = f"each {grain}'s {of} minus the {grain} before's"
    text = f"**{label}** is {change}, divided by the {grain} before's {of}."
    if diff is not None:
        text = (
            f"**{res.labels[diff]}** is {change}; **{label}** is that divided by the "
            f"{grain} before's {of}."
        )
    text += (
        f" The first {grain} shown has no {grain} before it in the result, so its change is "
        f"empty; a {grain} the data covers only in part (often the latest) is compared whole."
    )
    if dated is not None and len(values) > 1:
        last, before = values[-1], values[-2]
        text += (
            f" Latest: **{res.shown(dated, last[dated])}** against "
            f"**{res.shown(dated, before[dated])}**: {of} {res.shown(measure, last[measure])} "
            f"against {res.shown(measure, before[measure])}, a change of "
            + (f"{res.shown(diff, last[diff])} (" if diff is not None else "")
            + res.shown(pct, last[pct])
            + (")." if diff is not None else ".")
        )
        step = _STEP_MONTHS.get(str(res.grains[dated]).upper())
        skipped = [
            res.shown(dated, b[dated])
            for a, b in itertools.pairwise(values)
            if step and isinstance(a[dated], dt.date) and isinstance(b[dated], dt.date)
            and (b[dated].year * 12 + b[dated].month) - (a[dated].year * 12 + a[dated].month)
            != step
        ]  # fmt: skip
        if skipped:
            text += (
                f" The {grain} before {', '.join(skipped)} has no rows, so each is compared "
                f"with the {grain} shown before it."
            )
    return text


def _assumptions(
    planned: PlannedQuery, plan: Plan, model: SemanticModel | None, outcome: Outcome
) -> str:
    _, topic = _split_intent(planned.intent)
    if model is not None and plan.topic is not None and plan.topic in model.topics:
        topic = model.topics[plan.topic].label
    said = [f"topic **{topic or plan.topic}**"]
    known: dict[str, str] = {}
    if isinstance(outcome, QueryResult):
        known = dict(zip(outcome.table.column_names, outcome.labels, strict=False))
    filters = planned.query.get("filters") or {}
    for key, f in filters.items():
        said.append(describe_filter(_label(key, model, known), f))
    if not filters:
        said.append("no filters")
    return "_Assumed: " + "; ".join(said) + "._"


def describe_filter(label: str, f: Any) -> str:
    """A filter in plain words: "Order Date in 1996", "Ship Mode is not TRUCK"."""
    if not isinstance(f, dict):
        return f"{label} is {f}"
    kind = str(f.get("kind", "EQUALS")).upper()
    neg = bool(f.get("is_negative"))
    vals = [str(v) for v in f.get("values") or []]
    left, right = f.get("left_side"), f.get("right_side")
    if f.get("type") == "date":
        text = {
            "TIME_FOR_UNIT_DURATION": f"in {left}",
            "BETWEEN": f"from {left} up to {right}",
            "BEFORE": f"before {right or left}",
            "ON_OR_AFTER": f"on or after {left}",
            "TIME_FOR_INTERVAL_DURATION": f"from {left} for {right}",
        }.get(kind, f"{kind.lower().replace('_', ' ')} {left or ''} {right or ''}".strip())
        return f"{label} {'not ' if neg else ''}{text}"
    joined = ", ".join(vals[:-1]) + f" or {vals[-1]}" if len(vals) > 1 else "".join(vals)
    verb = {
        "EQUALS": "is not" if neg else "is",
        "CONTAINS": "does not contain" if neg else "contains",
        "STARTS_WITH": "does not start with" if neg else "starts with",
        "ENDS_WITH": "does not end with" if neg else "ends with",
        "GREATER_THAN": "is at most" if neg else "is more than",
        "LESS_THAN": "is at least" if neg else "is less than",
    }
    if kind == "IS_EMPTY":
        return f"{label} is {'not ' if neg else ''}empty"
    if kind == "BETWEEN" and len(vals) == 2:
        return f"{label} is {'not ' if neg else ''}between {vals[0]} and {vals[1]}"
    if kind == "EQUALS" and len(vals) > 1:
        return f"{label} is {'none' if neg else 'one'} of {', '.join(vals)}"
    return f"{label} {verb.get(kind, kind.lower())} {joined}".rstrip()


def _refusal(question: str, plan: Plan, model: SemanticModel | None) -> str:
    text = plan.refusal or f"Sorry, I could not turn “{question.strip()}” into a query."
    if model is not None:
        topics = [t.label for t in model.topics.values() if not t.hidden]
        if topics:
            text += " This model can answer questions about: " + ", ".join(topics) + "."
    return text


def _label(key: str, model: SemanticModel | None, known: dict[str, str]) -> str:
    if key in known:
        return known[key]
    view, _, name = key.partition("[")[0].partition(".")
    v = model.views.get(view) if model is not None else None
    if v is not None and name in v.dimensions:
        return v.dimensions[name].label
    if v is not None and name in v.measures:
        return v.measures[name].label
    return name.replace("_", " ").title() or key


def _split_intent(intent: str) -> tuple[str, str | None]:
    m = re.match(r"^(.*) \(topic (.*)\)$", intent)
    return (m.group(1), m.group(2)) if m else (intent, None)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _date_text(value: dt.date, grain: str | None) -> str:
    """A grain's bucket as the CSV and JSON results show it; other dates without a midnight."""
    text = grain_text(value, grain)
    if text is not None:
        return text
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    return value.isoformat()


def _plain(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f") if math.isfinite(value) else ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
