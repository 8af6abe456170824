"""Shared fixtures: the TPC-H demo database (generated once per machine) and the tpch model."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.demo.tpch import generate_tpch, tpch_model_dir
from assay.engines import DuckDBEngine
from assay.semantic.loader import load_model
from assay.semantic.model import SemanticModel

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
TEST_SCALE = 0.1


@pytest.fixture(scope="session")
def tpch_path() -> Path:
    """TPC-H at scale 0.1 in .cache/ (shared by xdist workers under a file lock)."""
    cache = REPO / ".cache"
    cache.mkdir(exist_ok=True)
    path = cache / f"tpch-sf{TEST_SCALE}.duckdb"
    with open(cache / "tpch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        generate_tpch(path, TEST_SCALE)
    return path


@pytest.fixture(scope="session")
def tpch_engine(tpch_path: Path) -> Iterator[DuckDBEngine]:
    engine = DuckDBEngine(tpch_path)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def tpch_model() -> SemanticModel:
    return load_model(tpch_model_dir())
