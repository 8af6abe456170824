"""Charts: the Vega-Lite spec chosen for each shape of result, and what vl-convert really draws
from it (SVG read back with ElementTree, PNG headers), on synthetic tables and TPC-H results."""

from __future__ import annotations

import datetime as dt
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

import pyarrow as pa
import pytest

from assay.ai.chart import chart_png, chart_svg
from assay.ai.chart_spec import MAX_CATEGORIES, MAX_POINTS, THEMES, chart_spec, number_format
from assay.ai.planner import PlanStep, plan
from assay.engines import DuckDBEngine
from assay.results.formats import format_value
from assay.semantic.compiler import FieldMeta, compile_query
from assay.semantic.model import SemanticModel

SVG = "{http://www.w3.org/2000/svg}"


def _field(label: str, dimension: bool, **more: Any) -> dict[str, Any]:
    return {"label": label, "is_dimension": dimension, **more}


def _texts(svg: str) -> list[str]:
    """Every piece of text the SVG shows, as a reader sees it (entities decoded)."""
    root = ET.fromstring(svg)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def _axis_labels(svg: str, axis: str) -> list[str]:
    """The tick labels of the axis whose aria-label starts with ``axis`` ("X-axis", "Y-axis")."""
    root = ET.fromstring(svg)
    for group in root.iter(f"{SVG}g"):
        if (group.get("aria-label") or "").startswith(axis):
            return [
                "".join(t.itertext())
                for g in group.iter(f"{SVG}g")
                if "role-axis-label" in (g.get("class") or "")
                for t in g.iter(f"{SVG}text")
            ]
    raise AssertionError(f"no {axis} in the SVG")


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _result(
    model: SemanticModel, engine: DuckDBEngine, *questions: str
) -> tuple[pa.Table, tuple[FieldMeta, ...]]:
    """The last question's result, each question following up on the ones before."""
    steps: list[PlanStep] = []
    for q in questions:
        steps.append(PlanStep(q, plan(q, model, conversation=steps)))
    compiled = compile_query(model, steps[-1].plan.queries[0].query)
    return engine.execute(compiled.sql), compiled.fields


REGIONS = {"r": _field("Region", True), "v": _field("Revenue", False, format="usdcurrency_2")}


@pytest.mark.parametrize(
    ("omni", "d3", "symbol", "scale"),
    [
        ("usdcurrency_2", "$,.2f", "", None),
        ("currency_0", "$,.0f", "", None),
        ("eurcurrency_1", ",.1f", "€", None),
        ("percent_1", ",.1%", "", None),
        ("PERCENT_0", ",.0%", "", None),  # as Omni's model API spells them
        ("number_0", ",.0f", "", None),
        ("number", ",~f", "", None),
        ("id", "d", "", None),
        ("billions_2", ",.2f", "", "billions"),
        ("big", ",.1f", "", "big"),
        ("bigusdcurrency", ",.1f", "$", "big"),
        (None, ",.2~f", "", None),
        ("accounting", ",.2~f", "", None),  # not one Assay formats: a plain number
    ],
)
def test_omni_formats_as_d3(omni: str | None, d3: str, symbol: str, scale: str | None) -> None:
    f = number_format(omni)
    assert (f.d3, f.symbol, f.scale) == (d3, symbol, scale)


@pytest.mark.parametrize(
    ("fmt", "value"),
    [
        ("usdcurrency_2", 1234567.891),
        ("percent_1", 0.1234),
        ("number_0", 98765.4),
        ("billions_1", 3.5e9),
        ("millions_2", -1.25e6),
        ("big", 2.5e6),
        ("gbpcurrency_0", 1999.6),
    ],
)
def test_a_single_number_is_a_card_written_in_its_format(fmt: str, value: float) -> None:
    table = pa.table({"v": [value]})
    fields = {"v": _field("Total Revenue", False, format=fmt)}
    spec = chart_spec(table, fields)
    assert spec is not None and [m["mark"]["type"] for m in spec["layer"]] == ["text", "text"]
    svg = chart_svg(table, fields)
    assert svg is not None
    texts = _texts(svg)
    assert "Total Revenue" in texts
    assert str(format_value(value, fmt)) in texts  # the very text the answer writes


