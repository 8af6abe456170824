"""Fuzz target: Omni's date grammar (``assay.semantic.dates``) on arbitrary text.

Input: up to three lines, ``expression``, ``duration``, ``clock`` (ISO; a clock outside
1970-2100 or unreadable means the fixed ``NOW``). Every public function may refuse text with
``DateGrammarError`` only; what it accepts must be a span that starts before it ends.
"""

from __future__ import annotations

from datetime import datetime

from assay.semantic.dates import (
    UNITS,
    DateGrammarError,
    Span,
    as_date_or_datetime,
    interval_span,
    parse_duration,
    parse_span,
    span_after,
)
from tests.fuzz.harness import CLOCKS, NOW, Target, fuzz, text

_WORDS = (
    "today", "yesterday", "tomorrow", "now", "this", "last", "next", "current", "previous",
    "ago", "from now", "complete", "fiscal year", "fiscal quarter", "fy", "fy ", " q", "q1",
    "q4", "q5", "s", " ", "-", "/", ":", ".", "t", "T", "2024", "0000", "9999", "10000", "00",
    "01", "02-29", "12-31", "13", "23:59:59", ".999999", "99999999999999999999", "\u0662",
)  # fmt: skip


def _clock(line: str) -> datetime:
    try:
        clock = datetime.fromisoformat(line.strip())
    except ValueError:
        return NOW
    if clock.tzinfo is not None or not CLOCKS[1] <= clock <= CLOCKS[2]:
        return NOW
    return clock


def _span(expression: str, now: datetime) -> Span | None:
    try:
        span = parse_span(expression, now)
    except DateGrammarError:
        return None
    assert span.start < span.end, f"empty span {span} for {expression!r}"
    as_date_or_datetime(span.start)
    as_date_or_datetime(span.end)
    return span


def check(data: bytes) -> None:
    expression, _, rest = text(data).partition("\n")
    duration, _, clock = rest.partition("\n")
    now = _clock(clock)
    start = _span(expression, now)
    _span(duration, now)
    try:
        n, unit = parse_duration(duration)
    except DateGrammarError:
        return
    assert n >= 0 and unit in UNITS, (n, unit)
    try:
        window = interval_span(expression, duration, now)
    except DateGrammarError:
        window = None
    if window is not None:
        assert window.start <= window.end, f"interval ends before it starts: {window}"
    if start is not None:
        try:
            after = span_after(start, duration)
        except DateGrammarError:
            return
        assert after.start <= after.end, f"span_after ends before it starts: {after}"


TARGET = Target(
    name="dates",
    check=check,
    tokens=(*_WORDS, *UNITS, *(f"{u}s" for u in UNITS)),
    max_len=256,
)


def main() -> None:
    fuzz("tests.fuzz.dates", TARGET.instrument)


if __name__ == "__main__":
    main()
