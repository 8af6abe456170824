"""Large answers from a real `assay serve`: a result decodes to its result file byte for
byte, sent with an exact Content-Length; gzip only when the ``gzip_answers`` setting and the
client's Accept-Encoding both allow it, decoding to the same bytes (Omni's own SDK included);
and a client that leaves mid-answer stops the answer at once: the server logs where it
stopped, lets go of the result file and the answer's memory, and serves the next request.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from omni_python_sdk import OmniAPI

from assay.engines import DuckDBEngine
from tests.server.conftest import MODEL_ID, Server, make_home

RUN = "/api/v1/query/run"
# 600,572 rows at SF 0.1: a 25 MB result, 34 MB as base64 (streamed in parts)
BIG = {
    "modelId": MODEL_ID,
    "join_paths_from_topic_name": "lineitem",
    "limit": None,
    "fields": ["lineitem.l_orderkey", "lineitem.l_linenumber", "lineitem.l_comment"],
}
# 20,000 rows: a 160 KB result, sent as one body
MEDIUM = {"modelId": MODEL_ID, "join_paths_from_topic_name": "lineitem", "limit": 20_000,
          "fields": ["lineitem.l_orderkey"]}  # fmt: skip
STOPPED = re.compile(rb"the client left after (\d+) bytes of the answer")


@pytest.fixture(scope="module")
def gzipping(tmp_path_factory: pytest.TempPathFactory, tpch_path: Path) -> Iterator[Server]:
    """A server that gzips answers for every client that asks, loopback ones too."""
    env = {"ASSAY_GZIP_ANSWERS": "always", "ASSAY_RUN_WAIT_SECONDS": "60"}
    server = Server(make_home(tmp_path_factory.mktemp("gzipping")), tpch_path, env=env).start()
    yield server
    server.stop()


def run(server: Server, key: str, query: dict[str, Any], **headers: str) -> httpx.Response:
    response = httpx.post(f"{server.url}{RUN}", json={"query": query}, timeout=120,
                          headers={"Authorization": f"Bearer {key}", **headers})  # fmt: skip
    assert response.status_code == 200, response.text[:500]
    return response


def result_line(response: httpx.Response) -> dict[str, Any]:
    lines = [json.loads(line) for line in response.content.splitlines() if line.strip()]
    assert lines[-1]["timed_out"] == "false", lines[-1]
    line: dict[str, Any] = next(line for line in lines if "result" in line)
    return line


def result_file(server: Server, job_id: str) -> Path:
    """The job's result file, as the job store records it."""
    store = sqlite3.connect(f"file:{server.home / 'assay.sqlite'}?mode=ro", uri=True)
    try:
        (name,) = store.execute("SELECT result_file FROM jobs WHERE id = ?", [job_id]).fetchone()
    finally:
        store.close()
    return server.home / "results" / str(name)


def decoded(line: dict[str, Any]) -> bytes:
    return base64.b64decode(line["result"], validate=True)


def test_a_large_answer_is_its_result_file_in_base64_with_an_exact_length(
    server: Server, org_key: str, tpch_path: Path
) -> None:
    response = run(server, org_key, BIG, **{"Accept-Encoding": "gzip"})
    # a loopback client is not sent gzip by default, even when it asks
    assert "content-encoding" not in response.headers
    assert response.headers["vary"] == "Accept-Encoding"
    assert "transfer-encoding" not in response.headers  # not chunked
    assert int(response.headers["content-length"]) == len(response.content)
    line = result_line(response)
    ipc = decoded(line)
    assert ipc == result_file(server, line["job_id"]).read_bytes()
    table = pa.ipc.open_stream(ipc).read_all()
    engine = DuckDBEngine(tpch_path)
    try:
        expected = engine.execute(line["summary"]["sql"])
    finally:
        engine.close()
    assert table.num_rows == expected.num_rows == 600_572
    keys = [(name, "ascending") for name in table.column_names]
    assert table.sort_by(keys).columns == expected.sort_by(keys).columns


def test_a_single_json_document_is_streamed_the_same_way(server: Server, org_key: str) -> None:
    """Clients that accept only application/json (omni-app-mcp) get one document, its result
    spliced in from the file as it is sent."""
    response = run(server, org_key, BIG, Accept="application/json")
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    doc = response.json()
    assert doc["status"] == "COMPLETE" and doc["timed_out"] is False
    assert list(doc["jobs_submitted"]) == [doc["job_id"]]
    assert decoded(doc) == result_file(server, doc["job_id"]).read_bytes()


@pytest.mark.parametrize("query", [BIG, MEDIUM], ids=["streamed", "one body"])
def test_gzip_when_the_setting_and_the_client_allow_it(
    gzipping: Server, query: dict[str, Any]
) -> None:
    key = gzipping.key("--org")
    zipped = run(gzipping, key, query)  # httpx asks for gzip, deflate and zstd
    assert zipped.headers["content-encoding"] == "gzip"
    # the Arrow buffers are compressed already (zstd): gzip takes back base64's quarter
    assert zipped.num_bytes_downloaded < len(zipped.content) * 0.8
    line = result_line(zipped)
    assert decoded(line) == result_file(gzipping, line["job_id"]).read_bytes()

    refused = run(gzipping, key, query, **{"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers
    assert int(refused.headers["content-length"]) == len(refused.content)
    assert decoded(result_line(refused)) == decoded(line)


def test_omni_python_sdk_reads_a_gzipped_answer(gzipping: Server, tpch_path: Path) -> None:
    table, fields = OmniAPI(gzipping.key("--org"), gzipping.url).run_query_blocking(
        {"query": MEDIUM}
    )
    assert table.num_rows == 20_000
    assert table.column_names == ["lineitem.l_orderkey"] and "lineitem.l_orderkey" in fields


def test_a_client_that_leaves_mid_answer_stops_it_at_once(server: Server, org_key: str) -> None:
    """The answer is a cache hit, so it streams at once from its file; the client reads its
    first MiB, then closes the connection."""
    whole = run(server, org_key, BIG)  # the result is cached from here on
    size = int(whole.headers["content-length"])
    expected = decoded(result_line(whole))
    del whole
    assert server.proc is not None
    pid = server.proc.pid
    log = server.home / f"serve-{server.port}.log"
    stops_before = len(STOPPED.findall(log.read_bytes()))
    rss_before = vm_rss(pid)

    body = json.dumps({"query": BIG}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as s:
        s.sendall(f"POST {RUN} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {org_key}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                  .encode() + body)  # fmt: skip
        received = 0
        while received < 1024 * 1024:
            chunk = s.recv(65536)
            assert chunk, "the server closed the answer early"
            received += len(chunk)
    # the client is gone: the server says where the answer stopped, short of its end
    stops = wait_for(lambda: STOPPED.findall(log.read_bytes())[stops_before:])
    assert stops, "no log line says the answer stopped"
    assert received <= int(stops[0]) < size
    # ... lets go of the result file and of the answer's memory ...
    assert wait_for(lambda: open_results(pid) == 0), "the result file is still open"
    assert vm_rss(pid) < rss_before + size // 2
    # ... and its worker thread is free: the next answer comes whole
    again = run(server, org_key, BIG)
    assert decoded(result_line(again)) == expected


def wait_for(check: Any, seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def open_results(pid: int) -> int:
    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if ".arrows" in os.path.realpath(fd))


def vm_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")
