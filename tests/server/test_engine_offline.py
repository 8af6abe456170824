"""A warehouse that goes away: the server starts anyway, its queries fail as OFFLINE with a
clear message, the server stays healthy, and queries work again once the database is back.

The database is this machine's PostgreSQL, reached through a TCP relay the test opens and
closes, so "down" and "back" are real connection failures and recoveries.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.live import POSTGRES_URL, unavailable
from tests.server.conftest import Server, free_port

VIEW = """
sql: SELECT n FROM generate_series(1, 10) AS t(n)
dimensions:
  n: {primary_key: true}
measures:
  total: {sql: "${n}", aggregate_type: sum}
"""


class Relay:
    """Forwards 127.0.0.1:port to PostgreSQL while open; refuses connections when closed."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port, self.target = port, target
        self._server: socket.socket | None = None
        self._links: list[socket.socket] = []

    def open(self) -> None:
        server = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in self._links:
            with contextlib.suppress(OSError):
                link.shutdown(socket.SHUT_RDWR)
            link.close()
        self._links.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._links += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                b.shutdown(socket.SHUT_WR)


@pytest.fixture
def relay() -> Iterator[Relay]:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=5):
            pass
    except psycopg.Error as exc:
        unavailable(f"no PostgreSQL at {POSTGRES_URL}: {exc}")
    relay = Relay(free_port(), ("127.0.0.1", 5432))
    yield relay
    relay.close()


def _run(server: Server, key: str) -> dict[str, Any]:
    query = {"modelId": _model_id(), "join_paths_from_topic_name": "numbers",
             "fields": ["numbers.total"]}  # fmt: skip
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"},
                      timeout=30) as api:  # fmt: skip
        r = api.post("/api/v1/query/run", json={"query": query, "cache": "refresh"})
    assert r.status_code == 200, r.text
    lines = [json.loads(x) for x in r.text.splitlines() if x.strip()]
    return next(x for x in lines if x.get("job_id"))


def _model_id() -> str:
    from assay.semantic.model import model_id_for

    return model_id_for("warehouse")


def test_a_database_that_is_down_fails_queries_as_offline_until_it_is_back(
    relay: Relay, tmp_path: Path, tpch_path: Path
) -> None:
    models = tmp_path / "warehouse"
    models.mkdir()
    (models / "numbers.view.yaml").write_text(VIEW)
    (models / "numbers.topic.yaml").write_text("base_view: numbers\n")
    url = f"postgresql://postgres@127.0.0.1:{relay.port}/test?connect_timeout=2"
    env = {
        "ASSAY_CONNECTIONS": json.dumps({"pg": url}),
        "ASSAY_MODELS": json.dumps([{"folder": str(models), "connection": "pg"}]),
        "ASSAY_RUN_WAIT_SECONDS": "20",
    }
    home = tmp_path / "home"
    home.mkdir()
    server = Server(home, tpch_path, env=env).start()  # the database is down: it starts anyway
    try:
        key = server.key("--org")
        down = _run(server, key)
        assert (down["status"], down["error_type"]) == ("FAILED", "OFFLINE"), down
        assert f"127.0.0.1:{relay.port}" in down["error_message"]
        assert httpx.get(f"{server.url}/health").status_code == 200

        relay.open()
        up = _run(server, key)
        assert up["status"] == "COMPLETE", up

        relay.close()  # the database goes away again, with pooled connections open
        again = _run(server, key)
        assert (again["status"], again["error_type"]) == ("FAILED", "OFFLINE"), again

        relay.open()
        assert _run(server, key)["status"] == "COMPLETE"
    finally:
        server.stop()
