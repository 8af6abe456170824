"""The job runner's hot path: what it writes per job and what it reads back, on the real
stores (SQLite, and PostgreSQL when present) with the real DuckDB demo engine.

- A job submitted while a worker is idle is added already EXECUTING (attempt 1): one insert
  and one terminal update, no separate start.
- A job that must wait its turn is added ADDED and started when a worker takes it, so a
  cancel while it waits still keeps it from running, and a restart does not count it.
- A waiter woken by this replica's worker is handed the job as it ended, equal to what the
  store holds, instead of reading it back.
- On a store of this process alone, that job's engine work starts while its row is being
  written; the worker records nothing before the row is there, and nothing at all (no job,
  no result, no cache entry) when writing it failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from assay.demo.tpch import tpch_model_dir
from assay.engines import DuckDBEngine
from assay.jobs.model import Job
from assay.jobs.postgres import PostgresJobStore
from assay.jobs.runner import JobRunner
from assay.jobs.sqlite import SQLiteJobStore
from assay.jobs.store import JobStore
from assay.jobs.work import USE_CACHE, JobRequest, Target
from assay.semantic.loader import load_model
from tests.live import POSTGRES_URL, postgres_schema

pytestmark = pytest.mark.tpch

SLOW_VIEW = """
sql: SELECT i FROM range({rows}) t(i)
dimensions:
  i: {{primary_key: true}}
measures:
  count: {{aggregate_type: count}}
