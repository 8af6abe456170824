"""The Vega-Lite spec of an answer's chart, chosen from what the result's fields say they are.

Pure: a table and its fields' metadata (labels, formats, each dimension's grain) in, a spec
out; ``assay.ai.chart`` renders it. The shape follows the dimensions, never the column
types alone, so a result with two dimensions is one series per value of the second (one bar
per row would repeat every label of the first):

- no dimension: a big-number card per measure;
- a date grain: a line over time, one line per series;
- one category: horizontal bars by value (vertical, in their own order, when the category is
  ordinal: a number, a month name);
- two or more dimensions: grouped (or, for many series of an additive measure, stacked) bars
  or lines, coloured by the other dimensions' values.

A dimension with a single value (the year a follow-up filtered on) is not an axis: it is said
in the subtitle. Numbers read as the answer writes them: Omni's formats become d3-format
specifiers (axes) and Vega expressions (bar labels, tooltips, the big number).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

import pyarrow as pa

from assay.results.formats import grain_text
from assay.semantic.compiler import FieldMeta

Theme = Literal["light", "dark"]
Spec = dict[str, Any]
#: A result's ``summary.fields`` (keyed by column name) or the compiler's fields (in order).
Fields = Mapping[str, Mapping[str, Any]] | Sequence[FieldMeta]
#: Names the spec's schema; nothing is fetched from it (vl-convert carries Vega-Lite itself).
SCHEMA: Final = "https://vega.github.io/schema/vega-lite/v5.json"
MAX_CATEGORIES: Final = 30
MAX_SERIES: Final = 10
MAX_POINTS: Final = 5000
WIDTH: Final = 640
HEIGHT: Final = 320
BAR_STEP: Final = 20  # pixels per horizontal bar (per bar of a group)
NONE_TEXT: Final = "(none)"  # as the answer writes a missing value

#: A truncating grain: Vega-Lite's UTC time unit, the axis's d3 time format (the text
#: ``grain_text`` writes; values are sent as UTC wall-clock times) and its tick interval (a
#: tick between two months would repeat a month's label).
TIME_UNITS: Final[dict[str, tuple[str, str, Spec]]] = {
    "YEAR": ("utcyear", "%Y", {"interval": "year"}),
    "QUARTER": ("utcyearquarter", "%Y-Q%q", {"interval": "month", "step": 3}),
    "MONTH": ("utcyearmonth", "%Y-%m", {"interval": "month"}),
    "WEEK": ("utcyearmonthdate", "%Y-%m-%d", {"interval": "week"}),
    "DATE": ("utcyearmonthdate", "%Y-%m-%d", {"interval": "day"}),
    "HOUR": ("utcyearmonthdatehours", "%Y-%m-%d %H:%M", {"interval": "hour"}),
    "MINUTE": ("utcyearmonthdatehoursminutes", "%Y-%m-%d %H:%M", {"interval": "minute"}),
    "SECOND": ("utcyearmonthdatehoursminutesseconds", "%Y-%m-%d %H:%M:%S",
               {"interval": "second"}),
    "MILLISECOND": ("utcyearmonthdatehoursminutessecondsmilliseconds",
                    "%Y-%m-%d %H:%M:%S.%L", {"interval": "millisecond"}),
}  # fmt: skip
MAX_TICKS: Final = 16  # more buckets than this: Vega's own (coarser) ticks

_MONTHS: Final = [dt.date(2001, m, 1).strftime("%B") for m in range(1, 13)]
_WEEKDAYS: Final = [dt.date(2001, 1, d).strftime("%A") for d in range(1, 8)]  # 2001-01-01: Mon
#: Grains whose text values have an order of their own, not the alphabet's.
NAMED_ORDER: Final = {"MONTH_NAME": _MONTHS, "DAY_OF_WEEK_NAME": _WEEKDAYS}
#: Measures whose parts add up to the whole: only these may be stacked.
ADDITIVE: Final = frozenset({"SUM", "COUNT"})

THEMES: Final[dict[str, dict[str, Any]]] = {
    "light": {
        "background": "#ffffff", "ink": "#1f2328", "muted": "#57606a", "grid": "#eaeef2",
        "domain": "#8c959f",
        "palette": ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
                    "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"],
    },
    "dark": {
        "background": "#0d1117", "ink": "#e6edf3", "muted": "#9198a1", "grid": "#262c36",
        "domain": "#6e7681",
        "palette": ["#6ea8fe", "#ffa94d", "#ff6b6b", "#63e6be", "#8ce99a", "#ffe066",
                    "#da77f2", "#faa2c1", "#d2a679", "#ced4da"],
    },
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Column:
    """One result column as the chart needs it; ``key`` is its name in the spec's data (the
    result's own names hold dots and brackets, which Vega-Lite reads as paths)."""

    key: str
    label: str
    is_dimension: bool
    numeric: bool
    temporal: bool
    format: str | None = None
    date_type: str | None = None
    aggregate_type: str | None = None

    @property
    def time_unit(self) -> tuple[str, str, Spec] | None:
        return TIME_UNITS.get((self.date_type or "").upper()) if self.temporal else None

    @property
    def ordinal(self) -> bool:
        """Categories read in their own order (a number, a month name), not by value."""
        return self.numeric or (self.date_type or "").upper() in NAMED_ORDER


