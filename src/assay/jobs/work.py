"""What a job runner is handed and hands on: a query request, the model and engine it runs
on, the work a worker takes, and the store calls ``submit`` has made; and the log line of a
job's transition, written by whoever moves it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from assay.engines.base import Engine
from assay.jobs.model import Job
from assay.jobs.timing import Stopwatch
from assay.semantic.compiler import CompiledQuery
from assay.semantic.model import SemanticModel
from assay.semantic.viewer import Viewer

logger = logging.getLogger("assay.jobs.runner")  # the runner's lines, as they always were
#: a request's cache modes, as the runner reads them: the cache may answer, or must not
USE_CACHE = "use"
REFRESH = "refresh"


@dataclass(frozen=True, slots=True)
class Target:
    """A model and the engine that holds its data."""

    model: SemanticModel
    engine: Engine


@dataclass(frozen=True, slots=True)
class JobRequest:
    query: dict[str, Any]
    model_id: str
    cache: str = USE_CACHE
    plan_only: bool = False
    key_id: str | None = None
    #: whom the job runs as (its owner), and that user as the model's rules see them
    user_id: str | None = None
    viewer: Viewer | None = None
    #: the request's stage timings, when someone wants them (Server-Timing)
    watch: Stopwatch | None = field(default=None, compare=False)
    #: the id of the request that made the job, for the log lines of its transitions
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Work:
    """A job handed to a worker: what it runs, as shown and as run (one row past the limit)."""

    job: Job  # as the store holds it now: the worker hands it to waiters once it ends
    target: Target
    shown: CompiledQuery
    run: CompiledQuery
    key: str  # its result cache key
    claimed: bool = False  # the store already marked it EXECUTING (at submit, or a takeover)
    watch: Stopwatch | None = None
    request_id: str | None = None
    #: set when the worker started before the job's row was written (see ``JobRunner._submitting``):
    #: True once it is, False when writing it failed (then the job never existed)
    written: Future[bool] | None = None


#: The user a job runs as, looked up again when a job is run after a restart or on another
#: replica (their attributes then are what governs it); raises when they no longer exist.
ViewerLookup = Callable[[str | None, str], Viewer | None]


@dataclass(frozen=True)
class StoreCall:
    """A store call ``submit`` needs made. ``run`` is a round trip on a shared store;
    ``local``, when given, answers from what this replica remembers, without one (None: it
    does not remember, and ``run`` is made)."""

    run: Callable[[], Any]
    local: Callable[[], Any] | None = None


def log_transition(job: Job, state: str, engine: str, request_id: str | None) -> None:
    """One log line per job transition: who, what, on which engine, for which request, and
    (once it ended) how long it took. Never the query itself: it can hold values a user
    filtered on."""
    if not logger.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {
        "event": "job", "job_id": job.id, "state": state, "request_id": request_id,
        "user_id": job.user_id, "model_id": job.model_id, "engine": engine,
    }  # fmt: skip
    if job.finished_at is not None:
        fields["duration_ms"] = round((job.finished_at - job.created_at) * 1000, 2)
        if job.error_type:
            fields["error_type"] = job.error_type
    logger.info("job %s %s", job.id, state, extra={"fields": fields})


def row_written(work: Work) -> bool:
    """Whether the job's row is in the store, waiting for it when the worker started first."""
    return work.written is None or work.written.result()
