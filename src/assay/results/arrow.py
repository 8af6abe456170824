"""Arrow results: engine batches -> an IPC stream file -> base64 (Omni's ``result``), CSV,
JSON or XLSX.

Results are written batch by batch and streamed back in chunks, so a large result never has
to sit in memory whole, neither as Arrow nor as base64 text.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import functools
import io
import itertools
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
import pybase64
import xlsxwriter

from assay.errors import ResultsUnwritable, ResultTooLarge
from assay.results.row_kinds import PerKindLimit

# 3 bytes become 4 base64 characters: reading multiples of 3 lets chunks be encoded alone.
_B64_CHUNK = 3 * 256 * 1024


@dataclass(frozen=True, slots=True)
class Written:
    """What was written: rows kept, bytes on disk, whether the row limit cut rows, and the
    columns' types (so that no one reads the file back to learn them)."""

    rows: int
    bytes: int
    limit_reached: bool
    schema: pa.Schema


# The end-of-stream marker closing an Arrow IPC stream: counted in the size cap.
_EOS_BYTES = 8


def write_stream(
    reader: pa.RecordBatchReader,
    path: Path,
    columns: Sequence[str] | None,
    limit: int | None,
    *,
    max_bytes: int | None = None,
    limit_per: str | None = None,
    compression: str | None = None,
) -> Written:
    """Write ``reader``'s batches to ``path`` as an Arrow IPC stream, renaming the columns by
    position (databases may truncate or refuse field names as aliases) and keeping at most
    ``limit`` rows; the query asked for one row more, which tells whether the limit cut rows.
    ``columns`` None keeps the names the database gave (raw SQL).

    The file is written under a temporary name and renamed when whole, so ``path`` is either
    the complete result or absent; on any failure the partial file is removed.

    ``max_bytes`` caps the file: a batch that would take the stream past it is not written
    and ``ResultTooLarge`` is raised (the caller cancels the query). It fails rather than
    truncates because Omni's result has a truncation signal only for row limits
    (``summary.row_limit_reached``): a result cut at a byte count would look complete.

    Errors writing the file (disk full, read-only or removed folder ...) raise
    ``ResultsUnwritable`` naming the folder and the system's reason; errors of the engine's
    reader pass through unchanged, so the two are never confused.

    ``limit_per``: a column whose values are kinds of rows, each limited on its own
    (``row_kinds``).

    ``compression`` (``zstd`` or ``lz4``): the record batches' buffers are compressed, as the
    Arrow IPC format provides, when the result is not small (``COMPRESS_FROM_BYTES`` in its
    first batch, or more than one batch); every Arrow reader with the codec reads them as
    it reads any stream (pyarrow, which all of Omni's Python clients use, always has it).
    The cap counts the result's Arrow bytes as if uncompressed: what a reader holds once it
    has read it, whatever the file's size.
    """
    names = reader.schema.names if columns is None else columns
    schema = pa.schema(
        [pa.field(name, f.type, f.nullable) for name, f in zip(names, reader.schema, strict=True)]
    )
    tmp = path.with_name(path.name + ".tmp")
    try:
        kinds = None if limit_per is None else PerKindLimit(limit, list(names).index(limit_per))
        rows, cut, size = _write(reader, tmp, schema, limit, max_bytes, kinds, compression)
        with _storing(path.parent):
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # e.g. the folder itself is gone
            tmp.unlink(missing_ok=True)
        raise
    return Written(rows, size, cut, schema)


def _write(
    reader: pa.RecordBatchReader,
    tmp: Path,
    schema: pa.Schema,
    limit: int | None,
    max_bytes: int | None,
    kinds: PerKindLimit | None = None,
    compression: str | None = None,
) -> tuple[int, bool, int]:
    """The stream into ``tmp``: rows written, whether the limit cut rows, and its bytes."""
    rows = 0
    cut = False
    batches, compressed = _compressing(iter(reader), compression)
    options = pa.ipc.IpcWriteOptions(compression=compression if compressed else None)
    # The result's Arrow bytes as if uncompressed (what the cap counts): the schema message
    # goes out with the first batch, so it is counted before that batch.
    arrow = 0 if max_bytes is None else _stream_bytes(schema) - _EOS_BYTES
    with _storing(tmp.parent):
        sink = pa.OSFile(str(tmp), "wb")
    try:
        with _storing(tmp.parent):
            writer = pa.ipc.new_stream(sink, schema, options=options)
        for batch in batches:  # outside _storing: an engine's error is not the disk's
            part = batch
            if kinds is not None:
                part = kinds.take(batch)
                cut = kinds.details_cut
            elif limit is not None and rows + batch.num_rows > limit:
                part = batch.slice(0, limit - rows)
                cut = True
            if part.num_rows:
                out = pa.RecordBatch.from_arrays(part.columns, schema=schema)
                if max_bytes is not None:
                    arrow += pa.ipc.get_record_batch_size(out)
                    if arrow + _EOS_BYTES > max_bytes:
                        raise ResultTooLarge(max_bytes)
                with _storing(tmp.parent):
                    writer.write_batch(out)
                # Dictionary batches are not in the count above: the file itself decides.
                if max_bytes is not None and sink.tell() + _EOS_BYTES > max_bytes:
                    raise ResultTooLarge(max_bytes)
                rows += part.num_rows
            if cut and kinds is None:
                break
        with _storing(tmp.parent):
            writer.close()
        size = sink.tell()
    finally:
        with contextlib.suppress(OSError):  # the error that matters is already on its way
            sink.close()
    return rows, cut, size


