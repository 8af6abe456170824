"""The totals row of a raw SQL job with ``column_totals``, laid out as Omni's ``__omni_summ``
sidecars (jobs layer: wraps the engine's running query, and runs the sums on the same
read-only path).

Omni's raw SQL has no fields to re-aggregate, so a totals row cannot put its values in the
base columns (their types and meaning are the SQL's): every base column is NULL on it, and
after each totaled column comes ``<lower(column)>__omni_summ`` (``_1``, ``_2``... when two
columns lower-case alike), NULL on data rows and the column's sum on the totals row, then
``$omni_column_total_indicator`` (``column_total`` on that row). The sums are computed by
the database over the SQL's whole result (``VerbatimQuery.totals_sql``), never over the rows
the 50,000-row cap keeps; the runner counts the totals row as a kind of its own, so
``row_limit_reached`` still speaks of data rows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa

from assay.engines.base import Engine, RunningQuery
from assay.errors import EngineError, InvalidQuery, QueryCancelled
from assay.results.row_kinds import HELPER_PREFIX, SIDECAR, is_sidecar
from assay.semantic.compiler import CompiledQuery
from assay.semantic.compiler.totals import GRAND_TOTAL_VALUE, INDICATOR
from assay.semantic.raw_sql import ROW_CAP, VerbatimQuery


@dataclass(frozen=True, slots=True)
class Sidecars:
    """Where the totals go: the output schema, and for each totaled column (in result
    order) its index among the base columns and its sidecar's name."""

    base: pa.Schema
    totaled: tuple[tuple[int, str], ...]

    def schema(self, types: Sequence[pa.DataType]) -> pa.Schema:
        """The result's schema, ``types`` being the sidecars' (in ``totaled`` order)."""
        after = {index: i for i, (index, _) in enumerate(self.totaled)}
        fields: list[pa.Field] = []
        for index, field in enumerate(self.base):
            fields.append(field)
            if index in after:
                i = after[index]
                fields.append(pa.field(self.totaled[i][1], types[i], nullable=True))
        fields.append(pa.field(INDICATOR, pa.string(), nullable=True))
        return pa.schema(fields)


def sidecars(base: pa.Schema, totals: Sequence[str]) -> Sidecars:
    """The sidecar layout for ``totals`` over a result of schema ``base``. Raises
    ``InvalidQuery`` naming a key that is no result column (listing them), one the result
    holds twice, one that is not numeric, and a result column that a helper's name would
    shadow (clients would take it for one)."""
    names = base.names
    for name in names:
        if name.startswith(HELPER_PREFIX) or is_sidecar(name):
            raise InvalidQuery(
                f"query.column_totals: the SQL's result column {name!r} has a name reserved "
                f"for totals ({HELPER_PREFIX}..., ...{SIDECAR}); rename it in the SQL"
            )
    wanted = set(totals)
    for key in totals:
        count = names.count(key)
        if count == 0:
            raise InvalidQuery(
                f"query.column_totals: {key!r} is not a column of the SQL's result "
                f"(its columns: {', '.join(repr(n) for n in names)})"
            )
        if count > 1:
            raise InvalidQuery(
                f"query.column_totals: the SQL's result has {count} columns named {key!r}; "
                "give them distinct names in the SQL"
            )
        kind = base.field(names.index(key)).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                or pa.types.is_decimal(kind)):  # fmt: skip
            raise InvalidQuery(
                f"query.column_totals: {key!r} is {kind}; only numeric columns can be totaled"
            )
    seen: dict[str, int] = {}
    totaled: list[tuple[int, str]] = []
    for index, name in enumerate(names):
        if name not in wanted:
            continue
        stem = name.lower() + SIDECAR
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        totaled.append((index, stem if n == 0 else f"{stem}_{n}"))
    return Sidecars(base, tuple(totaled))