"""
PRIORITIES = {
    "join_paths_from_topic_name": "orders",
    "fields": ["orders.o_orderpriority", "orders.count"],
    "sorts": [{"column_name": "orders.o_orderpriority"}],
}
SLOW = {"join_paths_from_topic_name": "slow", "fields": ["slow.count"]}  # about 0.5 s
ENDLESS = {"join_paths_from_topic_name": "endless", "fields": ["endless.count"]}  # a minute


class Counted:
    """A real store, counting the calls the runner makes to it."""

    def __init__(self, inner: JobStore) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.added: list[Job] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if name == "add_jobs":
                args = (list(args[0]), *args[1:])
                self.added.extend(args[0])
            return attr(*args, **kwargs)

        return call


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Counted]:
    if request.param == "sqlite":
        inner: JobStore = SQLiteJobStore(tmp_path / "assay.sqlite")
        yield Counted(inner)
        inner.close()
        return
    with postgres_schema("assay_path_") as schema:
        inner = PostgresJobStore(POSTGRES_URL, schema=schema, pool_size=2, memory_seconds=2.0)
        yield Counted(inner)
        inner.close()


@pytest.fixture
def make_runner(
    store: Counted, tmp_path: Path, tpch_engine: DuckDBEngine
) -> Iterator[Callable[..., JobRunner]]:
    folder = tmp_path / "models"
    shutil.copytree(tpch_model_dir(), folder)
    for name, rows in (("slow", 1_500_000_000), ("endless", 200_000_000_000)):
        (folder / f"{name}.view.yaml").write_text(SLOW_VIEW.format(rows=rows))
        (folder / f"{name}.topic.yaml").write_text(f"base_view: {name}\n")
    model = load_model(folder)
    made: list[JobRunner] = []

    def make(workers: int = 1) -> JobRunner:
        runner = JobRunner(cast(JobStore, store), {model.id: Target(model, tpch_engine)},
                           tmp_path / "results", workers=workers)  # fmt: skip
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.close()


def ask(runner: JobRunner, query: dict[str, Any]) -> JobRequest:
    (model_id,) = runner.targets
    return JobRequest({**query, "modelId": model_id}, model_id, cache="SkipCache")


def settled(runner: JobRunner, job_id: str, timeout: float = 60) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        job = runner.store.get_jobs([job_id])[job_id]
        if job.done:
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job.status}"
        time.sleep(0.02)


def idle(runner: JobRunner, timeout: float = 30) -> None:
    """Wait until no job is queued for or held by a worker."""
    deadline = time.monotonic() + timeout
    while runner.occupancy()[:2] != (0, 0):
        assert time.monotonic() < deadline, "the workers never became idle"
        time.sleep(0.01)


def test_a_job_for_an_idle_worker_is_one_insert_and_one_update(
    make_runner: Callable[..., JobRunner], store: Counted
) -> None:
    runner = make_runner()
    job = runner.submit(ask(runner, PRIORITIES))
    assert (job.status, job.attempts) == ("EXECUTING", 1)
    done = settled(runner, job.id)
    assert done.status == "COMPLETE", done.error_message
    assert (done.attempts, done.started_at) == (1, job.started_at)
    assert [j.status for j in store.added] == ["EXECUTING"]
    assert store.calls["start"] == 0
    assert store.calls["finish"] == 1
    assert store.calls["remember"] == 0  # the cache entry is written by that same update
    assert runner.store.cached(cast(dict[str, Any], done.cache_metadata)["cache_key"],
                               time.time()) is not None  # fmt: skip


def test_on_a_local_store_the_worker_starts_while_the_row_is_written(
    make_runner: Callable[..., JobRunner], store: Counted
) -> None:
    runner = make_runner()
    order: list[str] = []
    add_jobs, finish = store.inner.add_jobs, store.inner.finish

    def adding(jobs: list[Job]) -> None:
        queued, active, _ = runner.occupancy()
        order.append(f"add (handed to a worker: {queued + active})")
        time.sleep(0.2)  # a slow write: the worker must wait for it before recording
        add_jobs(jobs)

    def finishing(job_id: str, **outcome: Any) -> bool:
        order.append("finish")
        return finish(job_id, **outcome)

    store.inner = cast(JobStore, _Patched(store.inner, add_jobs=adding, finish=finishing))
    job = runner.submit(ask(runner, PRIORITIES))
    assert settled(runner, job.id).status == "COMPLETE"
    handed = 0 if runner.store.shared else 1  # a shared store's insert is a round trip first
    assert order == [f"add (handed to a worker: {handed})", "finish"]


def test_a_job_whose_row_could_not_be_written_leaves_nothing(
    make_runner: Callable[..., JobRunner], store: Counted, tmp_path: Path
) -> None:
    runner = make_runner()

    def failing(jobs: list[Job]) -> None:
        time.sleep(0.05)  # the worker is under way meanwhile
        raise OSError("disk I/O error")

    store.inner = cast(JobStore, _Patched(store.inner, add_jobs=failing))
    request = ask(runner, {**PRIORITIES, "limit": 4})
    with pytest.raises(OSError, match="disk I/O error"):
        runner.submit(request)
    idle(runner)
    assert store.calls["finish"] == 0 and store.calls["save_result"] == 0
    assert list((tmp_path / "results").iterdir()) == []  # its result was not kept
    assert not runner._owned  # no lease left to renew for it


class _Patched:
    """A store with some methods replaced."""

    def __init__(self, inner: JobStore, **methods: Callable[..., Any]) -> None:
        self._inner = inner
        self._methods = methods

    def __getattr__(self, name: str) -> Any:
        return self._methods.get(name) or getattr(self._inner, name)


def test_a_job_that_waits_its_turn_is_started_when_taken_and_can_be_cancelled_meanwhile(
    make_runner: Callable[..., JobRunner], store: Counted
) -> None:
    runner = make_runner(workers=1)
    busy = runner.submit(ask(runner, SLOW))
    queued = runner.submit(ask(runner, PRIORITIES))
    cancelled = runner.submit(ask(runner, {**PRIORITIES, "limit": 3}))
    assert (busy.status, queued.status, cancelled.status) == ("EXECUTING", "ADDED", "ADDED")
    runner.cancel([cancelled.id])
    assert settled(runner, busy.id).status == "COMPLETE"
    done = settled(runner, queued.id)
    assert (done.status, done.attempts) == ("COMPLETE", 1)
    assert done.started_at is not None and done.started_at >= cast(float, busy.started_at)
    gone = settled(runner, cancelled.id)
    assert (gone.status, gone.error_type, gone.attempts) == ("FAILED", "KILL", 0)
    idle(runner)  # the worker's turn at the cancelled job comes after the queued one's end
    # the queued job's start, and the cancelled one's attempt that found it ended
    assert store.calls["start"] == 2


def test_a_woken_waiter_is_handed_the_job_as_the_store_holds_it(
    make_runner: Callable[..., JobRunner], store: Counted
) -> None:
    runner = make_runner(workers=2)

    async def scenario() -> tuple[list[Job], int]:
        runner.attach(asyncio.get_running_loop())
        jobs = [runner.submit(ask(runner, q)) for q in (PRIORITIES, {**PRIORITIES, "limit": 2})]
        reads = store.calls["get_jobs"]
        waited = await runner.wait([j.id for j in jobs], 60, known=jobs)
        return list(waited.values()), store.calls["get_jobs"] - reads

    handed, reads = asyncio.run(scenario())
    assert [j.status for j in handed] == ["COMPLETE", "COMPLETE"]
    # On a shared store one read (did they end, elsewhere, before the waiter was registered?);
    # on a store of this process alone every end goes through the loop: none. None after waking.
    assert reads == (1 if runner.store.shared else 0)
    stored = runner.store.get_jobs([j.id for j in handed])
    assert handed == [stored[j.id] for j in handed]


def test_a_job_that_ended_before_its_waiter_came_is_handed_at_once(
    make_runner: Callable[..., JobRunner], store: Counted
) -> None:
    """The waiter holds the job as submitted (not ended), but its end was announced on the
    loop before the waiter registered: it must not wait for an end that already happened."""
    runner = make_runner(workers=1)

    async def scenario() -> tuple[Job, float, int]:
        runner.attach(asyncio.get_running_loop())
        job = runner.submit(ask(runner, PRIORITIES))
        while not runner.store.get_jobs([job.id])[job.id].done:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the worker's announcement runs on the loop meanwhile
        start, reads = time.monotonic(), store.calls["get_jobs"]
        waited = await runner.wait([job.id], 30, known=[job])
        return waited[job.id], time.monotonic() - start, store.calls["get_jobs"] - reads

    ended, took, reads = asyncio.run(scenario())
    assert ended.status == "COMPLETE"
    assert took < 5  # not the 30 s window
    assert reads == (1 if runner.store.shared else 0)
    assert ended == runner.store.get_jobs([ended.id])[ended.id]


def test_a_job_another_caller_ends_is_read_from_the_store(
    make_runner: Callable[..., JobRunner], store: Counted
) -> None:
    """A cancel is not this replica's worker ending the job: the waiter reads it back."""
    runner = make_runner(workers=1)

    async def scenario() -> Job:
        runner.attach(asyncio.get_running_loop())
        job = runner.submit(ask(runner, ENDLESS))
        loop = asyncio.get_running_loop()
        threading.Timer(0.3, lambda: loop.call_soon_threadsafe(runner.cancel, [job.id])).start()
        return (await runner.wait([job.id], 60, known=[job]))[job.id]

    ended = asyncio.run(scenario())
    assert (ended.status, ended.error_type) == ("FAILED", "KILL")
    assert ended == runner.store.get_jobs([ended.id])[ended.id]


