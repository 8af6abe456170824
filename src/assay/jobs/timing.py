"""How long each stage of one request took, for its ``Server-Timing`` header: where a query's
time goes between the client and the engine, visible to anyone (a browser's network panel,
bench/request_path.py) without a profiler. Durations only, never what a request was about.

Each stage keeps when it began and ended (``time.perf_counter`` seconds), not only how long
it took, so that a trace (server/traces.py) can place it on the request's timeline."""

from __future__ import annotations

import time


class Stopwatch:
    """Marks along one request's path. The stages happen one after another (the request's
    own, then a worker's, then the request's again), so one list suffices across threads."""

    __slots__ = ("_last", "stages")

    def __init__(self, start: float | None = None) -> None:
        self._last = time.perf_counter() if start is None else start
        #: (stage, began, ended), in perf_counter seconds, in the order they ended
        self.stages: list[tuple[str, float, float]] = []

    def mark(self, stage: str) -> None:
        """The time since the previous mark (or the start) was spent in ``stage``."""
        now = time.perf_counter()
        self.stages.append((stage, self._last, now))
        self._last = now

    def header(self) -> str:
        return ", ".join(
            f"{name};dur={(ended - began) * 1000:.2f}" for name, began, ended in self.stages
        )
