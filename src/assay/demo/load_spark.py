"""Load the TPC-H demo tables into a Spark Connect server.

The server reads the Parquet files itself (Spark Connect sends queries, not data), so they must
be on the server's file system at the same path: the server runs on this machine, or both see
a shared file system mounted at the same place.

Each table is a copy (``CREATE TABLE ... USING parquet LOCATION ... AS SELECT``) written into
the server's warehouse directory, where a managed table would live, so it outlives the
temporary files it came from (tables over those files would break as soon as the caller
deleted them). The location is given explicitly because of restarts: without a persistent
metastore (the default, an in-memory catalog) a restarted Spark has forgotten the tables but
not their files, and Spark 4 refuses to create a managed table over an existing directory
(LOCATION_ALREADY_EXISTS), while a table created at an explicit location may write over it.
The marker table ``assay_demo(scale, generator)`` is dropped first and written last: while it
is missing or different, the data is not (completely) there, and ``is_current`` says False.
"""

from __future__ import annotations

from pathlib import Path

from assay.demo.tpch import GENERATOR_VERSION, TABLES, check_scale
from assay.engines.spark import SparkEngine
from assay.errors import EngineError, EngineUnavailable

# Let CREATE TABLE ... LOCATION ... AS SELECT overwrite the files a forgotten table left behind.
_SETTINGS = {"spark.sql.legacy.allowNonEmptyLocationInCTAS": "true"}


def is_current(url: str, scale: float) -> bool:
    """Whether the server at ``url`` holds complete demo data generated at ``scale``.

    An unreachable server raises ``EngineUnavailable`` (not False: reloading would not help)."""
    engine = SparkEngine(url)
    try:
        rows = engine.execute("SELECT scale, generator FROM assay_demo").to_pylist()
    except EngineUnavailable:
        raise
    except EngineError:
        return False
    finally:
        engine.close()
    return (
        len(rows) == 1
        and float(rows[0]["scale"]) == scale
        and rows[0]["generator"] == GENERATOR_VERSION
    )


def load_tpch(url: str, files: dict[str, Path], scale: float) -> None:
    """Create the eight TPC-H tables (and the marker) in the server's current database from
    ``files`` (table -> Parquet file, see ``tpch.generate_parquet``), replacing any there."""
    check_scale(scale)
    missing = [t for t in TABLES if t not in files]
    if missing:
        raise ValueError(f"No Parquet file for {', '.join(missing)}")
    engine = SparkEngine(url)
    try:
        for key, value in _SETTINGS.items():
            engine.execute(f"SET {key}={value}")
        warehouse = engine.execute("SET spark.sql.warehouse.dir").column("value")[0].as_py()
        engine.execute("DROP TABLE IF EXISTS assay_demo")
        for table in TABLES:
            source = files[table].resolve()
            engine.execute(f"DROP TABLE IF EXISTS {table}")
            try:
                engine.execute(
                    f"CREATE TABLE {table} USING parquet "
                    f"LOCATION {_string(_join(warehouse, table))} "
                    f"AS SELECT * FROM parquet.{_path(source)}"
                )
            except EngineError as exc:
                if "PATH_NOT_FOUND" in exc.message or "FileNotFound" in exc.message:
                    raise EngineError(
                        f"The Spark server at {engine.address} cannot read {source}: it must run "
                        f"on this machine, or see this path on a shared file system "
                        f"({exc.message})"
                    ) from exc
                raise
        engine.execute(
            f"CREATE TABLE assay_demo USING parquet "
            f"LOCATION {_string(_join(warehouse, 'assay_demo'))} AS SELECT "
            f"CAST({float(scale)!r} AS DOUBLE) AS scale, {_string(GENERATOR_VERSION)} AS generator"
        )
    finally:
        engine.close()


def _join(warehouse: str, table: str) -> str:
    return f"{warehouse.rstrip('/')}/{table}"


def _string(text: str) -> str:
    """A Spark SQL string literal (backslash is an escape character there)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _path(file: Path) -> str:
    """A file URI in backticks: explicit ``file:`` so a server whose default file system is
    HDFS or S3 still looks on its local disk."""
    return "`" + file.as_uri().replace("`", "``") + "`"
