"""Load the TPC-H demo into PostgreSQL or MariaDB/MySQL from ``generate_parquet``'s files.

Tables get the DuckDB demo's names, columns and types (DECIMAL(15,2) stays exact, dates stay
DATE, keys keep their Parquet widths) plus primary keys. A marker table ``assay_demo`` is
written last, so a load that was interrupted is simply done again. PostgreSQL loads in one
transaction (its DDL is transactional): readers see the old data or the new, never half.
MySQL commits each DDL statement, so there the marker is dropped first.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from assay.demo.tpch import GENERATOR_VERSION, TABLES
from assay.engines.connect import open_engine
from assay.engines.urls import engine_kind
from assay.errors import ConfigError, EngineError, EngineUnavailable

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "region": ("r_regionkey",),
    "nation": ("n_nationkey",),
    "supplier": ("s_suppkey",),
    "customer": ("c_custkey",),
    "part": ("p_partkey",),
    "partsupp": ("ps_partkey", "ps_suppkey"),
    "orders": ("o_orderkey",),
    "lineitem": ("l_orderkey", "l_linenumber"),
}
# MariaDB joins through indexes (its default join buffer has no hash join): without these the
# demo's one-to-many joins scan orders once per customer, minutes instead of milliseconds.
JOIN_INDEXES: dict[str, list[tuple[str, ...]]] = {
    "nation": [("n_regionkey",)],
    "supplier": [("s_nationkey",)],
    "customer": [("c_nationkey",)],
    "partsupp": [("ps_suppkey",)],
    "orders": [("o_custkey",)],
    "lineitem": [("l_partkey", "l_suppkey"), ("l_suppkey",)],
}
MARKER = "assay_demo"


def load_tpch(url: str, files: dict[str, Path], scale: float) -> None:
    """Replace the TPC-H tables of the database at ``url`` with ``files``' data."""
    kind = engine_kind(url)
    if kind == "postgres":
        _load_postgres(url, files, scale)
    elif kind == "mariadb":
        _load_mysql(url, files, scale)
    else:
        raise ConfigError(f"The SQL demo loader does not load {kind} databases")


def is_current(url: str, scale: float) -> bool:
    """Whether the database holds a complete demo load at ``scale``. A database that cannot
    be reached raises ``EngineUnavailable`` (it is not merely out of date)."""
    engine = open_engine(url)
    try:
        rows = engine.execute(f"SELECT scale, generator FROM {MARKER}").to_pylist()
    except EngineUnavailable:
        raise
    except EngineError:
        return False
    finally:
        engine.close()
    if len(rows) != 1:
        return False
    return float(rows[0]["scale"]) == scale and rows[0]["generator"] == GENERATOR_VERSION


def _columns(schema: pa.Schema, text: Callable[[str], str]) -> list[str]:
    """Column definitions; ``text`` gives the string type for a column."""
    out = []
    for field in schema:
        kind = field.type
        if pa.types.is_int64(kind):
            sql = "BIGINT"
        elif pa.types.is_int32(kind):
            sql = "INTEGER"
        elif pa.types.is_decimal(kind):
            sql = f"DECIMAL({kind.precision},{kind.scale})"
        elif pa.types.is_date32(kind):
            sql = "DATE"
        elif pa.types.is_floating(kind):
            sql = "DOUBLE PRECISION"
        elif pa.types.is_string(kind) or pa.types.is_string_view(kind):
            sql = text(field.name)
        else:
            raise ConfigError(f"Unexpected TPC-H column type {field.name}: {kind}")
        out.append(f"{field.name} {sql}{'' if field.nullable else ' NOT NULL'}")
    return out


def _create(table: str, columns: list[str], suffix: str = "") -> str:
    key = ", ".join(PRIMARY_KEYS[table])
    return f"CREATE TABLE {table} ({', '.join(columns)}, PRIMARY KEY ({key})){suffix}"


# ---------------------------------------------------------------------- PostgreSQL