@dataclass(frozen=True, slots=True)
class NumberFormat:
    """An Omni format as d3 sees it: ``d3`` formats the number after dividing by the scale
    (``billions``, ..., ``big``: by its size), ``symbol`` is a currency d3 has no sign for."""

    d3: str
    symbol: str = ""
    scale: str | None = None

    def axis(self, largest: float = 0.0) -> dict[str, str]:
        """An axis's ``format`` when d3 can say it alone, else a ``labelExpr``. Ticks of
        large plain numbers or amounts read compactly in the same currency ($3.5B): the bars'
        labels and the tooltips carry the exact values."""
        plain = self.scale is None and self.d3 != "d" and not self.d3.endswith("%")
        if plain and largest >= 1e5:
            symbol = self.symbol or ("$" if self.d3.startswith("$") else "")
            return {"labelExpr": NumberFormat(",.1~f", symbol, "big").expr("datum.value")}
        if self.scale is None and not self.symbol:
            return {"format": self.d3}
        return {"labelExpr": self.expr("datum.value")}

    def expr(self, value: str) -> str:
        """A Vega expression writing ``value`` (an expression) in this format."""
        if self.scale is None and not self.symbol:
            return f"format({value}, '{self.d3}')"
        size = f"abs({value})"
        if self.scale == "big":
            shown = (
                "".join(
                    f"{size} >= {div:g} ? format({size} / {div:g}, '{self.d3}') + '{suffix}' : "
                    for div, suffix in _BIG
                )
                + f"format({size}, '{self.d3}')"
            )
        else:
            div, suffix = _SCALES.get(self.scale or "", (1.0, ""))
            shown = f"format({size} / {div:g}, '{self.d3}') + '{suffix}'"
        return f"({value} < 0 ? '-' : '') + '{self.symbol}' + ({shown})"


_SCALES: Final = {"billions": (1e9, "B"), "millions": (1e6, "M"), "thousands": (1e3, "K")}
_BIG: Final = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))
_CURRENCIES: Final = {"usd": "$", "eur": "€", "gbp": "£", "aud": "A$", "": "$"}
_FORMAT: Final = re.compile(
    r"^(?P<kind>number|percent|id|(?P<cur>usd|eur|gbp|aud)?currency"
    r"|big(?P<bigcur>(?:usd)?currency)?|billions|millions|thousands)(?:_(?P<digits>\d))?$"
)


def number_format(fmt: str | None) -> NumberFormat:
    """Omni's ``format`` (``usdcurrency_2``, ``percent_1``, ``big``, ... as
    ``assay.results.formats`` writes them) as d3 reads it; unknown formats read as plain
    numbers with separators, as the answer writes them."""
    m = _FORMAT.match((fmt or "").lower())
    if m is None:
        return NumberFormat(",.2~f")
    kind, digits = m.group("kind"), m.group("digits")

    def places(default: int) -> int:
        return int(digits) if digits is not None else default

    if kind == "id":
        return NumberFormat("d")
    if kind == "number":
        return NumberFormat(f",.{places(0)}f" if digits is not None else ",~f")
    if kind == "percent":
        return NumberFormat(f",.{places(0)}%")
    if kind.startswith("big"):
        return NumberFormat(f",.{places(1)}f", "$" if m.group("bigcur") else "", "big")
    if kind in _SCALES:
        return NumberFormat(f",.{places(1)}f", scale=kind)
    symbol = _CURRENCIES[m.group("cur") or ""]
    if symbol == "$":
        return NumberFormat(f"$,.{places(2)}f")  # d3's own currency sign (the en-US locale's)
    return NumberFormat(f",.{places(2)}f", symbol)


