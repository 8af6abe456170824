"""The row limit of a result whose rows are of several kinds (detail rows, subtotals, a grand
total): each kind gets ``limit`` rows, and only detail rows (kind NULL) tell whether the limit
cut the result (``row_limit_reached``).

The query is run with one row more per kind than shown, so the rows past the limit are the
last of each kind in the stream, wherever the kinds are interleaved.
"""

from __future__ import annotations

import re
from collections.abc import Collection

import pyarrow as pa
import pyarrow.compute as pc

#: Every helper column of a result starts so; clients strip ``^\$omni_`` columns.
HELPER_PREFIX = "$omni_"
#: A raw SQL totals row's sidecar ends so (``<lower(column)>__omni_summ``, ``_1``... after)
SIDECAR = "__omni_summ"
_SIDECAR = re.compile(rf"{SIDECAR}(_\d+)?$")


def is_sidecar(name: str) -> bool:
    """Whether ``name`` has the form of a raw SQL totals sidecar (Omni's clients' pattern)."""
    return _SIDECAR.search(name) is not None


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


def with_sidecars_merged(table: pa.Table, fields: Collection[str]) -> pa.Table:
    """``table`` with each ``__omni_summ`` sidecar of a raw SQL totals row folded into its
    base column (the column just before it) and dropped: people read the totals row with
    each total under its column, as Omni's table shows it, rather than a NULL cell beside an
    extra column. Only columns ``fields`` (``summary.fields``) does not list are sidecars: a
    result column of the SQL's own keeps its place. A base column whose type cannot hold its
    sidecar's (the sum needed a wider type) is widened to it."""
    names = table.column_names
    sidecars = [
        i for i, name in enumerate(names) if i > 0 and is_sidecar(name) and name not in fields
    ]
    if not sidecars:
        return table
    for i in sidecars:
        base, side = table.column(i - 1), table.column(i)
        if base.type != side.type:
            base = base.cast(side.type)
        merged = pc.if_else(pc.is_valid(side), side, base)
        table = table.set_column(i - 1, names[i - 1], merged)
    dropped = set(sidecars)
    return table.select([i for i in range(len(names)) if i not in dropped])