#: the first batch's size from which a result is written compressed (when a codec is set)
COMPRESS_FROM_BYTES = 64 * 1024


def _compressing(
    batches: Iterator[pa.RecordBatch], compression: str | None
) -> tuple[Iterator[pa.RecordBatch], bool]:
    """The batches again, and whether to compress them: a codec is set and the result is not
    small. A small one is left as it is: compressing it would save nothing worth its time.
    (Deciding reads up to two batches ahead: they are written next in any case.)"""
    if compression is None:
        return batches, False
    ahead: list[pa.RecordBatch] = []
    for batch in batches:
        ahead.append(batch)
        if batch.nbytes >= COMPRESS_FROM_BYTES or len(ahead) == 2:
            return itertools.chain(ahead, batches), True
    return iter(ahead), False


@functools.lru_cache(maxsize=256)
def _stream_bytes(schema: pa.Schema) -> int:
    """The size of an empty stream of ``schema``: its schema message and end marker (kept
    per schema: a query asked again has the same one, and writing it costs a new stream)."""
    out = pa.BufferOutputStream()
    with pa.ipc.new_stream(out, schema):
        pass
    return int(out.tell())


@contextlib.contextmanager
def _storing(folder: Path) -> Iterator[None]:
    """System errors of writing into ``folder`` become ``ResultsUnwritable``, naming the
    folder, the reason (``No space left on device``) and what to do about it."""
    try:
        yield
    except OSError as exc:
        raise results_unwritable(folder, exc) from exc


_ADVICE = {
    errno.ENOSPC: "free space on its disk (or move Assay's home to a larger one)",
    errno.EDQUOT: "raise the disk quota of the server's user, or free space",
    errno.EFBIG: "allow larger files there, or lower max_result_bytes",
    errno.EROFS: "mount it read-write",
    errno.EACCES: "give the server's user write access to it",
    errno.EPERM: "give the server's user write access to it",
    errno.ENOENT: "create it again (it was removed while the server ran), or restart the server",
}


def results_unwritable(folder: Path, exc: OSError) -> ResultsUnwritable:
    """The error for a failed write into the results folder. The reason is the system's
    own words for the errno (Arrow wraps them in longer text), else the exception's text."""
    reason = os.strerror(exc.errno) if exc.errno else (str(exc) or type(exc).__name__)
    advice = _ADVICE.get(exc.errno or 0, "make sure it exists, is writable and has free space")
    return ResultsUnwritable(
        f"Cannot write the query's result to the results folder {folder}: {reason}. "
        f"To fix it, {advice}; then run the query again."
    )


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


def read_table(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).read_all()


def base64_size(size: int) -> int:
    """The length of the base64 text of ``size`` bytes (padded, no line breaks)."""
    return (size + 2) // 3 * 4


def base64_chunks(path: Path, size: int | None = None) -> Iterator[bytes]:
    """The file's bytes as base64, in chunks that concatenate to the whole encoding.

    pybase64 (SIMD) encodes a 1M-row result's 44 MB in about 8 ms where the standard
    library takes 160 ms, in chunks that stay in the CPU's cache (bench/wire.py). The file is
    read into one reused buffer. ``size``: the length the caller announced (a Content-Length
    was computed from it); a file that turns out shorter or longer raises ``OSError`` rather
    than yield a body that silently differs from the announced one.
    """
    # no bigger than the file: a fresh 768 KiB buffer costs more than a small answer's encoding
    chunk = _B64_CHUNK if size is None else min(_B64_CHUNK, max(3, -(-size // 3) * 3))
    view = memoryview(bytearray(chunk))
    read = 0
    with open(path, "rb", buffering=0) as f:
        while n := _fill(f, view):
            read += n
            yield pybase64.b64encode(view[:n])
            if n < len(view):
                break
    if size is not None and read != size:
        raise OSError(f"result file {path.name} has {read} bytes, not the {size} announced")


def _fill(f: io.RawIOBase, view: memoryview) -> int:
    """Fill ``view`` from ``f`` (fewer bytes only at the end of the file): every chunk but
    the last must be a multiple of 3 bytes for the encoded chunks to concatenate."""
    filled = 0
    while filled < len(view) and (n := f.readinto(view[filled:])):
        filled += n
    return filled


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


def unique_labels(labels: Sequence[str]) -> list[str]:
    """Repeated labels made unique as Omni's JSON keys are: ``Complete``, ``Complete (2)``."""
    keys: list[str] = []
    for label in labels:
        key, n = label, 2
        while key in keys:
            key, n = f"{label} ({n})", n + 1
        keys.append(key)
    return keys


def to_json_rows(table: pa.Table, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Rows keyed by display label, as Omni's ``resultType: json`` (labels made unique)."""
    keys = unique_labels(labels)
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