def _load_postgres(url: str, files: dict[str, Path], scale: float) -> None:
    """ADBC bulk ingest (binary COPY) into tables made first, keys added after the rows."""
    import adbc_driver_manager  # noqa: PLC0415

    from assay.engines.postgres import PostgresEngine  # noqa: PLC0415

    engine = PostgresEngine(url)
    conn = engine.connect(autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.execute("SET LOCAL synchronous_commit = off")
            cur.execute("SET LOCAL statement_timeout = 0")
            for table in (MARKER, *reversed(TABLES)):
                cur.execute(f"DROP TABLE IF EXISTS {table}")
            for table in TABLES:
                parquet = pq.ParquetFile(files[table])
                columns = _columns(parquet.schema_arrow, lambda _: "VARCHAR")
                cur.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
                batches = parquet.iter_batches(batch_size=128 * 1024)
                reader = pa.RecordBatchReader.from_batches(parquet.schema_arrow, batches)
                cur.adbc_ingest(table, reader, mode="append")
                cur.execute(
                    f"ALTER TABLE {table} ADD PRIMARY KEY ({', '.join(PRIMARY_KEYS[table])})"
                )
                cur.execute(f"ANALYZE {table}")
            cur.execute(f"CREATE TABLE {MARKER} (scale DOUBLE PRECISION, generator VARCHAR)")
            cur.execute(f"INSERT INTO {MARKER} VALUES ({scale!r}, '{GENERATOR_VERSION}')")
        conn.commit()
    except adbc_driver_manager.Error as exc:
        raise engine.translate(exc) from exc
    finally:
        conn.close()  # without the commit, the transaction and every change in it are gone
        engine.close()


# ---------------------------------------------------------------------- MySQL / MariaDB


def _load_mysql(url: str, files: dict[str, Path], scale: float) -> None:
    """Tables made, rows sent in bulk, then the join indexes built."""
    import pymysql.cursors  # noqa: PLC0415

    from assay.engines.mysql import MySQLEngine  # noqa: PLC0415

    engine = MySQLEngine(url)
    conn = engine.connect(local_infile=True)
    try:
        with conn.cursor(pymysql.cursors.Cursor) as cur:
            cur.execute(f"DROP TABLE IF EXISTS {MARKER}")
            timeout = "max_statement_time" if engine.server == "MariaDB" else "max_execution_time"
            cur.execute(f"SET SESSION unique_checks = 0, foreign_key_checks = 0, {timeout} = 0")
            for table in reversed(TABLES):
                cur.execute(f"DROP TABLE IF EXISTS {table}")
            with tempfile.TemporaryDirectory(prefix="assay-load-") as tmp:
                for table in TABLES:
                    _load_mysql_table(cur, table, files[table], Path(tmp) / f"{table}.csv")
            cur.execute(f"CREATE TABLE {MARKER} (scale DOUBLE, generator VARCHAR(64))")
            cur.execute(f"INSERT INTO {MARKER} VALUES (%s, %s)", (scale, GENERATOR_VERSION))
    except pymysql.Error as exc:
        raise engine.translate(exc) from exc
    finally:
        conn.close()
        engine.close()


def _load_mysql_table(cur: Any, table: str, parquet: Path, csv: Path) -> None:
    data = pq.read_table(parquet)
    text = [pa.types.is_string_view(f.type) or pa.types.is_string(f.type) for f in data.schema]
    data = data.cast(pa.schema([f.with_type(pa.string()) if t else f for f, t in
                                zip(data.schema, text, strict=True)]))  # fmt: skip
    widths = {}
    for name, column, is_text in zip(data.column_names, data.columns, text, strict=True):
        if column.null_count:  # a CSV cannot tell NULL from '' the way it is loaded here
            raise ConfigError(f"Unexpected NULLs in TPC-H column {table}.{name}")
        if is_text:
            widths[name] = max(1, pc.max(pc.utf8_length(column)).as_py() or 1)
    columns = _columns(data.schema, lambda name: f"VARCHAR({widths[name]})")
    # Binary collation: text compares and sorts by code point, as in DuckDB.
    suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    cur.execute(_create(table, columns, suffix))
    _send_rows(cur, table, data, csv)
    cur.execute("SHOW WARNINGS LIMIT 3")
    warnings = cur.fetchall()
    cur.execute(f"SELECT COUNT(*) FROM {table}")
    loaded = int(cur.fetchall()[0][0])
    if warnings or loaded != data.num_rows:
        raise EngineError(
            f"Loading {table} went wrong: {loaded} of {data.num_rows} rows, warnings {warnings}"
        )
    if table in JOIN_INDEXES:  # built after the rows are in: faster than row by row
        indexes = ", ".join(f"ADD INDEX ({', '.join(key)})" for key in JOIN_INDEXES[table])
        cur.execute(f"ALTER TABLE {table} {indexes}")
    cur.execute(f"ANALYZE TABLE {table}")
    cur.fetchall()


# The server or client refuses LOAD DATA LOCAL (MySQL 8 ships with local_infile=OFF):
# MySQL 1148 and 3948, MariaDB 4166, the client library 2068.
_LOCAL_INFILE_REFUSED = {1148, 2068, 3948, 4166}
INSERT_ROWS = 5000


def _send_rows(cur: Any, table: str, data: pa.Table, csv: Path) -> None:
    """``LOAD DATA LOCAL INFILE`` from a CSV written by Arrow (the server parses the rows),
    or, where the server refuses it, multi-row INSERTs (slower: every value passes Python)."""
    import pymysql  # noqa: PLC0415

    names = ", ".join(data.column_names)
    pacsv.write_csv(data, csv, pacsv.WriteOptions(include_header=False))
    try:
        cur.execute(
            f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
            f"LINES TERMINATED BY '\\n' ({names})",
            (str(csv),),
        )
        return
    except pymysql.Error as exc:
        if not exc.args or exc.args[0] not in _LOCAL_INFILE_REFUSED:
            raise
    # PyMySQL folds executemany of INSERT ... VALUES into statements of many rows.
    insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * data.num_columns)})"
    for batch in data.to_batches(INSERT_ROWS):
        cur.executemany(insert, list(zip(*(c.to_pylist() for c in batch.columns), strict=True)))
