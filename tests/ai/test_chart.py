"""The chart: a valid, deterministic PNG of a real result, or None for a single number."""

from __future__ import annotations

import datetime as dt
import struct
import zlib

import pyarrow as pa
import pytest

from assay.ai.chart import BAR, NEGATIVE, chart_png
from assay.ai.planner import plan
from assay.engines import DuckDBEngine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel


def _decode(png: bytes) -> tuple[int, int, bytes]:
    """Width, height and RGB pixels of an 8-bit RGB PNG, checking every chunk's CRC."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF, kind
        chunks.append((kind, data))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, color, _, _, _ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, color) == (8, 2)
    raw = zlib.decompress(b"".join(d for k, d in chunks if k == b"IDAT"))
    stride = width * 3 + 1
    assert len(raw) == height * stride
    assert all(raw[y * stride] == 0 for y in range(height))  # filter type None
    pixels = b"".join(raw[y * stride + 1 : (y + 1) * stride] for y in range(height))
    return width, height, pixels


def _count(pixels: bytes, color: tuple[int, int, int]) -> int:
    return sum(1 for i in range(0, len(pixels), 3) if tuple(pixels[i : i + 3]) == color)


def _result(q: str, model: SemanticModel, engine: DuckDBEngine) -> tuple[pa.Table, list[str]]:
    c = compile_query(model, plan(q, model).queries[0].query)
    return engine.execute(c.sql), [f.label for f in c.fields]


def test_bar_chart_of_a_real_result(tpch_model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    table, labels = _result("revenue by ship mode in 1996", tpch_model, tpch_engine)
    png = chart_png(table, labels)
    assert png is not None
    width, height, pixels = _decode(png)
    assert (width, height) == (800, 450)
    assert _count(pixels, BAR) > 10_000
    assert chart_png(table, labels) == png  # deterministic


def test_line_chart_for_many_dates(tpch_model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    table, labels = _result("monthly order count", tpch_model, tpch_engine)
    assert table.num_rows > 12
    png = chart_png(table, labels)
    assert png is not None
    _, _, pixels = _decode(png)
    drawn = _count(pixels, BAR)
    assert 0 < drawn < 10_000  # a thin line, not bars
    assert chart_png(table, labels) == png


def test_scalar_has_no_chart(tpch_model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    table, labels = _result("How many urgent orders were placed in 1996?", tpch_model, tpch_engine)
    assert table.num_rows == 1
    assert chart_png(table, labels) is None


def test_negative_values_and_edge_cases() -> None:
    table = pa.table({"k": ["a", "b", "c"], "v": [3.5, -2.0, None]})
    png = chart_png(table, ["Thing", "Profit"])
    assert png is not None
    _, _, pixels = _decode(png)
    assert _count(pixels, NEGATIVE) > 0 and _count(pixels, BAR) > 0
    assert chart_png(pa.table({"k": ["a", "b"], "s": ["x", "y"]}), ["K", "S"]) is None
    assert chart_png(pa.table({"k": pa.array([], pa.string()), "v": pa.array([], pa.int64())}),
                     ["K", "V"]) is None  # fmt: skip
    all_zero = chart_png(pa.table({"k": ["a"], "v": [0]}), ["K", "V"])
    assert all_zero is not None
    _decode(all_zero)


@pytest.mark.parametrize("n", [1, 12, 13, 400])
def test_dates_of_any_length(n: int) -> None:
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    table = pa.table({"d": days, "v": [float(i % 7 - 3) for i in range(n)]})
    png = chart_png(table, ["Day", "Delta"])
    assert png is not None
    _decode(png)
