"""A caller that names the topic (`topicName`) gets a plan on that topic, or a refusal that
says why it cannot be, never a plan on another topic."""

from __future__ import annotations

from assay.ai.llm import BuiltinPlanner
from assay.ai.planner import plan
from assay.semantic.model import SemanticModel


def test_the_planner_picks_when_no_topic_is_named(tpch_model: SemanticModel) -> None:
    assert plan("revenue by region", tpch_model).topic == "lineitem"


def test_a_named_topic_is_used(tpch_model: SemanticModel) -> None:
    got = BuiltinPlanner().plan("revenue by region", tpch_model, (), "orders")
    (q,) = got.queries
    assert got.topic == "orders" and q.query["join_paths_from_topic_name"] == "orders"
    assert q.query["table"] == "orders"
    assert q.query["fields"] == ["region.r_name", "lineitem.revenue"]


def test_a_named_topic_that_cannot_answer_is_refused(tpch_model: SemanticModel) -> None:
    got = plan("revenue by region", tpch_model, topic="customer")
    assert not got.queries
    assert got.refusal == (
        "The topic Customers does not include everything the question names (lineitem)."
    )
    unknown = plan("revenue by region", tpch_model, topic="parts")
    assert not unknown.queries and unknown.refusal == "This model has no topic named parts."
