"""OpenTelemetry traces, when ``otel_endpoint`` is set (the ``otel`` extra): a span for each
request and, under a query's request, a span for each stage of its Stopwatch, so that a
caller's own trace shows where a query's time went: request -> compile -> job -> engine ->
result.

The spans are made once a request has finished, from times already measured (Observe's start
and end, the Stopwatch's marks), not opened and closed along the way: the request path holds
no tracing code beyond handing over a few values, and with tracing off the SDK is never
imported. Stages a worker marks after the request has answered (a job that outlived
``run_wait_seconds``) are not the request's and are left out.

A span carries the request's route template, status and ids (request, user, jobs, model),
never a header, a query string, a body, the query or its values: what a trace may show is
what the log line shows, less the raw path and the client's address."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from assay import __version__
from assay.config import Settings
from assay.engines.urls import redact
from assay.errors import ConfigError
from assay.jobs.timing import Stopwatch
from assay.server.observe import STOPWATCH

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.util.types import AttributeValue
    from starlette.types import Scope

logger = logging.getLogger(__name__)
INSTALL_HINT = "pip install 'assay[otel]'"
TRACES_PATH = "/v1/traces"
#: a Stopwatch stage -> its span's name; in order they read request -> compile -> job ->
#: engine -> result ("insert" only where the job's row is written on the request's path: a
#: shared store, or every worker busy)
SPAN_NAMES = {
    "auth": "request.auth",
    "parse": "request.parse",
    "compile": "compile",
    "insert": "job.insert",
    "queue": "job.queue",
    "run": "engine.run",
    "record": "result.record",
    "wake": "result.wake",
    "answer": "result.answer",
}
# The W3C trace context of a caller's trace: the only headers a trace reads.
_CONTEXT_HEADERS = (b"traceparent", b"tracestate")


@dataclass(frozen=True, slots=True)
class _Finished:
    """What a finished request's trace needs, copied on the request's side."""

    name: str
    status: int
    attributes: dict[str, AttributeValue]
    carrier: dict[str, str]
    started: float
    ended: float
    stages: list[tuple[str, float, float]]
    offset_ns: int  # perf_counter ns + offset_ns = epoch ns

    def epoch_ns(self, at: float) -> int:
        return self.offset_ns + round(at * 1e9)


class Traces:
    """Turns finished requests into spans for one TracerProvider (not the global one, so
    FastAPI's own instrumentation, which follows the global provider, stays off).

    A span costs the SDK tens of microseconds, and a request is finished just before its
    last bytes are sent: so the request only copies what its trace needs and queues it, and
    a thread of its own makes the spans. When that thread falls ``QUEUE_REQUESTS`` behind,
    requests go untraced (with a warning) rather than holding memory or the event loop."""

    QUEUE_REQUESTS = 10_000

    def __init__(self, provider: TracerProvider) -> None:
        # Imported here, not at the top: this module is loaded even when tracing is off.
        from opentelemetry.trace import SpanKind, StatusCode, set_span_in_context  # noqa: PLC0415
        from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
            TraceContextTextMapPropagator,
        )

        self._provider = provider
        self._tracer = provider.get_tracer("assay", __version__)
        self._propagator = TraceContextTextMapPropagator()
        self._within = set_span_in_context
        self._server, self._internal = SpanKind.SERVER, SpanKind.INTERNAL
        self._error = StatusCode.ERROR
        self._pending: queue.Queue[_Finished | None] = queue.Queue(self.QUEUE_REQUESTS)
        self._dropped = 0
        self._thread = threading.Thread(target=self._make_spans, name="assay-traces",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def record(self, scope: Scope, started: float, ended: float, status: int, route: str,
               request_id: str, notes: Mapping[str, Any]) -> None:  # fmt: skip
        """Queue a finished request's trace (``started``, ``ended``: perf_counter seconds).
        Never raises: a trace that cannot be made must not cost the client its answer."""
        try:
            self._queue(scope, started, ended, status, route, request_id, notes)
        except Exception:
            logger.exception("request %s: its trace could not be queued", request_id)

    def _queue(self, scope: Scope, started: float, ended: float, status: int, route: str,
               request_id: str, notes: Mapping[str, Any]) -> None:  # fmt: skip
        method = scope["method"]
        matched = route != "unmatched"
        watch = scope.get(STOPWATCH)
        # stages a worker marks after the answer belong to a job that outlived the request
        stages = [s for s in watch.stages if s[2] <= ended] if isinstance(watch, Stopwatch) else []
        finished = _Finished(
            f"{method} {route}" if matched else method,
            status,
            _request_attributes(method, route if matched else None, status, request_id, notes),
            _trace_context(scope),
            started,
            ended,
            stages,
            # one offset per request, read now: the wall clock's adjustments reach the spans
            time.time_ns() - time.perf_counter_ns(),
        )
        try:
            self._pending.put_nowait(finished)
        except queue.Full:
            self._dropped += 1
            if self._dropped % 1000 == 1:
                logger.warning("traces: %d request(s) left untraced so far; making spans falls "
                               "behind the requests", self._dropped)  # fmt: skip

    def _make_spans(self) -> None:
        while (finished := self._pending.get()) is not None:
            try:
                self._spans_of(finished)
            except Exception:  # one request's trace must not end the others'
                logger.exception("a request's trace could not be made")

    def _spans_of(self, finished: _Finished) -> None:
        context = self._propagator.extract(finished.carrier) if finished.carrier else None
        root = self._tracer.start_span(
            finished.name, context=context, kind=self._server,
            attributes=finished.attributes, start_time=finished.epoch_ns(finished.started),
        )  # fmt: skip
        if finished.status >= 500:
            root.set_status(self._error)  # a 4xx is the client's error (HTTP semconv)
        within = self._within(root)
        for stage, began, ended in finished.stages:
            child = self._tracer.start_span(
                SPAN_NAMES.get(stage, stage), context=within, kind=self._internal,
                attributes={"assay.stage": stage},
                start_time=finished.epoch_ns(max(began, finished.started)),
            )  # fmt: skip
            child.end(end_time=finished.epoch_ns(ended))
        root.end(end_time=finished.epoch_ns(finished.ended))

    def shutdown(self) -> None:
        """Make the spans of the requests already finished, send every span still queued,
        then stop (when the server stops)."""
        self._pending.put(None)
        self._thread.join(timeout=10)
        self._provider.shutdown()


def _trace_context(scope: Scope) -> dict[str, str]:
    """The caller's W3C trace context (``traceparent``, ``tracestate``), so that the
    request's span continues the caller's trace; without a valid one it starts a trace."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name in _CONTEXT_HEADERS
    }


