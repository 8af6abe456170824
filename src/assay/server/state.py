"""What the routes share: settings, the job runner and store, and the rate limiter."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import Request

from assay.ai.jobs import AIJobRunner
from assay.config import Settings
from assay.jobs.model import ApiKey
from assay.jobs.runner import JobRunner
from assay.jobs.store import JobStore
from assay.jobs.users import Profile
from assay.server.auth import Principal, RateLimiter, act_as, signed_in
from assay.server.observe import note
from assay.server.quotas import KeyQuotas
from assay.server.registry import ModelRegistry


@dataclass
class ServerState:
    settings: Settings
    store: JobStore
    runner: JobRunner
    limiter: RateLimiter
    registry: ModelRegistry
    ai: AIJobRunner
    quotas: KeyQuotas


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.assay
    return state


def authorized(request: Request) -> ApiKey:
    """Authenticate the request and count it against its key's rate limit: first, before the
    body is even read, so nothing about a request is answered to a caller without a key. The
    key's user, read with it, is kept for ``caller``."""
    state: ServerState = request.app.state.assay
    key, profile = signed_in(state.store, request.headers.get("authorization"))
    note(request, key_id=key.id, user_id=key.user_id)
    state.limiter.check(key.id)
    request.state.assay_profile = profile
    return key


def caller(request: Request, user_id: str | None, key: ApiKey | None = None) -> Principal:
    """The authorized key acting as ``userId`` (its own user when not given)."""
    state: ServerState = request.app.state.assay
    key = key or authorized(request)
    own: Profile | None = getattr(request.state, "assay_profile", None)
    principal = act_as(state.store, key, user_id, own)
    note(request, user_id=principal.user.id)
    return principal


def unfinished(state: ServerState, ids: Iterable[str]) -> set[str]:
    """Which of these ids are query jobs or AI jobs that have not ended (a key's job quota
    counts both)."""
    wanted = list(ids)
    jobs = state.runner.store.get_jobs(wanted)
    rest = [i for i in wanted if i not in jobs]
    open_ai = {i for i in rest if (job := state.ai.store.get(i)) is not None and not job.done}
    return {i for i, j in jobs.items() if not j.done} | open_ai
