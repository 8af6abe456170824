"""Terminal-event webhooks for AI jobs, signed as Omni signs them, so a receiver written for
Omni verifies ours unchanged: ``X-Omni-Signature: sha256=HMAC_SHA256(secret, "<ts>.<body>")``.

Delivery is best-effort with a few retries: a receiver that is down must never fail or delay
the job itself, and the answer stays readable from ``/result`` either way. It goes only to
the address checked when the job was submitted (``assay.outbound``), and follows no redirect.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import httpx

from assay.outbound import OutboundRefused, check_destination, pinned_client

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
    address: str | None = None,
    allowed: Collection[str] = frozenset(),
    delays: tuple[float, ...] = RETRY_DELAYS,
    timeout: float = 10.0,
) -> bool:
    """POST ``body`` to ``address`` (checked when the job was submitted; checked now when a
    job from before such checks has none); retry on network errors and 5xx/429. True once the
    receiver said 2xx."""
    if address is None:
        try:
            address = check_destination(url, allowed).address
        except OutboundRefused as exc:
            logger.warning("webhook %s not sent: %s", url, exc.message)
            return False
    payload = json.dumps(body, separators=(",", ":")).encode()
    timestamp = int(now)
    headers = {
        "Content-Type": "application/json",
        "X-Omni-Signature-Timestamp": str(timestamp),
        "X-Omni-Signature": sign(secret, timestamp, payload),
    }
    async with pinned_client(address, timeout=timeout) as client:
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