def test_a_cache_hit_from_the_loop_makes_one_store_write_and_no_lookup_it_remembers(
    make_runner: Callable[..., JobRunner], store: Counted
) -> None:
    """On a shared store a replica answers a cache entry it remembers without a round trip:
    the job's insert is the request's one round trip. SQLite reads its file (no round trip)."""
    runner = make_runner()
    cached = replace(ask(runner, PRIORITIES), cache=USE_CACHE)

    async def scenario() -> tuple[Job, Job]:
        runner.attach(asyncio.get_running_loop())
        first = await runner.submit_from_loop(cached)
        await runner.wait([first.id], 60, known=[first])
        store.calls.clear()
        store.added.clear()
        return first, await runner.submit_from_loop(cached)

    first, hit = asyncio.run(scenario())
    assert hit.status == "COMPLETE" and hit.summary is not None
    assert hit.summary["cache_type"] == "EXACT"
    assert hit.result_file == settled(runner, first.id).result_file
    assert [j.id for j in store.added] == [hit.id]
    if runner.store.shared:
        assert (store.calls["remembered"], store.calls["cached"]) == (1, 0)
    else:
        assert (store.calls["remembered"], store.calls["cached"]) == (0, 1)


def test_a_waiter_that_gives_up_stops_counting_and_another_keeps_waiting(
    make_runner: Callable[..., JobRunner], store: Counted
) -> None:
    """`occupancy()`'s third figure (the assay_waited_jobs gauge) counts jobs someone waits on
    now: not jobs a waiter gave up on (its window ended, its client left)."""
    runner = make_runner(workers=1)

    async def scenario() -> tuple[int, int, int, str]:
        runner.attach(asyncio.get_running_loop())
        job = runner.submit(ask(runner, ENDLESS))
        await runner.wait([job.id], 0.2, known=[job])  # gives up while the job runs
        after_giving_up = runner.occupancy()[2]
        patient = asyncio.ensure_future(runner.wait([job.id], 30, known=[job]))
        impatient = asyncio.ensure_future(runner.wait([job.id], 30, known=[job]))
        await asyncio.sleep(0.05)
        impatient.cancel()  # a waiter whose client left; the patient one still counts
        with contextlib.suppress(asyncio.CancelledError):
            await impatient
        still = runner.occupancy()[2]
        runner.cancel([job.id])
        ended = (await patient)[job.id]
        return after_giving_up, still, runner.occupancy()[2], ended.status

    gave_up, still, after, status = asyncio.run(scenario())
    assert (gave_up, still, after, status) == (0, 1, 0, "FAILED")
