"""Date grains as text for csv/json/xlsx documents: what building the text costs for a million
rows, against writing the same result as CSV (the work a document does anyway), and against
Arrow's strftime, the obvious way to build it, which we replaced because it is ten times
slower. Each figure is the best of 5 rounds, all in one run."""

from __future__ import annotations

import datetime as dt
import io
import time
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from assay.results.formats import GRAIN_PATTERNS, grains_as_text

ROWS = 1_000_000
GRAINS = ("YEAR", "QUARTER", "MONTH", "DATE", "MINUTE")


def best(run: Callable[[], object], rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main() -> None:
    start = dt.datetime(1992, 1, 1)
    stamps = pa.array([start + dt.timedelta(days=i % 2500, seconds=i) for i in range(ROWS)],
                      pa.timestamp("us"))  # fmt: skip
    table = pa.table({"at": stamps, "n": pa.array(range(ROWS))})
    write = best(lambda: pacsv.write_csv(table, io.BytesIO()))
    print(f"{ROWS:,} rows; writing them as CSV (typed timestamps): {write:.0f} ms")
    print(f"{'grain':<8} {'as text':>9} {'strftime':>9}")
    for grain in GRAINS:
        pattern = GRAIN_PATTERNS.get(grain, "%Y")  # a quarter: its year part, at the least

        def ours(g: str = grain) -> object:
            return grains_as_text(table, [g, None])

        def arrows(p: str = pattern) -> object:
            return pc.strftime(table.column("at"), format=p)

        print(f"{grain:<8} {best(ours):>6.0f} ms {best(arrows):>6.0f} ms")


if __name__ == "__main__":
    main()
