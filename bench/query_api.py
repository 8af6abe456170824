"""Query API against a real `assay serve`: wake-up, cached-run overhead, 1M rows, memory.

Wake-up latency, the overhead of a cached run, and a 1,000,000-row result end to end with the
server's peak memory, each against a baseline measured in the same run.

Run: .venv/bin/python bench/query_api.py [--scale 1] [--only a|b|c|d]

Each measurement starts its own server (a temp home with a copy of the demo model plus a `slow`
view that runs until cancelled and a `paced` one that takes tens of ms) on a free loopback
port, and stops it at the end:

  (a) wake-up latency: the time from a job's end (its finished_at in the job store; server
      and client share the clock) to a client long-polling /query/wait on it holding the whole
      response. Two ways: jobs that finish on their own (the `paced` view, polled right after
      /query/run hands back its id), and jobs of the `slow` view cancelled by
      /query/cancel while polled. Target p50 < 5 ms. Baseline: a bare GET /health round trip
      on the waiting client's connection.
  (b) a cached /query/run (a cache hit) on a tiny query, vs the bare engine call of the same
      compiled SQL in this process (DuckDBEngine.execute). Target: p50 added < 3 ms.
  (c) a 1,000,000-row result through /query/run (NDJSON, SkipCache) vs DuckDB -> Arrow IPC
      stream -> base64 of the same SQL in one process. Target: in-process time / served time
      >= 0.7, the served time taken when the client holds the whole body (also shown: after
      parsing its lines as JSON, and after decoding the result to an Arrow table). Two queries:
      orders (the engine's share small) and lineitem (large).
  (d) the server's peak RSS (VmHWM) during (c), next to the result's size and the peak RSS of
      the in-process baseline run in a child process. (d) runs with (c).
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import signal
import sqlite3
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pyarrow.compute as pc
from serving import CACHE, MODEL_ID, Server, job_lines, lines, ms, pct, proc_status, serving

from assay.demo.tpch import generate_tpch
from assay.engines import DuckDBEngine

SLOW_VIEW = """
sql: SELECT i FROM range(10000000000000) t(i)
description: Counts to 10^13; a query on it runs until it is cancelled.
dimensions:
  i: {primary_key: true}
measures:
  count: {aggregate_type: count}
"""
SLOW_QUERY = {"modelId": MODEL_ID, "join_paths_from_topic_name": "slow", "fields": ["slow.count"]}
# (a): a job that ends on its own after tens of ms, whatever the scale of the data.
PACED_VIEW = """
sql: SELECT i FROM range(300000000) t(i)
description: Counts to 3 * 10^8; a query on it takes tens of ms.
dimensions:
  i: {primary_key: true}
measures:
  count: {aggregate_type: count}
