"""OpenTelemetry traces from a real `assay serve`, received by a tiny OTLP/HTTP collector in
this test: a query's request continues the caller's trace, with a span per stage (compile,
job, engine, result) at its real times; no span carries a key or the query's values; the last
spans leave when the server stops; and tracing is off, the SDK not even imported, unless
``otel_endpoint`` is set, and then needs the ``otel`` extra."""

from __future__ import annotations

import builtins
import gzip
import itertools
import json
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from assay.config import Settings
from assay.errors import ConfigError
from assay.server.app import create_app
from assay.server.traces import open_traces
from tests.server.conftest import MODEL_ID, SLOW_QUERY, Server, make_home

RUN = "/api/v1/query/run"
SERVER_KIND = 2  # opentelemetry.proto.trace.v1.Span.SPAN_KIND_SERVER
# (no job.insert: on a store of this process alone the job's row is written while its
# engine work starts, off the request's path)
QUERY_STAGES = ["request.auth", "request.parse", "compile", "job.queue", "engine.run",
                "result.record", "result.wake", "result.answer"]  # fmt: skip


@dataclass(frozen=True)
class Got:
    """One span as the collector received it."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    service: str


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


class Collector:
    """An OTLP/HTTP receiver on a free loopback port: what an OpenTelemetry collector gets."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self._exports: list[ExportTraceServiceRequest] = []
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                export = ExportTraceServiceRequest()
                export.ParseFromString(body)
                with collector._lock:
                    collector.paths.append(self.path)
                    collector._exports.append(export)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._http.server_address[1])
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spans(self) -> list[Got]:
        with self._lock:
            exports = list(self._exports)
        found: list[Got] = []
        for export in exports:
            for resource_spans in export.resource_spans:
                resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                service = resource.get("service.name", "")
                for scope_spans in resource_spans.scope_spans:
                    for s in scope_spans.spans:
                        attributes = {a.key: _value(a.value) for a in s.attributes}
                        found.append(Got(s.name, s.trace_id.hex(), s.span_id.hex(),
                                         s.parent_span_id.hex(), s.kind, s.start_time_unix_nano,
                                         s.end_time_unix_nano, attributes, service))  # fmt: skip
        return found

    def trace(self, trace_id: str, *, until: Callable[[list[Got]], bool]) -> list[Got]:
        """The spans of one trace, once ``until`` holds for them (10 s at most)."""
        deadline = time.monotonic() + 10
        while True:
            spans = [s for s in self.spans() if s.trace_id == trace_id]
            if until(spans) or time.monotonic() > deadline:
                return spans
            time.sleep(0.05)

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


def has_root(spans: list[Got]) -> bool:
    return any(s.kind == SERVER_KIND for s in spans)


def root_of(spans: list[Got]) -> Got:
    roots = [s for s in spans if s.kind == SERVER_KIND]
    assert len(roots) == 1, spans
    return roots[0]


def children_of(root: Got, spans: list[Got]) -> list[Got]:
    """The root's children, in the order they ended (the stages run one after another)."""
    return sorted((s for s in spans if s.parent_id == root.span_id),
                  key=lambda s: (s.end_ns, s.start_ns))  # fmt: skip


