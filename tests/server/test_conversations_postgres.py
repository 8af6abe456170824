"""Conversations on the shared PostgreSQL store: two `assay serve` replicas on one schema, a
conversation made on one listed, renamed and deleted through the other, and another user's
personal token refused on both."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import POSTGRES_URL, postgres_schema
from tests.server.conftest import MODEL_ID, Server, make_home

pytestmark = pytest.mark.tpch
CONVERSATIONS = "/api/v1/ai/conversations"


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, tpch_path: Path
) -> Iterator[tuple[Server, Server]]:
    with postgres_schema("assay_conv_srv_") as schema:
        env = {"ASSAY_JOB_STORE": POSTGRES_URL, "ASSAY_JOB_STORE_SCHEMA": schema,
               "ASSAY_RUN_WAIT_SECONDS": "5", "ASSAY_WAIT_SECONDS": "2"}  # fmt: skip
        a = Server(make_home(tmp_path_factory.mktemp("conv-a")), tpch_path, env=env).start()
        try:
            b = Server(make_home(tmp_path_factory.mktemp("conv-b")), tpch_path, env=env).start()
        except BaseException:
            a.stop()
            raise
        yield a, b
        a.stop()
        b.stop()


def client(server: Server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60,
                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def answered(http: httpx.Client, prompt: str) -> dict[str, Any]:
    created = http.post("/api/v1/ai/jobs", json={"modelId": MODEL_ID, "prompt": prompt})
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + 60
    while http.get(f"/api/v1/ai/jobs/{created.json()['jobId']}").json()["state"] != "COMPLETE":
        assert time.monotonic() < deadline, "the job never completed"
        time.sleep(0.1)
    body: dict[str, Any] = created.json()
    return body


def test_conversations_are_shared_by_replicas_and_governed_on_each(
    replicas: tuple[Server, Server],
) -> None:
    a, b = replicas
    ann_token = a.key("--user", f"ann-{uuid.uuid4().hex[:6]}@example.com")
    bob_token = a.key("--user", f"bob-{uuid.uuid4().hex[:6]}@example.com")
    with client(a, ann_token) as ann_a, client(b, ann_token) as ann_b:
        first = answered(ann_a, "What is total revenue by region?")
        second = answered(ann_a, "What is total revenue?")
        page = ann_b.get(CONVERSATIONS, params={"pageSize": 1}).json()
        assert [r["id"] for r in page["data"]] == [second["conversationId"]]
        assert page["pageInfo"]["totalRecords"] == 2
        rest = ann_b.get(
            CONVERSATIONS, params={"pageSize": 1, "cursor": page["pageInfo"]["nextCursor"]}
        )
        assert [r["id"] for r in rest.json()["data"]] == [first["conversationId"]]
        url = f"{CONVERSATIONS}/{first['conversationId']}"
        read = ann_b.get(url).json()
        assert [m["jobId"] for m in read["messages"]] == [None, first["jobId"]]
        assert "ASIA" in read["messages"][1]["content"]

        for server in (a, b):
            with client(server, bob_token) as bob:
                for response in (bob.get(url), bob.patch(url, json={"name": "taken"}),
                                 bob.delete(url)):  # fmt: skip
                    assert response.status_code == 404, response.text
        assert ann_b.patch(url, json={"name": "Regions"}).json()["name"] == "Regions"
        assert ann_a.get(url).json()["name"] == "Regions"

        assert ann_b.delete(url).json()["deletedJobs"] == 1
        assert ann_a.get(f"/api/v1/ai/jobs/{first['jobId']}").status_code == 404
        assert ann_a.get(url).status_code == 404
        assert [r["id"] for r in ann_a.get(CONVERSATIONS).json()["data"]] == [
            second["conversationId"]
        ]
