"""The answer: actions and markdown built from real compiled queries on the TPC-H demo."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from assay.ai.answer import (
    Outcome,
    QueryFailed,
    QueryResult,
    answer_markdown,
    csv_result,
    describe_filter,
    query_action,
    summarize_action,
)
from assay.ai.planner import Plan, plan
from assay.engines import DuckDBEngine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel

AT = dt.datetime(2025, 1, 15, 10, 0, 10, 123456, tzinfo=dt.UTC)
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?%?")


def _run(question: str, model: SemanticModel, engine: DuckDBEngine) -> tuple[Plan, list[Outcome]]:
    p = plan(question, model)
    outcomes: list[Outcome] = []
    for pq in p.queries:
        c = compile_query(model, pq.query)
        outcomes.append(QueryResult.from_fields(engine.execute(c.sql), c.fields))
    return p, outcomes


def _assert_numbers_from_results(markdown: str, p: Plan, outcomes: list[Outcome]) -> None:
    """Every number in the markdown is a result cell, a row count, or a value the plan
    filtered on (the assumptions); list markers aside."""
    text = re.sub(r"(?m)^\d+\. ", "", markdown)
    allowed: list[float] = []
    texts: list[str] = []
    for pq, out in zip(p.queries, outcomes, strict=True):
        allowed += [float(pq.query.get("limit") or 0)]
        for f in pq.query.get("filters", {}).values():
            texts += [str(v) for v in f.get("values", [])]
            texts += [str(f[k]) for k in ("left_side", "right_side") if f.get(k)]
        assert isinstance(out, QueryResult)
        allowed += [float(out.total), float(min(out.total, 10))]
        for row in out.table.to_pylist():
            for i, v in enumerate(row.values()):
                if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool):
                    allowed += [float(v), float(v) * 100]  # percent formats scale by 100
                else:
                    texts.append(out.shown(i, v))
    for t in sorted(set(texts), key=len, reverse=True):
        text = text.replace(t, "")
    for token in NUMBER.findall(text):
        digits = token.rstrip("%").replace(",", "")
        places = len(digits.partition(".")[2])
        tol = 0.5 * 10**-places + 1e-9
        assert any(abs(float(digits) - a) <= tol for a in allowed), (token, markdown)


def test_scalar_answer(tpch_model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    q = "How many urgent orders were placed in 1996?"
    p, outs = _run(q, tpch_model, tpch_engine)
    md = answer_markdown(q, p, outs, model=tpch_model)
    count = outs[0].table.column(0)[0].as_py() if isinstance(outs[0], QueryResult) else None
    assert f"**Order Count**: {count:,}." in md
    assert "topic **Orders**" in md
    assert "Order Date in 1996" in md and "Order Priority is 1-URGENT" in md
    assert md.startswith("### Order Count")
    _assert_numbers_from_results(md, p, outs)


def test_percent_scalar(tpch_model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    p, outs = _run("average discount", tpch_model, tpch_engine)
    md = answer_markdown("average discount", p, outs, model=tpch_model)
    assert re.search(r"\*\*Average Discount\*\*: \d\.\d\d%\.", md), md
    assert "no filters" in md
    _assert_numbers_from_results(md, p, outs)


def test_small_table(tpch_model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    q = "revenue by ship mode in 1996"
    p, outs = _run(q, tpch_model, tpch_engine)
    md = answer_markdown(q, p, outs, model=tpch_model)
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert rows[0] == "| Ship Mode | Revenue |"
    assert len(rows) == 2 + 7
    assert re.search(r"\| TRUCK \| \$[\d,]+\.\d\d \|", md)
    _assert_numbers_from_results(md, p, outs)


def test_ranking_is_a_numbered_list(tpch_model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    q = "top 5 customers by revenue"
    p, outs = _run(q, tpch_model, tpch_engine)
    md = answer_markdown(q, p, outs, model=tpch_model)
    assert md.startswith("### Top 5 Customer Name by Revenue")
    items = re.findall(r"(?m)^(\d)\. \*\*(Customer#\d+)\*\*: Revenue \$", md)
    assert [int(n) for n, _ in items] == [1, 2, 3, 4, 5]
    assert isinstance(outs[0], QueryResult)
    assert [c for _, c in items] == outs[0].table.column(0).to_pylist()
    _assert_numbers_from_results(md, p, outs)


def test_top_one_is_a_sentence(tpch_model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    q = "which nation has the most revenue"
    p, outs = _run(q, tpch_model, tpch_engine)
    md = answer_markdown(q, p, outs, model=tpch_model)
    assert re.search(r"\*\*[A-Z ]+\*\* has the highest Revenue: \$[\d,.]+\.", md), md
    _assert_numbers_from_results(md, p, outs)


def test_large_result_shows_first_rows(
    tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    q = "monthly order count"
    p, outs = _run(q, tpch_model, tpch_engine)
    md = answer_markdown(q, p, outs, model=tpch_model)
    assert isinstance(outs[0], QueryResult)
    total = outs[0].total
    assert total > 20
    assert f"Showing the first 10 of {total} rows." in md
    assert "| 1992-01 |" in md
    _assert_numbers_from_results(md, p, outs)


def test_refusal(tpch_model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    q = "What is the weather in Paris?"
    p, outs = _run(q, tpch_model, tpch_engine)
    assert not outs
    md = answer_markdown(q, p, outs, model=tpch_model)
    assert md.startswith("Sorry") and "'weather'" in md and "Orders" in md
    assert not re.search(r"\d", md)


def test_failed_query_reports_no_numbers(tpch_model: SemanticModel) -> None:
    p = plan("total revenue", tpch_model)
    md = answer_markdown("total revenue", p, [QueryFailed("Catalog Error: no table")])
    assert "could not be run" in md and "Catalog Error" in md


def test_query_action_shape(tpch_model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    p, outs = _run("revenue by customer", tpch_model, tpch_engine)
    action = query_action(p.queries[0], outs[0], AT)
    assert action["type"] == "generate_query"
    assert action["timestamp"] == "2025-01-15T10:00:10.123Z"
    assert action["message"].startswith("I'll generate a query to find Revenue by Customer")
    result = action["result"]
    assert {
        "queryName", "status", "query", "csvResult", "csvResultWasTruncated", "hasResults",
        "totalRowCount",
    } <= set(result)  # fmt: skip
    assert result["status"] == "success" and result["query"] is p.queries[0].query
    assert result["hasResults"] is True
    assert result["totalRowCount"] > 100
    assert result["csvResultWasTruncated"] is True
    lines = result["csvResult"].split("\n")
    assert lines[0] == "Customer Name,Revenue" and len(lines) == 101

    failed = query_action(p.queries[0], QueryFailed("boom"), dt.datetime(2025, 1, 1))
    assert failed["timestamp"] == "2025-01-01T00:00:00.000Z"
    assert failed["result"]["status"] == "error"
    assert failed["result"]["hasResults"] is False and failed["result"]["totalRowCount"] == 0


def test_summarize_action() -> None:
    tz = dt.timezone(dt.timedelta(hours=2))
    action = summarize_action("### Hi", dt.datetime(2025, 1, 1, 12, 0, 0, 5000, tzinfo=tz))
    assert action == {
        "type": "summarize",
        "message": "### Hi",
        "timestamp": "2025-01-01T10:00:00.005Z",
    }


def test_csv_plain_numbers_and_truncation() -> None:
    table = pa.table(
        {
            "a": ["x, y", "b", "c"],
            "v": [1e-7, 1.5e20, None],
            "d": pa.array(
                [Decimal("20535072231.4150"), Decimal("-1.5000"), None], pa.decimal128(38, 4)
            ),
            "t": [dt.datetime(1992, 1, 1), dt.datetime(1992, 1, 1, 5, 6), None],
        }
    )
    text, cut = csv_result(table, ["Name", "Value", "Revenue", "When"])
    assert not cut
    assert text.split("\n") == [
        "Name,Value,Revenue,When",
        '"x, y",0.0000001,20535072231.4150,1992-01-01',
        "b,150000000000000000000,-1.5000,1992-01-01 05:06:00",
        "c,,,",
    ]
    text, cut = csv_result(table, ["Name", "Value", "Revenue", "When"], max_rows=2)
    assert cut and len(text.split("\n")) == 3


@pytest.mark.parametrize(
    ("f", "words"),
    [
        ({"type": "date", "kind": "TIME_FOR_UNIT_DURATION", "left_side": "1996"}, "D in 1996"),
        ({"type": "string", "kind": "EQUALS", "values": ["TRUCK"], "is_negative": True},
         "D is not TRUCK"),
        ({"type": "string", "kind": "EQUALS", "values": ["A", "B"]}, "D is one of A, B"),
        ({"type": "number", "kind": "GREATER_THAN", "values": ["5000"]}, "D is more than 5000"),
        ({"type": "number", "kind": "BETWEEN", "values": ["1", "5"]}, "D is between 1 and 5"),
        ({"type": "date", "kind": "BEFORE", "right_side": "1995-01-01"}, "D before 1995-01-01"),
    ],
)  # fmt: skip
def test_filters_in_plain_words(f: dict[str, Any], words: str) -> None:
    assert describe_filter("D", f) == words
