"""What the routes share: settings, the job runner and store, and the rate limiter."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from assay.config import Settings
from assay.jobs.runner import JobRunner
from assay.jobs.store import JobStore
from assay.server.auth import Principal, RateLimiter, act_as, authenticate


@dataclass
class ServerState:
    settings: Settings
    store: JobStore
    runner: JobRunner
    limiter: RateLimiter


def caller(request: Request, user_id: str | None) -> Principal:
    """Authenticate the request, count it against its key's rate limit, apply ``userId``."""
    state: ServerState = request.app.state.assay
    key = authenticate(state.store, request.headers.get("authorization"))
    state.limiter.check(key.id)
    return act_as(state.store, key, user_id)
