"""What a raw SQL job does differently in the runner (jobs layer): it runs on the engine's
read-only path, its result keeps the database's column names, and its ``summary.fields``
are made from the result's schema, since no model field describes them."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from assay.engines.base import Engine, RunningQuery
from assay.results.arrow import arrow_data_type
from assay.results.row_kinds import HELPER_PREFIX, is_sidecar
from assay.semantic.compiler import CompiledQuery
from assay.semantic.raw_sql import VerbatimQuery


def start_query(engine: Engine, compiled: CompiledQuery) -> RunningQuery:
    """Start ``compiled`` on ``engine``. Raw SQL goes through the engine's read-only path
    when it has one (a read-only transaction or connection): a second wall behind the
    statement check, in case the check and the database ever read a statement differently."""
    if isinstance(compiled, VerbatimQuery):
        read_only = getattr(engine, "start_read_only", None)
        if read_only is not None:
            return read_only(compiled.sql)  # type: ignore[no-any-return]
    return engine.start(compiled.sql)


def result_columns(compiled: CompiledQuery) -> list[str] | None:
    """The names the result's columns get: the fields' for a semantic query, the database's
    own (None) for raw SQL."""
    return None if isinstance(compiled, VerbatimQuery) else compiled.columns


def result_fields(schema: pa.Schema, *, totals: bool = False) -> dict[str, dict[str, Any]]:
    """``summary.fields`` of a raw SQL result: one entry per column, as the database named
    it, typed from the result (the same keys a model field has, with no view). With
    ``totals``, the sidecars and the indicator the totals row added are no fields (the SQL's
    own columns cannot have their names: ``raw_sql_totals`` refuses that)."""
    out: dict[str, dict[str, Any]] = {}
    for f in schema:
        if totals and (f.name.startswith(HELPER_PREFIX) or is_sidecar(f.name)):
            continue
        out.setdefault(
            f.name,
            {
                "field_name": f.name,
                "view_name": "",
                "fully_qualified_name": f.name,
                "label": f.name,
                "data_type": arrow_data_type(f.type),
                "is_dimension": True,
                "is_calc": False,
                "hidden": False,
            },
        )
    return out
