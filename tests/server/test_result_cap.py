"""``max_result_bytes`` on a real server: a query whose result passes the cap ends FAILED
(``QUERY``) saying so and how to fix it, nothing is cached for it, and the server, with one
worker, goes on serving queries under the cap."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import MODEL_ID, Server, make_home

CAP = 200_000
# 3 million numbers: about 24 MB as an Arrow stream, so far past the cap.
NUMBERS_VIEW = """
sql: SELECT i FROM range(3000000) t(i)
dimensions:
  i: {primary_key: true}
"""
BIG = {"modelId": MODEL_ID, "join_paths_from_topic_name": "numbers", "fields": ["numbers.i"],
       "limit": None}  # fmt: skip
UNDER = {"modelId": MODEL_ID, "join_paths_from_topic_name": "numbers", "fields": ["numbers.i"],
         "limit": 5000}  # about 40 KB  # fmt: skip


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory, tpch_path: Path) -> Iterator[Server]:
    home = make_home(tmp_path_factory.mktemp("capped"))
    (home / "models" / "tpch" / "numbers.view.yaml").write_text(NUMBERS_VIEW)
    (home / "models" / "tpch" / "numbers.topic.yaml").write_text("base_view: numbers\n")
    env = {"ASSAY_MAX_RESULT_BYTES": str(CAP), "ASSAY_WORKERS": "1",
           "ASSAY_RUN_WAIT_SECONDS": "30"}  # fmt: skip
    server = Server(home, tpch_path, env=env).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(capped: Server) -> Iterator[httpx.Client]:
    key = capped.key("--org")
    with httpx.Client(base_url=capped.url, headers={"Authorization": f"Bearer {key}"},
                      timeout=60) as client:  # fmt: skip
        yield client


def run(api: httpx.Client, query: dict[str, Any]) -> dict[str, Any]:
    r = api.post("/api/v1/query/run", json={"query": query})  # the cache is used by default
    assert r.status_code == 200, r.text
    lines = [json.loads(x) for x in r.text.splitlines() if x.strip()]
    return next(x for x in lines if x.get("job_id"))


def test_a_result_past_the_cap_fails_clearly(capped: Server, api: httpx.Client) -> None:
    failed = run(api, BIG)
    assert (failed["status"], failed["error_type"]) == ("FAILED", "QUERY"), failed
    assert failed["error_message"] == (
        f"The result is larger than max_result_bytes ({CAP} bytes): add a limit or filters, "
        "or raise the setting"
    )
    assert "result" not in failed
    again = run(api, BIG)  # nothing was cached for it: it runs again and fails again
    assert (again["status"], again["error_type"]) == ("FAILED", "QUERY")
    assert again["job_id"] != failed["job_id"] and "cache_metadata" not in again
    leftovers = list((capped.home / "results").glob("*.tmp"))
    assert leftovers == []

    assert httpx.get(f"{capped.url}/health").status_code == 200
    under = run(api, UNDER)  # the one worker is free, and a result under the cap is served
    assert under["status"] == "COMPLETE", under
    assert under["summary"]["total_rows"] == 5000 and under["summary"]["row_limit_reached"]
    assert 0 < under["cache_metadata"]["num_bytes"] <= CAP and under["result"]


def test_the_document_form_says_it_too(api: httpx.Client) -> None:
    r = api.post("/api/v1/query/run", json={"query": BIG, "resultType": "csv"})
    assert r.status_code >= 400
    assert "larger than max_result_bytes" in r.text
