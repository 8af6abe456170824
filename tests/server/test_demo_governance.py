"""`assay demo` turns the model's row-level security example on in its own copy, with the
`region` attribute and two example users, so the printed queries show each user their rows."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import ASSAY, MODEL_ID, Server
from tests.server.directory import SCIM

pytestmark = pytest.mark.tpch
QUERY = {"modelId": MODEL_ID, "join_paths_from_topic_name": "customer",
         "fields": ["region.r_name", "customer.count"]}  # fmt: skip


def demo(home: Path, server: Server) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([ASSAY, "demo", "--no-serve", "--scale", "0.1"], env=server._env(),
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    return done


def regions(client: httpx.Client, user_id: str | None = None) -> list[str]:
    params = {"userId": user_id} if user_id else {}
    rows = client.post("/api/v1/query/run", params=params,
                       json={"query": QUERY, "resultType": "json"}).json()  # fmt: skip
    return sorted(r["Region"] for r in rows)


def test_the_demo_shows_each_example_user_their_regions(tmp_path: Path, tpch_path: Path) -> None:
    home = tmp_path / "home"
    server = Server(home, tpch_path)
    demo(home, server)
    topic = (home / "models" / "tpch" / "customer.topic.yaml").read_text()
    assert "\naccess_filters:\n  - field: region.r_name\n" in topic
    demo(home, server)  # a second run changes nothing and makes no one twice
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60,
                          headers={"Authorization": f"Bearer {server.key()}"}) as org:  # fmt: skip
            found = org.get(SCIM, params={"filter": 'userName co "@example.com"'}).json()
            users = {u["userName"]: u for u in found["Resources"]}
            assert sorted(users) == ["ann@example.com", "bob@example.com"]
            ann, bob = users["ann@example.com"]["id"], users["bob@example.com"]["id"]
            assert regions(org, ann) == ["ASIA"]
            assert regions(org, bob) == ["AMERICA", "EUROPE"]
            assert regions(org) == ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"]
    finally:
        server.stop()
