"""Shares of a total and change from the previous period, planned as table calculations: the
rows a calculation sees are made to be the whole answer, or the question is refused naming
what could not be answered exactly; the answer says the arithmetic with the cells it used."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from assay.ai.answer import QueryResult, answer_markdown
from assay.ai.planner import Plan, PlannedQuery, PlanStep, plan
from assay.engines import DuckDBEngine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel


def _query(p: Plan) -> dict[str, Any]:
    assert p.queries, p.refusal
    return p.queries[0].query


def _answer(question: str, model: SemanticModel, engine: DuckDBEngine) -> str:
    p = plan(question, model)
    outcomes = []
    for pq in p.queries:
        c = compile_query(model, pq.query)
        outcomes.append(QueryResult.from_fields(engine.execute(c.sql), c.fields))
    return answer_markdown(question, p, outcomes, model=model)


def test_a_share_is_a_percent_of_total_over_every_group(tpch_model: SemanticModel) -> None:
    q = _query(plan("what share of revenue comes from each region", tpch_model))
    assert q["fields"] == ["region.r_name", "lineitem.revenue", "share_of_revenue"]
    (calc,) = q["calculations"]
    assert calc["sql_expression"]["operator"] == "Omni.OMNI_PERCENT_OF_TOTAL"
    assert calc["sql_expression"]["operands"][0]["field_name"] == "lineitem.revenue"
    assert q["limit"] is None  # a limit would make it a share of the rows it kept
    assert q["sorts"] == [{"column_name": "lineitem.revenue", "sort_descending": True}]
    q = _query(plan("what % of orders by priority", tpch_model))  # "%" is a word too
    assert q["calculations"][0]["calc_name"] == "share_of_count"


def test_a_share_answer_says_what_it_divides_by(
    tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    text = _answer("percent of orders by priority", tpch_model, tpch_engine)
    assert "| Order Priority | Order Count | Share of Order Count |" in text
    assert "divided by the sum of Order Count over all 5 rows" in text
    assert "20.2%" in text  # 5-LOW: 30,244 of 150,000


def test_growth_is_a_change_from_the_previous_period_oldest_first(
    tpch_model: SemanticModel,
) -> None:
    q = _query(plan("revenue growth year over year", tpch_model))
    assert q["fields"][:2] == ["orders.o_orderdate[year]", "lineitem.revenue"]
    assert q["sorts"] == [{"column_name": "orders.o_orderdate[year]", "sort_descending": False}]
    operators = [c["sql_expression"]["operator"] for c in q["calculations"]]
    assert operators == ["SqlStdOperatorTable.MINUS", "Omni.OMNI_PERCENT_CHANGE_FROM_PREVIOUS"]
    q = _query(plan("month over month change in orders", tpch_model))
    assert q["fields"][:2] == ["orders.o_orderdate[month]", "orders.count"]


@pytest.mark.parametrize(
    ("question", "left", "right", "grain"),
    [
        ("revenue growth in 1995", "1994-01-01", "1996-01-01", "year"),
        ("order count change in Q1 1996", "1995-10-01", "1996-04-01", "quarter"),
        ("revenue growth in March 1997", "1997-02-01", "1997-04-01", "month"),
    ],
)
def test_growth_in_one_period_compares_it_with_the_one_before(
    question: str, left: str, right: str, grain: str, tpch_model: SemanticModel
) -> None:
    q = _query(plan(question, tpch_model))
    (date_filter,) = q["filters"].values()
    assert date_filter == {"type": "date", "kind": "BETWEEN", "left_side": left,
                           "right_side": right}  # fmt: skip
    assert q["fields"][0] == f"orders.o_orderdate[{grain}]"


def test_a_growth_answer_says_what_was_compared_with_what(
    tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    text = _answer("revenue growth in 1995", tpch_model, tpch_engine)
    assert "**Change in Revenue** is each year's Revenue minus the year before's" in text
    assert "Latest: **1995** against **1994**" in text
    assert "-0.2%" in text


def test_a_period_the_rows_skip_is_said() -> None:
    """Months with no rows make the row before another month than the one before: said."""
    months = [dt.date(1995, 1, 1), dt.date(1995, 2, 1), dt.date(1995, 4, 1)]
    table = pa.table({"d": months, "v": [10.0, 20.0, 10.0], "c": [None, 10.0, -10.0],
                      "p": [None, 1.0, -0.5]})  # fmt: skip
    res = QueryResult(table, ["Month", "Orders", "Change in Orders", "% Change in Orders"],
                      [None, None, None, "percent_1"], ["MONTH", None, None, None],
                      [True, False, False, False])  # fmt: skip
    field = {"type": "field", "field_name": "v", "for_calc": True}
    query = {"fields": ["d", "v", "c", "p"], "calculations": [
        {"calc_name": "c", "sql_expression": {"type": "call",
         "operator": "SqlStdOperatorTable.MINUS", "operands": [field, {}]}},
        {"calc_name": "p", "sql_expression": {"type": "call",
         "operator": "Omni.OMNI_PERCENT_CHANGE_FROM_PREVIOUS", "operands": [field]}},
    ]}  # fmt: skip
    p = Plan([PlannedQuery(query, "Orders by Month")], topic="orders")
    text = answer_markdown("order growth by month", p, [res])
    assert "The month before 1995-04 has no rows" in text
    assert "Latest: **1995-04** against **1995-02**" in text


@pytest.mark.parametrize(
    ("question", "named"),
    [
        # the total is every region's, which a filter to ASIA would remove
        ("What percent of revenue comes from ASIA?", "ASIA"),
        ("What percentage of orders are urgent?", "1-URGENT"),
        # a ranking cuts the rows before a calculation sees them
        ("Which nation has the biggest share of revenue?", "biggest"),
        ("top 3 nations by share of revenue", "top"),
        # an order can have lines in several ship modes: shares would not add up
        ("share of orders by ship mode", "Ship Mode"),
        ("share of revenue by region and year", "share"),
        ("revenue growth", "growth"),  # no period
        ("revenue growth by region year over year", "Region"),  # the row before: another's
        ("monthly revenue growth year over year", "growth"),  # the same month a year before
    ],
)
def test_what_a_calculation_cannot_answer_exactly_is_refused_by_name(
    question: str, named: str, tpch_model: SemanticModel
) -> None:
    p = plan(question, tpch_model)
    assert not p.queries and p.refusal
    assert f"'{named}'" in p.refusal


def test_a_share_of_something_that_does_not_add_up_is_refused(tpch_model: SemanticModel) -> None:
    p = plan("average order value share by priority", tpch_model)
    assert p.refusal and "not a sum or a count" in p.refusal


def test_a_follow_up_keeps_the_calculation(tpch_model: SemanticModel) -> None:
    first = plan("share of revenue by region", tpch_model)
    q = _query(plan("only for 1996", tpch_model, conversation=[PlanStep("x", first)]))
    assert q["fields"] == ["region.r_name", "lineitem.revenue", "share_of_revenue"]
    assert q["filters"]["orders.o_orderdate"]["left_side"] == "1996"
    compile_query(tpch_model, q)
