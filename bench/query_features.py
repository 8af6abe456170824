"""Omni's query features at speed: each case is a semantic query using one (column totals
today; pivots to come) compiled and run on DuckDB, against the SQL a person would write for the
same answer, on the same database in the same run.

Run: .venv/bin/python bench/query_features.py [--scale 1] [--runs 7] [--case totals]

Target: each case's semantic query (compile + run) within 1.3x of its hand-written SQL, p50.
The answers are compared too (as sets of rows: the features add helper columns and an order
the hand-written SQL need not have).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from assay.demo.tpch import generate_tpch, tpch_model_dir
from assay.engines import DuckDBEngine
from assay.semantic.compiler import CompiledQuery, compile_query
from assay.semantic.loader import load_model
from assay.semantic.model import SemanticModel
from assay.semantic.query import parse_query

CACHE = Path(__file__).resolve().parents[1] / ".cache"
AGG = {"type": "aggregation"}


@dataclass(frozen=True)
class Case:
    """A feature's query, the hand-written SQL for it, and how to read comparable rows from
    each (the semantic result's fields, in the hand-written SQL's column order). The
    hand-written SQL joins as the model does (LEFT JOINs: a line without an order would still
    count), so both compute the same thing on any data."""

    name: str
    query: dict[str, Any]
    hand_written: str
    rows_of: Callable[[CompiledQuery, list[dict[str, Any]]], set[tuple[Any, ...]]]


def _field_rows(compiled: CompiledQuery, rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    names = [f.fully_qualified_name for f in compiled.fields]
    return {tuple(_rounded(r[n]) for n in names) for r in rows}


def _rounded(value: Any) -> Any:
    return round(value, 2) if isinstance(value, float | Decimal) else value


CASES = [
    Case(
        "totals",
        {
            "join_paths_from_topic_name": "lineitem",
            "fields": ["region.r_name", "nation.n_name", "lineitem.revenue", "lineitem.count"],
            "column_totals": {"::total::": AGG, "region.r_name": AGG},
            "limit": None,
        },
        """
        SELECT r.r_name, n.n_name, sum(l.l_extendedprice * (1 - l.l_discount)), count(*)
        FROM lineitem l
        LEFT JOIN orders o ON l.l_orderkey = o.o_orderkey
        LEFT JOIN customer c ON o.o_custkey = c.c_custkey
        LEFT JOIN nation n ON c.c_nationkey = n.n_nationkey
        LEFT JOIN region r ON n.n_regionkey = r.r_regionkey
        GROUP BY GROUPING SETS ((r.r_name, n.n_name), (r.r_name), ())
        ORDER BY GROUPING(r.r_name), r.r_name, GROUPING(n.n_name), 3 DESC
        """,
        _field_rows,
    ),
]


def _time(run: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = run()
    return time.perf_counter() - start, out


def bench_case(
    case: Case, model: SemanticModel, engine: DuckDBEngine, runs: int
) -> tuple[list[float], list[float]]:
    """Alternating runs (drift affects both the same): semantic = parse + compile (not
    cached) + run; hand-written = run."""

    def semantic() -> set[tuple[Any, ...]]:
        compiled = compile_query(model, parse_query(case.query))
        table = engine.execute(compiled.sql).rename_columns(compiled.columns)
        return case.rows_of(compiled, table.to_pylist())

    def by_hand() -> set[tuple[Any, ...]]:
        table = engine.execute(case.hand_written)
        return {tuple(_rounded(v) for v in r.values()) for r in table.to_pylist()}

    semantic(), by_hand()  # warm the buffer cache once
    ours: list[float] = []
    theirs: list[float] = []
    answers: list[set[tuple[Any, ...]]] = []
    for _ in range(runs):
        elapsed, got = _time(semantic)
        ours.append(elapsed)
        elapsed, want = _time(by_hand)
        theirs.append(elapsed)
        answers = [got, want]
    assert answers[0] == answers[1], f"{case.name}: the semantic answer differs from the SQL's"
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--case", choices=[c.name for c in CASES], action="append")
    args = parser.parse_args()
    path = generate_tpch(CACHE / f"tpch-sf{args.scale}.duckdb", args.scale)
    model = load_model(tpch_model_dir())
    engine = DuckDBEngine(path)
    print(f"TPC-H scale {args.scale}, {args.runs} alternating runs each (median, min)\n")
    try:
        for case in CASES:
            if args.case and case.name not in args.case:
                continue
            ours, theirs = bench_case(case, model, engine, args.runs)
            for label, samples in (("semantic", ours), ("hand-written", theirs)):
                median, best = statistics.median(samples) * 1000, min(samples) * 1000
                print(f"  {case.name:8s} {label:13s} {median:8.1f} ms  {best:8.1f} ms")
            ratio = statistics.median(ours) / statistics.median(theirs)
            print(f"  {case.name:8s} semantic / hand-written = {ratio:.2f}x   (target <= 1.3x)")
            print(f"  {case.name:8s} answers: semantic == hand-written\n")
    finally:
        engine.close()


if __name__ == "__main__":
    main()
