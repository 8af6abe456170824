"""The built-in planner against the development question set, judged as its header says."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from assay.ai.planner import Plan, PlanStep, plan
from assay.engines import DuckDBEngine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel

# `questions` is a copy of ../shared/eval/tpch-questions.yaml (so a clean clone runs it
# anywhere); `held_out` and `tempting` are Assay's own, in phrasings the first does not use
EVAL = Path(__file__).parents[1] / "fixtures" / "eval" / "tpch-questions.yaml"
HELD_OUT_REACHED = 0.9  # the accuracy asked of questions the planner was not developed on


def _norm(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, str):
        return v.lower()
    if hasattr(v, "__float__") and not isinstance(v, bool):
        return float(v)
    return v


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=0.01)
    return bool(a == b)


def _row_matches(expected: tuple[Any, ...], got: tuple[Any, ...]) -> bool:
    pool = list(got)
    for value in expected:
        hit = next((i for i, g in enumerate(pool) if _eq(value, g)), None)
        if hit is None:
            return False
        pool.pop(hit)
    return True


def _rows(engine: DuckDBEngine, sql: str) -> list[tuple[Any, ...]]:
    table = engine.execute(sql).to_pylist()
    return [tuple(_norm(v) for v in row.values()) for row in table]


def judge(item: dict[str, Any], p: Plan, model: SemanticModel, engine: DuckDBEngine) -> str:
    """'' when the answer is right, else why not."""
    if item["kind"] == "refuse":
        return "" if p.refusal and not p.queries else f"not refused: {p.queries[0].intent}"
    if not p.queries:
        return f"refused: {p.refusal}"
    try:
        got = _rows(engine, compile_query(model, p.queries[-1].query).sql)
    except Exception as exc:
        return f"error: {exc}"
    want = _rows(engine, item["sql"])
    if item["kind"] == "scalar":
        ok = len(got) == 1 and any(_eq(want[0][0], g) for g in got[0])
        return "" if ok else f"scalar {want[0][0]} != {got[:2]}"
    if len(got) != len(want):
        return f"{len(got)} rows, expected {len(want)}"
    if item["kind"] == "ordered":
        ok = all(_row_matches(w, g) for w, g in zip(want, got, strict=True))
    else:
        pool = list(got)
        ok = True
        for w in want:
            hit = next((i for i, g in enumerate(pool) if _row_matches(w, g)), None)
            if hit is None:
                ok = False
                break
            pool.pop(hit)
    return "" if ok else f"rows differ: expected {want[:3]} got {got[:3]}"


def _run(section: str, model: SemanticModel, engine: DuckDBEngine) -> list[tuple[str, str, Plan]]:
    """(question, why it is wrong or '', plan) for each question of a section of the file."""
    out = []
    for item in yaml.safe_load(EVAL.read_text())[section]:
        p = plan(item["q"], model)
        why = judge(item, p, model, engine)
        shown = p.queries[0].intent if p.queries else f"REFUSED: {p.refusal}"
        print(f"{'PASS' if not why else 'FAIL'} {item['q']!r} -> {shown} {why}")
        out.append((item["q"], why, p))
    return out


def test_development_questions(tpch_model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    failures = [(q, why) for q, why, _ in _run("questions", tpch_model, tpch_engine) if why]
    assert not failures


def test_held_out_questions(tpch_model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    results = _run("held_out", tpch_model, tpch_engine)
    right = sum(not why for _, why, _ in results)
    print(f"held out: {right}/{len(results)} right")
    assert len(results) >= 40
    assert right / len(results) >= HELD_OUT_REACHED, [(q, w) for q, w, _ in results if w]


def test_tempting_questions_are_never_answered_wrongly(
    tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    """A refusal that names what it could not place is acceptable; a wrong answer is not."""
    wrong = []
    for question, why, p in _run("tempting", tpch_model, tpch_engine):
        if not why:
            continue
        if p.queries:
            wrong.append((question, why))
        elif not (p.refusal and ("'" in p.refusal or not question.strip())):
            wrong.append((question, f"a refusal that names nothing: {p.refusal}"))
    assert not wrong


def _fields(question: str, model: SemanticModel, **kw: Any) -> list[str]:
    p = plan(question, model, **kw)
    assert p.queries, p.refusal
    return list(p.queries[0].query["fields"])


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (
            "average order value by order priority",
            {"orders.o_orderpriority", "orders.avg_totalprice"},
        ),
        ("How many parts per brand?", {"part.p_brand", "part.count"}),
        ("Revenue by supplier nation", {"supplier_nation.n_name", "lineitem.revenue"}),
        ("total account balance by region", {"region.r_name", "customer.sum_acctbal"}),
        ("weekly order count", {"orders.o_orderdate[week]", "orders.count"}),
    ],
)
def test_generalises(question: str, expected: set[str], tpch_model: SemanticModel) -> None:
    assert set(_fields(question, tpch_model)) == expected


def test_filters_generalise(tpch_model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    p = plan("revenue by ship mode in 1996", tpch_model)
    q = p.queries[0].query
    assert q["filters"]["orders.o_orderdate"]["left_side"] == "1996"
    assert "lineitem.l_shipmode" in q["fields"]
    q = (
        plan("How many high priority orders were not shipped by truck?", tpch_model)
        .queries[0]
        .query
    )
    assert q["filters"]["orders.o_orderpriority"]["values"] == ["2-HIGH"]
    assert q["filters"]["lineitem.l_shipmode"] == {
        "type": "string",
        "kind": "EQUALS",
        "values": ["TRUCK"],
        "is_negative": True,
    }
    q = (
        plan("number of parts with a retail price between 1000 and 1500", tpch_model)
        .queries[0]
        .query
    )
    assert q["filters"]["part.p_retailprice"]["kind"] == "BETWEEN"
    q = plan("Which 2 regions have the lowest revenue in Q3 1997?", tpch_model).queries[0].query
    assert q["limit"] == 2 and q["sorts"][0]["sort_descending"] is False
    assert q["filters"]["orders.o_orderdate"]["left_side"] == "1997 Q3"
    for query in (q,):
        compile_query(tpch_model, query)


def test_follow_up(tpch_model: SemanticModel) -> None:
    first = plan("revenue by nation", tpch_model)
    step = PlanStep("revenue by nation", first)
    q = plan("only for 1996", tpch_model, conversation=[step]).queries[0].query
    assert "lineitem.revenue" in q["fields"] and "orders.o_orderdate" in q["filters"]


def test_a_follow_up_on_another_topic_keeps_only_what_that_topic_reaches(
    tpch_model: SemanticModel,
) -> None:
    first = plan("revenue by ship mode in 1995", tpch_model)
    moved = plan("how many customers are there?", tpch_model,
                 conversation=[PlanStep("revenue by ship mode in 1995", first)])  # fmt: skip
    (q,) = moved.queries
    assert moved.topic == "customer" and q.query["fields"] == ["customer.count"]
    assert "lineitem.l_shipmode" in q.provenance[-1]
    compile_query(tpch_model, q.query)  # it runs, instead of failing on a view not joined
    same = plan("only for 1996", tpch_model, conversation=[PlanStep("x", first)]).queries[0]
    assert "lineitem.l_shipmode" in same.query["fields"]  # the same topic keeps everything


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of France's weather?",
        "How many employees joined in 2020 at Acme?",
        "Tell me a joke",
    ],
)
def test_refuses_out_of_scope(question: str, tpch_model: SemanticModel) -> None:
    p = plan(question, tpch_model)
    assert p.refusal and not p.queries
