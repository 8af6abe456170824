"""Fan-out traps on TPC-H: totals through one-to-many joins equal hand-written SQL.
Cases are data files in tests/fixtures/fanout/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from assay.engines import DuckDBEngine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel
from tests.conftest import FIXTURES
from tests.rows import assert_same_rows

CASES = sorted((FIXTURES / "fanout").glob("f*.yaml"))


def _rows(engine: DuckDBEngine, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in engine.execute(sql).to_pylist()]


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_fanout_totals_match_hand_written_sql(
    case: Path, tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    spec = yaml.safe_load(case.read_text())
    compiled = compile_query(tpch_model, spec["query"])
    want = _rows(tpch_engine, spec["sql"])
    assert_same_rows(_rows(tpch_engine, compiled.sql), want, ordered=spec["order"] == "ordered")


def test_naive_join_would_have_been_wrong(
    tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    """Guard the guard: the trap is real, a plain join over-counts order totals."""
    naive = _rows(
        tpch_engine, "SELECT SUM(o_totalprice) FROM orders JOIN lineitem ON l_orderkey = o_orderkey"
    )
    q = {"table": "orders", "join_paths_from_topic_name": "orders",
         "fields": ["orders.sum_totalprice", "lineitem.count"]}  # fmt: skip
    ours = _rows(tpch_engine, compile_query(tpch_model, q).sql)
    truth = _rows(tpch_engine, "SELECT SUM(o_totalprice) FROM orders")
    assert ours[0][0] == truth[0][0]
    assert naive[0][0] > truth[0][0] * 3