def columns_of(table: pa.Table, fields: Fields) -> list[Column]:
    """The table's columns with their fields' metadata."""
    out = []
    for i, arrow_field in enumerate(table.schema):
        if isinstance(fields, Mapping):
            meta: Mapping[str, Any] = fields.get(arrow_field.name) or {}
        else:
            meta = fields[i].to_dict() if i < len(fields) else {}
        t = arrow_field.type
        numeric = bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))
        temporal = bool(pa.types.is_date(t) or pa.types.is_timestamp(t))
        out.append(
            Column(
                key=f"c{i}",
                label=str(meta.get("label") or arrow_field.name),
                is_dimension=bool(meta.get("is_dimension", not numeric)),
                numeric=numeric,
                temporal=temporal,
                format=meta.get("format"),
                date_type=meta.get("date_type"),
                aggregate_type=meta.get("aggregate_type"),
            )
        )
    return out


def chart_spec(table: pa.Table, fields: Fields, theme: Theme = "light") -> Spec | None:
    """The chart of a result, or None when there is nothing to draw (no rows, no measure)."""
    if theme not in THEMES:
        raise ValueError(f"theme must be one of {sorted(THEMES)}, not {theme!r}")
    columns = columns_of(table, fields)
    measures = [c for c in columns if c.numeric and not c.is_dimension]
    dims = [c for c in columns if c.is_dimension]
    if table.num_rows == 0 or not measures:
        return None
    rows = [
        {c.key: _json_value(v, c) for c, v in zip(columns, row.values(), strict=True)}
        for row in table.to_pylist()
    ]
    spec = _plot(rows, dims, measures[0], theme) if dims else _cards(rows[0], measures, theme)
    return {"$schema": SCHEMA, "config": _config(theme), **spec}


def _plot(rows: list[dict[str, Any]], dims: list[Column], measure: Column, theme: Theme) -> Spec:
    distinct = {d.key: list(dict.fromkeys(_text(r[d.key], d) for r in rows)) for d in dims}
    varying = [d for d in dims if len(distinct[d.key]) > 1] or dims[:1]
    fixed = [d for d in dims if d not in varying]
    x = next((d for d in varying if d.time_unit is not None), varying[0])
    others = [d for d in varying if d is not x]
    fmt = number_format(measure.format)
    for r in rows:
        r["series"] = " / ".join(_text(r[d.key], d) for d in others)
        if not x.temporal:
            r[x.key] = _text(r[x.key], x)
    notes, subtitle = [], [f"{d.label}: {distinct[d.key][0]}" for d in fixed]
    series = _ranked(rows, "series", measure.key)
    if len(series) > MAX_SERIES:
        notes.append(f"top {MAX_SERIES} of {len(series)} {_join(others)}")
        series = series[:MAX_SERIES]
        kept = set(series)
        rows = [r for r in rows if r["series"] in kept]
    if x.temporal and len(rows) > MAX_POINTS:  # drawing time grows with the points
        notes.append(f"first {MAX_POINTS:,} of {len(rows):,} points")
        rows = sorted(rows, key=lambda r: (r[x.key] is None, r[x.key] or 0))[:MAX_POINTS]
    categories = _ranked(rows, x.key, measure.key) if not x.temporal else []
    if len(categories) > MAX_CATEGORIES:
        notes.append(f"top {MAX_CATEGORIES} of {len(categories)} {x.label}")
        categories = categories[:MAX_CATEGORIES]
        kept = set(categories)
        rows = [r for r in rows if r[x.key] in kept]
    if x.ordinal:
        categories = _in_own_order(categories, x)
    title: dict[str, Any] = {"text": f"{measure.label} by {_join([x, *others])}"}
    if notes:
        title["text"] += f" ({'; '.join(notes)})"
    if subtitle:
        title["subtitle"] = "; ".join(subtitle)
    value_text = f"{measure.key}_text"
    tooltip = [
        {"field": x.key, "title": x.label, **_time_axis(x)},
        *([{"field": "series", "title": _join(others)}] if others else []),
        {"field": value_text, "title": measure.label},
    ]
    spec: Spec = {
        "description": title["text"],
        "title": title,
        "data": {"values": rows},
        "transform": [{"calculate": _shown(fmt, f"datum['{measure.key}']"), "as": value_text}],
    }
    value = {
        "field": measure.key, "type": "quantitative", "title": measure.label,
        "axis": {**fmt.axis(_largest(rows, measure.key)), "tickCount": 6},
    }  # fmt: skip
    color = {
        "field": "series", "type": "nominal", "title": _join(others), "sort": series,
        "scale": {"range": THEMES[theme]["palette"]},
    }  # fmt: skip
    if x.temporal:
        return spec | _line(x, value, color if others else None, tooltip, rows)
    stacked = len(series) > 4 and (measure.aggregate_type or "").upper() in ADDITIVE
    bars = _bars(x, categories, value, color if others else None, stacked, tooltip)
    return spec | bars


