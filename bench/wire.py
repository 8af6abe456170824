"""Large results at wire speed: 1,000,000 lineitem rows (TPC-H SF 1) from a real `assay serve`
to a client, side by side with the same SQL run in this process, in one run.

Run: .venv/bin/python bench/wire.py [--rounds 3] [--scale 1] [--before-src DIR] [--gzip-side]

Each round runs, one after the other (so that drift affects each alike):

  baseline  the compiled SQL in this process: DuckDB -> Arrow table -> IPC stream -> base64
            (what the server must produce; no HTTP).
  httpx     POST /query/run (SkipCache; /query/wait if the run window passes), with httpx's
            default headers (it asks for gzip, deflate and zstd): "body" when the client holds
            the whole NDJSON body, "decoded" once it has also parsed the line and decoded the
            result to an Arrow table.
  sdk       omni-python-sdk's OmniAPI.run_query_blocking, its real client (requests, a new
            connection per call, NDJSON parsed by `ndjson`, base64 -> pyarrow): the table in
            hand.

then the same query as a cache hit (the server only serves the result file) through httpx.

Targets (the operations issue): each client's end-to-end time (httpx decoded, sdk) within
1.3x the baseline; the server's memory for the result under 1.5x the result's IPC size.

Besides wall time, each request's CPU time is shown, in the server (its whole process) and in
the client: on a shared machine wall times move with other people's load, CPU times much less.

Memory: the server's peak RSS is reset (/proc/<pid>/clear_refs) before each request and read
after it, so each figure is that request's own peak above the RSS it started from. The first
run after start-up holds the engine's working memory (DuckDB's GROUP BY over 6M rows: shown
apart, the same SQL alone in a fresh process); a cache hit shows what serving the result costs.

--before-src DIR serves a second server from another checkout's src/ (e.g. a `git worktree`
of the commit before a change), requests interleaved with this tree's. --gzip-side adds a
server of this tree with gzip_answers=always: what gzip costs on loopback.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import multiprocessing
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
from omni_python_sdk import OmniAPI
from query_api import MILLION_QUERIES, in_process, quiet_duckdb, same_rows
from serving import CACHE, Server, job_lines, proc_status, serving

from assay.demo.tpch import generate_tpch

QUERY = MILLION_QUERIES["lineitem"]
RUN = "/api/v1/query/run"
WAIT = "/api/v1/query/wait"
TIME_TARGET = 1.3  # client end to end / in-process baseline, at most
MEMORY_TARGET = 1.5  # server peak growth / the result's IPC size, at most
TICKS = os.sysconf("SC_CLK_TCK")


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


# ---------------------------------------------------------------------- one request, watched


@dataclass
class Run:
    seconds: float  # request sent -> the table in the client's hands
    table: pa.Table
    server_cpu: float  # the server process's CPU seconds over the request
    client_cpu: float  # this process's CPU seconds over the request
    growth: int  # the server's peak RSS above its RSS when the request began
    body: float = 0.0  # (httpx) request sent -> the whole body held
    client_cpu_body: float = 0.0  # (httpx) the client's CPU seconds until then
    encoding: str = ""  # (httpx) the answer's Content-Encoding
    wire_bytes: int = 0  # (httpx) bytes on the wire
    execution_ms: float = 0.0  # (httpx) the server's execution_time_ms (engine + file)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


@contextlib.contextmanager
def watched(server: Server) -> Iterator[dict[str, float]]:
    """The request's server CPU, client CPU and server peak RSS growth, filled in on exit."""
    assert server.proc is not None
    pid = server.proc.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    rss = proc_status(pid, "VmRSS")
    server_cpu, client_cpu = cpu_seconds(pid), time.process_time()
    figures: dict[str, float] = {}
    yield figures
    figures["server_cpu"] = cpu_seconds(pid) - server_cpu
    figures["client_cpu"] = time.process_time() - client_cpu
    figures["client_start"] = client_cpu
    figures["growth"] = proc_status(pid, "VmHWM") - rss


def footer_ids(body: bytes) -> list[str]:
    ids: list[str] = json.loads(body.rstrip().rsplit(b"\n", 1)[-1])["remaining_job_ids"]
    return ids


