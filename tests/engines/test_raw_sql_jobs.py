"""Raw SQL jobs on real DuckDB, PostgreSQL and MariaDB: the statement runs verbatim on the
engine's read-only path with the database's column names, capped at 50,000 rows; a write is
refused before the engine sees anything; and behind that check, each engine's own wall (a
sandboxed DuckDB, read-only sessions on PostgreSQL and MariaDB) stops a write that got past
it, leaving the table as it was (rows counted before and after).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pytest

from assay.engines import DuckDBEngine
from assay.engines.base import Engine, RunningQuery
from assay.errors import EngineError
from assay.jobs.model import Job
from assay.jobs.runner import JobRunner
from assay.jobs.sqlite import SQLiteJobStore
from assay.jobs.work import JobRequest, Target
from assay.semantic.model import SemanticModel
from assay.semantic.viewer import Viewer

CAP = 50_000


class Recorded:
    """A real engine that keeps every statement it was handed, and by which path."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.name, self.dialect = engine.name, engine.dialect
        self.started: list[tuple[str, str]] = []
        self.cancelled = 0

    def start(self, sql: str, params: Sequence[Any] = ()) -> RunningQuery:
        self.started.append(("start", sql))
        return cast(RunningQuery, self.engine.start(sql, params))

    def start_read_only(self, sql: str) -> RunningQuery:
        self.started.append(("read_only", sql))
        inner = self.engine.start_read_only(sql)
        recorder = self

        class Handle:
            def reader(self) -> pa.RecordBatchReader:
                return cast(pa.RecordBatchReader, inner.reader())

            def cancel(self) -> None:
                recorder.cancelled += 1
                inner.cancel()

        return Handle()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return cast(pa.Table, self.engine.execute(sql, params))

    def catalog(self) -> dict[str, dict[str, str]]:
        return cast(dict[str, dict[str, str]], self.engine.catalog())

    def close(self) -> None:
        pass  # the session's engine: closed by its fixture


@pytest.fixture(params=["duckdb", "postgres", "mariadb"])
def engine(request: pytest.FixtureRequest) -> Any:
    fixture = {"duckdb": "tpch_engine", "postgres": "tpch_postgres", "mariadb": "tpch_mariadb"}
    return request.getfixturevalue(fixture[request.param])


@pytest.fixture
def runner(
    tmp_path: Path, tpch_model: SemanticModel, engine: Any
) -> Iterator[tuple[JobRunner, Recorded]]:
    recorded = Recorded(engine)
    store = SQLiteJobStore(tmp_path / "assay.sqlite")
    target = Target(tpch_model, cast(Engine, recorded))
    made = JobRunner(store, {tpch_model.id: target}, tmp_path / "results", workers=1)
    yield made, recorded
    made.close()
    store.close()


def run(runner: JobRunner, query: dict[str, Any], viewer: Viewer | None = None) -> Job:
    (model_id,) = runner.targets
    job = runner.submit(JobRequest({**query, "modelId": model_id}, model_id, viewer=viewer))
    deadline = time.monotonic() + 60
    while not job.done:
        assert time.monotonic() < deadline, f"job {job.id} still {job.status}"
        time.sleep(0.02)
        job = runner.store.get_jobs([job.id])[job.id]
    return job


def raw(sql: str, **extra: Any) -> dict[str, Any]:
    return {"userEditedSQL": sql, "rewriteSql": False, "fields": [], "table": "", **extra}


def result(runner: JobRunner, job: Job) -> pa.Table:
    path = runner.result_path(job)
    assert path is not None
    with pa.OSFile(str(path)) as f:
        return pa.ipc.open_stream(f).read_all()


def test_a_select_runs_verbatim_read_only_with_the_databases_names(
    runner: tuple[JobRunner, Recorded],
) -> None:
    jobs, engine = runner
    sql = "SELECT r_regionkey AS region_key, r_name FROM region WHERE r_regionkey < 3 ORDER BY 1"
    job = run(jobs, raw(sql, limit=1), Viewer("u"))
    assert job.status == "COMPLETE", job.error_message
    assert engine.started == [("read_only", sql)]  # verbatim: the query's limit is ignored
    table = result(jobs, job)
    assert [c.lower() for c in table.column_names] == ["region_key", "r_name"]
    assert table.column(0).to_pylist() == [0, 1, 2]
    assert [v.strip() for v in table.column(1).to_pylist()] == ["AFRICA", "AMERICA", "ASIA"]
    assert job.summary is not None
    fields = job.summary["fields"]
    assert list(fields) == table.column_names
    first = fields[table.column_names[0]]
    assert (first["data_type"], first["view_name"], first["is_calc"]) == ("NUMBER", "", False)
    assert fields[table.column_names[1]]["data_type"] == "STRING"
    assert job.summary["display_sql"] == sql and job.summary["missing_fields"] == []
    assert job.summary["total_rows"] == 3 and "row_limit_reached" not in job.summary

    again = run(jobs, raw(sql), Viewer("u"))  # cached under the SQL: the same answer
    assert again.summary is not None and again.summary["cache_type"] == "EXACT"
    assert again.summary["fields"] == fields and len(engine.started) == 1


def test_the_result_is_capped_at_50000_rows(runner: tuple[JobRunner, Recorded]) -> None:
    jobs, engine = runner
    job = run(jobs, raw("SELECT l_orderkey, l_linenumber FROM lineitem"), Viewer("u"))
    assert job.status == "COMPLETE", job.error_message
    assert job.summary is not None
    assert job.summary["total_rows"] == CAP and job.summary["row_limit_reached"] is True
    assert result(jobs, job).num_rows == CAP
    assert engine.cancelled == 1  # the rest of lineitem is not streamed for no one


