"""Connection URLs: which engine a URL names, and that passwords never reach a message."""

from __future__ import annotations

import pytest

from assay.config import load_settings
from assay.engines.connect import open_engine
from assay.engines.duckdb import DuckDBEngine
from assay.engines.urls import engine_kind, redact
from assay.errors import ConfigError
from assay.jobs.stores import open_job_store


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("duckdb:///tmp/x.duckdb", "duckdb"),
        ("/tmp/x.duckdb", "duckdb"),
        ("postgresql://u@h/db", "postgres"),
        ("postgres://u@h/db", "postgres"),
        ("mysql://root@h:3306/db", "mariadb"),
        ("mariadb://root@h/db", "mariadb"),
        ("sc://127.0.0.1:15002", "spark"),
    ],
)
def test_the_scheme_names_the_engine(url: str, kind: str) -> None:
    assert engine_kind(url) == kind


def test_an_unknown_scheme_is_refused_with_a_suggestion_and_no_password() -> None:
    with pytest.raises(ConfigError) as info:
        engine_kind("postgresq://ann:hunter2@db/prod")
    assert 'Did you mean "postgresql"' in info.value.message
    assert "hunter2" not in info.value.message


def test_redact_hides_only_the_password() -> None:
    assert redact("postgresql://ann:hunter2@db:5432/prod") == "postgresql://ann:***@db:5432/prod"
    assert redact("postgresql://ann@db/prod") == "postgresql://ann@db/prod"


def test_a_duckdb_url_opens_the_file(tpch_path: object) -> None:
    engine = open_engine(f"duckdb:///{tpch_path}")
    try:
        assert isinstance(engine, DuckDBEngine)
        assert engine.execute("SELECT count(*) AS n FROM region").column("n").to_pylist() == [5]
    finally:
        engine.close()


def test_a_job_store_url_must_be_sqlite_or_postgresql() -> None:
    settings = load_settings(environ={}, job_store="mysql://root@127.0.0.1/test")
    with pytest.raises(ConfigError, match="job_store must be empty"):
        open_job_store(settings)
