"""Omni's date grammar (``assay.semantic.dates``), resolved against a fixed clock.

``NOW`` is Monday 2026-11-23 10:30: every relative expression below is checked against it, so
these tests never depend on the day they run.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from assay.semantic.dates import (
    UNITS,
    DateGrammarError,
    Span,
    as_date_or_datetime,
    interval_span,
    parse_duration,
    parse_span,
    shift,
    span_after,
    truncate,
)

NOW = datetime(2026, 11, 23, 10, 30, 15, 123456)  # a Monday, mid-morning, with sub-seconds
D = datetime


def span(text: str, now: datetime = NOW) -> tuple[datetime, datetime]:
    s = parse_span(text, now)
    return s.start, s.end


# ---------------------------------------------------------------- absolute dates


@pytest.mark.parametrize(
    ("text", "start", "end", "has_time"),
    [
        ("2024", D(2024, 1, 1), D(2025, 1, 1), False),
        ("2024-03", D(2024, 3, 1), D(2024, 4, 1), False),
        ("2024-12", D(2024, 12, 1), D(2025, 1, 1), False),
        ("2024-02", D(2024, 2, 1), D(2024, 3, 1), False),
        ("2024-03-14", D(2024, 3, 14), D(2024, 3, 15), False),
        ("2024-12-31", D(2024, 12, 31), D(2025, 1, 1), False),
        ("2024-02-29", D(2024, 2, 29), D(2024, 3, 1), False),
        ("2024-03-14 15", D(2024, 3, 14, 15), D(2024, 3, 14, 16), True),
        ("2024-03-14 15:09", D(2024, 3, 14, 15, 9), D(2024, 3, 14, 15, 10), True),
        ("2024-03-14 15:09:26", D(2024, 3, 14, 15, 9, 26), D(2024, 3, 14, 15, 9, 27), True),
        ("2024-12-31 23:59:59", D(2024, 12, 31, 23, 59, 59), D(2025, 1, 1), True),
        ("2024-03-14 00:00", D(2024, 3, 14), D(2024, 3, 14, 0, 1), True),
        # Single-digit parts and slashes are read too.
        ("2024-3-4", D(2024, 3, 4), D(2024, 3, 5), False),
        ("2024/03/04", D(2024, 3, 4), D(2024, 3, 5), False),
        ("2024-3-4 7", D(2024, 3, 4, 7), D(2024, 3, 4, 8), True),
        # Surrounding and repeated white space is ignored.
        ("  2024-03-14   15:09  ", D(2024, 3, 14, 15, 9), D(2024, 3, 14, 15, 10), True),
    ],
)
def test_absolute_dates_span_their_precision(
    text: str, start: datetime, end: datetime, has_time: bool
) -> None:
    assert parse_span(text, NOW) == Span(start, end, has_time=has_time)


def test_absolute_dates_ignore_now() -> None:
    assert parse_span("2024-03-14", NOW) == parse_span("2024-03-14", D(1999, 1, 1))


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2024 Q1", D(2024, 1, 1), D(2024, 4, 1)),
        ("2024 Q2", D(2024, 4, 1), D(2024, 7, 1)),
        ("2024 Q3", D(2024, 7, 1), D(2024, 10, 1)),
        ("2024 Q4", D(2024, 10, 1), D(2025, 1, 1)),
        ("2024-Q3", D(2024, 7, 1), D(2024, 10, 1)),
        ("2024q3", D(2024, 7, 1), D(2024, 10, 1)),
        ("2024 q3", D(2024, 7, 1), D(2024, 10, 1)),
        ("FY2024", D(2024, 1, 1), D(2025, 1, 1)),
        ("fy 2024", D(2024, 1, 1), D(2025, 1, 1)),
        ("FY 2012", D(2012, 1, 1), D(2013, 1, 1)),
    ],
)
def test_quarters_and_fiscal_years(text: str, start: datetime, end: datetime) -> None:
    s = parse_span(text, NOW)
    assert (s.start, s.end) == (start, end)
    assert s.has_time is False


@pytest.mark.parametrize("text", ["2024 Q5", "2024 Q0", "FY24", "Q3 2024"])
def test_bad_quarters_and_fiscal_years(text: str) -> None:
    with pytest.raises(DateGrammarError):
        parse_span(text, NOW)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2024-13", "month must be in 1..12"),
        ("2024-02-30", "day is out of range for month"),
        ("2023-02-29", "day is out of range for month"),
        ("2024-03-14 24:00", "hour must be in 0..23"),
        ("2024-03-14 10:60", "minute must be in 0..59"),
        ("2024-03-14 10:00:60", "second must be in 0..59"),
    ],
)
def test_impossible_dates_raise_naming_the_text(text: str, reason: str) -> None:
    with pytest.raises(DateGrammarError) as info:
        parse_span(text, NOW)
    assert repr(text) in str(info.value)
    assert reason in str(info.value)


@pytest.mark.parametrize("text", ["2024-00", "2024-03-00", "2024-00-00", "0000"])
def test_zero_month_day_or_year_is_rejected(text: str) -> None:
    with pytest.raises(DateGrammarError):
        parse_span(text, NOW)


@pytest.mark.parametrize("text", ["2024-03-14T15:09:26", "2024-03-14T15:09", "2024-03-14T15"])
def test_iso_t_separator(text: str) -> None:
    assert parse_span(text, NOW).start == parse_span(text.replace("T", " "), NOW).start


# ---------------------------------------------------------------- today, this/last/next


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("today", D(2026, 11, 23), D(2026, 11, 24)),
        ("yesterday", D(2026, 11, 22), D(2026, 11, 23)),
        ("tomorrow", D(2026, 11, 24), D(2026, 11, 25)),
        ("TODAY", D(2026, 11, 23), D(2026, 11, 24)),
        (" Yesterday ", D(2026, 11, 22), D(2026, 11, 23)),
    ],
)
def test_today_yesterday_tomorrow(text: str, start: datetime, end: datetime) -> None:
    s = parse_span(text, NOW)
    assert (s.start, s.end, s.has_time) == (start, end, False)


def test_now_is_the_current_second() -> None:
    s = parse_span("now", NOW)
    assert (s.start, s.end, s.has_time) == (
        D(2026, 11, 23, 10, 30, 15),
        D(2026, 11, 23, 10, 30, 16),
        True,
    )


# Expected [start, end) of this/last/next <unit> at NOW (Monday 2026-11-23 10:30:15).
THIS_LAST_NEXT = {
    "second": (
        D(2026, 11, 23, 10, 30, 15), D(2026, 11, 23, 10, 30, 14), D(2026, 11, 23, 10, 30, 16)
    ),
    "minute": (D(2026, 11, 23, 10, 30), D(2026, 11, 23, 10, 29), D(2026, 11, 23, 10, 31)),
    "hour": (D(2026, 11, 23, 10), D(2026, 11, 23, 9), D(2026, 11, 23, 11)),
    "day": (D(2026, 11, 23), D(2026, 11, 22), D(2026, 11, 24)),
    "week": (D(2026, 11, 23), D(2026, 11, 16), D(2026, 11, 30)),
    "month": (D(2026, 11, 1), D(2026, 10, 1), D(2026, 12, 1)),
    "quarter": (D(2026, 10, 1), D(2026, 7, 1), D(2027, 1, 1)),
    "year": (D(2026, 1, 1), D(2025, 1, 1), D(2027, 1, 1)),
}  # fmt: skip


def test_every_unit_has_expectations() -> None:
    assert set(THIS_LAST_NEXT) == set(UNITS)


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize(("word", "index"), [("this", 0), ("last", 1), ("next", 2)])
def test_this_last_next_every_unit(unit: str, word: str, index: int) -> None:
    start = THIS_LAST_NEXT[unit][index]
    s = parse_span(f"{word} {unit}", NOW)
    assert s.start == start
    assert s.end == shift(start, unit, 1)
    assert s.has_time is (unit in ("hour", "minute", "second"))


@pytest.mark.parametrize(
    ("text", "same_as"),
    [
        ("current month", "this month"),
        ("previous month", "last month"),
        ("this months", "this month"),
        ("last fiscal year", "last year"),
        ("this fiscal quarter", "this quarter"),
        ("next fiscal quarter", "next quarter"),
        ("  LAST   Month ", "last month"),
    ],
)
def test_this_last_next_synonyms(text: str, same_as: str) -> None:
    assert parse_span(text, NOW) == parse_span(same_as, NOW)


def test_week_starts_on_monday_whatever_the_day() -> None:
    # Sunday 2026-11-29 still belongs to the week of Monday 2026-11-23.
    sunday = D(2026, 11, 29, 23, 59)
    assert span("this week", sunday) == (D(2026, 11, 23), D(2026, 11, 30))
    assert span("last week", sunday) == (D(2026, 11, 16), D(2026, 11, 23))
    # A Monday starts its own week.
    assert span("this week", D(2026, 11, 30)) == (D(2026, 11, 30), D(2026, 12, 7))


def test_week_crossing_a_year() -> None:
    # Thursday 2026-01-01: its week started on Monday 2025-12-29.
    assert span("this week", D(2026, 1, 1, 12)) == (D(2025, 12, 29), D(2026, 1, 5))
    assert span("last week", D(2026, 1, 1, 12)) == (D(2025, 12, 22), D(2025, 12, 29))


@pytest.mark.parametrize(
    ("now", "text", "start", "end"),
    [
        (D(2026, 1, 15), "last month", D(2025, 12, 1), D(2026, 1, 1)),
        (D(2026, 1, 31), "last month", D(2025, 12, 1), D(2026, 1, 1)),
        (D(2026, 12, 31), "next month", D(2027, 1, 1), D(2027, 2, 1)),
        (D(2026, 3, 31), "last month", D(2026, 2, 1), D(2026, 3, 1)),
        (D(2026, 2, 14), "last quarter", D(2025, 10, 1), D(2026, 1, 1)),
        (D(2026, 2, 14), "this quarter", D(2026, 1, 1), D(2026, 4, 1)),
        (D(2026, 3, 31), "this quarter", D(2026, 1, 1), D(2026, 4, 1)),
        (D(2026, 4, 1), "this quarter", D(2026, 4, 1), D(2026, 7, 1)),
        (D(2026, 11, 2), "next quarter", D(2027, 1, 1), D(2027, 4, 1)),
        (D(2026, 1, 1), "last year", D(2025, 1, 1), D(2026, 1, 1)),
        (D(2026, 1, 1), "yesterday", D(2025, 12, 31), D(2026, 1, 1)),
        (D(2026, 12, 31, 23, 59, 59), "tomorrow", D(2027, 1, 1), D(2027, 1, 2)),
        (D(2026, 1, 1, 0, 0, 30), "last minute", D(2025, 12, 31, 23, 59), D(2026, 1, 1)),
        (D(2026, 1, 1, 0, 30), "last hour", D(2025, 12, 31, 23), D(2026, 1, 1)),
    ],
)
def test_unit_edges(now: datetime, text: str, start: datetime, end: datetime) -> None:
    assert span(text, now) == (start, end)


# ---------------------------------------------------------------- N units ago / from now


@pytest.mark.parametrize(
    ("text", "start", "end", "has_time"),
    [
        # Without "complete": the *day* N units back (finer units keep their own precision).
        ("3 days ago", D(2026, 11, 20), D(2026, 11, 21), False),
        ("1 day ago", D(2026, 11, 22), D(2026, 11, 23), False),
        ("0 days ago", D(2026, 11, 23), D(2026, 11, 24), False),
        ("30 days ago", D(2026, 10, 24), D(2026, 10, 25), False),
        ("1 week ago", D(2026, 11, 16), D(2026, 11, 17), False),
        ("2 weeks ago", D(2026, 11, 9), D(2026, 11, 10), False),
        ("2 months ago", D(2026, 9, 23), D(2026, 9, 24), False),
        ("1 quarter ago", D(2026, 8, 23), D(2026, 8, 24), False),
        ("1 year ago", D(2025, 11, 23), D(2025, 11, 24), False),
        ("3 fiscal years ago", D(2023, 11, 23), D(2023, 11, 24), False),
        ("2 hours ago", D(2026, 11, 23, 8), D(2026, 11, 23, 9), True),
        ("5 minutes ago", D(2026, 11, 23, 10, 25), D(2026, 11, 23, 10, 26), True),
        ("15 seconds ago", D(2026, 11, 23, 10, 30), D(2026, 11, 23, 10, 30, 1), True),
        # With "complete": the whole unit N units back.
        ("3 complete days ago", D(2026, 11, 20), D(2026, 11, 21), False),
        ("1 complete week ago", D(2026, 11, 16), D(2026, 11, 23), False),
        ("2 complete months ago", D(2026, 9, 1), D(2026, 10, 1), False),
        ("1 complete quarter ago", D(2026, 7, 1), D(2026, 10, 1), False),
        ("1 complete year ago", D(2025, 1, 1), D(2026, 1, 1), False),
        ("0 complete months ago", D(2026, 11, 1), D(2026, 12, 1), False),
        ("2 complete hours ago", D(2026, 11, 23, 8), D(2026, 11, 23, 9), True),
        # Into the future.
        ("2 days from now", D(2026, 11, 25), D(2026, 11, 26), False),
        ("1 month from now", D(2026, 12, 23), D(2026, 12, 24), False),
        ("1 complete quarter from now", D(2027, 1, 1), D(2027, 4, 1), False),
        ("1 complete week from now", D(2026, 11, 30), D(2026, 12, 7), False),
        ("3 hours from now", D(2026, 11, 23, 13), D(2026, 11, 23, 14), True),
        # Singular/plural and case do not matter.
        ("1 days ago", D(2026, 11, 22), D(2026, 11, 23), False),
        ("2 DAY AGO", D(2026, 11, 21), D(2026, 11, 22), False),
    ],
)
def test_n_units_ago_and_from_now(
    text: str, start: datetime, end: datetime, has_time: bool
) -> None:
    assert parse_span(text, NOW) == Span(start, end, has_time=has_time)


def test_months_ago_clamps_to_month_end() -> None:
    # 2026-03-31 minus one month is 2026-02-28 (no Feb 31st).
    assert span("1 month ago", D(2026, 3, 31)) == (D(2026, 2, 28), D(2026, 3, 1))
    assert span("1 month from now", D(2026, 1, 31)) == (D(2026, 2, 28), D(2026, 3, 1))
    assert span("1 month from now", D(2024, 1, 31)) == (D(2024, 2, 29), D(2024, 3, 1))


# ---------------------------------------------------------------- garbage


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "garbage",
        "last fortnight",
        "next 3 days",
        "3 days",
        "-3 days ago",
        "3.5 days ago",
        "three days ago",
        "20240314",
        "12/25/2024",
        "last",
        "this week please",
    ],
)
def test_garbage_raises_a_helpful_error(text: str) -> None:
    with pytest.raises(DateGrammarError) as info:
        parse_span(text, NOW)
    message = str(info.value)
    assert repr(text) in message
    # The message teaches the grammar by example.
    for example in ("'2024-03-01'", "'2024 Q1'", "'FY2024'", "'last month'", "'30 days ago'"):
        assert example in message


def test_date_grammar_error_is_a_value_error() -> None:
    assert issubclass(DateGrammarError, ValueError)


def test_non_string_input_is_read_as_text() -> None:
    assert span(2024) == (D(2024, 1, 1), D(2025, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(DateGrammarError):
        parse_span(None, NOW)  # type: ignore[arg-type]


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30 days", (30, "day")),
        ("1 day", (1, "day")),
        ("0 days", (0, "day")),
        ("12 months", (12, "month")),
        ("2 quarters", (2, "quarter")),
        ("1 year", (1, "year")),
        ("3 weeks", (3, "week")),
        ("6 hours", (6, "hour")),
        ("15 minutes", (15, "minute")),
        ("45 seconds", (45, "second")),
        ("2 fiscal quarters", (2, "quarter")),
        ("1 fiscal year", (1, "year")),
        ("1 complete week", (1, "week")),
        ("  3   Weeks ", (3, "week")),
    ],
)
def test_parse_duration(text: str, expected: tuple[int, str]) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["days", "3 fortnights", "-3 days", "3.5 days", "30 days ago", "", "thirty days"]
)
def test_parse_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(DateGrammarError) as info:
        parse_duration(text)
    assert repr(text) in str(info.value)
    assert "'30 days'" in str(info.value)


def test_span_after() -> None:
    start = parse_span("30 days ago", NOW)
    assert span_after(start, "30 days") == Span(D(2026, 10, 24), D(2026, 11, 23))
    assert span_after(parse_span("2024-01-31", NOW), "1 month") == Span(
        D(2024, 1, 31), D(2024, 2, 29)
    )
    timed = parse_span("2 hours ago", NOW)
    assert span_after(timed, "2 hours") == Span(D(2026, 11, 23, 8), D(2026, 11, 23, 10), True)


@pytest.mark.parametrize(
    ("now", "n"),
    [(D(2024, 3, 31, 9), 1), (D(2026, 5, 31, 9), 3), (D(2026, 12, 31, 9), 1)],
)
def test_rolling_week_and_day_windows_end_today(now: datetime, n: int) -> None:
    today = truncate(now, "day")
    for unit in ("day", "week"):
        window = span_after(parse_span(f"{n} {unit}s ago", now), f"{n} {unit}s")
        assert window.end == today


@pytest.mark.parametrize(("now", "n"), [(D(2024, 3, 31, 9), 1), (D(2026, 5, 31, 9), 3)])
def test_rolling_month_window_ends_today(now: datetime, n: int) -> None:
    """Omni's "last N months" (N months ago + N months) ends today even at a month end."""
    window = interval_span(f"{n} months ago", f"{n} months", now)
    assert window.end == truncate(now, "day")


