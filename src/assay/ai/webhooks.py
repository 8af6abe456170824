"""Terminal-event webhooks for AI jobs, signed as Omni signs them, so a receiver written for
Omni verifies ours unchanged: ``X-Omni-Signature: sha256=HMAC_SHA256(secret, "<ts>.<body>")``.

Delivery is best-effort with a few retries: a receiver that is down must never fail or delay
the job itself, and the answer stays readable from ``/result`` either way.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any

import httpx

logger = logging.getLogger(__name__)

RETRY_DELAYS = (0.5, 2.0, 8.0)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def event_body(
    job_id: str,
    status: str,
    *,
    at: float,
    summary: str | None,
    error: dict[str, Any] | None,
    metadata: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": f"evt_{job_id.split('-', maxsplit=1)[0]}_{status}_{int(at)}",
        "event": f"job.{status.lower()}",
        "jobId": job_id,
        "status": status,
        "result_summary": summary,
        "metadata": metadata,
        "completed_at": datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if error is not None:
        body["error"] = error
    return body


async def deliver(
    url: str,
    secret: str,
    body: dict[str, Any],
    *,
    now: float,
    delays: tuple[float, ...] = RETRY_DELAYS,
    timeout: float = 10.0,
) -> bool:
    """POST ``body``; retry on network errors and 5xx/429. True once the receiver said 2xx."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    timestamp = int(now)
    headers = {
        "Content-Type": "application/json",
        "X-Omni-Signature-Timestamp": str(timestamp),
        "X-Omni-Signature": sign(secret, timestamp, payload),
    }
    async with httpx.AsyncClient(timeout=timeout) as client:
        for attempt, delay in enumerate((0.0, *delays)):
            await asyncio.sleep(delay)
            try:
                response = await client.post(url, content=payload, headers=headers)
            except httpx.HTTPError as exc:
                logger.warning("webhook %s attempt %d failed: %s", url, attempt + 1, exc)
                continue
            if response.is_success:
                return True
            logger.warning("webhook %s attempt %d: HTTP %d", url, attempt + 1, response.status_code)
            if response.status_code < 500 and response.status_code != 429:
                return False  # the receiver refused it: sending it again will not help
    return False