def test_sorts_with_sql_sorts_enabled_order_the_result(runner: tuple[JobRunner, Recorded]) -> None:
    jobs, _ = runner
    query = raw("SELECT n_name AS nation, n_regionkey AS rk FROM nation",
                sqlSortsEnabled=True,
                sorts=[{"column_name": "rk", "sort_descending": True},
                       {"column_name": "nation"}])  # fmt: skip
    job = run(jobs, query, Viewer("u"))
    assert job.status == "COMPLETE", job.error_message
    rows = [(r["rk"], r["nation"].strip()) for r in result(jobs, job).to_pylist()]
    assert rows == sorted(rows, key=lambda r: (-r[0], r[1])) and len(rows) == 25


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM region",
        "SELECT 1 AS one; DELETE FROM region",
        "UPDATE region SET r_comment = 'x'",
        "CREATE TABLE region_copy AS SELECT * FROM region",
    ],
)
def test_a_write_fails_the_job_and_never_reaches_the_engine(
    runner: tuple[JobRunner, Recorded], sql: str
) -> None:
    jobs, engine = runner
    before = engine.execute("SELECT count(*) AS n FROM region").column(0)[0].as_py()
    job = run(jobs, raw(sql), Viewer("u"))
    assert (job.status, job.error_type) == ("FAILED", "PLAN")
    assert job.error_message is not None and job.error_message.startswith("Raw SQL ")
    assert engine.started == []
    assert engine.execute("SELECT count(*) AS n FROM region").column(0)[0].as_py() == before == 5


def test_a_role_without_query_sql_gets_a_forbidden_job(runner: tuple[JobRunner, Recorded]) -> None:
    jobs, engine = runner
    job = run(jobs, raw("SELECT r_name FROM region"), Viewer("u", role="RESTRICTED_QUERIER"))
    assert (job.status, job.error_type) == ("FAILED", "FORBIDDEN")
    assert job.error_message == (
        "Permission denied - queries based on manually written SQL are restricted"
    )
    assert engine.started == []


# ---------------------------------------------------------------- the engines' own walls


@pytest.fixture
def scratch(engine: Any) -> Iterator[str]:
    """A three-row table of this test alone, in the test database (never TPC-H's own)."""
    name = f"assay_raw_{uuid.uuid4().hex[:12]}"
    if isinstance(engine, DuckDBEngine):  # the file is read-only: the wall is the attack
        yield "region"
        return
    engine.execute(f"CREATE TABLE {name} (id INT)")
    engine.execute(f"INSERT INTO {name} VALUES (1), (2), (3)")
    yield name
    engine.execute(f"DROP TABLE {name}")


def count(engine: Any, table: str) -> int:
    return int(engine.execute(f"SELECT count(*) AS n FROM {table}").column(0)[0].as_py())


def writes(table: str, dialect: str) -> list[str]:
    """Writes as the statement check would never let through, sent straight to the engine."""
    out = [f"DELETE FROM {table}", f"INSERT INTO {table} SELECT * FROM {table}",
           f"UPDATE {table} SET {'r_regionkey' if table == 'region' else 'id'} = 0",
           f"DROP TABLE {table}"]  # fmt: skip
    if dialect == "postgres":
        out.append(f"WITH gone AS (DELETE FROM {table} RETURNING *) SELECT count(*) FROM gone")
    return out


def test_the_read_only_path_stops_a_write_that_got_past_the_check(
    engine: Any, scratch: str
) -> None:
    before = count(engine, scratch)
    for sql in writes(scratch, engine.dialect):
        with pytest.raises(EngineError) as caught:
            engine.start_read_only(sql).reader().read_all()
        assert "read-only" in caught.value.message.lower().replace("read only", "read-only")
    assert count(engine, scratch) == before
    # the engine's own connections were not made read-only by it
    assert engine.execute("SELECT 1 AS one").column(0).to_pylist() == [1]


def test_duckdb_raw_sql_cannot_reach_files(tpch_engine: DuckDBEngine, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    for sql in [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        f"COPY (SELECT 1) TO '{target}'",
        f"ATTACH '{tmp_path / 'other.duckdb'}' AS other",
        "SET enable_external_access = true",
    ]:
        with pytest.raises(EngineError):
            tpch_engine.start_read_only(sql).reader().read_all()
    assert not target.exists() and not (tmp_path / "other.duckdb").exists()
    # the model's own connection keeps its access (models may read files)
    assert tpch_engine.execute("SELECT current_setting('enable_external_access') AS a").column(
        0
    ).to_pylist() == [True]


def test_postgres_a_function_cannot_unlock_the_next_statement(
    tpch_postgres: Any, tmp_path: Path
) -> None:
    """A user's function (allowed by the check: it is not a known one) turns the session's
    read-only default off; the next raw statement on that pooled connection is still
    read-only, because the default is set again before each."""
    name = f"assay_raw_{uuid.uuid4().hex[:12]}"
    engine = tpch_postgres
    engine.execute(f"CREATE TABLE {name} (id INT)")
    engine.execute(f"INSERT INTO {name} VALUES (1), (2), (3)")
    engine.execute(
        f"CREATE FUNCTION {name}_unlock() RETURNS int LANGUAGE sql AS "
        "$$ SELECT 1 FROM (SELECT set_config('default_transaction_read_only', 'off', false)) s $$"
    )
    try:
        flipped = engine.start_read_only(f"SELECT {name}_unlock() AS one").reader().read_all()
        assert flipped.column(0).to_pylist() == [1]
        with pytest.raises(EngineError, match="read-only transaction"):
            engine.start_read_only(f"DELETE FROM {name}").reader().read_all()
        assert count(engine, name) == 3
    finally:
        engine.execute(f"DROP FUNCTION {name}_unlock()")
        engine.execute(f"DROP TABLE {name}")