def run_httpx(api: httpx.Client, server: Server, cache: str = "SkipCache") -> Run:
    with watched(server) as figures:
        start = time.perf_counter()
        response = api.post(RUN, json={"query": QUERY, "cache": cache})
        response.raise_for_status()
        bodies = [response.content]
        encoding = response.headers.get("content-encoding", "")
        wire = response.num_bytes_downloaded
        while remaining := footer_ids(bodies[-1]):  # past the run window: long-poll, as the SDK
            response = api.get(WAIT, params={"job_ids": json.dumps(remaining)})
            response.raise_for_status()
            bodies.append(response.content)
            wire += response.num_bytes_downloaded
        body, body_cpu = time.perf_counter(), time.process_time()
        line = next(line for b in bodies for line in job_lines(b) if "result" in line)
        with pa.ipc.open_stream(base64.b64decode(line["result"])) as reader:
            table = reader.read_all()
        seconds = time.perf_counter() - start
    return Run(seconds, table, figures["server_cpu"], figures["client_cpu"],
               int(figures["growth"]), body - start, body_cpu - figures["client_start"],
               encoding, wire, float(line["summary"]["execution_time_ms"]))  # fmt: skip


def run_sdk(sdk: OmniAPI, server: Server) -> Run:
    with watched(server) as figures:
        start = time.perf_counter()
        table, _fields = sdk.run_query_blocking({"query": QUERY, "cache": "SkipCache"})
        seconds = time.perf_counter() - start
    if table is None:
        raise RuntimeError("omni-python-sdk found no result (see the server log)")
    return Run(seconds, table, figures["server_cpu"], figures["client_cpu"],
               int(figures["growth"]))  # fmt: skip


def baseline_once(con: Any, sql: str) -> tuple[float, float]:
    """query_api's in-process baseline (DuckDB -> Arrow table -> IPC stream -> base64), with
    the engine's share: (seconds, of which DuckDB -> Arrow table)."""
    start = time.perf_counter()
    table = con.sql(sql).to_arrow_table()
    engine = time.perf_counter() - start
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    base64.b64encode(sink.getvalue())
    return time.perf_counter() - start, engine


# ---------------------------------------------------------------------- the engine's memory


def engine_alone_child(database: str, sql: str, out: Any) -> None:
    """The engine's own peak for the SQL: run in a fresh process, batches read and dropped."""
    con = quiet_duckdb(database)
    before = proc_status("self", "VmRSS")
    for _ in con.sql(sql).to_arrow_reader(64 * 1024):
        pass
    out.send(proc_status("self", "VmHWM") - before)
    con.close()


def engine_alone(database: Path, sql: str) -> int:
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=engine_alone_child, args=(str(database), sql, send), daemon=True)
    child.start()
    growth = int(receive.recv()) if receive.poll(600) else 0
    child.join(60)
    return growth


# ---------------------------------------------------------------------- report


