"""``ai_chat_topics`` and ``ai_fields``: what the AI planner is told of, narrowed; never what a
query may read (Omni: "what the AI is aware of, not what it has access to")."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from assay.ai.planner import Plan, plan
from assay.demo.tpch import tpch_model_dir
from assay.semantic.ai_view import as_seen_by_ai
from assay.semantic.compiler import compile_query
from assay.semantic.loader import load_model
from assay.semantic.model import SemanticModel
from tests.server.conftest import MODEL_ID, Server, make_home


def tpch_with(folder: Path, model_lines: str = "", **topic_lines: str) -> SemanticModel:
    """The demo model with lines added to its model file and to named topics' files."""
    if not folder.exists():
        shutil.copytree(tpch_model_dir(), folder)
    model = folder / "model.yaml"
    model.write_text(model.read_text() + model_lines)
    for topic, lines in topic_lines.items():
        path = folder / f"{topic}.topic.yaml"
        path.write_text(path.read_text() + lines)
    return load_model(folder)


def fields_planned(answer: Plan) -> set[str]:
    return {f for q in answer.queries for f in q.query["fields"]}


def test_the_planner_answers_only_from_the_ai_chat_topics(tmp_path: Path) -> None:
    model = tpch_with(tmp_path / "m", "ai_chat_topics: [orders]\n")
    seen = as_seen_by_ai(model)
    assert list(seen.topics) == ["orders"]
    assert plan("revenue by region", model).topic == "lineitem", "the whole model: lineitem"
    answer = plan("revenue by region", seen)
    assert answer.topic == "orders" and fields_planned(answer) == {
        "region.r_name",
        "lineitem.revenue",
    }
    refused = plan("revenue by region", seen, topic="lineitem")
    assert not refused.queries and refused.refusal == "This model has no topic named lineitem."


def test_a_field_left_out_of_ai_fields_is_never_planned(tmp_path: Path) -> None:
    model = tpch_with(
        tmp_path / "m",
        "ai_chat_topics: [lineitem]\n",
        lineitem="ai_fields: [all_views.*, -lineitem.revenue, -lineitem.sum_extendedprice]\n",
    )
    assert "lineitem.revenue" in fields_planned(plan("revenue by region", model))
    seen = as_seen_by_ai(model)
    assert not seen.topics["lineitem"].exposes("lineitem", "revenue")
    assert seen.topics["lineitem"].exposes("region", "r_name")
    answer = plan("revenue by region", seen)
    assert "lineitem.revenue" not in fields_planned(answer)
    assert "lineitem.sum_extendedprice" not in fields_planned(answer)


def test_ai_fields_narrow_awareness_not_access(tmp_path: Path) -> None:
    model = tpch_with(tmp_path / "m", lineitem="ai_fields: [lineitem.l_returnflag]\n")
    query = {
        "join_paths_from_topic_name": "lineitem",
        "fields": ["region.r_name", "lineitem.revenue"],
    }
    whole = compile_query(model, query)
    assert compile_query(as_seen_by_ai(model), query).sql == whole.sql
    assert as_seen_by_ai(model) is as_seen_by_ai(model), "made once per model"
    plain = load_model(tpch_model_dir())
    assert as_seen_by_ai(plain) is plain, "nothing narrows a model without them"


@pytest.mark.parametrize("topic", ["lineitem", "nope"])
def test_an_ai_job_on_a_topic_outside_ai_chat_topics_is_not_found(
    tmp_path: Path, tpch_path: Path, topic: str
) -> None:
    home = make_home(tmp_path)
    tpch_with(home / "models" / "tpch", "ai_chat_topics: [orders, customer]\n")
    server = Server(home, tpch_path).start()
    try:
        key = server.key("--org")
        auth = {"Authorization": f"Bearer {key}"}
        body = {"modelId": MODEL_ID, "prompt": "revenue by region", "topicName": topic}
        refused = httpx.post(f"{server.url}/api/v1/ai/jobs", json=body, headers=auth)
        assert refused.status_code == 404
        assert refused.json()["detail"] == f"Topic {topic} not found"
        allowed = httpx.post(f"{server.url}/api/v1/ai/jobs", json={**body, "topicName": "orders"},
                             headers=auth)  # fmt: skip
        assert allowed.status_code == 201
    finally:
        server.stop()


def test_a_topic_that_hides_a_measure_from_the_ai_is_passed_over_for_one_that_offers_it(
    tmp_path: Path,
) -> None:
    model = tpch_with(tmp_path / "m", lineitem="ai_fields: [all_views.*, -lineitem.revenue]\n")
    answer = plan("revenue by region", as_seen_by_ai(model))
    assert answer.topic == "orders", "lineitem hides revenue from the AI; orders offers it"
    assert fields_planned(answer) == {"region.r_name", "lineitem.revenue"}
