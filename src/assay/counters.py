"""Counts of what the server did, kept by the layer that does it (the job runner counts jobs,
the store its statements, the AI runner its answers) without knowing how they are exported:
the server publishes them in Prometheus' format (``server/metrics.py``). The catalogue below
is the one list of these counters, with their help text and labels; docs/operations.md
describes them for operators.

A count is exact: every ``add`` is taken under a lock, because a scrape that says 12 jobs
ended when 13 did would make the metric a guess (and a check of it flaky)."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Counted:
    """One counter of the catalogue: its Prometheus name (``_total`` included), help text
    and label names."""

    name: str
    help: str
    labels: tuple[str, ...] = ()


JOBS_SUBMITTED = Counted(
    "assay_jobs_submitted_total", "Query jobs created, by engine.", ("engine",)
)
JOBS_ENDED = Counted(
    "assay_jobs_ended_total",
    "Query jobs that reached a terminal state (COMPLETE, FAILED, PLANNED), by state, engine "
    "and error type (empty unless FAILED).",
    ("state", "engine", "error_type"),
)
CACHE_LOOKUPS = Counted(
    "assay_cache_lookups_total",
    "Result cache lookups of query jobs that may use the cache, by outcome (hit or miss).",
    ("outcome",),
)
RESULT_BYTES = Counted(
    "assay_result_bytes_total", "Bytes of query results written (Arrow IPC), by engine.",
    ("engine",),
)  # fmt: skip
RESULT_ROWS = Counted(
    "assay_result_rows_total", "Rows of query results written, by engine.", ("engine",)
)
AI_JOBS_ENDED = Counted(
    "assay_ai_jobs_ended_total",
    "AI jobs that ended, by outcome (COMPLETE, FAILED, CANCELLED) and planner.",
    ("outcome", "planner"),
)
RATE_LIMITED = Counted(
    "assay_rate_limited_total", "Requests refused because their key spent its rate limit."
)
STORE_ROUND_TRIPS = Counted(
    "assay_store_round_trips_total",
    "Statements sent to the job store (on PostgreSQL, each is a network round trip), by store.",
    ("store",),
)

CATALOGUE: tuple[Counted, ...] = (
    JOBS_SUBMITTED, JOBS_ENDED, CACHE_LOOKUPS, RESULT_BYTES, RESULT_ROWS, AI_JOBS_ENDED,
    RATE_LIMITED, STORE_ROUND_TRIPS,
)  # fmt: skip


class Counters:
    """The counts of one server process (one per job store, which every layer reaches)."""

    def __init__(self) -> None:
        self._values: dict[tuple[Counted, tuple[str, ...]], float] = {}
        self._lock = threading.Lock()

    def add(self, counted: Counted, *labels: str, amount: float = 1) -> None:
        if len(labels) != len(counted.labels):  # a caller's bug: caught by any test of it
            raise ValueError(f"{counted.name} takes labels {counted.labels}, got {labels}")
        key = (counted, labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def value(self, counted: Counted, *labels: str) -> float:
        with self._lock:
            return self._values.get((counted, labels), 0)

    def snapshot(self) -> dict[Counted, dict[tuple[str, ...], float]]:
        """Every counter of the catalogue (those never added to, empty), as of now."""
        taken: dict[Counted, dict[tuple[str, ...], float]] = {c: {} for c in CATALOGUE}
        with self._lock:
            for (counted, labels), value in self._values.items():
                taken.setdefault(counted, {})[labels] = value
        return taken