"""
FINISHING_QUERY = {
    "modelId": MODEL_ID,
    "join_paths_from_topic_name": "paced",
    "fields": ["paced.count"],
}
# (b): as small as a semantic query gets, so the engine's share is as small as it can be.
TINY_QUERY = {"modelId": MODEL_ID, "fields": ["region.r_name"]}
# (c): two 1M-row results. Dimension-only queries compile to GROUP BY (de-duplicating), so the
# engine's share differs: orders groups 1.5M rows, lineitem 6M.
MILLION_QUERIES: dict[str, dict[str, Any]] = {
    "orders": {
        "modelId": MODEL_ID,
        "join_paths_from_topic_name": "orders",
        "fields": [
            "orders.o_orderkey",
            "orders.o_custkey",
            "orders.o_totalprice",
            "orders.o_orderdate",
        ],
        "limit": 1_000_000,
    },
    "lineitem": {
        "modelId": MODEL_ID,
        "join_paths_from_topic_name": "lineitem",
        "fields": [
            "lineitem.l_orderkey",
            "lineitem.l_linenumber",
            "lineitem.l_quantity",
            "lineitem.l_extendedprice",
        ],
        "limit": 1_000_000,
    },
}
RUN = "/api/v1/query/run"
WAIT = "/api/v1/query/wait"
CANCEL = "/api/v1/query/cancel"


MODEL_FILES = {
    "slow.view.yaml": SLOW_VIEW,
    "slow.topic.yaml": "base_view: slow\n",
    "paced.view.yaml": PACED_VIEW,
    "paced.topic.yaml": "base_view: paced\n",
}


# ---------------------------------------------------------------------- helpers


def mb(n: float) -> str:
    return f"{n / 1e6:8.1f} MB"


# ---------------------------------------------------------------------- (a) wake-up latency


def finished_at(server: Server, ids: Sequence[str]) -> dict[str, float]:
    """When the server marked each job terminal (its clock is ours: same machine)."""
    store = sqlite3.connect(f"file:{server.home / 'assay.sqlite'}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(ids))
        rows = store.execute(f"SELECT id, finished_at FROM jobs WHERE id IN ({marks})", ids)
        return {job_id: float(at) for job_id, at in rows.fetchall()}
    finally:
        store.close()


def submitted(response: httpx.Response) -> str:
    response.raise_for_status()
    ids = lines(response.content)[0]["jobs_submitted"]
    if lines(response.content)[-1]["remaining_job_ids"] != list(ids):
        raise RuntimeError(f"the job was not left running: {response.text[:300]}")
    return str(next(iter(ids)))


def bench_wakeup(database: Path, rounds: int, settle: float) -> dict[str, float]:
    print(f"(a) wake-up latency, {rounds} jobs each way")
    # Run wait 0: /query/run hands the id back at once, as for any query slower than the window.
    with (
        serving(
            database,
            {"ASSAY_RUN_WAIT_SECONDS": "0", "ASSAY_WAIT_SECONDS": "30"},
            model_files=MODEL_FILES,
        ) as (
            server,
            key,
        ),
        server.client(key) as api,
        server.client(key) as waiter,
        ThreadPoolExecutor(1) as pool,
    ):
        for _ in range(10):  # warm both connections and the routes
            waiter.get("/health").raise_for_status()
            api.get("/health").raise_for_status()
            api.post(RUN, json={"query": FINISHING_QUERY}).raise_for_status()
        health: list[float] = []

        # 1. Jobs that finish on their own: run, then long-poll at once; the query takes
        # tens of ms, so the wait is waiting when the job ends (checked below).
        natural: list[tuple[str, float, float]] = []  # job id, wait sent, response received
        for _ in range(rounds):
            job_id = submitted(api.post(RUN, json={"query": FINISHING_QUERY, "cache": "SkipCache"}))
            sent = time.time()
            response = waiter.get(WAIT, params={"job_ids": json.dumps([job_id])})
            natural.append((job_id, sent, time.time()))
            response.raise_for_status()
            if job_lines(response.content)[0]["status"] != "COMPLETE":
                raise RuntimeError(f"unexpected wait response: {response.text[:300]}")
            start = time.perf_counter()  # baseline: a bare round trip on the same connection
            waiter.get("/health").raise_for_status()
            health.append(time.perf_counter() - start)

        # 2. Jobs ended by a cancel while a client long-polls them (the brief's method): the
        # wait runs in a thread; the job is a query on the `slow` view, running until then.
        def wait_for(job_id: str) -> tuple[float, float, bytes]:
            response = waiter.get(WAIT, params={"job_ids": json.dumps([job_id])})
            received = time.time(), time.perf_counter()
            response.raise_for_status()
            return received[0], received[1], response.content

        cancelled: list[tuple[str, float, float, float, float]] = []
        for _ in range(rounds):
            job_id = submitted(api.post(RUN, json={"query": SLOW_QUERY, "cache": "SkipCache"}))
            future: Future[tuple[float, float, bytes]] = pool.submit(wait_for, job_id)
            time.sleep(settle)  # let the long-poll reach the server and start waiting
            if future.done():
                raise RuntimeError(f"the wait returned before the cancel: {future.result()[2]!r}")
            sent = time.perf_counter()
            cancel = api.post(CANCEL, json={"job_ids": [job_id]})
            answered = time.perf_counter()
            cancel.raise_for_status()
            got_wall, got_perf, body = future.result(timeout=60)
            line = job_lines(body)[0]
            if line["status"] != "FAILED" or line.get("error_type") != "KILL":
                raise RuntimeError(f"unexpected wait line: {line}")
            cancelled.append((job_id, got_wall, sent, answered, got_perf))
            time.sleep(settle)  # let the interrupted query release its worker and cores
        ended = finished_at(server, [n[0] for n in natural] + [c[0] for c in cancelled])

    # A job that ended less than 10 ms after its wait was sent may have ended before the wait
    # was registered (then the wait answers at once): such samples measure something else.
    valid = [(j, sent, got) for j, sent, got in natural if ended[j] - sent >= 0.010]
    if not valid:
        raise RuntimeError("every job ended within 10 ms of its wait: the paced view is too quick")
    wake = [got - ended[j] for j, _, got in valid]
    lead = [ended[j] - sent for j, sent, _ in valid]
    kill = [got_wall - ended[job_id] for job_id, got_wall, *_ in cancelled]
    after_cancel = [got - answered for _, _, _, answered, got in cancelled]
    cancel_rt = [answered - sent for _, _, sent, answered, _ in cancelled]
    print(f"  job finishes on its own: {FINISHING_QUERY['fields']}, SkipCache")
    print(f"    job finished -> wait response received {ms(wake)}   (target p50 < 5 ms)")
    print(
        f"    ({len(valid)} of {len(natural)} samples: the job ended >= 10 ms after the wait "
        f"was sent; median lead {statistics.median(lead) * 1e3:.0f} ms)"
    )
    print("  job cancelled while a client waits (the `slow` view: DuckDB busy until interrupted)")
    print(f"    job finished -> wait response received {ms(kill)}")
    print(f"    cancel answered -> wait response       {ms(after_cancel)}")
    print(f"    cancel round trip                      {ms(cancel_rt)}")
    print(f"  baseline: GET /health, same connection   {ms(health)}")
    print()
    return {"wake_p50_ms": pct(wake, 50) * 1e3, "health_p50_ms": pct(health, 50) * 1e3}


# ---------------------------------------------------------------------- (b) cached run


def bench_cached(database: Path, rounds: int) -> dict[str, float]:
    print(f"(b) cached /query/run vs the bare engine call: {TINY_QUERY['fields']}, {rounds} each")
    with serving(database, model_files=MODEL_FILES) as (server, key), server.client(key) as api:
        first = api.post(RUN, json={"query": TINY_QUERY})
        first.raise_for_status()
        line = job_lines(first.content)[0]
        if line["status"] != "COMPLETE":
            raise RuntimeError(f"the first run did not complete: {line}")
        sql = line["summary"]["sql"]
        for _ in range(20):  # warm the connection and the route
            api.get("/health").raise_for_status()
            api.post(RUN, json={"query": TINY_QUERY}).raise_for_status()

        engine = DuckDBEngine(database)
        try:
            for _ in range(20):
                engine.execute(sql)
            served: list[float] = []
            bare: list[float] = []
            health: list[float] = []
            for _ in range(rounds):  # interleaved, so drift affects each the same
                start = time.perf_counter()
                response = api.post(RUN, json={"query": TINY_QUERY})
                body = response.content
                served.append(time.perf_counter() - start)
                response.raise_for_status()
                hit = job_lines(body)[0]
                if hit["summary"].get("cache_type") != "EXACT":
                    raise RuntimeError(f"not a cache hit: {hit['summary']}")
                start = time.perf_counter()
                engine.execute(sql)
                bare.append(time.perf_counter() - start)
                start = time.perf_counter()
                api.get("/health").raise_for_status()
                health.append(time.perf_counter() - start)
            uncached: list[float] = []
            for _ in range(max(10, rounds // 4)):
                start = time.perf_counter()
                response = api.post(RUN, json={"query": TINY_QUERY, "cache": "SkipCache"})
                body = response.content
                uncached.append(time.perf_counter() - start)
                if job_lines(body)[0]["summary"].get("cache_type") != "MISS":
                    raise RuntimeError("SkipCache did not run the query")
        finally:
            engine.close()

    added = (pct(served, 50) - pct(bare, 50)) * 1e3
    print(f"  SQL: {sql}")
    print(f"  served, cache hit                        {ms(served)}")
    print(f"  bare engine call (DuckDBEngine.execute)  {ms(bare)}")
    print(f"  added latency (p50 served - p50 bare)    {added:8.3f} ms   (target < 3 ms)")
    print(f"  for scale: GET /health round trip        {ms(health)}")
    print(f"  for scale: served, SkipCache (runs it)   {ms(uncached)}")
    print()
    return {"added_p50_ms": added}


# ---------------------------------------------------------------------- (c) and (d) 1M rows


def quiet_duckdb(database: str) -> Any:
    """A read-only connection that draws no progress bar (DuckDB's, past 2 s, on stdout)."""
    con = duckdb.connect(database, read_only=True)
    con.execute("SET enable_progress_bar = false")
    return con


def in_process(con: Any, sql: str) -> tuple[float, pa.Table, int, int]:
    """DuckDB -> Arrow IPC stream -> base64, all in this process: (seconds, the table, IPC
    bytes, base64 bytes)."""
    start = time.perf_counter()
    table: pa.Table = con.sql(sql).to_arrow_table()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    ipc = sink.getvalue()
    encoded = base64.b64encode(ipc)
    elapsed = time.perf_counter() - start
    return elapsed, table, ipc.size, len(encoded)


def baseline_child(database: str, sql: str, out: Any) -> None:
    """The in-process baseline in a fresh process, for its peak RSS (run under spawn)."""
    con = quiet_duckdb(database)
    in_process(con, sql)
    in_process(con, sql)
    out.send((proc_status("self", "VmHWM"), proc_status("self", "VmRSS")))
    con.close()


def same_rows(a: pa.Table, b: pa.Table) -> bool:
    """The same rows, in any order. Both are ordered by their first column and cut at 1M rows,
    so rows tied on the last value of that column may differ (lineitem: an order's lines)."""
    keys = [(name, "ascending") for name in a.column_names]
    if a.sort_by(keys).equals(b.sort_by(keys)):
        return True
    first = a.column_names[0]
    last = pc.max(a.column(first))
    return bool(
        a.filter(pc.less(a.column(first), last))
        .sort_by(keys)
        .equals(b.filter(pc.less(b.column(first), last)).sort_by(keys))
    )


@dataclass
class Served:
    received: float  # request sent -> the whole NDJSON body in the client's hands
    parsed: float  # ... and its lines parsed as JSON (the result still base64)
    decoded: float  # ... and the result decoded (base64 -> Arrow table)
    rows: int
    body_bytes: int
    server_ms: float  # the server's own execution_time_ms (engine + writing the result file)
    via_wait: bool
    table: pa.Table | None = None  # the decoded result, when asked to keep it


def served_once(api: httpx.Client, query: dict[str, Any], *, keep: bool = False) -> Served:
    start = time.perf_counter()
    response = api.post(RUN, json={"query": query, "cache": "SkipCache"})
    bodies = [response.content]
    response.raise_for_status()
    via_wait = False
    if not bodies[0].rstrip().endswith(b'"timed_out":"false"}'):  # slower than the run window
        via_wait = True
        remaining = json.loads(bodies[0].rstrip().rsplit(b"\n", 1)[-1])["remaining_job_ids"]
        while remaining:  # long-poll for it, as the SDK does
            response = api.get(WAIT, params={"job_ids": json.dumps(remaining)})
            bodies.append(response.content)
            response.raise_for_status()
            remaining = json.loads(bodies[-1].rstrip().rsplit(b"\n", 1)[-1])["remaining_job_ids"]
    received = time.perf_counter()
    parsed = [line for body in bodies for line in job_lines(body)]
    parsed_at = time.perf_counter()
    line = parsed[0]
    if line["status"] != "COMPLETE":
        raise RuntimeError(f"the 1M-row job did not complete: {line}")
    with pa.ipc.open_stream(base64.b64decode(line["result"])) as reader:
        table = reader.read_all()
    decoded = time.perf_counter()
    return Served(received - start, parsed_at - start, decoded - start, table.num_rows,
                  sum(map(len, bodies)), float(line["summary"]["execution_time_ms"]),
                  via_wait, table if keep else None)  # fmt: skip


def bench_million(database: Path, runs: int, which: Sequence[str]) -> dict[str, float]:
    figures: dict[str, float] = {}
    for name in which:
        query = MILLION_QUERIES[name]
        fields = ", ".join(query["fields"])
        print(f"(c) 1,000,000 rows end to end ({name}: {fields}), {runs} runs each")
        with serving(database, model_files=MODEL_FILES) as (server, key), server.client(key) as api:
            rss_idle = server.status("VmRSS")
            hwm_idle = server.status("VmHWM")
            first = served_once(api, query, keep=True)  # warm-up (fills the OS page cache)
            plan = api.post(RUN, json={"query": query, "planOnly": True})
            plan.raise_for_status()
            sql = job_lines(plan.content)[0]["summary"]["sql"]
            con = quiet_duckdb(str(database))
            try:
                _, table, ipc_bytes, b64_bytes = in_process(con, sql)
                served: list[Served] = []
                local: list[float] = []
                for _ in range(runs):  # alternating, so drift affects each the same
                    served.append(served_once(api, query))
                    local.append(in_process(con, sql)[0])
            finally:
                con.close()
            hwm = server.status("VmHWM")
        rows = table.num_rows
        if first.table is None or not same_rows(first.table, table):
            raise RuntimeError("the served result differs from the in-process one")
        if any(s.rows != rows for s in served):
            raise RuntimeError(f"row counts differ: served {[s.rows for s in served]}, {rows}")
        via_wait = first.via_wait
        del first, table

        ctx = multiprocessing.get_context("spawn")
        receive, send = ctx.Pipe(duplex=False)
        child = ctx.Process(target=baseline_child, args=(str(database), sql, send), daemon=True)
        child.start()
        child_hwm, _ = receive.recv() if receive.poll(600) else (0, 0)
        child.join(60)

        local_s = statistics.median(local)
        stages = {
            "received": statistics.median(s.received for s in served),
            "parsed": statistics.median(s.parsed for s in served),
            "decoded": statistics.median(s.decoded for s in served),
        }
        server_s = statistics.median(s.server_ms for s in served) / 1e3
        print(f"  SQL: {sql}")
        print(
            f"  rows {rows:,}; Arrow IPC {mb(ipc_bytes)}; base64 {mb(b64_bytes)}; "
            f"NDJSON body {mb(served[-1].body_bytes)}"
            + ("; the run window passed: fetched by /query/wait" if via_wait else "")
        )
        print(
            f"  in process: DuckDB -> IPC -> base64      {local_s * 1e3:8.1f} ms   "
            f"({rows / local_s / 1e6:.2f} M rows/s)  runs: {[round(t * 1e3) for t in local]}"
        )
        print(
            f"  served: the server's execution_time_ms   {server_s * 1e3:8.1f} ms   "
            "(engine + result file)"
        )
        labels = {
            "received": "run -> whole body received",
            "parsed": "... lines parsed (JSON)",
            "decoded": "... result decoded (Arrow)",
        }
        for stage, seconds in stages.items():
            runs_ms = [round(getattr(s, stage) * 1e3) for s in served]
            print(
                f"  served: {labels[stage]:31s} {seconds * 1e3:8.1f} ms   "
                f"in-process/served {local_s / seconds:.2f}  runs: {runs_ms}"
            )
        ratio = local_s / stages["received"]
        print(f"  in-process / served (body received) = {ratio:.2f}   (target >= 0.7)")
        print(
            f"(d) server peak RSS (VmHWM) over start-up and (c): {mb(hwm)}  "
            f"(idle after start-up: RSS {mb(rss_idle)}, peak {mb(hwm_idle)}; "
            f"growth {mb(hwm - rss_idle)})"
        )
        print(f"    in-process baseline, fresh process, peak RSS:  {mb(child_hwm)}")
        print()
        figures[f"{name}_ratio"] = ratio
        figures[f"{name}_peak_mb"] = hwm / 1e6
    return figures


# ---------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (1: SF 1)")
    parser.add_argument("--only", choices=["a", "b", "c", "d"], help="one measurement (d = c)")
    parser.add_argument("--rounds-a", type=int, default=50, help="wake-ups measured in (a)")
    parser.add_argument("--rounds-b", type=int, default=200, help="cached runs timed in (b)")
    parser.add_argument("--runs-c", type=int, default=5, help="1M-row runs of each kind in (c)")
    parser.add_argument(
        "--settle",
        type=float,
        default=0.1,
        help="(a): seconds between starting a wait and cancelling",
    )
    parser.add_argument(
        "--million",
        choices=[*MILLION_QUERIES, "both"],
        default="both",
        help="(c): which 1M-row query",
    )
    args = parser.parse_args()
    # SIGTERM as an exception, so the servers' `finally` stops them (SIGINT already is one).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not Path(f"/proc/{os.getpid()}/status").exists():
        parser.error("this benchmark reads /proc (Linux) for the server's memory")
    database = generate_tpch(CACHE / f"tpch-sf{args.scale}.duckdb", args.scale)
    print(
        f"TPC-H scale {args.scale} ({database}); {os.cpu_count()} CPUs; Python "
        f"{sys.version.split()[0]}, DuckDB {duckdb.__version__}; load average "
        f"{os.getloadavg()[0]:.2f} (the machine may be shared: mind the spread of runs)\n"
    )
    only = {"d": "c"}.get(args.only or "", args.only)
    if only in (None, "a"):
        bench_wakeup(database, args.rounds_a, args.settle)
    if only in (None, "b"):
        bench_cached(database, args.rounds_b)
    if only in (None, "c"):
        which = list(MILLION_QUERIES) if args.million == "both" else [args.million]
        bench_million(database, args.runs_c, which)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
