"""The request path against the engine: what an uncached /query/run costs beyond its SQL.

Run: .venv/bin/python bench/request_path.py [--scale 1] [--rounds 40] [--only SHAPE]
         [--before-src DIR]

Side by side in one run, for three result sizes (a small one of 5 rows, a medium one of 10k
rows, and the TPC-H Q1 shape at the chosen scale):
  - in-process: the compiled SQL run through the same engine class the server uses
    (DuckDBEngine.execute -> an Arrow table), in this process;
  - served: POST /api/v1/query/run with cache SkipCache on a real `assay serve`, timed until
    the client holds the whole NDJSON body, by two clients on keep-alive connections: httpx
    (what Omni's Python clients and most scripts use) and the standard library's
    http.client (the leanest: what is left is the server and loopback HTTP).
The served time minus the in-process time is Assay's share plus the client's; a `GET /health`
round trip by each client, interleaved the same way, shows the part of it that is loopback
HTTP and waking a process that was waiting (no job, no store, no engine). The server's
`Server-Timing` header breaks the server's part down by stage (auth, parse, compile, insert,
queue, run, record, wake, answer): the p50 of each stage is printed beside the totals. Rounds
alternate between the three ways, so all see the same machine load.

--before-src DIR serves a second server from another checkout's src/ (a `git worktree` of the
commit before a change), its requests interleaved with this tree's: an A/B in one run, which
the machine's drift affects alike. --before-env NAME=VALUE (repeatable) sets the "before"
server's environment instead or as well: a setting's A/B (``ASSAY_ARROW_COMPRESSION=none``).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
from serving import CACHE, MODEL_ID, job_lines, ms, serving

from assay.demo.tpch import generate_tpch
from assay.engines import DuckDBEngine

SHAPES: dict[str, dict[str, Any]] = {
    "small (5 rows)": {
        "join_paths_from_topic_name": "customer",
        "fields": ["region.r_name", "customer.count"],
    },
    "medium (10k rows)": {
        "join_paths_from_topic_name": "customer",
        "fields": ["customer.c_name", "customer.c_acctbal"],
        "sorts": [{"column_name": "customer.c_name"}],
        "limit": 10_000,
    },
    "TPC-H Q1 shape": {
        "join_paths_from_topic_name": "lineitem",
        "fields": ["lineitem.l_returnflag", "lineitem.l_linestatus", "lineitem.sum_quantity",
                   "lineitem.sum_extendedprice", "lineitem.revenue", "lineitem.sum_charge",
                   "lineitem.avg_quantity", "lineitem.avg_extendedprice", "lineitem.avg_discount",
                   "lineitem.count"],
        "filters": {"lineitem.l_shipdate": {"type": "date", "kind": "BEFORE",
                                            "left_side": "1998-09-02"}},
        "sorts": [{"column_name": "lineitem.l_returnflag"},
                  {"column_name": "lineitem.l_linestatus"}],
    },
}  # fmt: skip


def server_timing(header: str) -> dict[str, float]:
    """``Server-Timing: name;dur=1.23, ...`` as {name: milliseconds}."""
    out: dict[str, float] = {}
    for part in header.split(","):
        name, _, rest = part.strip().partition(";dur=")
        if name and rest:
            out[name] = float(rest)
    return out


def run_body(query: dict[str, Any]) -> dict[str, Any]:
    return {"query": {**query, "modelId": MODEL_ID}, "cache": "SkipCache"}


def served(client: httpx.Client, query: dict[str, Any]) -> tuple[float, str, dict[str, float]]:
    start = time.perf_counter()
    response = client.post("/api/v1/query/run", json=run_body(query))
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    (line,) = job_lines(response.content)
    assert line["status"] == "COMPLETE", line
    stages = server_timing(response.headers.get("server-timing", ""))
    return elapsed, line["summary"]["sql"], stages


def health_lean(connection: http.client.HTTPConnection) -> float:
    start = time.perf_counter()
    connection.request("GET", "/health")
    response = connection.getresponse()
    response.read()
    assert response.status == 200
    return time.perf_counter() - start


def health(client: httpx.Client) -> float:
    start = time.perf_counter()
    client.get("/health").raise_for_status()
    return time.perf_counter() - start


def served_lean(connection: http.client.HTTPConnection, token: str, query: dict[str, Any]) -> float:
    """The same request through the standard library's client, body read whole."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    start = time.perf_counter()
    connection.request("POST", "/api/v1/query/run", json.dumps(run_body(query)), headers)
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    assert response.status == 200, body[:500]
    (line,) = job_lines(body)
    assert line["status"] == "COMPLETE", line
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument(
        "--before-src",
        type=Path,
        help="also serve from this checkout's src/ (requests interleaved)",
    )
    parser.add_argument("--before-env", action="append", default=[], metavar="NAME=VALUE",
                        help="the 'before' server's environment (a setting's A/B)")  # fmt: skip
    parser.add_argument("--only", choices=sorted(SHAPES), action="append",
                        help="measure only these shapes")  # fmt: skip
    args = parser.parse_args()
    database = generate_tpch(CACHE / f"tpch-sf{args.scale}.duckdb", args.scale)
    engine = DuckDBEngine(Path(database))
    env = {"ASSAY_RUN_WAIT_SECONDS": "60"}
    trees = [("", env)]
    if args.before_src is not None or args.before_env:
        before = dict(pair.split("=", 1) for pair in args.before_env)
        if args.before_src is not None:
            before["PYTHONPATH"] = str(args.before_src.resolve())
        trees = [("before", {**env, **before}), ("after", env)]
    with contextlib.ExitStack() as stack:
        sides = []
        for label, tree_env in trees:
            server, token = stack.enter_context(serving(database, env=tree_env))
            client = stack.enter_context(server.client(token))
            lean = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            stack.callback(lean.close)
            sides.append((label, client, lean, token))
        print(f"TPC-H scale {args.scale}; {args.rounds} rounds per shape, alternating\n")
        for label, query in SHAPES.items():
            if args.only and label not in args.only:
                continue
            measure(label, query, engine, sides, args.rounds)
    engine.close()


def measure(
    label: str,
    query: dict[str, Any],
    engine: DuckDBEngine,
    sides: list[tuple[str, httpx.Client, http.client.HTTPConnection, str]],
    rounds: int,
) -> None:
    """One shape: the engine in-process, then each server by each client, round after round."""
    sql = ""
    for _, client, lean, token in sides:  # warm: the compile cache, the engine's cache
        _, sql, _ = served(client, query)
        served_lean(lean, token, query)
    engine.execute(sql)
    inproc: list[float] = []
    over: dict[str, list[float]] = defaultdict(list)
    floor: dict[str, list[float]] = defaultdict(list)  # GET /health round trips
    stages: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    rows = 0
    for _ in range(rounds):
        start = time.perf_counter()
        rows = engine.execute(sql).num_rows
        inproc.append(time.perf_counter() - start)
        for side, client, lean, token in sides:
            took, _, timing = served(client, query)
            over[f"{side} httpx"].append(took)
            over[f"{side} http.client"].append(served_lean(lean, token, query))
            for name, value in timing.items():
                stages[side][name].append(value)
            floor[f"{side} httpx"].append(health(client))
            floor[f"{side} http.client"].append(health_lean(lean))
    engine_p50 = statistics.median(inproc)
    print(f"{label}: {rows} rows")
    print(f"  in-process engine     {ms(inproc)}")
    for name, samples in over.items():
        p50 = statistics.median(samples)
        print(f"  served, {name.strip():18s}  {ms(samples)}")
        health_p50 = statistics.median(floor[name]) * 1e3
        print(f"    added p50 {(p50 - engine_p50) * 1e3:7.3f} ms   "
              f"served/in-process {p50 / engine_p50:.3f}x   "
              f"(GET /health round trip p50 {health_p50:.3f} ms)")  # fmt: skip
    for side, named in stages.items():
        parts = "  ".join(f"{n} {statistics.median(v):.2f}" for n, v in named.items())
        print(f"  server stages p50 (ms){' ' + side if side else ''}: {parts}")
    print()


if __name__ == "__main__":
    main()
