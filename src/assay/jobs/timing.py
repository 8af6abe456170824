"""How long each stage of one request took, for its ``Server-Timing`` header: where a query's
time goes between the client and the engine, visible to anyone (a browser's network panel,
bench/request_path.py) without a profiler. Durations only, never what a request was about."""

from __future__ import annotations

import time


class Stopwatch:
    """Marks along one request's path. The stages happen one after another (the request's
    own, then a worker's, then the request's again), so one list suffices across threads."""

    __slots__ = ("_last", "stages")

    def __init__(self, start: float | None = None) -> None:
        self._last = time.perf_counter() if start is None else start
        self.stages: list[tuple[str, float]] = []

    def mark(self, stage: str) -> None:
        """The time since the previous mark (or the start) was spent in ``stage``."""
        now = time.perf_counter()
        self.stages.append((stage, (now - self._last) * 1000))
        self._last = now

    def header(self) -> str:
        return ", ".join(f"{name};dur={ms:.2f}" for name, ms in self.stages)