def _request_attributes(
    method: str, route: str | None, status: int, request_id: str, notes: Mapping[str, Any]
) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        "http.request.method": method,
        "http.response.status_code": status,
        "assay.request_id": request_id,
    }
    if route is not None:
        attributes["http.route"] = route
    for name in ("user_id", "model_id"):
        if notes.get(name):
            attributes[f"assay.{name}"] = str(notes[name])
    if notes.get("job_ids"):
        attributes["assay.job_ids"] = [str(job_id) for job_id in notes["job_ids"]]
    return attributes


def open_traces(settings: Settings) -> Traces | None:
    """The server's tracing: none when ``otel_endpoint`` is empty (the default); otherwise
    spans batched to ``{otel_endpoint}/v1/traces`` over OTLP/HTTP. The exporter's standard
    ``OTEL_EXPORTER_OTLP_*`` and ``OTEL_BSP_*`` variables (headers, certificates, timeouts,
    batching) apply as the SDK documents them."""
    endpoint = settings.otel_endpoint.strip()
    if not endpoint:
        return None
    url = _traces_url(endpoint)
    if not settings.otel_service_name.strip():
        raise ConfigError("Setting 'otel_service_name' must not be empty (default: assay)")
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigError(
            f"Setting 'otel_endpoint' turns on OpenTelemetry traces, which need the otel "
            f"extra: {INSTALL_HINT} (missing: {exc.name or exc})"
        ) from exc
    resource = Resource.create(
        {"service.name": settings.otel_service_name.strip(), "service.version": __version__}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    logger.info("traces go to %s as service %s", redact(url), settings.otel_service_name)
    return Traces(provider)


def _traces_url(endpoint: str) -> str:
    """The collector's traces address: the base URL plus /v1/traces (a URL that already
    names it is taken as it is)."""
    try:
        parts = urlsplit(endpoint)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        usable = False
    if not usable:
        raise ConfigError(
            f"Setting 'otel_endpoint' must be an OTLP/HTTP collector's http:// or https:// "
            f"address, such as http://127.0.0.1:4318, not {redact(endpoint)!r}"
        )
    base = endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH
