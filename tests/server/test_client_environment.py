"""`assay query` and `assay ask` find their server and key in ASSAY_URL and ASSAY_API_KEY,
as the README says: the real command, in its own process, against a real server. The same
shell may serve (those names are the client's, not the server's settings), and a mistyped
name is refused with a suggestion rather than ignored."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from pathlib import Path

import httpx

from tests.server.conftest import ASSAY, MODEL_ID, Server, free_port, make_home

QUERY = json.dumps({"modelId": MODEL_ID, "join_paths_from_topic_name": "customer",
                    "fields": ["customer.c_mktsegment", "customer.count"],
                    "sorts": [{"column_name": "customer.c_mktsegment"}]})  # fmt: skip
SEGMENTS = ["AUTOMOBILE", "BUILDING", "FURNITURE", "HOUSEHOLD", "MACHINERY"]


def _assay(server: Server, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``assay *args`` with the server's settings and ``env`` (no --url, no --key)."""
    return subprocess.run([ASSAY, *args], env={**server._env(), "COLUMNS": "200", **env},
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_assay_query_takes_its_server_and_key_from_the_environment(
    server: Server, org_key: str
) -> None:
    done = _assay(server, "query", QUERY, "--format", "csv",
                  ASSAY_URL=server.url, ASSAY_API_KEY=org_key)  # fmt: skip
    assert done.returncode == 0, done.stderr
    _, *rows = list(csv.reader(io.StringIO(done.stdout)))
    assert [row[0] for row in rows] == SEGMENTS


def test_assay_ask_takes_its_server_and_key_from_the_environment(
    server: Server, org_key: str
) -> None:
    done = _assay(server, "ask", "revenue by region",
                  ASSAY_URL=server.url, ASSAY_API_KEY=org_key)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ASIA" in done.stdout and "EUROPE" in done.stdout
    assert "conversation:" in done.stderr


def test_the_options_win_over_the_environment(server: Server, org_key: str) -> None:
    done = _assay(server, "query", QUERY, "--format", "csv", "--url", server.url, "--key",
                  org_key, ASSAY_URL="http://127.0.0.1:9", ASSAY_API_KEY="wrong")  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_a_wrong_key_from_the_environment_is_the_servers_refusal(server: Server) -> None:
    done = _assay(server, "query", QUERY, ASSAY_URL=server.url, ASSAY_API_KEY="not-a-key")
    assert done.returncode == 1
    assert "HTTP 401" in done.stderr


def test_a_mistyped_name_is_refused_with_a_suggestion(server: Server, org_key: str) -> None:
    done = _assay(server, "query", QUERY, ASSAY_URL=server.url, ASSAY_APIKEY=org_key)
    assert done.returncode == 2
    assert "Unknown setting ASSAY_APIKEY" in done.stderr
    assert '"ASSAY_API_KEY"' in done.stderr


def test_no_server_at_the_address_is_said_plainly(server: Server, org_key: str) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    done = _assay(server, "ask", "revenue", ASSAY_URL=nowhere, ASSAY_API_KEY=org_key)
    assert done.returncode == 1
    assert f"Cannot reach the server at {nowhere}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_server_started_from_the_same_shell_accepts_the_client_names(
    tmp_path: Path, tpch_path: Path
) -> None:
    """A newcomer exports ASSAY_URL and ASSAY_API_KEY, then serves from the same shell: the
    server starts, takes nothing from them, and answers the client that reads them."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"ASSAY_URL": url, "ASSAY_API_KEY": "not-yet-a-key"}
    served = Server(make_home(tmp_path), tpch_path, env=env, port=port).start()
    try:
        key = served.key("--org")
        done = _assay(served, "query", QUERY, "--format", "csv", ASSAY_API_KEY=key)
        assert done.returncode == 0, done.stderr
        assert SEGMENTS[0] in done.stdout
    finally:
        served.stop()


def _printed_until_serving(proc: subprocess.Popen[str]) -> list[str]:
    """The demo's lines up to "Serving on" (it prints its commands, then serves)."""
    assert proc.stdout is not None
    printed: list[str] = []
    for line in proc.stdout:
        printed.append(line)
        if line.startswith("Serving on"):
            break
    return printed


def _until_listening(url: str) -> None:
    """The demo prints "Serving on" just before its server listens."""
    for _ in range(100):
        try:
            httpx.get(f"{url}/health", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)


def test_the_ask_command_the_demo_prints_works_as_pasted(tmp_path: Path, tpch_path: Path) -> None:
    """What a newcomer does: `assay demo`, then paste the `ASSAY_API_KEY=... assay ask ...`
    line it prints into a shell (one that has no ASSAY_HOME or ASSAY_PORT of the demo's)."""
    demo = Server(tmp_path / "home", tpch_path)
    with subprocess.Popen(
        [ASSAY, "demo", "--port", str(demo.port)],
        env=demo._env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) as proc:  # fmt: skip
        try:
            printed = _printed_until_serving(proc)
            pasted = next((ln.strip() for ln in printed if ln.strip().startswith("ASSAY_")), None)
            assert pasted is not None, "".join(printed)
            assert pasted.startswith(f"ASSAY_URL={demo.url} ASSAY_API_KEY=assay_org_"), pasted
            assert " ask " in pasted
            _until_listening(demo.url)
            shell = {k: v for k, v in demo._env().items() if not k.startswith("ASSAY_")}
            done = subprocess.run(
                pasted, shell=True, env={**shell, "COLUMNS": "200"},
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert "ASIA" in done.stdout and "EUROPE" in done.stdout
        finally:
            proc.terminate()  # leaving the block closes its output and waits for it
