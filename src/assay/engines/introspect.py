"""Reading a database's shape (tables, columns, keys) for starter models.

The shape classes are defined in ``semantic.starter`` (the semantic layer may not import
engines) and re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assay.engines.duckdb import DuckDBEngine
from assay.semantic.starter import Column, DatabaseShape, ForeignKey, Table

__all__ = ["Column", "DatabaseShape", "ForeignKey", "Table", "describe_duckdb"]

# Assay's own bookkeeping table in the demo database, never part of a user's model.
ASSAY_TABLES = frozenset({"assay_demo"})
SYSTEM_SCHEMAS = ("information_schema", "pg_catalog")

_SYSTEM = ", ".join(f"'{s}'" for s in SYSTEM_SCHEMAS)
_WHERE = "{catalog} = current_database() AND {schema} NOT IN (" + _SYSTEM + ")"


def describe_duckdb(engine: DuckDBEngine, schema: str | None = None) -> DatabaseShape:
    """Tables and views of the engine's database (one schema, or all but system schemas)
    with their columns, primary keys, unique keys and foreign keys."""
    params: list[Any] = []
    only = ""
    if schema is not None:
        only, params = " AND table_schema = ?", [schema]
    where = _WHERE.format(catalog="table_catalog", schema="table_schema") + only
    tables = _rows(
        engine,
        f"SELECT table_schema, table_name, table_type FROM information_schema.tables "
        f"WHERE {where} ORDER BY table_schema, table_name",
        params,
    )
    columns = _rows(
        engine,
        f"SELECT table_schema, table_name, column_name, data_type, is_nullable "
        f"FROM information_schema.columns WHERE {where} "
        f"ORDER BY table_schema, table_name, ordinal_position",
        params,
    )
    constraints = _rows(
        engine,
        "SELECT schema_name, table_name, constraint_type, constraint_column_names, "
        "referenced_table, referenced_column_names FROM duckdb_constraints() "
        f"WHERE {_WHERE.format(catalog='database_name', schema='schema_name')} "
        "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY') "
        "ORDER BY schema_name, table_name, constraint_index",
    )
    cols: dict[tuple[str, str], list[Column]] = {}
    for row in columns:
        key = (row["table_schema"], row["table_name"])
        nullable = str(row["is_nullable"]).upper() != "NO"
        cols.setdefault(key, []).append(Column(row["column_name"], row["data_type"], nullable))
    pks: dict[tuple[str, str], tuple[str, ...]] = {}
    uniques: dict[tuple[str, str], list[tuple[str, ...]]] = {}
    fks: dict[tuple[str, str], list[ForeignKey]] = {}
    for row in constraints:
        key = (row["schema_name"], row["table_name"])
        names = tuple(row["constraint_column_names"] or ())
        kind = row["constraint_type"]
        if kind == "PRIMARY KEY":
            pks[key] = names
        elif kind == "UNIQUE":
            uniques.setdefault(key, []).append(names)
        elif row["referenced_table"]:
            # DuckDB refuses foreign keys across schemas: the referenced table is a neighbour.
            fks.setdefault(key, []).append(
                ForeignKey(
                    columns=names,
                    referenced_table=row["referenced_table"],
                    referenced_columns=tuple(row["referenced_column_names"] or ()),
                    referenced_schema=row["schema_name"],
                )
            )
    out = []
    for row in tables:
        key = (row["table_schema"], row["table_name"])
        if row["table_name"].lower() in ASSAY_TABLES or key not in cols:
            continue
        out.append(
            Table(
                schema=key[0],
                name=key[1],
                columns=tuple(cols[key]),
                primary_key=pks.get(key, ()),
                foreign_keys=tuple(fks.get(key, ())),
                unique_keys=tuple(uniques.get(key, ())),
                is_view=row["table_type"] == "VIEW",
            )
        )
    current = _rows(engine, "SELECT current_schema() AS s")
    return DatabaseShape(tables=tuple(out), default_schema=current[0]["s"] if current else "main")


def _rows(engine: DuckDBEngine, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = engine.execute(sql, params).to_pylist()
    return rows
