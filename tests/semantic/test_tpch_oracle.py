"""TPC-H as an outside oracle: each semantic query must return exactly the rows of the
official TPC-H SQL on the same data. Cases are data files in tests/fixtures/tpch_oracle/."""

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

CASES = sorted((FIXTURES / "tpch_oracle").glob("q*.yaml"))


def _rows(engine: DuckDBEngine, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in engine.execute(sql).to_pylist()]


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_semantic_query_matches_official_tpch_sql(
    case: Path, tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    spec = yaml.safe_load(case.read_text())
    compiled = compile_query(tpch_model, spec["query"])
    assert compiled.columns == spec["query"]["fields"]
    want = _rows(tpch_engine, spec["official_sql"])
    assert want, "the oracle returned no rows: the case proves nothing"
    assert_same_rows(_rows(tpch_engine, compiled.sql), want, ordered=spec["order"] == "ordered")


def test_required_queries_are_covered() -> None:
    assert {"q01", "q03", "q06", "q10", "q18"} <= {c.stem for c in CASES}