def test_a_missing_number_reads_none_not_zero() -> None:
    svg = chart_svg(pa.table({"v": pa.array([None], pa.float64())}), {"v": _field("Total", False)})
    assert svg is not None and "(none)" in _texts(svg) and "0" not in _texts(svg)


def test_bars_by_one_category_sorted_by_value() -> None:
    table = pa.table({"r": ["ASIA", "EUROPE", "AFRICA"], "v": [2.0e9, 3.5e9, 1.0e9]})
    spec = chart_spec(table, REGIONS)
    assert spec is not None
    bar, label = spec["layer"]
    assert bar["mark"]["type"] == "bar" and label["mark"]["type"] == "text"
    y, x = bar["encoding"]["y"], bar["encoding"]["x"]
    assert (y["type"], y["title"], y["sort"]) == ("nominal", "Region", ["EUROPE", "ASIA", "AFRICA"])
    assert (x["type"], x["title"]) == ("quantitative", "Revenue")
    assert spec["title"]["text"] == "Revenue by Region"
    svg = chart_svg(table, REGIONS)
    assert svg is not None
    assert _axis_labels(svg, "Y-axis") == ["EUROPE", "ASIA", "AFRICA"]
    texts = _texts(svg)
    assert {"Revenue by Region", "Region", "Revenue", "$3,500,000,000.00"} <= set(texts)
    assert "$3B" in _axis_labels(svg, "X-axis")  # large amounts tick compactly


def test_time_grain_is_a_line_in_time_order() -> None:
    months = [dt.date(1995, m, 1) for m in (3, 1, 2)]  # as a "top" question may sort them
    table = pa.table({"d": months, "v": [3, 1, 2]})
    fields = {"d": _field("Order Month", True, date_type="MONTH"), "v": _field("Count", False)}
    spec = chart_spec(table, fields)
    assert spec is not None and spec["mark"]["type"] == "line"
    x = spec["encoding"]["x"]
    assert (x["type"], x["timeUnit"], x["axis"]["format"]) == ("temporal", "utcyearmonth", "%Y-%m")
    assert "color" not in spec["encoding"]
    svg = chart_svg(table, fields)
    assert svg is not None
    ticks = _axis_labels(svg, "X-axis")
    assert ticks == sorted(ticks) and "1995-01" in ticks and "1995-03" in ticks


def test_two_dimensions_are_one_series_per_value_of_the_second() -> None:
    table = pa.table(
        {"r": ["ASIA", "ASIA", "EUROPE", "EUROPE"], "m": ["AIR", "RAIL", "AIR", "RAIL"],
         "v": [1.0, 2.0, 3.0, 4.0]}
    )  # fmt: skip
    fields = {"r": _field("Region", True), "m": _field("Ship Mode", True), "v": REGIONS["v"]}
    spec = chart_spec(table, fields)
    assert spec is not None and spec["mark"]["type"] == "bar"
    enc = spec["encoding"]
    assert enc["y"]["sort"] == ["EUROPE", "ASIA"]  # each region once
    assert enc["color"]["field"] == enc["yOffset"]["field"] == "series"  # grouped
    assert enc["color"]["title"] == "Ship Mode"
    assert spec["title"]["text"] == "Revenue by Region and Ship Mode"
    svg = chart_svg(table, fields)
    assert svg is not None
    assert sorted(_axis_labels(svg, "Y-axis")) == ["ASIA", "EUROPE"]
    assert {"AIR", "RAIL"} <= set(_texts(svg))  # the legend


def test_many_series_of_a_sum_are_stacked_and_cut_to_the_largest() -> None:
    modes = [f"M{i:02d}" for i in range(14)]
    table = pa.table(
        {"r": ["ASIA"] * 14 + ["EUROPE"] * 14, "m": modes * 2, "v": [float(i) for i in range(28)]}
    )
    fields = {
        "r": _field("Region", True),
        "m": _field("Ship Mode", True),
        "v": _field("Revenue", False, aggregate_type="SUM"),
    }
    spec = chart_spec(table, fields)
    assert spec is not None
    enc = spec["encoding"]
    assert "yOffset" not in enc and enc["x"]["stack"] == "zero"
    assert enc["color"]["sort"] == modes[::-1][:10]
    assert "top 10 of 14 Ship Mode" in spec["title"]["text"]


