"""Aliased joins (join_to_view_as: nation joined twice) on PostgreSQL against
hand-written SQL, and on PostgreSQL and MariaDB against DuckDB's answers, row for row.

The cases are those of tests/semantic/test_aliases.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from assay.engines import DuckDBEngine
from assay.engines.base import Engine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel
from tests.alias_model import alias_model
from tests.rows import whole_number_rows as rows
from tests.semantic.test_aliases import CASES

pytestmark = pytest.mark.tpch


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return alias_model()


def _same(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]], ordered: bool) -> None:
    assert got, "the query returned no rows: the case proves nothing"
    if not ordered:
        got, want = sorted(got, key=repr), sorted(want, key=repr)
    assert got == want


@pytest.mark.parametrize("name", CASES)
def test_postgres_matches_hand_written_sql(
    name: str, model: SemanticModel, tpch_postgres: Engine
) -> None:
    query, sql, ordered = CASES[name]
    got = rows(tpch_postgres, compile_query(model, query, dialect="postgres").sql)
    _same(got, rows(tpch_postgres, sql), ordered)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("engine_name", ["tpch_postgres", "tpch_mariadb", "tpch_spark"])
def test_engine_matches_duckdb(
    name: str,
    engine_name: str,
    model: SemanticModel,
    tpch_engine: DuckDBEngine,
    request: pytest.FixtureRequest,
) -> None:
    engine: Engine = request.getfixturevalue(engine_name)
    query, _, ordered = CASES[name]
    want = rows(tpch_engine, compile_query(model, query, dialect="duckdb").sql)
    _same(rows(engine, compile_query(model, query, dialect=engine.dialect).sql), want, ordered)
