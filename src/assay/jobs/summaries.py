"""What a job's answer says about its result, in Omni's words: the ``summary`` (SQL, fields
and their types, row counts, cache type) and the ``cache_metadata``, and the key a result is
cached under."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from assay.jobs.model import CachedResult
from assay.jobs.raw_sql_jobs import result_fields
from assay.results.arrow import Written, arrow_data_type
from assay.semantic.compiler import CompiledQuery
from assay.semantic.model import SemanticModel
from assay.semantic.raw_sql import VerbatimQuery


def iso(ts: float) -> str:
    """A time as Omni writes it: UTC, milliseconds, a Z."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cache_key(model: SemanticModel, compiled: CompiledQuery) -> str:
    """Results are reused for the same SQL on the same version of the same model. Raw SQL
    has a key of its own: its result keeps the database's column names, a semantic query's
    the fields'. (Who may reuse it is checked before any lookup: raw SQL runs only for users
    the model's rules do not restrict, so their results do not depend on who asked.)"""
    kind = "verbatim" if isinstance(compiled, VerbatimQuery) else "semantic"
    text = f"{model.id}\0{model.version}\0{compiled.dialect}\0{kind}\0{compiled.sql}"
    if isinstance(compiled, VerbatimQuery) and compiled.totals_sql:  # a totals row too
        text += f"\0{compiled.totals_sql}"
    return hashlib.sha256(text.encode()).hexdigest()


def summary_of(
    compiled: CompiledQuery, written: Written | None, elapsed_ms: float | None
) -> dict[str, Any]:
    fields = {f.fully_qualified_name: f.to_dict() for f in compiled.fields}
    if written is not None and isinstance(compiled, VerbatimQuery):
        fields = result_fields(written.schema, totals=bool(compiled.totals))
    elif written is not None:
        fill_types(fields, written.schema)
    summary: dict[str, Any] = {
        "display_sql": compiled.pretty_sql(),
        "sql": compiled.sql,
        "fields": fields,
        "missing_fields": list(compiled.missing_fields),
        # Omni's flag for OmniSQL it could not parse; Assay refuses such SQL instead
        "omni_sql_parse_failed": False,
        "invalid_calculations": dict(compiled.invalid_calculations),
    }
    if compiled.warnings:  # e.g. a fill not made: said, never silently skipped
        summary["stage_summaries"] = [{"succeeded": True, "warnings": list(compiled.warnings)}]
    if written is not None:
        summary.update(
            total_rows=written.rows,
            execution_time_ms=round(elapsed_ms or 0.0, 3),
            cache_type="MISS",
        )
        if written.limit_reached:
            summary["row_limit_reached"] = True
    return summary


def fill_types(fields: dict[str, dict[str, Any]], schema: pa.Schema) -> None:
    """Fields whose type the model could not tell take it from the result's Arrow schema."""
    for f in schema:
        meta = fields.get(f.name)
        if meta is not None and "data_type" not in meta:
            meta["data_type"] = arrow_data_type(f.type)


def cache_metadata_of(result: CachedResult) -> dict[str, Any]:
    return {
        "num_rows": result.num_rows,
        "num_bytes": result.bytes,
        "computed_at": iso(result.computed_at),
        "expires_at": iso(result.expires_at),
        "cache_key": result.key,
    }
