"""The job runner when a result cannot be kept: past ``max_result_bytes`` or into a results
folder that is gone, the job ends FAILED saying why, the engine's query is cancelled, nothing
is cached or left on disk, and the (single) worker goes on to the next job.

Real DuckDB (the TPC-H demo plus a view of 3 million numbers, about 25 MB as a result), real
SQLite store, real files.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pytest

from assay.demo.tpch import tpch_model_dir
from assay.engines import DuckDBEngine
from assay.engines.base import Engine, RunningQuery
from assay.errors import ConfigError
from assay.jobs.model import Job
from assay.jobs.runner import JobRunner
from assay.jobs.sqlite import SQLiteJobStore
from assay.jobs.work import JobRequest, Target
from assay.results.arrow import read_table
from assay.semantic.loader import load_model

NUMBERS_VIEW = """
sql: SELECT i FROM range(3000000) t(i)
dimensions:
  i: {primary_key: true}
"""
SMALL = {"join_paths_from_topic_name": "lineitem", "fields": ["region.r_name"]}
BIG = {"join_paths_from_topic_name": "numbers", "fields": ["numbers.i"], "limit": None}


class Handle:
    """A real engine handle that records whether it was cancelled."""

    def __init__(self, inner: RunningQuery) -> None:
        self.inner = inner
        self.cancelled = False

    def reader(self) -> pa.RecordBatchReader:
        return self.inner.reader()

    def cancel(self) -> None:
        self.cancelled = True
        self.inner.cancel()


class Watched:
    """The real DuckDB engine, keeping the handles of the queries it started."""

    def __init__(self, engine: DuckDBEngine) -> None:
        self.engine = engine
        self.name, self.dialect = engine.name, engine.dialect
        self.handles: list[Handle] = []

    def start(self, sql: str, params: Sequence[Any] = ()) -> Handle:
        handle = Handle(self.engine.start(sql, params))
        self.handles.append(handle)
        return handle

    def execute(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return self.engine.execute(sql, params)

    def catalog(self) -> dict[str, dict[str, str]]:
        return self.engine.catalog()

    def close(self) -> None:
        pass  # the session's engine: closed by its fixture


@pytest.fixture
def engine(tpch_engine: DuckDBEngine) -> Watched:
    return Watched(tpch_engine)


def make_runner(tmp_path: Path, engine: Watched, **options: Any) -> JobRunner:
    folder = tmp_path / "models"
    shutil.copytree(tpch_model_dir(), folder)
    (folder / "numbers.view.yaml").write_text(NUMBERS_VIEW)
    (folder / "numbers.topic.yaml").write_text("base_view: numbers\n")
    model = load_model(folder)
    store = SQLiteJobStore(tmp_path / "assay.sqlite")
    target = Target(model, cast(Engine, engine))
    return JobRunner(store, {model.id: target}, tmp_path / "results", workers=1, **options)


@pytest.fixture
def runners() -> Iterator[list[JobRunner]]:
    made: list[JobRunner] = []
    yield made
    for runner in made:
        runner.close()
        runner.store.close()


def run(runner: JobRunner, query: dict[str, Any], timeout: float = 30) -> Job:
    (model_id,) = runner.targets
    job = runner.submit(JobRequest({**query, "modelId": model_id}, model_id))
    deadline = time.monotonic() + timeout
    while not job.done:
        assert time.monotonic() < deadline, f"job {job.id} still {job.status}"
        time.sleep(0.02)
        job = runner.store.get_jobs([job.id])[job.id]
    return job


def cached_results(runner: JobRunner) -> int:
    store = cast(SQLiteJobStore, runner.store)
    return int(store._db.execute("SELECT count(*) FROM result_cache").fetchone()[0])


def test_a_result_past_the_cap_fails_cancels_and_frees_the_worker(
    tmp_path: Path, engine: Watched, runners: list[JobRunner]
) -> None:
    runner = make_runner(tmp_path, engine, max_result_bytes=200_000)
    runners.append(runner)
    started = time.monotonic()
    failed = run(runner, BIG)
    assert time.monotonic() - started < 20
    assert (failed.status, failed.error_type) == ("FAILED", "QUERY")
    assert failed.error_message == (
        "The result is larger than max_result_bytes (200000 bytes): add a limit or filters, "
        "or raise the setting"
    )
    assert engine.handles[-1].cancelled  # the engine's query was stopped, not abandoned
    assert list((tmp_path / "results").iterdir()) == []
    assert cached_results(runner) == 0

    again = run(runner, BIG)  # no cache entry: it runs (and fails) again, not a hit
    assert (again.status, again.error_type) == ("FAILED", "QUERY") and again.cache_metadata is None

    small = run(runner, SMALL)  # the one worker is free
    assert small.status == "COMPLETE" and small.summary is not None
    assert small.summary["total_rows"] == 5 and not engine.handles[-1].cancelled
    assert cached_results(runner) == 1


def test_no_cap_leaves_results_alone(
    tmp_path: Path, engine: Watched, runners: list[JobRunner]
) -> None:
    runner = make_runner(tmp_path, engine)
    runners.append(runner)
    job = run(runner, BIG)
    assert job.status == "COMPLETE" and job.cache_metadata is not None
    assert job.cache_metadata["num_rows"] == 3_000_000
    # the file's size: its Arrow buffers are compressed (zstd, the default codec), about 24 MB
    # as they are read
    path = runner.result_path(job)
    assert path is not None and job.cache_metadata["num_bytes"] == path.stat().st_size
    assert read_table(path).num_rows == 3_000_000


def test_a_removed_results_folder_fails_the_job_clearly_until_it_is_back(
    tmp_path: Path, engine: Watched, runners: list[JobRunner]
) -> None:
    runner = make_runner(tmp_path, engine)
    runners.append(runner)
    folder = tmp_path / "results"
    folder.rmdir()  # removed while the server runs
    failed = run(runner, SMALL)
    assert (failed.status, failed.error_type) == ("FAILED", "INTERNAL")
    assert failed.error_message is not None
    assert f"results folder {folder}: No such file or directory." in failed.error_message
    assert engine.handles[-1].cancelled
    assert cached_results(runner) == 0

    folder.mkdir()
    done = run(runner, SMALL)
    assert done.status == "COMPLETE" and done.summary is not None
    assert done.summary["cache_type"] == "MISS"  # the failure had cached nothing
    assert done.result_file is not None and (folder / done.result_file).is_file()


def test_a_results_folder_that_cannot_be_made_is_a_config_error(
    tmp_path: Path, engine: Watched
) -> None:
    (tmp_path / "results").write_text("a file in the way")
    with pytest.raises(ConfigError) as caught:
        make_runner(tmp_path, engine)
    assert caught.value.message.startswith(
        f"Cannot create the results folder {tmp_path / 'results'}: File exists."
    )


@pytest.mark.parametrize("cap", [0, -5])
def test_a_cap_that_would_fail_every_query_is_refused(
    tmp_path: Path, engine: Watched, cap: int
) -> None:
    with pytest.raises(ConfigError, match=f"max_result_bytes must be a positive .* not {cap}"):
        make_runner(tmp_path, engine, max_result_bytes=cap)
