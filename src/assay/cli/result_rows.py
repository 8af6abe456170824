"""``assay query`` on an unpivoted result: the rows as people read them (CLI layer).

The Arrow result carries Omni's helper columns (``$omni_...``) for programs; a person needs
none of them, but does need to see which rows are totals: a totals row's rolled-up dimension
cells are NULL, indistinguishable from a NULL value. So the helpers are dropped, and the
terminal table labels each totals row in its first rolled-up dimension cell (``Total``, or
``Subtotal`` after the dimensions it totals) and prints it bold. CSV and JSON keep the totals
rows as the ``resultType`` documents do: without helpers, the rolled-up cells empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

INDICATOR = "$omni_column_total_indicator"
HELPER_PREFIX = "$omni_"
GRAND_TOTAL = "column_total"
SUBTOTAL = "column_subtotal::"


@dataclass(frozen=True, slots=True)
class Readable:
    """The rows to print, and which of them are totals rows (indexes, for styling)."""

    table: pa.Table
    totals: tuple[int, ...]


def without_helpers(table: pa.Table) -> pa.Table:
    """``table`` without Omni's helper columns (every name starting ``$omni_``)."""
    kept = [n for n in table.column_names if not n.startswith(HELPER_PREFIX)]
    return table if len(kept) == table.num_columns else table.select(kept)


def readable(table: pa.Table, fields: Mapping[str, Any], *, label: bool) -> Readable:
    """``table`` without helpers; with ``label``, each totals row says so in its first
    rolled-up dimension cell (the table's dimension columns are turned to text for it).

    ``fields``: ``summary.fields`` (which columns are dimensions)."""
    import pyarrow as pa

    from assay.results.row_kinds import with_sidecars_merged

    kinds = table.column(INDICATOR).to_pylist() if INDICATOR in table.column_names else []
    totals = tuple(i for i, kind in enumerate(kinds) if kind)
    # a raw SQL totals row: each total under its own column
    shown = without_helpers(with_sidecars_merged(table, fields))
    if not label or not totals:
        return Readable(shown, totals)
    names = shown.column_names
    dims = [n for n in names if (fields.get(n) or {}).get("is_dimension")]
    if not dims:
        return Readable(shown, totals)
    columns = {n: shown.column(n).to_pylist() for n in dims}
    for i in totals:
        kind = str(kinds[i])
        if kind.startswith(SUBTOTAL):
            keyed = kind.removeprefix(SUBTOTAL)
            after = dims[dims.index(keyed) + 1 :] if keyed in dims else dims
            target, text = (after or dims)[0], "Subtotal"
        else:  # the first empty cell (a raw SQL total may fill the first column)
            empty = [n for n in dims if columns[n][i] is None]
            if not empty:
                continue
            target, text = empty[0], "Total"
        columns[target][i] = text
    for name in dims:
        values = [None if v is None else str(v) for v in columns[name]]
        shown = shown.set_column(names.index(name), name, pa.array(values, pa.string()))
    return Readable(shown, totals)