def _line(
    x: Column, value: Spec, color: Spec | None, tooltip: list[Spec], rows: list[Spec]
) -> Spec:
    axis: Spec = {"labelOverlap": True}
    unit = x.time_unit
    if unit is not None:
        axis["format"] = unit[1]
        if len({r[x.key] for r in rows}) <= MAX_TICKS:
            axis["tickCount"] = unit[2]
    encoding: Spec = {
        "x": {"field": x.key, "title": x.label, **_time_axis(x), "axis": axis},
        "y": value,
        "tooltip": tooltip,
    }
    if color is not None:
        encoding["color"] = color
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "mark": {"type": "line", "point": len(rows) <= 60, "interpolate": "linear"},
        "encoding": encoding,
    }


def _bars(
    x: Column,
    categories: list[str],
    value: Spec,
    color: Spec | None,
    stacked: bool,
    tooltip: list[Spec],
) -> Spec:
    """Horizontal bars for names (long labels stay readable), vertical for an ordinal axis."""
    grouped = color is not None and not stacked
    groups = len(color["sort"]) if grouped and color is not None else 1
    category: Spec = {"field": x.key, "type": "nominal", "title": x.label, "sort": categories}
    encoding: Spec = {"tooltip": tooltip}
    if color is not None:
        encoding["color"] = color
    value = value | {"stack": "zero" if stacked else None}
    if x.ordinal:
        category["axis"] = {"labelAngle": 0 if len(categories) <= 12 else -45}
        encoding |= {"x": category, "y": value}
        if grouped:
            encoding["xOffset"] = {"field": "series", "sort": color["sort"] if color else None}
        size: Spec = {"width": WIDTH, "height": HEIGHT}
    else:
        encoding |= {"y": category, "x": value}
        if grouped:
            encoding["yOffset"] = {"field": "series", "sort": color["sort"] if color else None}
        height = max(60, len(categories) * BAR_STEP * (groups if groups <= 3 else groups / 2))
        size = {"width": WIDTH - 160, "height": round(height)}
    bar: Spec = {"mark": {"type": "bar", "tooltip": True}, "encoding": encoding}
    if color is not None or x.ordinal:
        return size | bar
    label = {
        "mark": {"type": "text", "align": "left", "baseline": "middle", "dx": 4},
        "encoding": {"y": category, "x": value, "text": {"field": f"{value['field']}_text"}},
    }
    return size | {"layer": [bar, label]}


def _cards(row: dict[str, Any], measures: list[Column], theme: Theme) -> Spec:
    """A big number per measure (at most four), its label beneath."""
    colors = THEMES[theme]
    cards = []
    for m in measures[:4]:
        cards.append(
            {
                "width": 240,
                "height": 110,
                "data": {"values": [{"value": row[m.key]}]},
                "transform": [{"calculate": _shown(number_format(m.format), "datum.value"),
                               "as": "text"}],
                "layer": [
                    {"mark": {"type": "text", "fontSize": 40, "fontWeight": "bold", "x": 120,
                              "y": 45, "align": "center", "baseline": "middle",
                              "color": colors["ink"]},
                     "encoding": {"text": {"field": "text"}}},
                    {"mark": {"type": "text", "fontSize": 14, "x": 120, "y": 92,
                              "align": "center", "color": colors["muted"], "limit": 230},
                     "encoding": {"text": {"value": m.label}}},
                ],
            }
        )  # fmt: skip
    label = ", ".join(m.label for m in measures[:4])
    if len(cards) == 1:
        return {"description": label, **cards[0]}
    return {"description": label, "hconcat": cards, "spacing": 24}


