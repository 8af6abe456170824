"""The per-kind row limit of totals results: each kind of row keeps its first ``limit`` rows,
across batches, and only detail rows (kind NULL) beyond the limit count as the limit cutting."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from assay.results.arrow import write_stream
from assay.results.row_kinds import PerKindLimit

KIND = "$omni_column_total_indicator"


def batch(values: list[int], kinds: list[str | None]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(values), pa.array(kinds, pa.string())],
                                      names=["v", KIND])  # fmt: skip


def test_each_kind_keeps_its_first_rows_across_batches(tmp_path: Path) -> None:
    batches = [
        batch([1, 2, 3], [None, None, "sub"]),
        batch([4, 5, 6, 7], [None, "sub", "sub", "total"]),
    ]
    reader = pa.RecordBatchReader.from_batches(batches[0].schema, batches)
    written = write_stream(reader, tmp_path / "r.arrows", ["v", KIND], 2, limit_per=KIND)
    table = pa.ipc.open_stream(tmp_path / "r.arrows").read_all()
    assert table.column("v").to_pylist() == [1, 2, 3, 5, 7]
    assert written.limit_reached and written.rows == 5


def test_only_detail_rows_past_the_limit_say_the_limit_was_reached() -> None:
    kinds = PerKindLimit(1, 1)
    kinds.take(batch([1, 2, 3], [None, "sub", "sub"]))
    assert not kinds.details_cut
    kept = kinds.take(batch([4], [None]))
    assert kept.num_rows == 0 and kinds.details_cut


def test_no_limit_keeps_everything() -> None:
    kinds = PerKindLimit(None, 1)
    assert kinds.take(batch([1, 2], [None, None])).num_rows == 2 and not kinds.details_cut
