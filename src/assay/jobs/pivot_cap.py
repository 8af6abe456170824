"""The row cap of a pivoted job: ``limit`` counts pivot rows, each of several SQL rows.

A job runs its query asking for one row more than the limit, to tell whether the limit cut
rows (``summary.row_limit_reached``). For a pivoted query that extra row is a whole pivot
row: its cells are dropped here, by their ``$omni_pivot_row_num``, and their presence is
the signal (jobs layer: wraps an engine's running query).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pyarrow as pa
import pyarrow.compute as pc

from assay.engines.base import RunningQuery
from assay.results.arrow import Written
from assay.semantic.compiler import CompiledQuery
from assay.semantic.compiler.pivot import ROW_NUM


class PivotRowCap:
    """A running pivoted query that yields only the cells of pivot rows 1..``last_row``."""

    def __init__(self, handle: RunningQuery, row_column: int, last_row: int) -> None:
        self.handle = handle
        self.row_column = row_column
        self.last_row = last_row
        self.cut = False

    def reader(self) -> pa.RecordBatchReader:
        inner = self.handle.reader()

        def kept() -> Iterator[pa.RecordBatch]:
            for batch in inner:
                mask = pc.less_equal(batch.column(self.row_column), self.last_row)
                part = batch.filter(mask)
                if part.num_rows < batch.num_rows:
                    self.cut = True
                if part.num_rows:
                    yield part

        return pa.RecordBatchReader.from_batches(inner.schema, kept())

    def cancel(self) -> None:
        self.handle.cancel()


def pivot_capped(handle: RunningQuery, shown: CompiledQuery) -> RunningQuery:
    """``handle``, capped at ``shown``'s pivot rows when it is a limited pivoted query."""
    if not shown.pivots or shown.limit is None:
        return handle
    return PivotRowCap(handle, shown.columns.index(ROW_NUM), shown.limit)


def with_pivot_cut(written: Written, handle: RunningQuery) -> Written:
    """``written``, saying the limit cut rows when the cap dropped a pivot row."""
    if isinstance(handle, PivotRowCap) and handle.cut:
        return replace(written, limit_reached=True)
    return written
