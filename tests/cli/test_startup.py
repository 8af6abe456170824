"""Each command loads only what it uses: `assay --help` and `assay keys` start without the
web stack, the engines or the warehouse drivers (they cost 300 ms and more to import). A
fresh interpreter per case, since this test process has loaded everything long ago."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# what none of these commands needs: the web stack, the engines and their data libraries,
# the PostgreSQL driver, the SQL compiler, and rich's markdown parser (typer's rich help
# rendering loaded it: 60-70 ms of every --help)
HEAVY = ("fastapi", "uvicorn", "duckdb", "pyarrow", "numpy", "psycopg", "sqlglot", "httpx",
         "markdown_it")  # fmt: skip

_PROBE = """
import json, sys
args, watched = json.loads(sys.argv[1]), json.loads(sys.argv[2])
from assay.cli.main import main
sys.argv = ["assay", *args]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = [m for m in watched if m in sys.modules]
print("\\nPROBE " + json.dumps({"code": code, "heavy": heavy}))
"""


def _loaded(args: list[str], home: Path) -> tuple[int, list[str], str]:
    """Run ``assay *args`` in a new interpreter: its exit code, which HEAVY modules it
    loaded, and its output."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")},
             "ASSAY_HOME": str(home)},
    )  # fmt: skip
    last = done.stdout.rstrip().rsplit("\nPROBE ", 1)
    assert len(last) == 2, done.stdout + done.stderr
    probe = json.loads(last[1])
    return int(probe["code"] or 0), probe["heavy"], last[0]


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["keys", "--help"],
        ["query", "--help"],
        ["ask", "--help"],
        ["keys", "list"],
        ["store", "--help"],
    ],
    ids=" ".join,
)
def test_light_commands_load_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    code, heavy, output = _loaded(args, tmp_path)
    assert code == 0, output
    assert heavy == [], f"`assay {' '.join(args)}` imported {heavy}"


def test_the_probe_sees_heavy_imports(tmp_path: Path) -> None:
    """The check above can fail: a command that runs a query does load the engine."""
    query = '{"join_paths_from_topic_name": "orders", "fields": ["orders.count"]}'
    code, heavy, output = _loaded(["compile", query], tmp_path)
    assert code == 0, output
    assert "sqlglot" in heavy


def test_a_single_node_server_does_not_load_the_postgresql_driver() -> None:
    """`assay serve` on SQLite (the default) never touches PostgreSQL: psycopg (about 40 ms
    and its own threads) is loaded only for a shared store."""
    code = "import sys, assay.server.app; print(sorted(m for m in sys.modules if 'psycopg' in m))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    assert done.stdout.strip() == "[]"
