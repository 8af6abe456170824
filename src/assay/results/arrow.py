"""Arrow results: engine batches -> an IPC stream file -> base64 (Omni's ``result``), CSV,
JSON or XLSX.

Results are written batch by batch and streamed back in chunks, so a large result never has
to sit in memory whole, neither as Arrow nor as base64 text.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import xlsxwriter

# 3 bytes become 4 base64 characters: reading multiples of 3 lets chunks be encoded alone.
_B64_CHUNK = 3 * 256 * 1024


@dataclass(frozen=True, slots=True)
class Written:
    """What was written: rows kept, bytes on disk, and whether the row limit cut rows."""

    rows: int
    bytes: int
    limit_reached: bool


def write_stream(
    reader: pa.RecordBatchReader, path: Path, columns: Sequence[str], limit: int | None
) -> Written:
    """Write ``reader``'s batches to ``path`` as an Arrow IPC stream, renaming the columns by
    position (databases may truncate or refuse field names as aliases) and keeping at most
    ``limit`` rows; the query asked for one row more, which tells whether the limit cut rows.
    """
    schema = pa.schema(
        [pa.field(name, f.type, f.nullable) for name, f in zip(columns, reader.schema, strict=True)]
    )
    rows = 0
    cut = False
    tmp = path.with_name(path.name + ".tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for batch in reader:
            part = batch
            if limit is not None and rows + batch.num_rows > limit:
                part = batch.slice(0, limit - rows)
                cut = True
            if part.num_rows:
                writer.write_batch(pa.RecordBatch.from_arrays(part.columns, schema=schema))
                rows += part.num_rows
            if cut:
                break
    os.replace(tmp, path)
    return Written(rows, path.stat().st_size, cut)


def arrow_data_type(kind: pa.DataType) -> str:
    """Omni's ``data_type`` for an Arrow column type."""
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "NUMBER"
    if pa.types.is_temporal(kind):
        return "TIMESTAMP" if not pa.types.is_duration(kind) else "INTERVAL"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "STRING"
    if pa.types.is_boolean(kind):
        return "BOOLEAN"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return "ARRAY"
    return "UNKNOWN"


def read_schema(path: Path) -> pa.Schema:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).schema


def read_table(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).read_all()


def base64_chunks(path: Path) -> Iterator[bytes]:
    """The file's bytes as base64, in chunks that concatenate to the whole encoding."""
    with open(path, "rb") as f:
        while chunk := f.read(_B64_CHUNK):
            yield base64.b64encode(chunk)


def to_csv(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pacsv.write_csv(table, out)
    return out.getvalue()


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def to_json_rows(table: pa.Table, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Rows keyed by display label, as Omni's ``resultType: json`` (labels made unique)."""
    keys: list[str] = []
    for label in labels:
        key, n = label, 2
        while key in keys:
            key, n = f"{label} ({n})", n + 1
        keys.append(key)
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return [
        {k: _plain(col[i]) for k, col in zip(keys, columns, strict=True)}
        for i in range(table.num_rows)
    ]


def to_json(table: pa.Table, labels: Sequence[str]) -> bytes:
    return json.dumps(to_json_rows(table, labels), separators=(",", ":")).encode()


def to_xlsx(table: pa.Table, labels: Sequence[str]) -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "remove_timezone": True})
    sheet = book.add_worksheet("Result")
    for c, label in enumerate(labels):
        sheet.write(0, c, label)
    for c in range(table.num_columns):
        for r, value in enumerate(table.column(c).to_pylist(), start=1):
            plain = _plain(value)
            if isinstance(plain, (list, dict)):
                plain = json.dumps(plain)
            sheet.write(r, c, plain)
    book.close()
    return out.getvalue()