def test_more_categories_than_fit_keep_the_largest_and_say_so() -> None:
    n = 45
    table = pa.table({"r": [f"N{i}" for i in range(n)], "v": [float(i) for i in range(n)]})
    spec = chart_spec(table, REGIONS)
    assert spec is not None
    assert spec["layer"][0]["encoding"]["y"]["sort"][0] == f"N{n - 1}"
    assert len(spec["layer"][0]["encoding"]["y"]["sort"]) == MAX_CATEGORIES
    assert len(spec["data"]["values"]) == MAX_CATEGORIES
    assert spec["title"]["text"] == f"Revenue by Region (top {MAX_CATEGORIES} of {n} Region)"


def test_a_long_line_keeps_its_first_points_and_says_so() -> None:
    days = [dt.date(2000, 1, 1) + dt.timedelta(days=i) for i in range(MAX_POINTS + 10)]
    table = pa.table({"d": days[::-1], "v": [1.0] * len(days)})
    fields = {"d": _field("Day", True, date_type="DATE"), "v": _field("Count", False)}
    spec = chart_spec(table, fields)
    assert spec is not None and len(spec["data"]["values"]) == MAX_POINTS
    assert min(r["c0"] for r in spec["data"]["values"]) == 946684800000  # 2000-01-01 UTC
    assert f"first {MAX_POINTS:,} of {MAX_POINTS + 10:,} points" in spec["title"]["text"]


def test_ordinal_categories_keep_their_own_order() -> None:
    names = ["March", "January", "February"]
    table = pa.table({"m": names, "v": [9.0, 1.0, 5.0]})
    fields = {"m": _field("Month Name", True, date_type="MONTH_NAME"), "v": REGIONS["v"]}
    spec = chart_spec(table, fields)
    assert spec is not None and spec["encoding"]["x"]["sort"] == ["January", "February", "March"]
    sizes = pa.table({"s": [10, 2, 33], "v": [1.0, 2.0, 3.0]})
    spec = chart_spec(sizes, {"s": _field("Size", True), "v": REGIONS["v"]})
    assert spec is not None and spec["encoding"]["x"]["sort"] == ["2", "10", "33"]


def test_nothing_to_draw() -> None:
    assert chart_spec(pa.table({"r": pa.array([], pa.string()), "v": pa.array([], pa.float64())}),
                      REGIONS) is None  # fmt: skip
    assert chart_spec(pa.table({"r": ["a"], "s": ["b"]}), {}) is None  # no measure
    assert chart_png(pa.table({"r": ["a"], "s": ["b"]}), {}) is None
    with pytest.raises(ValueError, match="theme"):
        chart_spec(pa.table({"v": [1]}), {}, "sepia")  # type: ignore[arg-type]


def test_labels_and_values_are_escaped_in_the_svg() -> None:
    evil = "<script>alert(1)</script> & co"
    table = pa.table({"r": [evil, "plain"], "v": [2.0, 1.0]})
    fields = {"r": _field(f"Region {evil}", True), "v": _field("Revenue & <b>", False)}
    svg = chart_svg(table, fields)
    assert svg is not None
    assert "<script" not in svg and "<b>" not in svg
    assert "&lt;script&gt;" in svg and "&amp; co" in svg
    texts = _texts(svg)  # parsed back: exactly the text given
    assert evil in texts and f"Region {evil}" in texts and "Revenue & <b>" in texts


