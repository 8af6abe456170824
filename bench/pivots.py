"""A pivoted query at speed: revenue by ship month (rows) and ship mode (pivot columns),
Omni's row and column numbering computed by the database, against the same numbering written
by hand, on the same DuckDB; also the plain grouped query, for scale.

Run: .venv/bin/python bench/pivots.py [--scale 1] [--runs 7]

Target (issue 12): the pivoted query within 1.3x of the hand-written SQL.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from assay.demo.tpch import generate_tpch, tpch_model_dir
from assay.engines import DuckDBEngine
from assay.semantic.compiler import compile_query
from assay.semantic.loader import load_model

CACHE = Path(__file__).resolve().parents[1] / ".cache"
QUERY = {
    "join_paths_from_topic_name": "lineitem",
    "fields": ["lineitem.l_shipdate[month]", "lineitem.l_shipmode", "lineitem.revenue"],
    "pivots": ["lineitem.l_shipmode"],
    "sorts": [{"column_name": "lineitem.l_shipdate[month]"}],
    "limit": 1000,
}
# What a person would write for the same long layout: the grouped rows, two dense ranks, the
# row limit and column_limit (every month has every mode, so no row needs its first cell).
HAND_WRITTEN = """
    SELECT m, mode, revenue, rn, cn FROM (
        SELECT m, mode, revenue,
               DENSE_RANK() OVER (ORDER BY m) AS rn, DENSE_RANK() OVER (ORDER BY mode) AS cn
        FROM (SELECT date_trunc('month', l_shipdate) AS m, l_shipmode AS mode,
                     sum(l_extendedprice * (1 - l_discount)) AS revenue
              FROM lineitem GROUP BY 1, 2) g) n
    WHERE rn <= 1000 AND cn <= 50
    ORDER BY rn, cn
"""


def run_once(engine: DuckDBEngine, sql: str) -> tuple[float, list[tuple[Any, ...]]]:
    start = time.perf_counter()
    table = engine.execute(sql)
    elapsed = time.perf_counter() - start
    return elapsed, [tuple(r.values()) for r in table.to_pylist()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    path = generate_tpch(CACHE / f"tpch-sf{args.scale}.duckdb", args.scale)
    model = load_model(tpch_model_dir())
    pivoted = compile_query(model, QUERY).sql
    grouped = compile_query(model, {**QUERY, "pivots": [], "limit": None}).sql
    queries = {"pivoted": pivoted, "hand-written": HAND_WRITTEN, "grouped only": grouped}
    engine = DuckDBEngine(path)
    try:
        times: dict[str, list[float]] = {label: [] for label in queries}
        answers: dict[str, list[tuple[Any, ...]]] = {}
        for sql in queries.values():
            run_once(engine, sql)  # warm the buffer cache once
        for _ in range(args.runs):  # alternate, so drift affects each the same
            for label, sql in queries.items():
                elapsed, answers[label] = run_once(engine, sql)
                times[label].append(elapsed)
    finally:
        engine.close()

    print(f"TPC-H scale {args.scale}, {args.runs} alternating runs each (median, min)\n")
    for label, samples in times.items():
        median, best = statistics.median(samples) * 1000, min(samples) * 1000
        print(f"  {label:15s} {median:8.1f} ms  {best:8.1f} ms")
    ratio = statistics.median(times["pivoted"]) / statistics.median(times["hand-written"])
    print(f"\npivoted / hand-written = {ratio:.2f}x   (target <= 1.3x)")
    assert answers["pivoted"] == answers["hand-written"], "the pivoted answer differs"
    print(f"answers: pivoted == hand-written ({len(answers['pivoted'])} cells)")


if __name__ == "__main__":
    main()
