"""Omni's field formats (``usdcurrency_2``, ``number_0``, ``percent_1``, ``billions_1`` ...)
applied to values, for ``formatResults``: currency symbols and thousands separators."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

_CURRENCIES = {"usd": "$", "eur": "€", "gbp": "£", "aud": "A$", "": "$"}
_FORMAT = re.compile(
    r"^(?P<kind>number|percent|(?P<cur>usd|eur|gbp|aud)?currency|(?:big)?(?P<bigcur>usd)?"
    r"(?P<scale>billions|millions|thousands|big)|id)(?:_(?P<digits>\d))?$"
)
_SCALES = {"billions": (1e9, "B"), "millions": (1e6, "M"), "thousands": (1e3, "K")}


def format_value(value: Any, fmt: str | None) -> Any:
    """The value as text under ``fmt``; numbers without a format get thousands separators.
    Values that are not numbers, and formats Assay does not know, pass through unchanged."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return value
    m = _FORMAT.match(fmt or "")
    if fmt and not m:
        return value
    if m is None:
        return f"{value:,}"
    kind, digits = m.group("kind"), m.group("digits")
    places = int(digits) if digits is not None else None
    number = float(value) if not isinstance(value, int) else value
    if kind == "id":
        return str(value)
    if kind == "percent":
        return f"{number * 100:,.{places if places is not None else 0}f}%"
    if m.group("scale"):
        scale = m.group("scale")
        if scale == "big":
            scale = next((s for s, (f, _) in _SCALES.items() if abs(number) >= f), "")
        divisor, suffix = _SCALES.get(scale, (1, ""))
        sign = "-" if number < 0 else ""
        symbol = "$" if m.group("bigcur") or kind.startswith("bigcurrency") else ""
        shown = abs(number) / divisor
        return f"{sign}{symbol}{shown:,.{places if places is not None else 1}f}{suffix}"
    if kind.endswith("currency"):
        symbol = _CURRENCIES[m.group("cur") or ""]
        sign = "-" if number < 0 else ""
        return f"{sign}{symbol}{abs(number):,.{places if places is not None else 2}f}"
    return f"{number:,.{places}f}" if places is not None else f"{number:,}"