def _shown(fmt: NumberFormat, value: str) -> str:
    """``value`` as text in ``fmt``; a missing value as the answer writes it, not as 0."""
    return f"isValid({value}) ? {fmt.expr(value)} : '{NONE_TEXT}'"


def _config(theme: Theme) -> Spec:
    c = THEMES[theme]
    axis = {
        "labelColor": c["muted"], "titleColor": c["ink"], "gridColor": c["grid"],
        "domainColor": c["domain"], "tickColor": c["domain"], "labelFontSize": 11,
        "titleFontSize": 12, "titleFontWeight": "normal", "labelLimit": 180,
    }  # fmt: skip
    return {
        "background": c["background"],
        "font": "sans-serif",
        "padding": 12,
        "title": {"color": c["ink"], "subtitleColor": c["muted"], "anchor": "start",
                  "fontSize": 15, "subtitleFontSize": 12, "offset": 12},
        "axis": axis,
        "legend": {"labelColor": c["muted"], "titleColor": c["ink"], "labelLimit": 220},
        "view": {"stroke": None},
        "mark": {"color": c["palette"][0]},
        "text": {"color": c["ink"]},
        "range": {"category": c["palette"]},
    }  # fmt: skip


def _time_axis(x: Column) -> Spec:
    """A temporal field's encoding bits (its time unit, UTC); nothing for other fields."""
    unit = x.time_unit
    if unit is not None:
        return {"type": "temporal", "timeUnit": unit[0]}
    if x.temporal:
        return {"type": "temporal", "scale": {"type": "utc"}}
    return {"type": "nominal"}


def _ranked(rows: list[dict[str, Any]], key: str, measure: str) -> list[str]:
    """The values of ``key`` by their total size, largest first (ties in first-seen order)."""
    totals: dict[str, float] = {}
    for r in rows:
        v = r.get(measure)
        totals[r[key]] = totals.get(r[key], 0.0) + (abs(v) if isinstance(v, float) else 0.0)
    return sorted(totals, key=lambda k: -totals[k])


def _largest(rows: list[dict[str, Any]], key: str) -> float:
    return max((abs(r[key]) for r in rows if isinstance(r.get(key), float)), default=0.0)


def _in_own_order(categories: list[str], x: Column) -> list[str]:
    named = NAMED_ORDER.get((x.date_type or "").upper())
    if named is not None:
        return sorted(categories, key=lambda c: named.index(c) if c in named else len(named))

    def number(text: str) -> tuple[bool, float]:
        try:
            return False, float(text.replace(",", ""))
        except ValueError:
            return True, math.inf

    return sorted(categories, key=number)


def _join(columns: Sequence[Column]) -> str:
    labels = [c.label for c in columns]
    return ", ".join(labels) if len(labels) < 2 else ", ".join(labels[:-1]) + " and " + labels[-1]


def _json_value(value: Any, column: Column) -> Any:
    """A cell as the spec's data carries it: numbers as floats, dates as UTC milliseconds."""
    if value is None or isinstance(value, bool):
        return value if value is None else str(value).lower()
    if isinstance(value, dt.date):
        if not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day)
        wall = value.replace(tzinfo=dt.UTC)  # the wall-clock time, as grain_text writes it
        return round(wall.timestamp() * 1000) if column.temporal else wall.isoformat()
    if isinstance(value, (int, float, Decimal)):
        number = float(value)
        return number if math.isfinite(number) else None
    return str(value)


def _text(value: Any, column: Column) -> str:
    """A dimension value as an axis or legend writes it."""
    if value is None:
        return NONE_TEXT
    if isinstance(value, (int, float)) and column.temporal:
        when = dt.datetime.fromtimestamp(value / 1000, dt.UTC)
        return grain_text(when, column.date_type) or when.date().isoformat()
    if isinstance(value, float) and column.numeric:
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return str(value)
