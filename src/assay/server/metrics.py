"""``/metrics``: the server's counts in Prometheus' text format, made by prometheus-client.

Three sources: the requests (counted by ``observe.Observe``), the counts the lower layers keep
(``assay.counters``: jobs, cache, results, AI answers, rate-limit refusals, store round trips),
and gauges read at scrape time (queue depth, busy workers, open long-polls, running AI jobs),
plus the process' own (memory, CPU, open files). Each server has its own registry, so two apps
in one process (tests) never mix their counts.

Who may scrape: ``metrics = "auto"`` (the default) serves it to anyone when the server listens
on loopback only, and otherwise only with ``metrics_token``; ``"on"`` serves it to anyone (a
network the operator closed); ``"off"`` answers 404. With ``metrics_token`` set, a scrape must
send it as a bearer token, wherever the server listens."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from assay import __version__
from assay.config import Settings
from assay.counters import Counters
from assay.errors import ConfigError, did_you_mean

MODES = ("auto", "on", "off")
#: what ``generate_latest`` writes: Prometheus' text format 0.0.4
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# Seconds: from a cached answer (about 1 ms) to a long-poll held for its whole window.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0, 60.0)  # fmt: skip


class Metrics:
    """One server's registry: request metrics it updates, and collectors read on a scrape."""

    def __init__(self, counters: Counters) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]
        # (a `_created` series per counter would double a scrape for nothing)
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "assay_http_requests", "HTTP requests answered, by method, route and status.",
            ("method", "route", "status"), registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "assay_http_request_duration_seconds",
            "Time from a request's arrival to its answer's last byte, by method and route.",
            ("method", "route"), buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.sent = Counter(
            "assay_http_response_bytes", "Bytes of answer bodies sent, by route.", ("route",),
            registry=self.registry,
        )  # fmt: skip
        self.registry.register(_Counted(counters))
        self._gauges = _Gauges()
        self.registry.register(self._gauges)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def observe_request(
        self, method: str, route: str, status: int, seconds: float, sent: int
    ) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        if sent:
            self.sent.labels(route).inc(sent)

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """A value read at each scrape (the server's state: queues, workers, waiters)."""
        self._gauges.add(name, help_text, read)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Counted(Collector):
    """The lower layers' counts, as Prometheus counters."""

    def __init__(self, counters: Counters) -> None:
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        for counted, values in self.counters.snapshot().items():
            family = CounterMetricFamily(counted.name, counted.help, labels=counted.labels)
            for labels, value in sorted(values.items()):
                family.add_metric(list(labels), value)
            yield family


class _Gauges(Collector):
    """Values read at each scrape, and the version as ``assay_info``."""

    def __init__(self) -> None:
        self._read: dict[str, tuple[str, Callable[[], float]]] = {}

    def add(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self._read[name] = (help_text, read)

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("assay_info", "Assay's version, as a label; always 1.",
                                 labels=["version"])  # fmt: skip
        info.add_metric([__version__], 1)
        yield info
        for name, (help_text, read) in self._read.items():
            yield GaugeMetricFamily(name, help_text, value=read())


class ScrapePolicy:
    """Whether a scrape may read the metrics: ``None`` when it may, else the refusal's HTTP
    status (404 when metrics are off, 401 when a token is needed and not given)."""

    def __init__(self, settings: Settings) -> None:
        mode = settings.metrics.strip().lower()
        if mode not in MODES:
            raise ConfigError(f"Setting metrics must be one of {', '.join(MODES)}, not "
                              f"{settings.metrics!r}.{did_you_mean(mode, MODES)}")  # fmt: skip
        self.token = settings.metrics_token or None
        self.open = mode == "on" or (mode == "auto" and _loopback(settings.host))
        self.served = mode != "off" and (self.open or self.token is not None)

    def refusal(self, headers: Mapping[str, str]) -> int | None:
        if not self.served:
            return 404
        if self.token is None:
            return None
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), self.token.encode()
        ):
            return 401
        return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False
