"""What an operator sees of each request: an id (the client's ``X-Request-Id`` when it sends a
sane one, else a new one), given back on the answer and carried into the log lines of the jobs
the request makes; the request's count and latency in the metrics; and one log line with who
asked what, how it ended and how long it took.

Routes add what only they know (the user, the jobs, the model) with ``note``. Nothing a
request carries that could be a secret is logged: no headers, no query string, no body. When
tracing is on, the finished request also becomes a trace (server/traces.py)."""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assay.ids import new_uuid
from assay.server.metrics import Metrics

if TYPE_CHECKING:
    from assay.server.traces import Traces

logger = logging.getLogger("assay.requests")
#: the ASGI scope keys of a request's id and of what routes noted about it
REQUEST_ID = "assay.request_id"
NOTES = "assay.notes"
#: the ASGI scope key of the request's Stopwatch, when its route keeps one (for its trace)
STOPWATCH = "assay.stopwatch"
# An id from the client is kept only when it cannot forge a log line or a header.
_SANE_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def request_id_of(request: Request) -> str | None:
    found: str | None = request.scope.get(REQUEST_ID)
    return found


def note(request: Request, **fields: Any) -> None:
    """Add fields to the request's log line (later values win; ``job_ids`` accumulate)."""
    notes: dict[str, Any] | None = request.scope.get(NOTES)
    if notes is None:
        return
    job_ids = fields.pop("job_ids", None)
    if job_ids:
        notes.setdefault("job_ids", []).extend(job_ids)
    notes.update(fields)


class Observe:
    """ASGI middleware, outermost: it sees every request, those the bounds below refuse too."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, traces: Traces | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.traces = traces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _given_id(scope) or new_uuid().hex
        scope[REQUEST_ID] = request_id
        notes: dict[str, Any] = {}
        scope[NOTES] = notes
        status = 0
        sent = 0
        done = False

        def finish(code: int) -> None:
            nonlocal done
            if done:
                return
            done = True
            route = _route_of(scope)
            ended = time.perf_counter()
            seconds = ended - started
            self.metrics.observe_request(scope["method"], route, code, seconds, sent)
            _log(scope, request_id, route, code, seconds, sent, notes)
            if self.traces is not None:
                self.traces.record(scope, started, ended, code, route, request_id, notes)

        async def observed_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                if not message.get("more_body", False):
                    # counted before the last bytes leave: a client that reads its answer
                    # and then scrapes /metrics always finds its request counted
                    finish(status)
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except BaseException:
            finish(500 if status == 0 else status)
            raise
        # a client that left mid-answer: the answer never ended (499, nginx's "client closed")
        finish(status if status else 499)


def _given_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SANE_ID.fullmatch(text) else None
    return None


def _route_of(scope: Scope) -> str:
    """The route's template (``/api/v1/ai/jobs/{job_id}``), never the raw path: one series per
    route, whatever ids clients send. Paths no route matched share one label."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def _log(
    scope: Scope,
    request_id: str,
    route: str,
    status: int,
    seconds: float,
    sent: int,
    notes: dict[str, Any],
) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    fields = {
        "event": "request", "request_id": request_id, "method": scope["method"],
        "route": route, "path": scope.get("path", ""), "status": status,
        "duration_ms": round(seconds * 1000, 2), "bytes": sent,
        "client": client[0] if client else None, **notes,
    }  # fmt: skip
    logger.info("%s %s %d %.1f ms", scope["method"], scope.get("path", ""), status,
                seconds * 1000, extra={"fields": fields})  # fmt: skip
