"""`assay demo --engine postgres|mariadb`: the TPC-H demo loaded into a real database of its
own (created here, dropped after), then served from there with the settings file the demo
writes, answering the same as DuckDB."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import httpx
import psycopg
import pyarrow as pa
import pymysql
import pytest

from assay.demo.tpch import generate_tpch
from tests.live import unavailable
from tests.server.conftest import ASSAY, MODEL_ID, free_port

SCALE = 0.01
QUERY = {"modelId": MODEL_ID, "join_paths_from_topic_name": "lineitem",
         "fields": ["lineitem.l_returnflag", "lineitem.sum_quantity"],
         "sorts": [{"column_name": "lineitem.l_returnflag"}]}  # fmt: skip
SQL = "SELECT l_returnflag, SUM(l_quantity) FROM lineitem GROUP BY 1 ORDER BY 1"


def _postgres_db(name: str) -> Iterator[str]:
    admin = "postgresql://postgres@127.0.0.1:5432/test"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.Error as exc:
        unavailable(f"no PostgreSQL at 127.0.0.1:5432: {exc}")
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _mariadb_db(name: str) -> Iterator[str]:
    try:
        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=5)
    except pymysql.Error as exc:
        unavailable(f"no MariaDB at 127.0.0.1:3306: {exc}")
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        cur.execute(f"CREATE DATABASE {name}")
    yield f"mysql://root@127.0.0.1:3306/{name}"
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
    conn.close()


@pytest.fixture(params=["postgres", "mariadb"])
def database(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    engine = str(request.param)
    make = _postgres_db if engine == "postgres" else _mariadb_db
    name = f"assay_demo_{engine}_{os.getpid()}"
    for url in make(name):
        yield engine, url


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    return {**env, "ASSAY_HOME": str(home), "ASSAY_RATE_LIMIT_PER_MINUTE": "0"}


def test_the_demo_on_another_engine_answers_as_duckdb(
    database: tuple[str, str], tmp_path: Path
) -> None:
    engine, url = database
    home = tmp_path / "home"
    cmd = [ASSAY, "demo", "--engine", engine, "--connection", url, "--scale", str(SCALE),
           "--no-serve"]  # fmt: skip
    out = subprocess.run(
        cmd, env=_env(home), capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr + out.stdout
    config = home / f"demo-{engine}.toml"
    assert f"assay --config {config} serve" in " ".join(out.stdout.split())
    assert not (home / "tpch.duckdb").exists(), "the data went to the engine, not to DuckDB"

    again = subprocess.run(
        cmd, env=_env(home), capture_output=True, text=True, timeout=300, check=False
    )
    assert again.returncode == 0, again.stderr

    port = free_port()
    env = {**_env(home), "ASSAY_CONFIG": str(config)}
    key = subprocess.run([ASSAY, "keys", "create", "--org"], env=env, capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]  # fmt: skip
    with open(tmp_path / "serve.log", "wb") as log:
        server = subprocess.Popen([ASSAY, "serve", "--port", str(port)], env=env, stdout=log,
                                  stderr=log)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        response = httpx.post(f"{base}/api/v1/query/run", json={"query": QUERY}, timeout=60,
                              headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    finally:
        server.terminate()
        server.wait(20)
    assert response.status_code == 200, response.text
    line = next(x for x in map(json.loads, response.text.splitlines()) if x.get("job_id"))
    assert line["status"] == "COMPLETE", line
    table = pa.ipc.open_stream(base64.b64decode(line["result"])).read_all()
    got = [
        (flag, Decimal(str(total))) for flag, total in zip(*table.to_pydict().values(), strict=True)
    ]
    reference = generate_tpch(tmp_path / "ref.duckdb", SCALE)
    with duckdb.connect(str(reference), read_only=True) as conn:
        want = [(flag, Decimal(str(total))) for flag, total in conn.execute(SQL).fetchall()]
    assert got == want


def test_a_connection_for_the_wrong_engine_is_refused(tmp_path: Path) -> None:
    cmd = [ASSAY, "demo", "--engine", "mariadb", "--connection",
           "postgresql://ann:secret@127.0.0.1/db", "--no-serve"]  # fmt: skip
    out = subprocess.run(
        cmd, env=_env(tmp_path / "home"), capture_output=True, text=True, check=False
    )
    assert out.returncode != 0
    text = " ".join((out.stderr + out.stdout).split())
    assert "is a postgres URL, not mariadb" in text
    assert "secret" not in text
