"""Ask a question through ``/api/v1/ai/jobs``: submit, poll the status (reporting progress),
and read the answer, as Omni's clients do."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from assay.client.base import ApiClient, QueryFailed

TERMINAL = frozenset({"COMPLETE", "FAILED", "CANCELLED"})


class AIClient(ApiClient):
    def _json(self, response: httpx.Response) -> dict[str, Any]:
        if not response.is_success:
            raise self.refused(response)
        body: dict[str, Any] = response.json()
        return body

    def submit(
        self, prompt: str, model_id: str, conversation_id: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"modelId": model_id, "prompt": prompt}
        if conversation_id:
            body["conversationId"] = conversation_id
        return self._json(self._http.post("/api/v1/ai/jobs", json=body))

    def ask(
        self,
        prompt: str,
        model_id: str,
        conversation_id: str | None = None,
        *,
        on_progress: Callable[[str], None] = lambda _: None,
        poll_seconds: float = 0.2,
        limit_seconds: float = 600.0,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Submit and wait: (the final status document, the result). Raises QueryFailed when
        the job fails, is cancelled or outlasts ``limit_seconds``."""
        job_id = self.submit(prompt, model_id, conversation_id)["jobId"]
        deadline = time.monotonic() + limit_seconds
        while True:
            status = self._json(self._http.get(f"/api/v1/ai/jobs/{job_id}"))
            if status["state"] in TERMINAL:
                break
            if status.get("progress"):
                on_progress(status["progress"]["message"])
            if time.monotonic() > deadline:
                raise QueryFailed(f"the AI job {job_id} did not finish in {limit_seconds:g} s")
            time.sleep(poll_seconds)
        if status["state"] != "COMPLETE":
            error = status.get("error") or {}
            reason = error.get("detail") or error.get("message") or status["state"].lower()
            raise QueryFailed(f"the AI job {status['state'].lower()}: {reason}")
        return status, self._json(self._http.get(f"/api/v1/ai/jobs/{job_id}/result"))
