"""An AI job whose planner breaks ends FAILED with {code, message, detail} and its terminal
webhook, signed, reaches a real receiver on loopback; nothing is left running."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from assay.ai.jobs import AIJobRunner
from assay.ai.planner import Plan, PlanStep
from assay.ai.store import SQLiteAIStore
from assay.counters import AI_JOBS_ENDED, Counters
from assay.jobs.runner import JobRunner
from assay.semantic.model import SemanticModel


class BrokenPlanner:
    def plan(self, question: str, model: SemanticModel, conversation: Sequence[PlanStep] = (),
             topic: str | None = None) -> Plan:  # fmt: skip
        raise RuntimeError("the planner broke")


def test_a_broken_planner_fails_the_job_and_signals_it(
    tmp_path: Path, tpch_model: SemanticModel
) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(
                (dict(self.headers), self.rfile.read(int(self.headers["Content-Length"])))
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    counters = Counters()
    queries = cast(
        JobRunner,
        SimpleNamespace(
            targets={tpch_model.id: SimpleNamespace(model=tpch_model)},
            viewer_for=lambda user_id, model_id: None,
            counters=counters,
        ),
    )
    store = SQLiteAIStore(tmp_path / "jobs.sqlite")
    webhook = {"url": f"http://127.0.0.1:{httpd.server_port}/hook", "secret": "k", "metadata": None}

    async def scenario() -> str:
        runner = AIJobRunner(
            store, queries, planner=BrokenPlanner(), webhook_hosts=frozenset({"127.0.0.1"})
        )  # the receiver is local
        job = runner.submit("revenue?", tpch_model.id, conversation_id=None, topic_name=None,
                            key_id=None, user_id=None, webhook=webhook)  # fmt: skip
        for _ in range(200):
            await asyncio.sleep(0.01)
            if received:
                break
        await runner.close()
        return job.id

    try:
        job_id = asyncio.run(scenario())
    finally:
        httpd.shutdown()
        httpd.server_close()
    failed = store.get(job_id)
    assert failed is not None and failed.state == "FAILED" and failed.completed_at
    assert failed.error == {"code": "INTERNAL_ERROR", "message": "The answer could not be produced",
                            "detail": "the planner broke"}  # fmt: skip
    assert failed.result is None and failed.progress is None
    assert counters.value(AI_JOBS_ENDED, "FAILED", "custom") == 1  # BrokenPlanner has no label
    ((headers, raw),) = received
    stamp = headers["X-Omni-Signature-Timestamp"]
    digest = hmac.new(b"k", f"{stamp}.".encode() + raw, hashlib.sha256).hexdigest()
    assert headers["X-Omni-Signature"] == f"sha256={digest}"
    event = json.loads(raw)
    assert (event["status"], event["event"], event["jobId"]) == ("FAILED", "job.failed", job_id)
    assert event["error"]["detail"] == "the planner broke"
