"""Models, topics, views, whoami and model YAML over a real server (contract section 6)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from assay.engines import DuckDBEngine
from tests.server.conftest import MODEL_ID, Server, make_home


def test_models_list_pages_filters_and_refuses_unknown_params(api: httpx.Client) -> None:
    body = api.get("/api/v1/models").json()
    assert body["pageInfo"] == {
        "hasNextPage": False,
        "nextCursor": None,
        "pageSize": 20,
        "totalRecords": 1,
    }
    (record,) = body["records"]
    assert (record["id"], record["name"], record["modelKind"]) == (MODEL_ID, "tpch", "SHARED")
    assert (
        api.get("/api/v1/models", params={"name": "TPCH"}).json()["pageInfo"]["totalRecords"] == 1
    )
    assert api.get("/api/v1/models", params={"name": "other"}).json()["records"] == []
    assert (
        api.get("/api/v1/models", params={"modelId": MODEL_ID}).json()["records"][0]["id"]
        == MODEL_ID
    )
    bad = api.get("/api/v1/models", params={"modelId": "nope"})
    assert (bad.status_code, bad.json()["detail"]) == (400, "modelId: Invalid uuid")
    unknown = api.get("/api/v1/models", params={"colour": "red"})
    assert (unknown.status_code, unknown.json()["detail"]) == (
        400,
        "Unrecognized key(s) in object: 'colour'",
    )
    cursor = api.get("/api/v1/models", params={"cursor": "garbage"})
    assert cursor.status_code == 400 and cursor.json()["error"] == "Invalid cursor"
    assert cursor.json()["success"] is False


def test_topics_list_and_detail(api: httpx.Client) -> None:
    topics = api.get(f"/api/v1/models/{MODEL_ID}/topic").json()
    assert topics["success"] is True
    assert {t["name"] for t in topics["topics"]} >= {"lineitem", "orders", "customer", "partsupp"}
    detail = api.get(f"/api/v1/models/{MODEL_ID}/topic/orders").json()
    assert detail["success"] is True
    topic = detail["topic"]
    assert topic["name"] == "orders" and topic["base_view_name"] == "orders"
    assert {v["name"] for v in topic["views"]} == {
        "orders",
        "customer",
        "nation",
        "region",
        "lineitem",
    }
    missing = api.get(f"/api/v1/models/{MODEL_ID}/topic/nope")
    assert (missing.status_code, missing.json()["detail"]) == (404, "Topic nope not found")
    unknown = api.get("/api/v1/models/00000000-0000-0000-0000-000000000000/topic")
    assert unknown.status_code == 404


def test_views_and_whoami(api: httpx.Client) -> None:
    views = api.get(f"/api/v1/models/{MODEL_ID}/view").json()
    assert views["success"] is True and len(views["views"]) == 11  # tpch's 10 and `slow`
    me = api.get("/api/v1/whoami").json()
    assert me["keyScope"] == "organization" and me["orgRole"] == "ORG_ADMIN"
    assert "QUERY_TOPICS" in me["rolesByModel"][MODEL_ID]["permissions"]
    scoped = api.get("/api/v1/whoami", params={"modelId": MODEL_ID}).json()
    assert list(scoped["rolesByModel"]) == [MODEL_ID]
    nope = api.get("/api/v1/whoami", params={"modelId": "00000000-0000-0000-0000-000000000000"})
    assert nope.status_code == 404 and nope.json()["detail"].startswith("Model(s) not found")


def test_yaml_read(api: httpx.Client) -> None:
    doc = api.get(f"/api/v1/models/{MODEL_ID}/yaml", params={"includeChecksums": "true"}).json()
    assert "orders.view" in doc["files"] and "relationships" in doc["files"]
    assert set(doc["checksums"]) == set(doc["files"]) and isinstance(doc["version"], int)
    legacy = api.get(f"/api/unstable/models/{MODEL_ID}/yaml", params={"fileName": "model"}).json()
    assert list(legacy["files"]) == ["model"]


# ---------------------------------------------------------------------- writes (own server)

TOTAL = {
    "modelId": MODEL_ID,
    "join_paths_from_topic_name": "orders",
    "fields": ["orders.sum_totalprice"],
}


@pytest.fixture
def editable(tmp_path: Path, tpch_path: Path) -> Iterator[tuple[Server, httpx.Client]]:
    server = Server(make_home(tmp_path), tpch_path).start()
    with httpx.Client(
        base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {server.key()}"}
    ) as client:
        yield server, client
    server.stop()


def _total(client: httpx.Client, **extra: Any) -> tuple[Decimal, str]:
    body = {"query": TOTAL, "resultType": "json", **extra}
    response = client.post("/api/v1/query/run", json=body)
    assert response.status_code == 200, response.text
    (row,) = response.json()
    return Decimal(str(next(iter(row.values())))), response.headers.get("content-type", "")


def _orders_view(client: httpx.Client) -> tuple[str, str]:
    doc = client.get(f"/api/v1/models/{MODEL_ID}/yaml", params={"includeChecksums": "true"}).json()
    return doc["files"]["orders.view"], doc["checksums"]["orders.view"]


def test_a_valid_write_takes_effect_at_once_and_is_not_served_from_the_old_cache(
    editable: tuple[Server, httpx.Client], tpch_engine: DuckDBEngine
) -> None:
    server, client = editable
    before, _ = _total(client)
    text, check = _orders_view(client)
    doubled = text.replace("sql: ${o_totalprice}", "sql: ${o_totalprice} * 2", 1)
    assert doubled != text, "the orders view is expected to define sum_totalprice on o_totalprice"
    written = client.post(
        f"/api/v1/models/{MODEL_ID}/yaml",
        json={"fileName": "orders.view", "yaml": doubled, "previousChecksum": check},
    )
    assert written.status_code == 200, written.text
    after, _ = _total(client)
    assert after == before * 2
    on_disk = (server.home / "models" / "tpch" / "orders.view.yaml").read_text()
    assert "${o_totalprice} * 2" in on_disk
    stale = client.post(
        f"/api/v1/models/{MODEL_ID}/yaml",
        json={"fileName": "orders.view", "yaml": text, "previousChecksum": check},
    )
    assert stale.status_code == 409


def test_an_invalid_write_is_refused_whole_with_every_issue(
    editable: tuple[Server, httpx.Client],
) -> None:
    server, client = editable
    text, _ = _orders_view(client)
    broken = (
        text.replace("aggregate_type: sum", "aggregate_type: summ", 1)
        + '\n  oops: {sql: "${nope}"}\n'
    )
    response = client.post(
        f"/api/v1/models/{MODEL_ID}/yaml", json={"fileName": "orders.view", "yaml": broken}
    )
    assert response.status_code == 400
    issues = response.json()["issues"]
    assert any('Did you mean "sum"' in i["message"] for i in issues)
    assert len([i for i in issues if not i["is_warning"]]) >= 1
    assert _orders_view(client)[0] == text, "the served model is unchanged"
    assert (server.home / "models" / "tpch" / "orders.view.yaml").read_text() == text
    bad_name = client.post(
        f"/api/v1/models/{MODEL_ID}/yaml", json={"fileName": "../x.view", "yaml": "a: 1"}
    )
    assert bad_name.status_code == 400
    assert client.get(f"/api/v1/models/{MODEL_ID}/validate").json() == []
    # A topic keeps its file's capitals, as Omni's do (Customers.topic is the topic Customers).
    capitals = client.post(
        f"/api/v1/models/{MODEL_ID}/yaml",
        json={"fileName": "Big_Orders.topic", "yaml": "base_view: orders\n"},
    )
    assert capitals.status_code == 200, capitals.text
    assert client.get(f"/api/v1/models/{MODEL_ID}/topic/Big_Orders").status_code == 200


def test_queries_during_writes_see_one_model_or_the_other(
    editable: tuple[Server, httpx.Client],
) -> None:
    """Writes flip sum_totalprice between x1 and x2 while queries run: every answer is the
    old model's or the new one's, never anything else."""
    _, client = editable
    base, _ = _total(client, cache="SkipCache")
    text, _ = _orders_view(client)
    doubled = text.replace("sql: ${o_totalprice}", "sql: ${o_totalprice} * 2", 1)
    answers: list[Decimal] = []
    stop = threading.Event()

    def query_loop() -> None:
        with httpx.Client(base_url=client.base_url, headers=client.headers, timeout=60) as own:
            while not stop.is_set():
                answers.append(_total(own, cache="SkipCache")[0])

    worker = threading.Thread(target=query_loop)
    worker.start()
    try:
        for i in range(6):
            body = {"fileName": "orders.view", "yaml": doubled if i % 2 == 0 else text}
            assert client.post(f"/api/v1/models/{MODEL_ID}/yaml", json=body).status_code == 200
    finally:
        stop.set()
        worker.join(60)
    assert answers and set(answers) <= {base, base * 2}, set(answers)
    assert json.dumps([str(a) for a in answers])  # the answers were all read


def test_several_models_each_on_its_own_connection(tmp_path: Path, tpch_path: Path) -> None:
    """The models setting serves several folders, each bound to a named connection."""
    import subprocess

    import duckdb

    shop_db = tmp_path / "shop.duckdb"
    with duckdb.connect(str(shop_db)) as conn:
        conn.execute(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, price DECIMAL(8,2));"
            "INSERT INTO items VALUES (1, 2.50), (2, 4.00);"
        )
    home = make_home(tmp_path)
    shop = tmp_path / "shop"
    subprocess.run(
        [
            str(Path(sys.executable).with_name("assay")),
            "init",
            "--connection",
            str(shop_db),
            "--out",
            str(shop),
        ],
        check=True,
        capture_output=True,
    )
    env = {
        "ASSAY_CONNECTIONS": json.dumps({"demo": f"duckdb:///{tpch_path}", "shop": str(shop_db)}),
        "ASSAY_MODELS": json.dumps(
            [
                {"folder": str(home / "models" / "tpch"), "connection": "demo"},
                {"folder": str(shop), "connection": "shop"},
            ]
        ),
    }
    server = Server(home, tpch_path, env=env).start()
    try:
        with httpx.Client(
            base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {server.key()}"}
        ) as client:
            records = client.get("/api/v1/models").json()["records"]
            assert sorted(r["name"] for r in records) == ["shop", "tpch"]
            assert len({r["connectionId"] for r in records}) == 2
            shop_id = next(r["id"] for r in records if r["name"] == "shop")
            query = {"modelId": shop_id, "table": "items", "fields": ["items.sum_price"]}
            rows = client.post(
                "/api/v1/query/run", json={"query": query, "resultType": "json"}
            ).json()
            assert [list(r.values()) for r in rows] == [[6.5]]
            assert _total(client)[0] > 0  # and the demo model answers on its own data
    finally:
        server.stop()


def test_refresh_adds_views_for_new_tables_and_delete_respects_validity(
    tmp_path: Path, tpch_path: Path
) -> None:
    import shutil

    import duckdb

    db = tmp_path / "copy.duckdb"
    shutil.copy(tpch_path, db)
    with duckdb.connect(str(db)) as conn:
        conn.execute(
            "CREATE TABLE promos (id INTEGER PRIMARY KEY, pct DOUBLE);"
            "INSERT INTO promos VALUES (1, 0.1), (2, 0.2), (3, 0.3);"
        )
    server = Server(make_home(tmp_path), db).start()
    try:
        with httpx.Client(
            base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {server.key()}"}
        ) as client:
            refreshed = client.post(f"/api/v1/models/{MODEL_ID}/refresh").json()
            assert refreshed["addedFiles"] == ["promos.view"]
            query = {"modelId": MODEL_ID, "table": "promos", "fields": ["promos.count"]}
            rows = client.post(
                "/api/v1/query/run", json={"query": query, "resultType": "json"}
            ).json()
            assert [list(r.values()) for r in rows] == [[3]]
            again = client.post(f"/api/v1/models/{MODEL_ID}/refresh").json()
            assert again["addedFiles"] == [], "existing files are never rewritten"
            gone = client.delete(
                f"/api/v1/models/{MODEL_ID}/yaml", params={"fileName": "partsupp.topic"}
            )
            assert gone.status_code == 200 and "partsupp.topic" not in gone.json()["files"]
            needed = client.delete(
                f"/api/v1/models/{MODEL_ID}/yaml", params={"fileName": "orders.view"}
            )
            assert needed.status_code == 400, "topics and relationships still use orders"
    finally:
        server.stop()
