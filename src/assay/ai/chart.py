"""A PNG chart of an answer's main result, drawn without a plotting library.

One category column (the first string or date column) against one value column (the first
numeric one): bars, or a line when the categories are dates and there are more than 12.
A tiny 3x5 bitmap font labels the axis ticks, the categories and the title. The output is a
pure function of the input: the same table gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import struct
import zlib
from decimal import Decimal
from typing import Any

import pyarrow as pa

WIDTH, HEIGHT = 800, 450
LEFT, RIGHT, TOP, BOTTOM = 80, 24, 40, 56
MAX_BARS = 60
SCALE = 2  # font pixels per glyph pixel
ADVANCE = 4 * SCALE  # 3 pixels wide plus a gap

Color = tuple[int, int, int]
WHITE: Color = (255, 255, 255)
INK: Color = (40, 40, 40)
AXIS: Color = (110, 110, 110)
GRID: Color = (228, 228, 228)
BAR: Color = (66, 120, 200)
NEGATIVE: Color = (205, 80, 64)

_GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001001001001", "8": "111101111101111",
    "9": "111101111001111", "A": "010101111101101", "B": "110101110101110",
    "C": "011100100100011", "D": "110101101101110", "E": "111100110100111",
    "F": "111100110100100", "G": "011100101101011", "H": "101101111101101",
    "I": "111010010010111", "J": "001001001101010", "K": "101101110101101",
    "L": "100100100100111", "M": "101111111101101", "N": "110101101101101",
    "O": "010101101101010", "P": "110101110100100", "Q": "010101101110011",
    "R": "110101110101101", "S": "011100010001110", "T": "111010010010010",
    "U": "101101101101111", "V": "101101101101010", "W": "101101111111101",
    "X": "101101010101101", "Y": "101101010010010", "Z": "111001010100111",
    "-": "000000111000000", ".": "000000000000010", ",": "000000000010100",
    ":": "000010000010000", "$": "011110010011110", "%": "101001010100101",
    "#": "101111101111101", "/": "001001010100100", "(": "010100100100010",
    ")": "010001001001010", "+": "000010111010000", "&": "010101010101011",
    "'": "010010000000000", "_": "000000000000111", " ": "000000000000000",
    "?": "111001010000010",
}  # fmt: skip


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(WHITE) * (width * height))

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """Fill the pixels x0 <= x < x1, y0 <= y < y1 (clipped to the canvas)."""
        x0, x1 = max(0, min(x0, x1)), min(self.width, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.height, max(y0, y1))
        if x0 >= x1:
            return
        run = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * self.width + x0) * 3
            self.pixels[start : start + len(run)] = run

    def line(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """A two-pixel-thick straight line (Bresenham)."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        while True:
            self.rect(x0, y0, x0 + 2, y0 + 2, color)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def text(self, x: int, y: int, text: str, color: Color = INK) -> None:
        for ch in text.upper():
            bits = _GLYPHS.get(ch, _GLYPHS["?"])
            for i, bit in enumerate(bits):
                if bit == "1":
                    px, py = x + (i % 3) * SCALE, y + (i // 3) * SCALE
                    self.rect(px, py, px + SCALE, py + SCALE, color)
            x += ADVANCE

    def png(self) -> bytes:
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * stride : (y + 1) * stride]) for y in range(self.height)
        )
        ihdr = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(raw, 9))
            + _chunk(b"IEND", b"")
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _is_number(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def _is_date(t: pa.DataType) -> bool:
    return bool(pa.types.is_date(t) or pa.types.is_timestamp(t))


def _is_category(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return True
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or _is_date(t))


def chart_png(table: pa.Table, labels: list[str]) -> bytes | None:
    """A PNG chart of ``table``, or None when there is nothing to chart: no rows, no numeric
    column, or a single number (the ``/vis`` endpoint answers 422 then)."""
    types = [f.type for f in table.schema]
    cat = next((i for i, t in enumerate(types) if _is_category(t)), None)
    nums = [i for i, t in enumerate(types) if _is_number(t)]
    if cat is None and len(nums) >= 2 and table.num_rows > 1:
        cat = nums.pop(0)  # a numeric dimension (a size, a year) ahead of the measure
    if cat is None or not nums or table.num_rows == 0:
        return None
    val = nums[0]
    cats = table.column(cat).to_pylist()
    vals = [_number(v) for v in table.column(val).to_pylist()]
    if _is_date(types[cat]) and len(cats) > 12:
        order = sorted(range(len(cats)), key=lambda i: (cats[i] is None, str(cats[i])))
        cats, vals = [cats[i] for i in order], [vals[i] for i in order]
        kind = "line"
    else:
        cats, vals = cats[:MAX_BARS], vals[:MAX_BARS]
        kind = "bar"
    names = _category_names(cats)
    title = _label(labels, val) + " by " + _label(labels, cat)
    if kind == "bar" and table.num_rows > MAX_BARS:
        title += f" (first {MAX_BARS})"
    return _draw(kind, names, vals, title)


def _draw(kind: str, names: list[str], vals: list[float | None], title: str) -> bytes:
    c = _Canvas(WIDTH, HEIGHT)
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    finite = [v for v in vals if v is not None]
    lo, hi = min([0.0, *finite]), max([0.0, *finite])
    ticks = _ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])

    def y_of(v: float) -> int:
        return round(y1 - (v - lo) / (hi - lo) * (y1 - y0))

    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    for t in ticks:
        y = y_of(t)
        c.rect(x0, y, x1, y + 1, GRID)
        text = _short(t, step)
        c.text(x0 - 8 - len(text) * ADVANCE, y - 5, text, AXIS)
    c.text(x0, 12, _fit(title, (x1 - x0) // ADVANCE))
    n = len(names)
    slot = (x1 - x0) / max(n, 1)
    every = max(1, math.ceil(6 * ADVANCE / slot))
    if kind == "line" and n > 1:
        every = max(1, math.ceil(12 * ADVANCE / slot))
    zero = y_of(0.0)
    points: list[tuple[int, int]] = []
    for i, (name, v) in enumerate(zip(names, vals, strict=True)):
        centre = x0 + slot * (i + 0.5)
        if v is not None and kind == "bar":
            half = max(0.5, slot * 0.35)
            top, bottom = sorted((y_of(v), zero))
            color = NEGATIVE if v < 0 else BAR
            c.rect(round(centre - half), top, round(centre + half), max(bottom, top + 1), color)
        elif v is not None:
            points.append((round(centre), y_of(v)))
        if i % every == 0:
            room = max(1, int(slot * every) // ADVANCE - 1)
            label = _fit(name, room)
            c.text(round(centre - len(label) * ADVANCE / 2), y1 + 10, label, AXIS)
    for (ax, ay), (bx, by) in itertools.pairwise(points):
        c.line(ax, ay, bx, by, BAR)
    if len(points) == 1:
        px, py = points[0]
        c.rect(px - 2, py - 2, px + 3, py + 3, BAR)
    c.rect(x0, y0, x0 + 1, y1 + 1, AXIS)
    c.rect(x0, zero, x1, zero + 1, AXIS)
    return c.png()


def _ticks(lo: float, hi: float) -> list[float]:
    """About five round tick values covering [lo, hi]."""
    if hi - lo <= 0:
        hi = lo + 1
    raw = (hi - lo) / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    out = [start]
    while out[-1] < hi - step * 1e-9:
        out.append(start + step * len(out))
    return [round(t, 12) for t in out]


def _short(value: float, step: float) -> str:
    """A tick value in a few characters: 1.5B, 300M, 20K, 0.25."""
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= div or (value == 0 and step >= div):
            if value == 0:
                return "0"
            digits = max(0, -math.floor(math.log10(step / div) + 1e-9)) if step < div else 0
            return f"{value / div:.{min(digits, 3)}f}{suffix}"
    digits = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    return f"{value:.{min(digits, 6)}f}"


def _number(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    f = float(v) if isinstance(v, (int, float, Decimal)) else None
    return f if f is not None and math.isfinite(f) else None


def _category_names(cats: list[Any]) -> list[str]:
    dates = [c for c in cats if isinstance(c, dt.date)]
    if dates and len(dates) == len([c for c in cats if c is not None]):
        yearly = all(d.month == 1 and d.day == 1 for d in dates)
        monthly = all(d.day == 1 for d in dates)
        fmt = "%Y" if yearly else "%Y-%m" if monthly else "%Y-%m-%d"
        return [c.strftime(fmt) if isinstance(c, dt.date) else "NULL" for c in cats]
    return ["NULL" if c is None else str(c) for c in cats]


def _label(labels: list[str], i: int) -> str:
    return labels[i] if i < len(labels) else f"column {i + 1}"


def _fit(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(chars - 1, 0)] + "."
