"""Fan-out correctness at speed: the semantic query for order totals by line ship mode (orders
repeated by their lines) against the de-duplication a person would write, on the same DuckDB.

Run: .venv/bin/python bench/fanout.py [--scale 1] [--runs 7]

Target: the semantic query within 1.2x of the hand-written SQL. Also printed, for scale: the
naive join (fast and wrong), and two structural checks from the issue: a one-view query
compiles to single-table SQL, and the region of a line's customer (four joins away) needs no
remodelling.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from assay.demo.tpch import generate_tpch, tpch_model_dir
from assay.engines import DuckDBEngine
from assay.semantic.compiler import compile_query
from assay.semantic.loader import load_model

CACHE = Path(__file__).resolve().parents[1] / ".cache"
QUERY = {
    "join_paths_from_topic_name": "orders",
    "fields": ["lineitem.l_shipmode", "orders.sum_totalprice"],
    "limit": None,
}
HAND_WRITTEN = """
    WITH order_modes AS (
        SELECT DISTINCT l.l_shipmode, o.o_orderkey, o.o_totalprice
        FROM orders o JOIN lineitem l ON l.l_orderkey = o.o_orderkey
    )
    SELECT l_shipmode, sum(o_totalprice) FROM order_modes GROUP BY l_shipmode
"""
NAIVE = """
    SELECT l_shipmode, sum(o_totalprice) FROM orders o
    JOIN lineitem l ON l.l_orderkey = o.o_orderkey GROUP BY l_shipmode
"""


def run_once(engine: DuckDBEngine, sql: str) -> tuple[float, dict[object, object]]:
    start = time.perf_counter()
    table = engine.execute(sql)
    elapsed = time.perf_counter() - start
    keys, values = table.column(0).to_pylist(), table.column(1).to_pylist()
    return elapsed, dict(zip(keys, values, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    path = generate_tpch(CACHE / f"tpch-sf{args.scale}.duckdb", args.scale)
    model = load_model(tpch_model_dir())
    compiled = compile_query(model, QUERY)
    engine = DuckDBEngine(path)
    try:
        times: dict[str, list[float]] = {"semantic": [], "hand-written": [], "naive (wrong)": []}
        answers: dict[str, dict[object, object]] = {}
        for _label, sql in (
            ("semantic", compiled.sql),
            ("hand-written", HAND_WRITTEN),
            ("naive (wrong)", NAIVE),
        ):
            run_once(engine, sql)  # warm the buffer cache once
        for _ in range(args.runs):  # alternate, so drift affects each the same
            for label, sql in (
                ("semantic", compiled.sql),
                ("hand-written", HAND_WRITTEN),
                ("naive (wrong)", NAIVE),
            ):
                elapsed, answers[label] = run_once(engine, sql)
                times[label].append(elapsed)
    finally:
        engine.close()

    print(f"TPC-H scale {args.scale}, {args.runs} alternating runs each (median, min)\n")
    for label, samples in times.items():
        median, best = statistics.median(samples) * 1000, min(samples) * 1000
        print(f"  {label:15s} {median:8.1f} ms  {best:8.1f} ms")
    ratio = statistics.median(times["semantic"]) / statistics.median(times["hand-written"])
    print(f"\nsemantic / hand-written = {ratio:.2f}x   (target <= 1.2x)")
    assert answers["semantic"] == answers["hand-written"], "the semantic answer is wrong"
    assert answers["naive (wrong)"] != answers["hand-written"]
    print("answers: semantic == hand-written; the naive join over-counts")

    one_view = {"join_paths_from_topic_name": "lineitem", "fields": ["lineitem.l_shipmode"]}
    single = compile_query(model, one_view)
    print(f"\none-view query joins: {list(single.joined_views) or 'none'} -> {single.sql[:60]}...")
    four_away = {
        "join_paths_from_topic_name": "lineitem",
        "fields": ["region.r_name", "lineitem.revenue"],
    }
    far = compile_query(model, four_away)
    print(f"region of a line's customer joins: {' -> '.join(far.joined_views)} (no remodelling)")


if __name__ == "__main__":
    main()