@dataclass
class Side:
    """One server measured, and its runs."""

    label: str
    server: Server
    api: httpx.Client
    sdk: OmniAPI
    first: Run | None = None
    httpx_runs: list[Run] = field(default_factory=list)
    sdk_runs: list[Run] = field(default_factory=list)
    cached: list[Run] = field(default_factory=list)

    def runs(self) -> list[Run]:
        assert self.first is not None
        return [self.first, *self.httpx_runs, *self.sdk_runs, *self.cached]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def row(label: str, runs: Sequence[Run], base: float, pick: Callable[[Run], float]) -> str:
    seconds = [pick(r) for r in runs]
    shown = ", ".join(f"{s * 1e3:.0f}" for s in seconds)
    return (
        f"  {label:31s} {median(seconds) * 1e3:7.0f} ms  {median(seconds) / base:5.2f}x   "
        f"CPU server {median([r.server_cpu for r in runs]) * 1e3:4.0f} ms, "
        f"client {median([r.client_cpu for r in runs]) * 1e3:4.0f} ms   runs: {shown}"
    )


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(side: Side, base: float, ipc_bytes: int, engine_growth: int) -> None:
    last, first = side.httpx_runs[-1], side.first
    assert first is not None
    print(f"{side.label}: httpx's answer {mb(last.wire_bytes)} on the wire, Content-Encoding "
          f"{last.encoding or 'none'}; the server's execution_time_ms (engine + result file) "
          f"{median([r.execution_ms for r in side.httpx_runs]):.0f} ms")  # fmt: skip
    receive = median([r.client_cpu_body for r in side.httpx_runs])
    print(row("httpx: whole body held", side.httpx_runs, base, lambda r: r.body))
    print(f"    (of the client's CPU, {receive * 1e3:.0f} ms went to receiving the body)")
    print(row("httpx: ... decoded to Arrow", side.httpx_runs, base, lambda r: r.seconds))
    print(row("omni-python-sdk: table in hand", side.sdk_runs, base, lambda r: r.seconds))
    print(row("cache hit, httpx: decoded", side.cached, base, lambda r: r.seconds))
    worst = max(median([r.seconds for r in side.httpx_runs]),
                median([r.seconds for r in side.sdk_runs])) / base  # fmt: skip
    print(f"  end to end / baseline, the slower client: {worst:.2f}x "
          f"(target <= {TIME_TARGET}x: {verdict(worst <= TIME_TARGET)})")  # fmt: skip
    uncached = max(r.growth for r in [*side.httpx_runs, *side.sdk_runs])
    serving = max(r.growth for r in side.cached)
    met = verdict(serving < MEMORY_TARGET * ipc_bytes)
    print(f"  server peak RSS growth: first run after start-up {mb(first.growth)} (the engine "
          f"alone, fresh process: {mb(engine_growth)}); later runs <= {mb(uncached)}; cache "
          f"hit <= {mb(serving)} = {serving / ipc_bytes:.2f}x the IPC size "
          f"(target < {MEMORY_TARGET}x: {met})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of baseline/httpx/sdk")
    parser.add_argument("--before-src", type=Path, help="also serve from this checkout's src/")
    parser.add_argument("--gzip-side", action="store_true", help="also serve with gzip always")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    database = generate_tpch(CACHE / f"tpch-sf{args.scale}.duckdb", args.scale)
    print(
        f"TPC-H scale {args.scale}; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}, "
        f"DuckDB {duckdb.__version__}, httpx {httpx.__version__}; load average "
        f"{os.getloadavg()[0]:.2f} (a shared machine: compare within this run)\n"
    )
    env = {"ASSAY_RUN_WAIT_SECONDS": "120"}  # longer than any run: answers come with the run
    trees = [("after", env)]
    if args.before_src is not None:
        trees.insert(0, ("before", {**env, "PYTHONPATH": str(args.before_src.resolve())}))
    if args.gzip_side:
        trees.append(("after, gzip_answers=always", {**env, "ASSAY_GZIP_ANSWERS": "always"}))
    with contextlib.ExitStack() as stack:
        sides = []
        for label, tree_env in trees:
            server, key = stack.enter_context(serving(database, tree_env))
            api = stack.enter_context(server.client(key))
            sides.append(Side(label, server, api, OmniAPI(key, server.url)))
        plan = sides[0].api.post(RUN, json={"query": QUERY, "planOnly": True})
        plan.raise_for_status()
        sql = job_lines(plan.content)[0]["summary"]["sql"]
        for side in sides:  # the first run after start-up; fills the page cache
            side.first = run_httpx(side.api, side.server)
        con = quiet_duckdb(str(database))
        baseline: list[tuple[float, float]] = []
        try:
            _, reference, ipc_bytes, b64_bytes = in_process(con, sql)
            for _ in range(args.rounds):  # interleaved, so that drift affects each alike
                baseline.append(baseline_once(con, sql))
                for side in sides:
                    side.httpx_runs.append(run_httpx(side.api, side.server))
                    side.sdk_runs.append(run_sdk(side.sdk, side.server))
        finally:
            con.close()
        for side in sides:
            side.api.post(RUN, json={"query": QUERY}).raise_for_status()  # cached from here
        for _ in range(args.rounds):
            for side in sides:
                side.cached.append(run_httpx(side.api, side.server, cache="Standard"))

    for side in sides:
        if not all(same_rows(r.table, reference) for r in side.runs()):
            raise RuntimeError(f"{side.label}: a served result differs from the in-process one")
    engine_growth = engine_alone(database, sql)

    base = median([total for total, _ in baseline])
    print(f"SQL: {sql}")
    print(f"rows {reference.num_rows:,}; Arrow IPC {mb(ipc_bytes)}; base64 {mb(b64_bytes)}")
    runs = ", ".join(f"{total * 1e3:.0f}" for total, _ in baseline)
    engine = median([e for _, e in baseline])
    print(
        f"  baseline: DuckDB -> IPC -> base64 {base * 1e3:7.0f} ms   (DuckDB -> Arrow "
        f"{engine * 1e3:.0f} ms, IPC + base64 {(base - engine) * 1e3:.0f} ms)   runs: {runs}\n"
    )
    for side in sides:
        report(side, base, ipc_bytes, engine_growth)
        print()
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
