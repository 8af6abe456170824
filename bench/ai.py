"""AI jobs against a real `assay serve`: question to COMPLETE with the built-in planner.

The time from POST /api/v1/ai/jobs to GET /api/v1/ai/jobs/{id} reporting COMPLETE (polled
every few ms), with the built-in (offline) planner, for a handful of varied questions. Target:
p50 under 300 ms on TPC-H SF 0.1 (Omni quotes 15 to 60 s per question).

Run: .venv/bin/python bench/ai.py [--scale 0.1] [--rounds 10] [--poll 0.005]

Each pass starts its own server (a temp home with a copy of the demo model, ASSAY_AI_PLANNER
builtin) on a free loopback port, asks each question once to warm up, then asks each question
--rounds times, interleaved with the baseline so drift affects both the same:

  the baseline: the same semantic queries run directly through POST /api/v1/query/run, taken
  from the job's answer (/ai/jobs/{id}/result: every generate_query action's result.query, in
  order). AI time - baseline time is what planning, answering and the job protocol add over a
  plain query.

Two passes, because a job's queries go through the result cache like any query:
  cached:   the default server; after the warm-up every query is a cache hit, for the job and
            for the baseline (/query/run with the default cache policy).
  uncached: ASSAY_CACHE_TTL_SECONDS=0, so every job runs its queries on DuckDB; the baseline
            uses SkipCache. This is a question asked for the first time; the target is judged
            on both.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
from serving import CACHE, MODEL_ID, job_lines, ms, pct, serving

from assay.demo.tpch import generate_tpch

QUESTIONS = [
    "What is total revenue by region?",
    "top 5 customers by revenue",
    "monthly order count in 1995",
    "How many urgent orders were there?",
    "average discount by ship mode",
]
TARGET_MS = 300.0
JOBS = "/api/v1/ai/jobs"
RUN = "/api/v1/query/run"


# ---------------------------------------------------------------------- helpers


def ms2(samples: Sequence[float]) -> str:
    return ms(samples, digits=2)


def stamp(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------------- measurements


@dataclass
class Asked:
    seconds: float  # POST /ai/jobs sent -> a status poll answered COMPLETE
    server_seconds: float  # the job's createdAt -> completedAt (ms resolution)
    polls: int
    job_id: str


def ask(api: httpx.Client, question: str, poll: float) -> Asked:
    start = time.perf_counter()
    created = api.post(JOBS, json={"modelId": MODEL_ID, "prompt": question})
    created.raise_for_status()
    job_id = created.json()["jobId"]
    polls = 0
    while True:
        response = api.get(f"{JOBS}/{job_id}")
        polls += 1
        response.raise_for_status()
        status = response.json()
        if status["state"] == "COMPLETE":
            break
        if status["state"] in ("FAILED", "CANCELLED"):
            raise RuntimeError(f"{question!r}: the job ended {status['state']}: {status}")
        time.sleep(poll)
    elapsed = time.perf_counter() - start
    server = stamp(status["completedAt"]) - stamp(status["createdAt"])
    return Asked(elapsed, server, polls, job_id)


def planned_queries(api: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    """The semantic queries the job ran: its generate_query actions, in order."""
    response = api.get(f"{JOBS}/{job_id}/result")
    response.raise_for_status()
    actions = response.json()["actions"]
    queries = [a["result"]["query"] for a in actions if a.get("type") == "generate_query"]
    if not queries:
        raise RuntimeError(f"job {job_id} made no query: {actions}")
    return queries


def run_plain(api: httpx.Client, queries: Sequence[dict[str, Any]], cache: str | None) -> float:
    """The same queries through /query/run, one after the other; seconds for all of them."""
    start = time.perf_counter()
    for query in queries:
        body: dict[str, Any] = {"query": query}
        if cache:
            body["cache"] = cache
        response = api.post(RUN, json=body)
        response.raise_for_status()
        line = job_lines(response.content)[0]
        if line["status"] != "COMPLETE":
            raise RuntimeError(f"the plain query did not complete: {line}")
    return time.perf_counter() - start


def bench_pass(
    database: Path, label: str, rounds: int, poll: float, env: dict[str, str], cache: str | None
) -> dict[str, float]:
    print(f"{label}: {len(QUESTIONS)} questions x {rounds} rounds (after one warm-up each)")
    with (
        serving(database, {"ASSAY_AI_PLANNER": "builtin", **env}) as (server, key),
        server.client(key) as api,
    ):
        for _ in range(10):  # warm the connection and the routes
            api.get("/health").raise_for_status()
        plans: dict[str, list[dict[str, Any]]] = {}
        for question in QUESTIONS:  # warm-up: planner, compile cache, DuckDB, result cache
            plans[question] = planned_queries(api, ask(api, question, poll).job_id)
            run_plain(api, plans[question], cache)
        asked: dict[str, list[Asked]] = {q: [] for q in QUESTIONS}
        plain: dict[str, list[float]] = {q: [] for q in QUESTIONS}
        for _ in range(rounds):
            for question in QUESTIONS:  # interleaved, so drift affects each the same
                asked[question].append(ask(api, question, poll))
                plain[question].append(run_plain(api, plans[question], cache))
        last = {q: planned_queries(api, a[-1].job_id) for q, a in asked.items()}
        if last != plans:
            raise RuntimeError("the planner answered a question differently across runs")

    width = max(map(len, QUESTIONS)) + 2
    for question in QUESTIONS:
        ai = [a.seconds for a in asked[question]]
        fields = ", ".join(f for q in plans[question] for f in q["fields"])
        added = (pct(ai, 50) - pct(plain[question], 50)) * 1e3
        n = len(plans[question])
        print(f"  {question!r:{width}} -> {n} quer{'y' if n == 1 else 'ies'}: {fields}")
        print(f"    AI job, POST -> COMPLETE     {ms2(ai)}")
        print(f"    baseline, plain /query/run   {ms2(plain[question])}   AI adds {added:7.2f} ms")
    every = [a.seconds for q in QUESTIONS for a in asked[q]]
    server_side = [a.server_seconds for q in QUESTIONS for a in asked[q]]
    polls = sorted(a.polls for q in QUESTIONS for a in asked[q])
    baseline = [s for q in QUESTIONS for s in plain[q]]
    p50 = pct(every, 50) * 1e3
    added = p50 - pct(baseline, 50) * 1e3
    print(f"  all questions ({len(every)} jobs)")
    print(f"    AI job, POST -> COMPLETE     {ms2(every)}   (target p50 < {TARGET_MS:.0f} ms)")
    print(f"    server: createdAt->completed {ms2(server_side)}   (ms resolution)")
    print(f"    baseline, plain /query/run   {ms2(baseline)}")
    print(f"    AI adds (p50 - p50)          {added:8.2f} ms   polls per job p50 {pct(polls, 50)}")
    verdict = "met" if p50 < TARGET_MS else "NOT met"
    print(f"  target p50 < {TARGET_MS:.0f} ms: {verdict} ({p50:.1f} ms; Omni quotes 15-60 s)")
    print()
    return {"p50_ms": p50, "p95_ms": pct(every, 95) * 1e3, "added_ms": added}


# ---------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="TPC-H scale factor (0.1)")
    parser.add_argument("--rounds", type=int, default=10, help="timed runs of each question")
    parser.add_argument("--poll", type=float, default=0.005, help="seconds between status polls")
    parser.add_argument("--only", choices=["cached", "uncached"], help="one pass")
    args = parser.parse_args()
    # SIGTERM as an exception, so the servers' `finally` stops them (SIGINT already is one).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    database = generate_tpch(CACHE / f"tpch-sf{args.scale}.duckdb", args.scale)
    print(
        f"TPC-H scale {args.scale} ({database}); {os.cpu_count()} CPUs; Python "
        f"{sys.version.split()[0]}, DuckDB {duckdb.__version__}; load average "
        f"{os.getloadavg()[0]:.2f} (the machine may be shared: mind the spread of runs)\n"
    )
    figures: dict[str, dict[str, float]] = {}
    if args.only in (None, "cached"):
        figures["cached"] = bench_pass(database, "cached (default server)", args.rounds,
                                       args.poll, {}, None)  # fmt: skip
    if args.only in (None, "uncached"):
        figures["uncached"] = bench_pass(
            database, "uncached (ASSAY_CACHE_TTL_SECONDS=0; baseline SkipCache)", args.rounds,
            args.poll, {"ASSAY_CACHE_TTL_SECONDS": "0"}, "SkipCache",
        )  # fmt: skip
    met = all(f["p50_ms"] < TARGET_MS for f in figures.values())
    summary = ", ".join(f"{name} p50 {f['p50_ms']:.1f} ms" for name, f in figures.items())
    verdict = "met" if met else "NOT met"
    print(f"target p50 < {TARGET_MS:.0f} ms on every pass: {verdict} ({summary})")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
