"""Grains as text for the grains the demo model has no data for (hour, minute, second), on
every temporal type an engine hands back; the demo's grains are tested through the server
(tests/server/test_grain_text.py)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from assay.results.formats import TEXT_GRAINS, grain_text, grains_as_text

AT = dt.datetime(1995, 3, 8, 14, 5, 9, 250_000)
TEXT = {
    "YEAR": "1995", "QUARTER": "1995-Q1", "MONTH": "1995-03", "WEEK": "1995-03-08",
    "DATE": "1995-03-08", "HOUR": "1995-03-08 14:05", "MINUTE": "1995-03-08 14:05",
    "SECOND": "1995-03-08 14:05:09", "MILLISECOND": "1995-03-08 14:05:09.250",
}  # fmt: skip


@pytest.mark.parametrize("unit", ["ms", "us", "ns"])
@pytest.mark.parametrize("grain", sorted(TEXT))
def test_timestamps_of_every_unit(grain: str, unit: str) -> None:
    column = pa.array([AT, None], pa.timestamp("us")).cast(pa.timestamp(unit))
    table = pa.table({"at": column})
    assert grains_as_text(table, [grain]).column("at").to_pylist() == [TEXT[grain], None]


def test_whole_seconds_have_no_fraction_but_a_millisecond_shows_zeros() -> None:
    column = pa.array([AT], pa.timestamp("us")).cast(pa.timestamp("s"), safe=False)
    table = pa.table({"at": column, "ms": column})
    row = grains_as_text(table, ["SECOND", "MILLISECOND"]).to_pylist()[0]
    assert row == {"at": "1995-03-08 14:05:09", "ms": "1995-03-08 14:05:09.000"}


@pytest.mark.parametrize("grain", sorted(TEXT))
def test_the_vectorised_and_the_single_value_forms_agree(grain: str) -> None:
    """The AI answer formats one value at a time; it must read as the CSV does."""
    for value in (AT, AT.date(), dt.date(995, 12, 31)):
        column = pa.array([value])
        assert grains_as_text(pa.table({"v": column}), [grain])["v"][0].as_py() == grain_text(
            value, grain
        )


def test_a_zoned_timestamp_reads_in_its_zone() -> None:
    at = pa.array([dt.datetime(1995, 3, 8, 23, 30, tzinfo=dt.UTC)], pa.timestamp("us", "UTC"))
    zoned = at.cast(pa.timestamp("us", "Asia/Tokyo"))
    table = pa.table({"at": zoned})
    assert grains_as_text(table, ["HOUR"])["at"][0].as_py() == "1995-03-09 08:30"


def test_other_columns_are_left_alone() -> None:
    """Raw dates, number grains (month_num) and measures keep their types and values."""
    table = pa.table({"raw": pa.array([AT]), "num": pa.array([3]), "name": pa.array(["March"])})
    assert grains_as_text(table, [None, "MONTH_NUM", "MONTH_NAME"]) is table


def test_every_truncating_grain_has_a_text() -> None:
    from assay.semantic.timeframes import TRUNCATED

    assert {g.upper() for g in TRUNCATED} <= TEXT_GRAINS
    assert set(TEXT) == TEXT_GRAINS
