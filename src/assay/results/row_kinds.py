"""The row limit of a result whose rows are of several kinds (detail rows, subtotals, a grand
total): each kind gets ``limit`` rows, and only detail rows (kind NULL) tell whether the limit
cut the result (``row_limit_reached``).

The query is run with one row more per kind than shown, so the rows past the limit are the
last of each kind in the stream, wherever the kinds are interleaved.
"""

from __future__ import annotations

import pyarrow as pa

#: Every helper column of a result starts so; clients strip ``^\$omni_`` columns.
HELPER_PREFIX = "$omni_"


class PerKindLimit:
    """Keeps the first ``limit`` rows of each value of column ``index`` across batches."""

    def __init__(self, limit: int | None, index: int) -> None:
        self.limit = limit
        self.index = index
        self.seen: dict[object, int] = {}
        self.details_cut = False

    def take(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self.limit is None:
            return batch
        keep: list[bool] = []
        for kind in batch.column(self.index).to_pylist():
            n = self.seen.get(kind, 0) + 1
            self.seen[kind] = n
            keep.append(n <= self.limit)
            if kind is None and n > self.limit:
                self.details_cut = True
        return batch if all(keep) else batch.filter(pa.array(keep))


def without_helpers(table: pa.Table) -> pa.Table:
    """The table without its reserved ``$omni_`` helper columns: a rendered table (CSV, JSON,
    XLSX) shows the fields, and its totals rows read as such by their empty dimension cells,
    as Omni renders them."""
    keep = [name for name in table.column_names if not name.startswith(HELPER_PREFIX)]
    return table if len(keep) == table.num_columns else table.select(keep)