# ---------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("second", D(2026, 11, 23, 10, 30, 15)),
        ("minute", D(2026, 11, 23, 10, 30)),
        ("hour", D(2026, 11, 23, 10)),
        ("day", D(2026, 11, 23)),
        ("week", D(2026, 11, 23)),
        ("month", D(2026, 11, 1)),
        ("quarter", D(2026, 10, 1)),
        ("year", D(2026, 1, 1)),
    ],
)
def test_truncate(unit: str, expected: datetime) -> None:
    assert truncate(NOW, unit) == expected


@pytest.mark.parametrize(
    ("moment", "unit", "n", "expected"),
    [
        (D(2024, 1, 31), "month", 1, D(2024, 2, 29)),
        (D(2023, 1, 31), "month", 1, D(2023, 2, 28)),
        (D(2024, 3, 31), "month", -1, D(2024, 2, 29)),
        (D(2024, 5, 31), "month", 1, D(2024, 6, 30)),
        (D(2024, 2, 29), "year", 1, D(2025, 2, 28)),
        (D(2024, 2, 29), "year", 4, D(2028, 2, 29)),
        (D(2024, 11, 30), "quarter", 1, D(2025, 2, 28)),
        (D(2024, 12, 15), "month", 1, D(2025, 1, 15)),
        (D(2024, 1, 15), "month", -1, D(2023, 12, 15)),
        (D(2024, 1, 15), "month", -13, D(2022, 12, 15)),
        (D(2024, 1, 15, 10, 5), "month", 0, D(2024, 1, 15, 10, 5)),
        (D(2024, 1, 31, 23, 59), "day", 1, D(2024, 2, 1, 23, 59)),
        (D(2024, 1, 1), "week", -1, D(2023, 12, 25)),
        (D(2024, 1, 1), "hour", -1, D(2023, 12, 31, 23)),
        (D(2024, 1, 1), "minute", 90, D(2024, 1, 1, 1, 30)),
        (D(2024, 1, 1), "second", -1, D(2023, 12, 31, 23, 59, 59)),
    ],
)
def test_shift(moment: datetime, unit: str, n: int, expected: datetime) -> None:
    assert shift(moment, unit, n) == expected


def test_as_date_or_datetime() -> None:
    assert as_date_or_datetime(D(2024, 3, 14)) == date(2024, 3, 14)
    assert type(as_date_or_datetime(D(2024, 3, 14))) is date
    assert as_date_or_datetime(D(2024, 3, 14, 0, 0, 1)) == D(2024, 3, 14, 0, 0, 1)
    assert as_date_or_datetime(D(2024, 3, 14, 0, 0, 0, 1)) == D(2024, 3, 14, 0, 0, 0, 1)


def test_fractional_seconds_and_iso_separator() -> None:
    span = parse_span("2024-03-14T15:09:26.123", D(2026, 1, 1))
    assert span.start == D(2024, 3, 14, 15, 9, 26, 123000)
    assert span.has_time
