"""How long the command line takes to start, side by side with a bare Python start.

Run: .venv/bin/python bench/startup.py [--rounds 20]

Each command runs as a new process (the way a user runs it), rounds alternating between the
commands so that all see the same machine load; a temp home keeps `keys list` off the user's
own store. Target: `assay --help` p50 under 250 ms. To see what a command imports and what
each import costs: `.venv/bin/python -X importtime .venv/bin/assay --help 2> imports.txt`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from serving import ASSAY, pct

COMMANDS: dict[str, list[str]] = {
    "bare python (python -c pass)": [sys.executable, "-c", "pass"],
    "assay --help": [ASSAY, "--help"],
    "assay keys list": [ASSAY, "keys", "list"],
    "assay query --help": [ASSAY, "query", "--help"],
    "import assay.server.app (serve's imports)": [sys.executable, "-c",
                                                  "import assay.server.app"],
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="assay-startup-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
        env["ASSAY_HOME"] = str(Path(home))
        subprocess.run([ASSAY, "keys", "list"], env=env, check=True, capture_output=True)
        times: dict[str, list[float]] = {label: [] for label in COMMANDS}
        for _ in range(args.rounds):
            for label, command in COMMANDS.items():
                start = time.perf_counter()
                subprocess.run(command, env=env, check=True, capture_output=True)
                times[label].append(time.perf_counter() - start)
    print(f"{args.rounds} rounds, alternating\n")
    for label, samples in times.items():
        print(f"  {label:44s} p50 {pct(samples, 50) * 1e3:7.1f} ms   "
              f"p95 {pct(samples, 95) * 1e3:7.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
