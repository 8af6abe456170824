"""Replicas on one PostgreSQL job store: throughput with one and with two, and wake-up
latency across replicas.

Run: .venv/bin/python bench/replicas.py [--seconds 5] [--clients 8] [--samples 40]
     (PostgreSQL from ASSAY_BENCH_POSTGRES, default postgresql://postgres@127.0.0.1:5432/test;
     the bench uses a schema of its own and drops it at the end)

  (a) throughput of /query/run, `--clients` client threads for `--seconds` each, on:
      one replica on SQLite (the single-node baseline), one replica on PostgreSQL, and two
      replicas on PostgreSQL with the clients spread over both. Cached: the same query again
      (a cache hit: no engine work). Uncached: `cache: refresh` on a small TPC-H aggregate
      (the engine runs every time). On this 2-core machine the replicas share the cores, so
      two replicas show the coordination cost more than a capacity gain.
  (b) wake-up latency across replicas: a job that ends on its own after tens of ms is submitted
      on replica A (run window 0) and long-polled on replica B; the figure is the time from
      the job's end (finished_at in the store; same machine, same clock) to B's client
      holding the whole response. Target p50 < 10 ms. Baseline: the same on one replica.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from serving import CACHE, MODEL_ID, Server, job_lines, lines, ms

from assay.demo.tpch import generate_tpch

POSTGRES = os.environ.get("ASSAY_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PACED_VIEW = """
sql: SELECT i FROM range(300000000) t(i)
dimensions:
  i: {primary_key: true}
measures:
  count: {aggregate_type: count}
