"""The model's calendar: the day weeks start on and the fiscal year's offset from January.

Omni's ``week_start_day`` (model, topic or dimension; the most specific wins) moves the
``week`` grain, ``day_of_week_num`` and week date filters ("this week"); its
``fiscal_month_offset`` (model) moves ``fiscal_year``, ``fiscal_quarter``, ``day_of_quarter``
and fiscal date filters ("FY2025", "last fiscal quarter").

Omni's offset runs the calendar *ahead*: a date's fiscal year is the year of the date moved
forward by the offset in months (docs.omni.co/modeling/models/fiscal-month-offset: ``11`` is a
February start with "FY Month 1 of 2025 = Feb 2024", ``-1`` a February start with "FY Month 1
of 2024 = Feb 2024"). Looker's parameter of the same name counts the other way round, so
Looker models must not be copied over unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: Offsets of 12 months or more would only rename every fiscal year; Omni's examples stay
#: inside a year either way, and a value beyond that is more likely a typo than a calendar.
FISCAL_OFFSET_LIMIT: Final = 11


@dataclass(frozen=True, slots=True)
class Calendar:
    """``week_start``: Monday 0 ... Sunday 6 (Python's ``weekday()``); ``fiscal_month_offset``:
    months added to a date to read its fiscal year and quarter."""

    week_start: int = 0
    fiscal_month_offset: int = 0

    def with_week_start(self, day: int | None) -> Calendar:
        """This calendar with a more specific week start, when one is set."""
        if day is None or day == self.week_start:
            return self
        return replace(self, week_start=day)


ISO: Final = Calendar()


def weekday_number(name: str) -> int:
    """``'Sunday'`` -> 6 (the name is checked by the model file's validation)."""
    return WEEKDAYS.index(name.strip().lower())
