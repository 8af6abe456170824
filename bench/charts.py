"""Charts: what drawing an answer's chart with Vega-Lite (vl-convert) costs.

Run: .venv/bin/python bench/charts.py [--scale 0.1] [--runs 50] [--only inprocess|server]

In process, on real TPC-H results (one per chart shape: bars by nation, a monthly line, one
line per region, a big-number card), --runs times each:
  spec       chart_spec: the Vega-Lite spec from the table and its fields
  svg        spec -> SVG (vl-convert: Vega-Lite -> Vega -> SVG in its JavaScript engine)
  png        spec -> PNG as chart_png makes it (the SVG, rasterised by resvg)
  png (vl)   spec -> PNG by vl-convert's own vegalite_to_png, the alternative not taken
and the first chart in a fresh process (the engine starting), which the server pays in a
background thread when it is first asked a question (assay.ai.chart.warm_up_soon).

On a real `assay serve` (built-in planner): each question asked once, then
GET /api/v1/ai/jobs/{id}/vis --runs times (the query is a result-cache hit, as when a client
asks for the chart of an answer it just got). Target: p50 under 100 ms at SF 0.1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import vl_convert
from serving import CACHE, MODEL_ID, ms, pct, serving

from assay.ai.chart import VEGA_LITE, render_png, render_svg
from assay.ai.chart_spec import Spec, chart_spec
from assay.ai.planner import PlanStep, plan
from assay.demo.tpch import generate_tpch, tpch_model_dir
from assay.engines import DuckDBEngine
from assay.semantic.compiler import FieldMeta, compile_query
from assay.semantic.loader import load_model

SHAPES = {
    "bars, 25 nations": ["revenue by nation"],
    "line, 80 months": ["monthly order count"],
    "5 lines, by region and year": ["revenue by region", "and by year?"],
    "big-number card": ["What is total revenue?"],
}
TARGET_MS = 100.0
FIRST_CHART = """
import time
start = time.perf_counter()
import vl_convert
imported = time.perf_counter()
vl_convert.vegalite_to_svg({"data": {"values": [{"v": 1}]}, "mark": "bar",
    "encoding": {"x": {"field": "v", "type": "quantitative"}}}, vl_version=%r)
done = time.perf_counter()
rss = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
print(imported - start, done - imported, time.process_time(), rss)
"""


def timed(runs: int, work: Callable[[], Any]) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        samples.append(time.perf_counter() - start)
    return samples


def measure(runs: int, table: pa.Table, fields: Sequence[FieldMeta], spec: Spec) -> None:
    print(f"    spec       {ms(timed(runs, lambda: chart_spec(table, fields)))}")
    print(f"    svg        {ms(timed(runs, lambda: render_svg(spec)))}")
    print(f"    png        {ms(timed(runs, lambda: render_png(spec)))}")
    vl_png = timed(runs, lambda: vl_convert.vegalite_to_png(spec, vl_version=VEGA_LITE))
    print(f"    png (vl)   {ms(vl_png)}")
    print(f"    sizes      svg {len(render_svg(spec)):,} B, png {len(render_png(spec)):,} B")


def in_process(database: Path, runs: int) -> None:
    model = load_model(tpch_model_dir())
    engine = DuckDBEngine(database)
    for shape, questions in SHAPES.items():
        steps: list[PlanStep] = []
        for q in questions:
            steps.append(PlanStep(q, plan(q, model, conversation=steps)))
        compiled = compile_query(model, steps[-1].plan.queries[0].query)
        table = engine.execute(compiled.sql)
        spec = chart_spec(table, compiled.fields)
        assert spec is not None
        render_svg(spec)  # the engine started, this shape seen once
        print(f"  {shape} ({table.num_rows} rows)")
        measure(runs, table, compiled.fields, spec)
    engine.close()
    firsts = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", "import os\n" + FIRST_CHART % VEGA_LITE],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        firsts.append([float(v) for v in out.stdout.split()])
    print("  first chart in a fresh process (3 processes)")
    print(f"    import vl_convert   {ms([f[0] for f in firsts])}")
    print(f"    first render        {ms([f[1] for f in firsts])}")
    cpu = ", ".join(f"{f[2]:.2f}" for f in firsts)
    rss = ", ".join(f"{f[3] / 2**20:.0f}" for f in firsts)
    print(f"    CPU seconds {cpu}; RSS after {rss} MB")


def ask(api: httpx.Client, prompt: str, conversation: str | None) -> dict[str, Any]:
    body = {"modelId": MODEL_ID, "prompt": prompt}
    if conversation:
        body["conversationId"] = conversation
    created = api.post("/api/v1/ai/jobs", json=body)
    created.raise_for_status()
    job = created.json()
    while api.get(f"/api/v1/ai/jobs/{job['jobId']}").json()["state"] != "COMPLETE":
        time.sleep(0.01)
    return dict(job)


def server(database: Path, runs: int) -> None:
    with serving(database, {"ASSAY_AI_PLANNER": "builtin"}) as (srv, key), srv.client(key) as api:
        first: list[float] = []
        everything: list[float] = []
        for shape, questions in SHAPES.items():
            conversation = None
            for q in questions:
                job = ask(api, q, conversation)
                conversation = job["conversationId"]
            url = f"/api/v1/ai/jobs/{job['jobId']}/vis"
            start = time.perf_counter()
            api.get(url).raise_for_status()
            first.append(time.perf_counter() - start)

            def vis(url: str = url) -> None:
                response = api.get(url)
                response.raise_for_status()
                assert response.content.startswith(b"\x89PNG")

            samples = timed(runs, vis)
            everything += samples
            print(f"  {shape:30} GET /vis   {ms(samples)}")
        print(f"  first /vis of each shape         {ms(first)}")
        p50 = pct(everything, 50) * 1e3
        verdict = "met" if p50 < TARGET_MS else "NOT met"
        print(f"  all shapes: p50 {p50:.1f} ms; target p50 < {TARGET_MS:.0f} ms: {verdict}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="TPC-H scale factor (0.1)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs of each measure")
    parser.add_argument("--only", choices=["inprocess", "server"])
    args = parser.parse_args(argv)
    database = generate_tpch(CACHE / f"tpch-sf{args.scale}.duckdb", args.scale)
    print(
        f"TPC-H scale {args.scale}; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}, "
        f"DuckDB {duckdb.__version__}, vl-convert {version('vl-convert-python')} (Vega-Lite "
        f"{VEGA_LITE}); load average {os.getloadavg()[0]:.2f}\n"
    )
    if args.only in (None, "inprocess"):
        print(f"in process, {args.runs} runs each")
        in_process(database, args.runs)
        print()
    if args.only in (None, "server"):
        print(f"a real `assay serve`, {args.runs} runs each")
        server(database, args.runs)


if __name__ == "__main__":
    main()