"""
MODEL_FILES = {"paced.view.yaml": PACED_VIEW, "paced.topic.yaml": "base_view: paced\n"}
PACED = {"modelId": MODEL_ID, "join_paths_from_topic_name": "paced", "fields": ["paced.count"]}
SMALL = {"modelId": MODEL_ID, "join_paths_from_topic_name": "orders",
         "fields": ["orders.o_orderpriority", "orders.count", "orders.sum_totalprice"]}  # fmt: skip
RUN, WAIT = "/api/v1/query/run", "/api/v1/query/wait"


@contextmanager
def replicas(
    database: Path, count: int, schema: str | None, run_wait: float = 10.0
) -> Iterator[list[Server]]:
    """``count`` servers; on PostgreSQL (``schema``) they share one job store."""
    env = {"ASSAY_RUN_WAIT_SECONDS": str(run_wait), "ASSAY_WAIT_SECONDS": "20",
           "ASSAY_WORKERS": "4"}  # fmt: skip
    if schema is not None:
        env |= {"ASSAY_JOB_STORE": POSTGRES, "ASSAY_JOB_STORE_SCHEMA": schema}
    with ExitStack() as stack:
        servers = []
        for _ in range(count):
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="assay-bench-")))
            server = Server(root, database, env=dict(env), model_files=MODEL_FILES)
            stack.callback(server.stop)
            servers.append(server.start())
        yield servers


def throughput(servers: Sequence[Server], token: str, body: dict[str, Any], seconds: float,
               clients: int) -> float:  # fmt: skip
    """Completed /query/run calls per second, clients spread round-robin over the servers."""
    done = [0] * clients
    stop = time.monotonic() + seconds
    errors: list[str] = []

    def client(i: int) -> None:
        with servers[i % len(servers)].client(token) as http:
            while time.monotonic() < stop:
                r = http.post(RUN, json=body)
                jobs = job_lines(r.content)
                if r.status_code != 200 or not jobs or jobs[0].get("status") != "COMPLETE":
                    errors.append(r.text[:300])
                    return
                done[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"a request failed: {errors[0]}")
    return sum(done) / (time.monotonic() - started)


def side_by_side(
    database: Path, schema: str, seconds: float, clients: int, rounds: int
) -> list[float]:
    """Cached throughput of one replica on PostgreSQL over one on SQLite, both servers up and
    measured in alternating rounds, so that both see the same machine (its speed drifts by
    half over minutes here, which separate runs would read as a difference)."""
    ratios = []
    with replicas(database, 1, None) as (lite,), replicas(database, 1, schema) as (shared,):
        tokens = {lite.port: lite.key(), shared.port: shared.key()}
        for server in (lite, shared):
            throughput([server], tokens[server.port], {"query": SMALL}, 1.0, clients)
        for i in range(rounds):
            alone = throughput([lite], tokens[lite.port], {"query": SMALL}, seconds, clients)
            both = throughput([shared], tokens[shared.port], {"query": SMALL}, seconds, clients)
            ratios.append(both / alone)
            print(f"  round {i + 1}: SQLite {alone:7.1f} req/s   PostgreSQL {both:7.1f} req/s   "
                  f"ratio {both / alone:.2f}")  # fmt: skip
    return ratios


def finished_at(job_id: str, schema: str) -> float:
    with psycopg.connect(POSTGRES, options=f"-c search_path={schema}") as conn:
        row = conn.execute("SELECT finished_at FROM jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None and row[0] is not None
    return float(row[0])


def wake_ups(submit_on: Server, wait_on: Server, token: str, schema: str, n: int) -> list[float]:
    """Seconds from each job's end to the waiting client holding the response."""
    samples = []
    with submit_on.client(token) as a, wait_on.client(token) as b:
        for _ in range(n):
            r = a.post(RUN, json={"query": PACED, "cache": "refresh"}, params={})
            ids = lines(r.content)[-1].get("remaining_job_ids") or []
            if not ids:
                continue  # finished inside the run window: nothing to wait for
            response = b.get(WAIT, params={"job_ids": f'["{ids[0]}"]'})
            held = time.time()
            assert job_lines(response.content), response.text
            samples.append(held - finished_at(ids[0], schema))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=4, help="side-by-side rounds")
    args = parser.parse_args()
    database = generate_tpch(CACHE / "tpch-sf0.1.duckdb", 0.1)
    schema = f"assay_bench_{uuid.uuid4().hex[:8]}"
    print(f"replicas bench: {args.clients} clients x {args.seconds:.0f} s per figure, TPC-H "
          f"SF 0.1, {os.cpu_count()} cores\n")  # fmt: skip
    try:
        rows: list[tuple[str, float, float]] = []
        setups: list[tuple[str, int, str | None]] = [
            ("1 replica, SQLite (baseline)", 1, None),
            ("1 replica, PostgreSQL", 1, schema),
            ("2 replicas, PostgreSQL", 2, schema),
        ]
        for label, count, store in setups:
            with replicas(database, count, store) as servers:
                token = servers[0].key()
                run = (servers, token)
                throughput(*run, {"query": SMALL}, 1.0, args.clients)  # warm the caches
                cached = throughput(*run, {"query": SMALL}, args.seconds, args.clients)
                body = {"query": SMALL, "cache": "refresh"}
                uncached = throughput(*run, body, args.seconds, args.clients)
                rows.append((label, cached, uncached))
                print(f"  {label:32s} cached {cached:8.1f} req/s   uncached {uncached:8.1f} req/s")
        print("\n  side by side, cached, alternating rounds:")
        ratios = sorted(side_by_side(database, schema, args.seconds, args.clients, args.rounds))
        median = ratios[len(ratios) // 2]
        verdict = "meets" if median >= 0.8 else "MISSES"
        print(f"  PostgreSQL / SQLite median {median:.2f}: {verdict} the 0.8 target\n")
        with replicas(database, 2, schema, run_wait=0) as (a, b):
            token = a.key()
            wake_ups(a, b, token, schema, 3)  # warm
            same = wake_ups(a, a, token, schema, args.samples)
            across = wake_ups(a, b, token, schema, args.samples)
        print(f"  wake-up, same replica (baseline)  {ms(same)}   n={len(same)}")
        print(f"  wake-up, across replicas          {ms(across)}   n={len(across)}")
        p50 = sorted(across)[len(across) // 2] * 1e3
        verdict = "meets" if p50 < 10 else "MISSES"
        print(f"\n  across-replica wake-up p50 {p50:.2f} ms: {verdict} the 10 ms target")
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


if __name__ == "__main__":
    main()