def test_png_and_themes() -> None:
    table = pa.table({"r": ["ASIA", "EUROPE"], "v": [2.0, 3.0]})
    light, dark = chart_png(table, REGIONS), chart_png(table, REGIONS, "dark")
    assert light is not None and dark is not None and light != dark
    width, height = _png_size(light)
    assert 400 <= width <= 1200 and 100 <= height <= 800
    assert 2_000 < len(light) < 500_000
    assert _png_size(chart_png(table, REGIONS, scale=2) or b"") == (width * 2, height * 2)
    svg = chart_svg(table, REGIONS, "dark")
    assert svg is not None and THEMES["dark"]["background"] in svg
    assert chart_svg(table, REGIONS) == chart_svg(table, REGIONS)  # deterministic


def test_a_real_result_shows_its_labels_and_formatted_values(
    tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    table, fields = _result(tpch_model, tpch_engine, "revenue by ship mode in 1996")
    dim, measure = fields
    svg = chart_svg(table, fields)
    assert svg is not None
    texts = set(_texts(svg))
    assert {dim.label, measure.label, f"{measure.label} by {dim.label}"} <= texts
    for mode, revenue in zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True):
        assert mode in texts
        assert str(format_value(revenue, measure.format)) in texts  # each bar's label
    png = chart_png(table, fields)
    assert png is not None and _png_size(png)[0] >= 400


def _no_repeated_ticks(svg: str) -> None:
    for axis in ("X-axis", "Y-axis"):
        ticks = _axis_labels(svg, axis)
        assert ticks and not [t for t, n in Counter(ticks).items() if n > 1], ticks


def test_the_follow_up_by_year_in_one_year_is_bars_by_region(
    tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    """The reported bug: 'revenue by region in 1995', then 'and by year?' drew one bar per
    row, each labelled 1995. The year has one value: it is said, not drawn."""
    questions = ("revenue by region in 1995", "and by year?")
    table, fields = _result(tpch_model, tpch_engine, *questions)
    assert [f.is_dimension for f in fields] == [True, True, False] and table.num_rows == 5
    year = next(i for i, f in enumerate(fields) if f.date_type == "YEAR")
    region = 1 - year
    spec = chart_spec(table, fields)
    assert spec is not None
    bars = spec["layer"][0]["encoding"]
    assert sorted(bars["y"]["sort"]) == sorted(table.column(region).to_pylist())
    assert spec["title"]["subtitle"] == f"{fields[year].label}: 1995"
    svg = chart_svg(table, fields)
    assert svg is not None
    _no_repeated_ticks(svg)
    assert sorted(_axis_labels(svg, "Y-axis")) == sorted(table.column(region).to_pylist())


def test_the_follow_up_by_year_is_one_line_per_region(
    tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    table, fields = _result(tpch_model, tpch_engine, "revenue by region", "and by year?")
    year = next(i for i, f in enumerate(fields) if f.date_type == "YEAR")
    region = next(i for i, f in enumerate(fields) if f.is_dimension and i != year)
    regions = sorted(set(table.column(region).to_pylist()))
    assert len(regions) == 5 and table.num_rows > 5
    spec = chart_spec(table, fields)
    assert spec is not None and spec["mark"]["type"] == "line"
    assert spec["encoding"]["x"]["timeUnit"] == "utcyear"
    assert sorted(spec["encoding"]["color"]["sort"]) == regions
    svg = chart_svg(table, fields)
    assert svg is not None
    _no_repeated_ticks(svg)
    texts = _texts(svg)
    assert all(texts.count(r) == 1 for r in regions)  # each region once, in the legend


def test_charts_render_without_a_network() -> None:
    """vl-convert carries Vega-Lite and its engine: a process with no network at all (a new
    network namespace, only loopback and down) still draws."""
    if (
        shutil.which("unshare") is None
        or subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False).returncode
    ):
        pytest.skip("unshare cannot make a network namespace here")
    script = (
        "import pyarrow as pa\n"
        "from assay.ai.chart import chart_svg\n"
        "svg = chart_svg(pa.table({'r': ['ASIA'], 'v': [2.0]}),"
        " {'r': {'label': 'Region', 'is_dimension': True}})\n"
        "print('Region' in svg and 'ASIA' in svg)\n"
    )
    done = subprocess.run(
        ["unshare", "-rn", sys.executable, "-c", script], capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.stdout.strip() == "True", done.stderr
