"""Generate TPC-H data with ``tpchgen-cli`` (a port of the official generator: spec-identical
rows) and load it into a DuckDB file.

Generation writes to a temporary file that is renamed into place only when complete, so an
interrupted or concurrent run never leaves a half-loaded database behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

import duckdb

from assay.errors import ConfigError

TABLES = ("region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem")
GENERATOR_VERSION = "tpchgen-cli 4.0.0"


def tpch_model_dir() -> Path:
    """The bundled Omni-format ``tpch`` model."""
    return Path(str(resources.files("assay.demo").joinpath("models", "tpch")))


def _generator() -> str:
    beside = Path(sys.executable).with_name("tpchgen-cli")
    found = str(beside) if beside.exists() else shutil.which("tpchgen-cli")
    if not found:
        raise ConfigError(
            "tpchgen-cli is not installed; it comes with Assay (pip install assay) - "
            "reinstall the package"
        )
    return found


def is_current(path: Path, scale: float) -> bool:
    """Whether ``path`` holds complete demo data generated at ``scale``."""
    if not path.exists():
        return False
    try:
        with duckdb.connect(str(path), read_only=True) as conn:
            row = conn.execute("SELECT scale, generator FROM assay_demo").fetchone()
    except duckdb.Error:
        return False
    return row is not None and float(row[0]) == scale and row[1] == GENERATOR_VERSION


def check_scale(scale: float) -> None:
    if scale <= 0:
        raise ConfigError(f"The TPC-H scale factor must be positive, got {scale}")


def generate_parquet(out_dir: Path, scale: float) -> dict[str, Path]:
    """The eight TPC-H tables as Parquet files in ``out_dir``: table name -> file."""
    check_scale(scale)
    subprocess.run(
        [_generator(), "parquet", "-s", str(scale), f"--output-dir={out_dir}"],
        check=True,
        capture_output=True,
    )
    return {table: out_dir / f"{table}.parquet" for table in TABLES}


def generate_tpch(path: Path, scale: float = 0.1, *, force: bool = False) -> Path:
    """Create the demo database at ``path`` (unless it is already there at this scale)."""
    check_scale(scale)
    if not force and is_current(path, scale):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="assay-tpch-", dir=path.parent) as tmp:
        parquet = Path(tmp) / "parquet"
        files = generate_parquet(parquet, scale)
        staged = Path(tmp) / "tpch.duckdb"
        with duckdb.connect(str(staged)) as conn:
            conn.execute("SET enable_progress_bar = false")
            for table, file in files.items():
                source = file.as_posix()
                conn.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet(?)", [source])
            conn.execute("CREATE TABLE assay_demo (scale DOUBLE, generator VARCHAR)")
            conn.execute("INSERT INTO assay_demo VALUES (?, ?)", [scale, GENERATOR_VERSION])
        os.replace(staged, path)
    return path
