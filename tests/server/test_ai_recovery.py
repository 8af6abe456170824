"""AI jobs are durable: kill -9 the server, start it again on the same home, and every AI job
still answers; an unfinished one runs again (and can be cancelled), and results past their
retention are gone while their jobs still say they existed."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import Server, make_home
from tests.server.test_ai_jobs import TERMINAL, submit, wait_state

RETENTION_SECONDS = 1.5


@pytest.fixture
def short_memory(tmp_path: Path, tpch_path: Path) -> Iterator[Server]:
    """A server of its own that keeps AI results only 1.5 s."""
    env = {"ASSAY_AI_RESULT_RETENTION_DAYS": str(RETENTION_SECONDS / 86400)}
    srv = Server(make_home(tmp_path), tpch_path, env=env)
    yield srv
    srv.stop(signal.SIGKILL)


def test_ai_jobs_survive_kill_9_and_results_expire(short_memory: Server) -> None:
    srv = short_memory.start()
    key = srv.key("--org")
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=srv.url, headers=headers, timeout=60) as api:
        done = submit(api, "What is total revenue by region?")
        assert wait_state(api, done["jobId"], TERMINAL)["state"] == "COMPLETE"
        running = submit(api, "How many slow are there?")  # runs until cancelled
        wait_state(api, running["jobId"], {"EXECUTING"})
    srv.stop(signal.SIGKILL)
    time.sleep(RETENTION_SECONDS + 0.5)

    srv.start()  # prunes at start-up, and runs the unfinished job again
    with httpx.Client(base_url=srv.url, headers=headers, timeout=60) as api:
        status = api.get(f"/api/v1/ai/jobs/{done['jobId']}").json()
        assert status["state"] == "COMPLETE" and status["prompt"].startswith("What is total")
        gone = api.get(f"/api/v1/ai/jobs/{done['jobId']}/result")
        assert (gone.status_code, gone.json()["detail"]) == (404, "Result is no longer available")

        again = wait_state(api, running["jobId"], {"EXECUTING", *TERMINAL})
        assert again["state"] == "EXECUTING"  # it runs again, it was not lost
        same = {
            "modelId": again["modelId"],
            "prompt": "x",
            "conversationId": again["conversationId"],
        }
        busy = api.post("/api/v1/ai/jobs", json=same)
        assert busy.status_code == 409
        cancelled = api.post(f"/api/v1/ai/jobs/{running['jobId']}/cancel").json()
        assert cancelled["state"] == "CANCELLED"
