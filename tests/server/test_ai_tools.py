"""generate-query and pick-topic (contract 5.6, 5.7) against a real `assay serve`."""

from __future__ import annotations

import httpx

from tests.server.conftest import MODEL_ID


def ask(api: httpx.Client, path: str, **body: object) -> httpx.Response:
    return api.post(f"/api/v1/ai/{path}", json={"modelId": MODEL_ID, **body})


def test_generate_query_returns_a_query_that_runs_as_is(api: httpx.Client) -> None:
    doc = ask(api, "generate-query", prompt="top 3 regions by revenue", runQuery=False).json()
    assert doc["error"] is None and "result" not in doc
    assert doc["topic"] == "lineitem"
    assert doc["query"]["fields"] == ["region.r_name", "lineitem.revenue"]
    assert doc["query"]["limit"] == 3
    run = api.post("/api/v1/query/run", json={"query": doc["query"], "resultType": "json"})
    assert run.status_code == 200, run.text
    assert "ASIA" in run.text or "AMERICA" in run.text


def test_generate_query_runs_it_by_default(api: httpx.Client) -> None:
    doc = ask(api, "generate-query", prompt="revenue by region").json()
    assert doc["result"]["totalRowCount"] == 5
    assert sorted(r["region.r_name"] for r in doc["result"]["rows"]) == [
        "AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST",
    ]  # fmt: skip
    assert doc["result"]["csvResult"].splitlines()[0] == "Region,Revenue"


def test_generate_query_follows_up_on_a_context_query(api: httpx.Client) -> None:
    first = ask(api, "generate-query", prompt="revenue by region", runQuery=False).json()
    for context in (first["query"], {"model_job": first["query"]}):
        doc = ask(api, "generate-query", prompt="only for 1995", runQuery=False,
                  contextQuery=context).json()  # fmt: skip
        assert doc["query"]["fields"] == first["query"]["fields"]
        assert "1995" in str(doc["query"]["filters"])


def test_generate_query_refuses_what_the_model_cannot_answer(api: httpx.Client) -> None:
    response = ask(api, "generate-query", prompt="what will the weather be tomorrow?")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("No query generated: ")


def test_pick_topic_names_the_topic(api: httpx.Client) -> None:
    assert ask(api, "pick-topic", prompt="revenue by region").json() == {"topicId": "lineitem"}
    limited = ask(api, "pick-topic", prompt="revenue by region", potentialTopicNames=["orders"])
    assert limited.json() == {"topicId": "orders"}
    none = ask(api, "pick-topic", prompt="revenue", potentialTopicNames=["nope"])
    assert (none.status_code, none.json()["detail"]) == (404, "No topics found")


def test_bad_requests_name_the_problem(api: httpx.Client) -> None:
    response = ask(api, "generate-query", prompt="")
    assert (response.status_code, response.json()["detail"]) == (
        400, "Bad Request: prompt: Required",
    )  # fmt: skip
    response = ask(api, "pick-topic", prompt="revenue", currentTopicName="lineitems")
    assert (response.status_code, response.json()["detail"]) == (404, "Topic lineitems not found")


def test_current_topic_steers_and_falls_back(api: httpx.Client) -> None:
    steered = ask(api, "generate-query", prompt="revenue by region", runQuery=False,
                  currentTopicName="orders").json()  # fmt: skip
    assert steered["topic"] == "orders"
    assert steered["query"]["join_paths_from_topic_name"] == "orders"
    elsewhere = ask(api, "generate-query", prompt="revenue by region", runQuery=False,
                    currentTopicName="customer").json()  # fmt: skip
    assert elsewhere["topic"] == "lineitem"  # customer cannot answer: the planner picked
