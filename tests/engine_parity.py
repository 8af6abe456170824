"""The same semantic query on another engine must give DuckDB's answer, to the cent.

Used by the PostgreSQL, MariaDB and Spark suites: each case of the TPC-H oracle and fan-out
suites is compiled for the engine's dialect, run there, and compared with the same query
compiled for and run on DuckDB (which those suites hold to the official SQL).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from assay.engines.base import Engine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel
from tests.conftest import FIXTURES

ORACLE_CASES = sorted((FIXTURES / "tpch_oracle").glob("q*.yaml"))
FANOUT_CASES = sorted((FIXTURES / "fanout").glob("f*.yaml"))
PARITY_CASES = ORACLE_CASES + FANOUT_CASES
CENT = Decimal("0.005")


def _norm(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, datetime) and value.time() == datetime.min.time():
        return value.date()
    if isinstance(value, str):
        return value.rstrip()  # CHAR(n) pads on some engines
    return value


def _same(a: Any, b: Any) -> bool:
    a, b = _norm(a), _norm(b)
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return abs(a - b) < CENT
    if isinstance(a, date) and isinstance(b, date):
        return a == b
    return bool(a == b)


def _sort_key(row: tuple[Any, ...]) -> str:
    return repr(tuple(round(float(v), 1) if isinstance(v, Decimal) else v for v in row))


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in engine.execute(sql).to_pylist()]


def assert_parity(
    case: Path, model: SemanticModel, engine: Engine, duckdb: Engine
) -> list[tuple[Any, ...]]:
    """Run ``case`` on ``engine`` and on DuckDB; the rows must match to the cent."""
    spec = yaml.safe_load(case.read_text())
    ordered = spec["order"] == "ordered"
    return assert_query_parity(case.stem, spec["query"], model, engine, duckdb, ordered=ordered)


def assert_query_parity(
    name: str,
    query: Mapping[str, Any],
    model: SemanticModel,
    engine: Engine,
    duckdb: Engine,
    *,
    ordered: bool = False,
) -> list[tuple[Any, ...]]:
    """Run ``query`` on ``engine`` and on DuckDB; the rows must match to the cent."""
    want = rows(duckdb, compile_query(model, query, dialect="duckdb").sql)
    assert want, f"{name}: DuckDB returned no rows, the case proves nothing"
    got = rows(engine, compile_query(model, query, dialect=engine.dialect).sql)
    assert len(got) == len(want), f"{name}: {len(got)} rows, expected {len(want)}"
    norm_got = [tuple(_norm(v) for v in r) for r in got]
    norm_want = [tuple(_norm(v) for v in r) for r in want]
    if not ordered:
        norm_got, norm_want = sorted(norm_got, key=_sort_key), sorted(norm_want, key=_sort_key)
    for i, (g, w) in enumerate(zip(norm_got, norm_want, strict=True)):
        assert len(g) == len(w), f"{name} row {i}: {len(g)} columns, expected {len(w)}"
        for j, (a, b) in enumerate(zip(g, w, strict=True)):
            assert _same(a, b), f"{name} row {i} col {j}: {a!r} != {b!r}\n got {g}\n want {w}"
    return got
