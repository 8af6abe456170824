"""Compile latency of TPC-H-shaped semantic queries (target: p50 under 0.5 ms per query).

Run: .venv/bin/python bench/compile.py [--rounds N]

The queries are every query in the repository's TPC-H oracle, fan-out and compiler fixtures.
Figures, per query compile:
  - first compile on a freshly loaded model (nothing cached),
  - a distinct query on a warm model (model fragments rendered, the query itself never seen:
    the figure that matters for varied traffic),
  - a repeated query (served from the compile cache),
  - a distinct query on the same model with access rules (grants, row-level access filters
    and a user attribute in SQL), compiled as a user those rules restrict,
and, as the baseline measured in the same run, a bare sqlglot parse + render of the official
TPC-H SQL: the floor for anything that produces SQL through sqlglot.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlglot
import yaml

from assay.demo.tpch import tpch_model_dir
from assay.errors import QueryError
from assay.semantic.compiler import compile_query
from assay.semantic.loader import build_model, load_model, read_model_files
from assay.semantic.model import SemanticModel
from assay.semantic.viewer import Viewer

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
RULES = {
    "model": "access_grants:\n  finance: {user_attribute: department, allowed_values: [finance]}\n",
    "customer.topic": "access_filters:\n  - {field: region.r_name, user_attribute: region}\n"
    "always_where_sql: ${customer.c_acctbal} >= {{ omni_attributes.min_balance }}\n",
    "lineitem.topic": "access_filters:\n  - {field: customer.c_mktsegment, "
    "user_attribute: segment, enable_sql_like_wildcards: true}\n",
    "orders.topic": "required_access_grants: [finance]\n",
}
USER = Viewer("bench", {"region": ("ASIA", "EUROPE"), "segment": ("AUTO%",),
                        "department": ("finance",), "min_balance": ("0",)},
              numeric=frozenset({"min_balance"}))  # fmt: skip


def governed_model() -> SemanticModel:
    files = read_model_files(tpch_model_dir())
    for name, text in RULES.items():
        files[name] += text
    return build_model(files, name="tpch")


def compiles_as_user(model: SemanticModel, query: dict[str, Any]) -> bool:
    """Whether the query compiles for the bench user (queries without a topic do not: the
    rules would not hold them)."""
    try:
        compile_query(model, query, viewer=USER)
    except QueryError:
        return False
    return True


def queries() -> list[dict[str, Any]]:
    out = []
    for folder in ("tpch_oracle", "fanout", "compiler"):
        for path in sorted((FIXTURES / folder).glob("*.yaml")):
            spec = yaml.safe_load(path.read_text())
            if spec.get("model", "tpch") == "tpch" and "error" not in spec.get("expect", {}):
                out.append(spec["query"])
    return out


def timed(fn: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def render_sql(sql: str) -> str:
    return sqlglot.parse_one(sql, read="duckdb").sql("duckdb")


def summary(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"p50 {statistics.median(ms):7.3f} ms   p95 {p95:7.3f} ms   n={len(ms)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    qs = queries()
    officials = [
        yaml.safe_load(p.read_text())["official_sql"]
        for p in sorted((FIXTURES / "tpch_oracle").glob("q*.yaml"))
    ]
    gc.collect()

    first = []
    for _ in range(5):
        model = load_model(tpch_model_dir())
        first += [timed(compile_query, model, q) for q in qs]

    model = load_model(tpch_model_dir())
    for q in qs:
        compile_query(model, q)
    distinct = []
    for _ in range(args.rounds):
        for q in qs:
            model.compiled.clear()  # the query is new; the model's rendered fragments stay
            distinct.append(timed(compile_query, model, q))
    repeated = [timed(compile_query, model, q) for _ in range(args.rounds) for q in qs]

    governed = governed_model()
    topical = [q for q in qs if compiles_as_user(governed, q)]
    as_user = []
    for _ in range(args.rounds):
        for q in topical:
            governed.compiled.clear()
            start = time.perf_counter()
            compile_query(governed, q, viewer=USER)
            as_user.append(time.perf_counter() - start)
    baseline = [timed(render_sql, s) for _ in range(args.rounds) for s in officials]

    print(f"{len(qs)} semantic queries, {args.rounds} rounds\n")
    print(f"first compile, fresh model     {summary(first)}")
    print(f"distinct query, warm model     {summary(distinct)}   <- target p50 < 0.5 ms")
    print(f"repeated query (cache hit)     {summary(repeated)}")
    print(
        f"distinct query, governed model {summary(as_user)}   ({len(topical)} through topics, "
        "as a user the rules restrict)"
    )
    print(f"baseline: sqlglot parse+render {summary(baseline)}   (official TPC-H SQL)")
    ratio = statistics.median(distinct) / statistics.median(baseline)
    print(f"\ndistinct-query compile = {ratio:.2f}x a bare sqlglot round trip of TPC-H SQL")


if __name__ == "__main__":
    main()
