"""TPC-H demo generation: real tpchgen-cli output loaded into a real DuckDB file."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from assay.demo.tpch import TABLES, generate_tpch, is_current
from assay.errors import ConfigError


def test_generates_every_table_once(tmp_path: Path) -> None:
    path = tmp_path / "tpch.duckdb"
    generate_tpch(path, 0.01)
    assert is_current(path, 0.01)
    with duckdb.connect(str(path), read_only=True) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # type: ignore[index]
    # TPC-H's fixed-size tables, and scale-proportional ones at SF 0.01.
    assert counts["region"] == 5 and counts["nation"] == 25
    assert counts["customer"] == 1500 and counts["orders"] == 15000 and counts["supplier"] == 100
    mtime = path.stat().st_mtime_ns
    generate_tpch(path, 0.01)
    assert path.stat().st_mtime_ns == mtime, "data at the same scale is not regenerated"
    assert not is_current(path, 0.02)


def test_no_partial_database_is_left_behind(tmp_path: Path) -> None:
    path = tmp_path / "tpch.duckdb"
    with pytest.raises(ConfigError):
        generate_tpch(path, 0)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