class TotalsRow:
    """A running raw SQL job whose result gains the totals row: it yields the data rows (up
    to one past the cap, then stops reading them), each with NULL sidecars and indicator,
    then the totals row. The sums are read first, once the result's columns are known and
    checked: a sidecar takes its base column's Arrow type, unless its sum does not fit that
    type (an INTEGER column summing past 2^31), where it keeps the database's wider type."""

    def __init__(self, engine: Engine, handle: RunningQuery, compiled: VerbatimQuery) -> None:
        self.engine = engine
        self.handle = handle
        self.compiled = compiled
        self._lock = threading.Lock()
        self._sums: RunningQuery | None = None
        self._cancelled = False
        self._done = False

    def reader(self) -> pa.RecordBatchReader:
        inner = self.handle.reader()
        try:
            layout = sidecars(inner.schema, self.compiled.totals)
            sums = self._read_sums(layout)
        except BaseException:
            self.handle.cancel()  # its rows are not wanted: free the database's work
            raise
        schema = layout.schema([s.type for s in sums])
        return pa.RecordBatchReader.from_batches(schema, self._batches(inner, layout, schema, sums))

    def _read_sums(self, layout: Sidecars) -> list[pa.Array]:
        """Each totaled column's sum (one value), in the sidecars' order."""
        with self._lock:
            if self._cancelled:
                raise QueryCancelled("The query was cancelled by request")
            self._sums = _start(self.engine, self.compiled.totals_sql)
        table = self._sums.reader().read_all()
        if table.num_rows != 1 or table.num_columns != len(self.compiled.totals):
            raise EngineError(
                f"The column totals statement returned {table.num_rows} rows of "
                f"{table.num_columns} columns; expected one row of {len(self.compiled.totals)}"
            )
        summed = dict(zip(self.compiled.totals, table.columns, strict=True))
        return [
            _in_type_of(
                summed[layout.base.names[index]].combine_chunks(), layout.base.field(index).type
            )
            for index, _ in layout.totaled
        ]

    def _batches(
        self,
        inner: pa.RecordBatchReader,
        layout: Sidecars,
        schema: pa.Schema,
        sums: list[pa.Array],
    ) -> Iterator[pa.RecordBatch]:
        rows = 0
        for whole in inner:
            batch = whole
            if rows + batch.num_rows > ROW_CAP:  # one past the cap tells the cap cut rows
                batch = batch.slice(0, ROW_CAP + 1 - rows)
            rows += batch.num_rows
            yield _data_batch(batch, layout, schema)
            if rows > ROW_CAP:
                self.handle.cancel()  # the rest of the result is not streamed for no one
                break
        yield _totals_batch(layout, schema, sums)
        self._done = True

    def cancel(self) -> None:
        with self._lock:
            if self._done:
                return
            self._cancelled = True
            sums = self._sums
        self.handle.cancel()
        if sums is not None:
            sums.cancel()


def with_totals_row(engine: Engine, handle: RunningQuery, compiled: CompiledQuery) -> RunningQuery:
    """``handle``, gaining the totals row when ``compiled`` is raw SQL with column totals."""
    if isinstance(compiled, VerbatimQuery) and compiled.totals:
        return TotalsRow(engine, handle, compiled)
    return handle


def _start(engine: Engine, sql: str) -> RunningQuery:
    """``sql`` on the engine's read-only path, as the job's own statement runs."""
    read_only = getattr(engine, "start_read_only", None)
    if read_only is not None:
        return read_only(sql)  # type: ignore[no-any-return]
    return engine.start(sql)


def _in_type_of(value: pa.Array, kind: pa.DataType) -> pa.Array:
    """``value`` in the base column's type when it fits exactly, else as the database typed
    it (a cast that would overflow or round is never made)."""
    if value.type == kind:
        return value
    try:
        return value.cast(kind, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return value


def _data_batch(batch: pa.RecordBatch, layout: Sidecars, schema: pa.Schema) -> pa.RecordBatch:
    after = {index for index, _ in layout.totaled}
    columns: list[pa.Array] = []
    for index, column in enumerate(batch.columns):
        columns.append(column)
        if index in after:
            columns.append(pa.nulls(batch.num_rows, schema.field(len(columns)).type))
    columns.append(pa.nulls(batch.num_rows, pa.string()))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _totals_batch(layout: Sidecars, schema: pa.Schema, sums: list[pa.Array]) -> pa.RecordBatch:
    after = {index: i for i, (index, _) in enumerate(layout.totaled)}
    columns: list[pa.Array] = []
    for index, field in enumerate(layout.base):
        columns.append(pa.nulls(1, field.type))
        if index in after:
            columns.append(sums[after[index]])
    columns.append(pa.array([GRAND_TOTAL_VALUE], pa.string()))
    return pa.RecordBatch.from_arrays(columns, schema=schema)