def caller_context() -> tuple[str, str, str]:
    """A caller's trace id, span id and the W3C ``traceparent`` header naming them (sampled)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    found = Collector()
    yield found
    found.close()


@pytest.fixture(scope="module")
def traced(
    tmp_path_factory: pytest.TempPathFactory, tpch_path: Path, collector: Collector
) -> Iterator[Server]:
    """A server tracing to the collector, its batches sent every 100 ms."""
    env = {"ASSAY_OTEL_ENDPOINT": collector.url, "ASSAY_OTEL_SERVICE_NAME": "assay-under-test",
           "OTEL_BSP_SCHEDULE_DELAY": "100", "ASSAY_RUN_WAIT_SECONDS": "2"}  # fmt: skip
    server = Server(make_home(tmp_path_factory.mktemp("traced")), tpch_path, env=env).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def traced_key(traced: Server) -> str:
    return traced.key("--org")


def server_timing_ms(response: httpx.Response) -> dict[str, float]:
    stages = {}
    for part in response.headers["server-timing"].split(","):
        name, _, duration = part.strip().partition(";dur=")
        stages[name] = float(duration)
    return stages


def test_a_query_continues_the_callers_trace_stage_by_stage(
    traced: Server, traced_key: str, collector: Collector
) -> None:
    trace_id, caller_span, traceparent = caller_context()
    value = f"value-{uuid.uuid4().hex}"  # a value filtered on: no span may carry it
    query = {"modelId": MODEL_ID, "join_paths_from_topic_name": "orders",
             "fields": ["orders.o_orderpriority", "orders.count"],
             "filters": {"orders.o_orderpriority": {"type": "string", "kind": "EQUALS",
                                                    "values": [value]}}}  # fmt: skip
    answer = httpx.post(f"{traced.url}{RUN}", json={"query": query}, timeout=30,
                        headers={"Authorization": f"Bearer {traced_key}",
                                 "traceparent": traceparent})  # fmt: skip
    assert answer.status_code == 200, answer.text
    job_id = next(iter(json.loads(answer.text.splitlines()[0])["jobs_submitted"]))
    spans = collector.trace(trace_id, until=lambda got: len(got) >= 1 + len(QUERY_STAGES))

    root = root_of(spans)
    assert root.name == "POST /api/v1/query/run"
    assert root.parent_id == caller_span  # the caller's trace goes on through Assay
    assert root.service == "assay-under-test"
    assert root.attributes["assay.request_id"] == answer.headers["x-request-id"]
    assert root.attributes["http.request.method"] == "POST"
    assert root.attributes["http.route"] == RUN
    assert root.attributes["http.response.status_code"] == 200
    assert root.attributes["assay.job_ids"] == [job_id]
    assert root.attributes["assay.model_id"] == MODEL_ID
    assert root.attributes["assay.user_id"]

    children = children_of(root, spans)
    # request -> compile -> job -> engine -> result
    assert [c.name for c in children] == QUERY_STAGES
    assert len(spans) == 1 + len(QUERY_STAGES)
    timing = server_timing_ms(answer)
    for child in children:
        assert root.start_ns <= child.start_ns <= child.end_ns <= root.end_ns, child
        # the span is the stage Server-Timing reported, at its real length
        length_ms = (child.end_ns - child.start_ns) / 1e6
        assert abs(length_ms - timing[child.attributes["assay.stage"]]) < 0.02, child
    for earlier, later in itertools.pairwise(children):
        assert earlier.end_ns <= later.start_ns + 1000, (earlier, later)  # one after another
    assert all(c.end_ns <= root.end_ns for c in children)
    assert abs(root.start_ns - time.time_ns()) < 60e9  # epoch times, not the process' clock

    said = json.dumps([(s.name, s.attributes) for s in spans])
    assert value not in said and traced_key not in said and "orders.count" not in said
    assert set(collector.paths) == {"/v1/traces"}


def test_stages_after_the_answer_are_not_the_requests(
    traced: Server, traced_key: str, collector: Collector
) -> None:
    """A job that outlives ``run_wait_seconds``: its request's trace ends with the answer;
    the engine's run and the result's record happen after it and are not in it."""
    trace_id, _, traceparent = caller_context()
    with httpx.Client(base_url=traced.url, timeout=30,
                      headers={"Authorization": f"Bearer {traced_key}"}) as api:  # fmt: skip
        answer = api.post(RUN, json={"query": SLOW_QUERY}, headers={"traceparent": traceparent})
        assert answer.status_code == 200, answer.text
        job_id = next(iter(json.loads(answer.text.splitlines()[0])["jobs_submitted"]))
        spans = collector.trace(trace_id, until=has_root)
        cancelled = api.post("/api/v1/query/cancel", json={"job_ids": [job_id]})
        assert cancelled.status_code == 200, cancelled.text
    root = root_of(spans)
    assert root.attributes["assay.job_ids"] == [job_id]
    assert [c.name for c in children_of(root, spans)] == [
        "request.auth", "request.parse", "compile", "job.queue", "result.wake", "result.answer",
    ]  # fmt: skip


def test_a_request_without_a_valid_traceparent_starts_a_trace(
    traced: Server, collector: Collector
) -> None:
    answer = httpx.get(f"{traced.url}/health", headers={"traceparent": "00-not-a-trace-01"})
    assert answer.status_code == 200
    request_id = answer.headers["x-request-id"]
    deadline = time.monotonic() + 10
    while not (mine := [s for s in collector.spans()
                        if s.attributes.get("assay.request_id") == request_id]):  # fmt: skip
        assert time.monotonic() < deadline, "the request's span never arrived"
        time.sleep(0.05)
    (span,) = mine
    assert span.name == "GET /health"
    assert span.parent_id == "" and int(span.trace_id, 16) != 0
    assert [s for s in collector.spans() if s.parent_id == span.span_id] == []  # no stopwatch


def test_the_last_spans_leave_when_the_server_stops(
    tmp_path: Path, tpch_path: Path, collector: Collector
) -> None:
    """Batches every minute: only the shutdown of the server can have sent this span."""
    env = {"ASSAY_OTEL_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "60000"}
    server = Server(make_home(tmp_path), tpch_path, env=env).start()
    trace_id, _, traceparent = caller_context()
    try:
        assert httpx.get(f"{server.url}/health", headers={"traceparent": traceparent}).is_success
        time.sleep(0.3)
        assert collector.trace(trace_id, until=lambda got: True) == []  # still in the batch
    finally:
        server.stop()
    (span,) = collector.trace(trace_id, until=has_root)
    assert span.name == "GET /health" and span.service == "assay"


# ---------------------------------------------------------------------- off, and misconfigured

_PROBE = """
import json, sys
from assay.config import load_settings
from assay.server.app import create_app
create_app(load_settings(environ=json.loads(sys.argv[1])))
print(json.dumps([m for m in json.loads(sys.argv[2]) if m in sys.modules]))
"""
SDK = ["opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http"]


def _sdk_loaded(tmp_path: Path, **env: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps({"ASSAY_HOME": str(tmp_path), **env}),
         json.dumps(SDK)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_tracing_is_off_by_default_and_the_sdk_not_even_imported(tmp_path: Path) -> None:
    assert _sdk_loaded(tmp_path / "off") == []
    # the probe can fail: with an endpoint, the same app loads the SDK and the exporter
    assert _sdk_loaded(tmp_path / "on", ASSAY_OTEL_ENDPOINT="http://127.0.0.1:9") == SDK


def test_tracing_without_the_extra_stops_start_up_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def without_the_extra(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter")):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_the_extra)
    settings = Settings(home=tmp_path, otel_endpoint="http://127.0.0.1:4318")
    with pytest.raises(ConfigError, match=r"otel_endpoint.*pip install 'assay\[otel\]'"):
        create_app(settings)
    assert not (tmp_path / "assay.sqlite").exists()  # refused before the job store opened


@pytest.mark.parametrize("endpoint", ["127.0.0.1:4318", "grpc://collector:4317", "http://:4318",
                                      "http://collector:port"])  # fmt: skip
def test_an_endpoint_that_is_not_an_http_address_is_refused(endpoint: str) -> None:
    with pytest.raises(ConfigError, match=r"otel_endpoint.*http://127\.0\.0\.1:4318"):
        open_traces(Settings(otel_endpoint=endpoint))


def test_an_empty_service_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="otel_service_name"):
        open_traces(Settings(otel_endpoint="http://127.0.0.1:4318", otel_service_name=" "))
