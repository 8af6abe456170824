"""Governance over the API of a real `assay serve`: each user sees, row for row, what
hand-written SQL with their rules returns; through /query/run, Omni's Python SDK, AI jobs, the
topic payload and the cache; and every way around it is refused.

The server is built through the API (tests/server/governed_server.py); the rows are checked
against the same TPC-H DuckDB file queried directly.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pytest

from tests.server.conftest import MODEL_ID
from tests.server.governed_server import Governed, start_governed

pytestmark = pytest.mark.tpch
BY_REGION = {"modelId": MODEL_ID, "join_paths_from_topic_name": "customer",
             "fields": ["region.r_name", "customer.count", "customer.sum_acctbal"]}  # fmt: skip
HAND_SQL = """
SELECT r.r_name, COUNT(*), SUM(c.c_acctbal)
FROM customer c JOIN nation n ON c.c_nationkey = n.n_nationkey
JOIN region r ON n.n_regionkey = r.r_regionkey
WHERE c.c_acctbal >= -1000 {where} GROUP BY r.r_name ORDER BY r.r_name
"""


@pytest.fixture(scope="module")
def gov(tmp_path_factory: pytest.TempPathFactory, tpch_path: Path) -> Iterator[Governed]:
    governed = start_governed(tmp_path_factory.mktemp("governed"), tpch_path)
    yield governed
    governed.server.stop()


def by_hand(tpch_path: Path, regions: list[str] | None) -> list[tuple[Any, ...]]:
    where = ""
    if regions is not None:
        where = "AND r.r_name IN (" + ", ".join(f"'{r}'" for r in regions) + ")"
    with duckdb.connect(str(tpch_path), read_only=True) as conn:
        rows = conn.execute(HAND_SQL.format(where=where)).fetchall()
    return [(r, n, Decimal(str(b))) for r, n, b in rows]


def lines(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [json.loads(x) for x in response.text.splitlines() if x.strip()]


def job(response: httpx.Response) -> dict[str, Any]:
    return next(x for x in lines(response) if "job_id" in x)


def table_of(line: dict[str, Any]) -> list[tuple[Any, ...]]:
    assert line["status"] == "COMPLETE", line
    table = pa.ipc.open_stream(base64.b64decode(line["result"])).read_all()
    return [tuple(Decimal(str(v)) if isinstance(v, float | Decimal) and i == 2 else v
                  for i, v in enumerate(row.values())) for row in table.to_pylist()]  # fmt: skip


def run(client: httpx.Client, query: dict[str, Any], **body: Any) -> httpx.Response:
    return client.post("/api/v1/query/run", json={"query": query, **body})


def sorted_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=lambda r: str(r[0]))


# ---------------------------------------------------------------- rows per user


PEOPLE_REGIONS = [
    ("ann@example.com", ["ASIA"]),
    ("bob@example.com", ["AMERICA", "EUROPE"]),
    ("cat@example.com", None),
]


@pytest.mark.parametrize(("who", "regions"), PEOPLE_REGIONS)
def test_each_user_sees_their_rows_by_token_and_by_user_id(
    gov: Governed, tpch_path: Path, who: str, regions: list[str] | None
) -> None:
    want = by_hand(tpch_path, regions)
    assert want
    with gov.client(who) as own:
        assert sorted_rows(table_of(job(run(own, BY_REGION)))) == want
    with gov.client() as org:
        as_param = org.post("/api/v1/query/run", params={"userId": gov.ids[who]},
                            json={"query": BY_REGION})  # fmt: skip
        in_body = org.post("/api/v1/query/run", json={"query": BY_REGION,
                                                      "userId": gov.ids[who]})  # fmt: skip
        assert sorted_rows(table_of(job(as_param))) == want
        assert sorted_rows(table_of(job(in_body))) == want


def test_the_organization_key_acts_as_its_admin(gov: Governed, tpch_path: Path) -> None:
    with gov.client() as org:
        assert sorted_rows(table_of(job(run(org, BY_REGION)))) == by_hand(tpch_path, None)


def test_omni_python_sdk_runs_as_the_user(gov: Governed, tpch_path: Path) -> None:
    from omni_python_sdk import OmniAPI

    ann = OmniAPI(gov.tokens["ann@example.com"], gov.server.url)
    table, _ = ann.run_query_blocking({"query": BY_REGION})
    assert table.column("region.r_name").to_pylist() == ["ASIA"]
    org = OmniAPI(gov.org_key, gov.server.url)
    table, _ = org.run_query_blocking({"query": BY_REGION, "userId": gov.ids["bob@example.com"]})
    assert sorted(table.column("region.r_name").to_pylist()) == ["AMERICA", "EUROPE"]


def test_a_user_with_no_value_is_refused_by_name(gov: Governed) -> None:
    with gov.client("dan@example.com") as dan:
        line = job(run(dan, BY_REGION))
        document = run(dan, BY_REGION, resultType="csv")
    assert line["status"] == "FAILED" and line["error_type"] == "FORBIDDEN"
    assert 'User attribute "region" has no value' in line["error_message"]
    assert document.status_code == 403 and document.json()["error_type"] == "FORBIDDEN"


# ---------------------------------------------------------------- the cache


def test_the_cache_serves_a_result_only_to_users_whose_rules_give_it(
    gov: Governed, tpch_path: Path
) -> None:
    query = {**BY_REGION, "limit": 17}  # a query no other test runs: a cold cache
    with gov.client("ann@example.com") as ann:
        first = job(run(ann, query))
        again = job(run(ann, query))
    assert first["summary"]["cache_type"] == "MISS" and again["summary"]["cache_type"] == "EXACT"
    with gov.client("bob@example.com") as bob:
        for cache in ("Standard", "SkipRequery", "SkipCache"):
            theirs = job(run(bob, query, cache=cache))
            assert sorted_rows(table_of(theirs)) == by_hand(tpch_path, ["AMERICA", "EUROPE"])
            assert theirs["cache_metadata"]["cache_key"] != first["cache_metadata"]["cache_key"]
    with gov.client("amy@example.com") as amy:  # other user, same rules as ann
        same = job(run(amy, query))
    assert same["summary"]["cache_type"] == "EXACT"
    assert same["cache_metadata"]["cache_key"] == first["cache_metadata"]["cache_key"]
    assert table_of(same) == table_of(first)


# ---------------------------------------------------------------- what a user may see


def test_the_topic_payload_is_per_user(gov: Governed) -> None:
    base = f"/api/v1/models/{MODEL_ID}/topic"
    with gov.client("ann@example.com") as ann:
        topics = {t["name"] for t in ann.get(base).json()["topics"]}
        assert "orders" not in topics and "customer" in topics
        assert ann.get(f"{base}/orders").status_code == 404
        payload = ann.get(f"{base}/customer").json()["topic"]
        views = {v["name"]: v for v in payload["views"]}
        fields = {d["field_name"] for d in views["customer"]["dimensions"]}
        assert "c_acctbal" not in fields and "c_phone" not in fields and "c_name" in fields
        r_name = next(d for d in views["region"]["dimensions"] if d["field_name"] == "r_name")
        assert r_name["all_values"] == ["ASIA"]
        all_views = {v["name"] for v in ann.get(f"/api/v1/models/{MODEL_ID}/view").json()["views"]}
        assert "supplier" not in all_views
    with gov.client("bob@example.com") as bob:  # finance, and EUROPE: the phone too
        topics = {t["name"] for t in bob.get(base).json()["topics"]}
        assert "orders" in topics
        payload = bob.get(f"{base}/customer").json()["topic"]
        customer = next(v for v in payload["views"] if v["name"] == "customer")
        assert {"c_acctbal", "c_phone"} <= {d["field_name"] for d in customer["dimensions"]}


# ---------------------------------------------------------------- attacks


NEGATIVE_BALANCE = {"type": "number", "kind": "LESS_THAN", "values": [0]}
ATTACKS = [
    ({"fields": ["customer.c_acctbal"]}, 'No such field "customer.c_acctbal"'),
    ({"fields": ["supplier.s_name"], "join_paths_from_topic_name": "lineitem"},
     'no view "supplier"'),
    ({"sorts": [{"column_name": "customer.c_phone"}]}, "Cannot sort by"),
    ({"filters": {"customer.c_acctbal": NEGATIVE_BALANCE}}, 'No such field "customer.c_acctbal"'),
    ({"join_paths_from_topic_name": "orders", "fields": ["orders.count"]},
     "No such topic 'orders'"),
    ({"join_paths_from_topic_name": None, "table": "customer"}, "query through a topic"),
    ({"table": "supplier", "join_paths_from_topic_name": "lineitem"}, "is not part of topic"),
]  # fmt: skip


@pytest.mark.parametrize(("query", "expect"), ATTACKS)
def test_nothing_a_user_sends_names_what_they_may_not_see(
    gov: Governed, query: dict[str, Any], expect: str
) -> None:
    with gov.client("ann@example.com") as ann:
        line = job(run(ann, {k: v for k, v in {**BY_REGION, **query}.items() if v is not None}))
    assert line["status"] == "FAILED", line
    assert expect in line["error_message"]


def test_a_filter_cannot_widen_the_users_rows(gov: Governed) -> None:
    widen = {**BY_REGION, "filters": {"region.r_name": {"type": "string", "kind": "EQUALS",
                                                        "values": ["EUROPE", "ASIA"]}}}  # fmt: skip
    with gov.client("ann@example.com") as ann:
        assert [r[0] for r in table_of(job(run(ann, widen)))] == ["ASIA"]
        neg = {**BY_REGION, "filters": {"region.r_name": {"type": "string", "kind": "EQUALS",
                                                          "values": ["ASIA"],
                                                          "is_negative": True}}}  # fmt: skip
        assert table_of(job(run(ann, neg))) == []


def test_impersonation_rules(gov: Governed) -> None:
    ann, bob = gov.ids["ann@example.com"], gov.ids["bob@example.com"]
    with gov.client("ann@example.com") as client:
        other = client.post("/api/v1/query/run", params={"userId": bob}, json={"query": BY_REGION})
        assert other.status_code == 403
        assert other.json()["detail"] == ("User-scoped API keys can only be used to act on "
                                          "behalf of the authenticated user.")  # fmt: skip
        own = client.post("/api/v1/query/run", params={"userId": ann}, json={"query": BY_REGION})
        assert own.status_code == 200
    with gov.client() as org:
        missing = "00000000-0000-4000-8000-000000000000"
        unknown = org.post("/api/v1/query/run", params={"userId": missing},
                           json={"query": BY_REGION})  # fmt: skip
        assert unknown.status_code == 404
        assert unknown.json()["detail"] == f"User with id {missing} does not exist"
        bad = org.post("/api/v1/query/run", params={"userId": "ann"}, json={"query": BY_REGION})
        assert bad.status_code == 400
        both = org.post("/api/v1/query/run", params={"userId": ann},
                        json={"query": BY_REGION, "userId": ann})  # fmt: skip
        assert both.status_code == 400


def test_another_users_query_job_is_unknown_to_them(gov: Governed) -> None:
    with gov.client("ann@example.com") as ann:
        job_id = job(run(ann, BY_REGION))["job_id"]
    with gov.client("bob@example.com") as bob:
        waited = bob.get("/api/v1/query/wait", params={"job_ids": json.dumps([job_id])})
        assert waited.status_code == 404
        cancelled = bob.post("/api/v1/query/cancel", json={"job_ids": [job_id]})
        assert cancelled.status_code == 404
    with gov.client() as org:  # an organization key reads any job
        read = lines(org.get("/api/v1/query/wait", params={"job_ids": json.dumps([job_id])}))
        assert read[0]["job_id"] == job_id and read[0]["status"] == "COMPLETE"


def ai_job(client: httpx.Client, prompt: str, **body: Any) -> dict[str, Any]:
    made = client.post("/api/v1/ai/jobs", json={"prompt": prompt, "modelId": MODEL_ID, **body})
    assert made.status_code == 201, made.text
    job_id = made.json()["jobId"]
    for _ in range(300):
        status: dict[str, Any] = client.get(f"/api/v1/ai/jobs/{job_id}").json()
        if status["state"] in ("COMPLETE", "FAILED", "CANCELLED"):
            return {**status, "conversationId": made.json()["conversationId"]}
        time.sleep(0.1)
    raise AssertionError(f"AI job {job_id} did not finish")


def test_ai_answers_are_the_users_and_only_theirs(gov: Governed) -> None:
    prompt = "How many customers are there by region?"
    with gov.client("ann@example.com") as ann:
        done = ai_job(ann, prompt)
        assert done["state"] == "COMPLETE", done
        result = ann.get(f"/api/v1/ai/jobs/{done['id']}/result").json()
        rows = next(a for a in result["actions"] if a["type"] == "generate_query")["result"]
        assert rows["csvResult"].splitlines()[1:] == [rows["csvResult"].splitlines()[1]]
        assert "ASIA" in rows["csvResult"] and "EUROPE" not in result["message"]
        assert ann.get(f"/api/v1/ai/jobs/{done['id']}/vis").status_code == 200
    job_id, conversation = done["id"], done["conversationId"]
    with gov.client("bob@example.com") as bob:
        for path in ("", "/result", "/vis"):
            assert bob.get(f"/api/v1/ai/jobs/{job_id}{path}").status_code == 404
        assert bob.post(f"/api/v1/ai/jobs/{job_id}/cancel").status_code == 404
        follow = bob.post("/api/v1/ai/jobs", json={"prompt": "and by nation?", "modelId": MODEL_ID,
                                                   "conversationId": conversation})  # fmt: skip
        assert follow.status_code == 404
        page = bob.get(f"/chat/{conversation}")
        assert page.status_code == 404 and "ASIA" not in page.text
    with gov.client() as org:
        assert org.get(f"/api/v1/ai/jobs/{job_id}/result").status_code == 200


def test_generate_query_plans_and_runs_as_the_user(gov: Governed) -> None:
    body = {"prompt": "How many customers are there by region?", "modelId": MODEL_ID}
    with gov.client("ann@example.com") as ann:
        answer = ann.post("/api/v1/ai/generate-query", json=body).json()
    assert [r["region.r_name"] for r in answer["result"]["rows"]] == ["ASIA"]
    with gov.client("ann@example.com") as ann:
        topic = ann.post("/api/v1/ai/pick-topic",
                         json={**body, "prompt": "orders by year"}).json()  # fmt: skip
    assert topic.get("topicId") != "orders"


# ---------------------------------------------------------------- roles


def test_a_restricted_querier_queries_topics_only_and_sees_no_sql(gov: Governed) -> None:
    with gov.client("eve@example.com") as eve:
        line = job(run(eve, BY_REGION))
        assert line["status"] == "COMPLETE"
        assert line["summary"]["sql"] == "" and line["summary"]["display_sql"] == ""
        bare = run(eve, {"modelId": MODEL_ID, "table": "region", "fields": ["region.r_name"]})
        assert bare.status_code == 403 and "topics only" in bare.json()["detail"]
        plan = job(run(eve, BY_REGION, planOnly=True))
        assert plan["status"] == "PLANNED" and plan["summary"]["sql"] == ""
    with gov.client("ann@example.com") as ann:  # a querier sees it
        assert "SELECT" in job(run(ann, BY_REGION))["summary"]["sql"]


def test_a_viewer_runs_nothing(gov: Governed) -> None:
    with gov.client("vic@example.com") as vic:
        denied = run(vic, BY_REGION)
        assert denied.status_code == 403
        assert denied.json()["detail"] == "Permission denied - querier role required on the model"
        made = vic.post("/api/v1/ai/jobs", json={"prompt": "customers", "modelId": MODEL_ID})
        assert made.status_code == 403
        assert vic.get(f"/api/v1/models/{MODEL_ID}/topic").status_code == 200


def test_only_modelers_read_and_write_the_model(gov: Governed) -> None:
    path = f"/api/v1/models/{MODEL_ID}/yaml"
    with gov.client("ann@example.com") as ann:
        assert ann.get(path).status_code == 403
        wrote = ann.post(path, json={"fileName": "region.view", "yaml": "dimensions: {}\n"})
        assert wrote.status_code == 403
    with gov.client("mo@example.com") as mo:
        files = mo.get(path).json()["files"]
        assert "access_filters" in files["customer.topic"]


def test_an_attribute_a_served_model_reads_cannot_be_deleted(gov: Governed) -> None:
    with gov.client() as org:
        refused = org.delete("/api/v1/user-attributes/region")
        assert refused.status_code == 409 and "tpch" in refused.json()["detail"]
        names = [r["name"] for r in org.get("/api/v1/user-attributes").json()["records"]]
        assert "region" in names


def test_a_model_naming_an_undefined_attribute_is_refused(gov: Governed) -> None:
    path = f"/api/v1/models/{MODEL_ID}/yaml"
    with gov.client() as org:
        topic = org.get(path, params={"fileName": "customer.topic"}).json()["files"]
        text = topic["customer.topic"].replace("user_attribute: region", "user_attribute: regon")
        wrote = org.post(path, json={"fileName": "customer.topic", "yaml": text})
    assert wrote.status_code == 400
    assert "no user attribute 'regon'" in wrote.text and 'Did you mean \\"region\\"' in wrote.text


def test_a_pivoted_query_shows_a_user_only_their_pivot_values(gov: Governed) -> None:
    """Pivots go through the same compiler: bob's access filter leaves his two regions as the
    only pivot columns, numbered 1 and 2, in the JSON grid as in the Arrow cells."""
    query = {"modelId": MODEL_ID, "join_paths_from_topic_name": "customer",
             "fields": ["customer.c_mktsegment", "region.r_name", "customer.count"],
             "pivots": ["region.r_name"]}  # fmt: skip
    with gov.client("bob@example.com") as bob:
        cells = pa.ipc.open_stream(base64.b64decode(job(run(bob, query))["result"])).read_all()
        grid = run(bob, query, resultType="json")
    columns = {(c["region.r_name"], c["$omni_pivot_col_num"]) for c in cells.to_pylist()}
    assert sorted(columns) == [("AMERICA", 1), ("EUROPE", 2)]
    assert grid.status_code == 200, grid.text
    assert list(grid.json()[0]) == ["Region", "AMERICA", "EUROPE"]
