"""The job runner: turns query requests into jobs, runs them on a bounded pool of worker
threads (engine work never blocks the event loop), and wakes waiters the moment a job ends.

Every job id handed out reaches a terminal state exactly once: the store only lets a job end
from ADDED or EXECUTING, and on start-up jobs a crash left unfinished are run again (queries
are reads, so running one twice is harmless).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from assay.counters import (
    CACHE_LOOKUPS,
    JOBS_ENDED,
    JOBS_SUBMITTED,
    RESULT_BYTES,
    RESULT_ROWS,
)
from assay.engines.base import RunningQuery
from assay.errors import (
    AssayError,
    CalculationsFailed,
    ModelNotFound,
    PermissionDenied,
    QueryCancelled,
    ResultsUnwritable,
)
from assay.ids import new_id, new_uuid
from assay.jobs.endings import JobEndings
from assay.jobs.model import CachedResult, Job
from assay.jobs.pivot_cap import pivot_capped, with_pivot_cut
from assay.jobs.raw_sql_jobs import result_columns, start_query
from assay.jobs.raw_sql_totals import with_totals_row
from assay.jobs.results_files import checked_cap, discard, prepare_results_dir, write_result
from assay.jobs.store import JobStore
from assay.jobs.summaries import cache_key, cache_metadata_of, summary_of
from assay.jobs.work import (
    USE_CACHE,
    JobRequest,
    StoreCall,
    Target,
    ViewerLookup,
    Work,
    log_transition,
    row_written,
)
from assay.semantic.compiler import CompiledQuery, compile_query
from assay.semantic.compiler.omnisql import probe as omnisql_probe
from assay.semantic.raw_sql import compile_verbatim
from assay.semantic.sql_mode import sql_mode
from assay.semantic.viewer import Viewer

logger = logging.getLogger(__name__)
# A job that keeps dying with its server (it crashes the process each time) is given up after
# this many starts, instead of taking every restart down with it. Graceful stops do not count.
MAX_ATTEMPTS = 3


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        targets: Mapping[str, Target],
        results_dir: Path,
        *,
        workers: int = 4,
        cache_ttl_seconds: float = 3600,
        default_row_limit: int = 1000,
        clock: Callable[[], float] = time.time,
        viewer_for: ViewerLookup | None = None,
        max_result_bytes: int | None = None,
        arrow_compression: str | None = "zstd",
    ) -> None:
        self.store = store
        self.counters = store.counters
        self.viewer_for: ViewerLookup = viewer_for or (lambda user_id, model_id: None)
        self.targets = dict(targets)
        self.results_dir = results_dir
        prepare_results_dir(results_dir)
        #: the largest result file a job may write (None: no cap); beyond it the job fails
        self.max_result_bytes = checked_cap(max_result_bytes)
        #: the codec large result files are compressed with (None: none), see write_stream
        self.arrow_compression = arrow_compression
        self.cache_ttl = cache_ttl_seconds
        self.default_row_limit = default_row_limit
        self.clock = clock
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, workers), thread_name_prefix="assay-query"
        )
        self.workers = max(1, workers)
        self._running: dict[str, RunningQuery] = {}
        self._queued = 0  # handed to the pool, not started yet
        self._active = 0  # in a worker
        self._owned: set[str] = set()  # claimed by this process and not ended: leases to renew
        self._count_lock = threading.Lock()
        self._stop = threading.Event()
        #: who waits for which job to end
        self.endings = JobEndings(store)
        self._closing = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self.endings.loop

    def attach(self, loop: asyncio.AbstractEventLoop) -> int:
        """Bind to the server's event loop and re-run what a previous process left unfinished."""
        self.endings.loop = loop
        pending = self.store.unfinished()
        for job in pending:
            self._schedule_existing(job)
        if self.store.shared:
            self.store.listen(self._ended_elsewhere, self.endings.wake_all_threadsafe)
            interval = min(1.0, getattr(self.store, "lease_seconds", 30.0) / 4)
            threading.Thread(
                target=self._tend_leases, args=(interval,), name="assay-leases", daemon=True
            ).start()
        return len(pending)

    def _tend_leases(self, interval: float) -> None:
        """On a shared store: keep this replica's leases alive, and take over the jobs of
        replicas that stopped keeping theirs, as far as there are idle workers."""
        while not self._stop.wait(interval):
            try:
                self.store.renew(list(self._owned))
                with self._count_lock:
                    idle = self.workers - self._active - self._queued
                for job in self.store.claim_orphans(self.clock(), idle):
                    logger.info("taking over job %s (attempt %d)", job.id, job.attempts)
                    self._schedule_existing(job, claimed=True)
            except Exception:  # the store may be briefly unreachable: try again next round
                logger.exception("renewing leases failed")

    def _ended_elsewhere(self, job_id: str) -> None:
        """A job ended (anywhere): stop this replica's run of it, if any, and wake waiters,
        unless this replica holds the job: then its worker wakes them, handing them the job."""
        handle = self._running.get(job_id)
        if handle is not None:
            handle.cancel()
        if job_id not in self._owned:
            self._notify(job_id)

    def release_waiters(self) -> None:
        """A stop has begun: answer every long-poll now (see ``JobEndings.release``)."""
        self.endings.release()

    def close(self) -> None:
        """Stop: running queries are interrupted but their jobs stay unfinished, so the next
        start runs them again (a shutdown is not a cancel)."""
        self._closing = True
        self._stop.set()
        for job_id in list(self._owned):  # running, or claimed at submit and still queued
            self.store.requeue(job_id)  # here, not in the worker: the store closes next
            handle = self._running.get(job_id)
            if handle is not None:
                handle.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def occupancy(self) -> tuple[int, int, int]:
        """Jobs queued for a worker, jobs in a worker, and jobs someone is waiting on."""
        with self._count_lock:
            return self._queued, self._active, len(self.endings)

    # ------------------------------------------------------------------ submit

    def target(self, model_id: str) -> Target:
        target = self.targets.get(model_id)
        if target is None:
            raise ModelNotFound(f"Model {model_id} not found")
        return target

    async def submit_from_loop(self, request: JobRequest) -> Job:
        """``submit`` for a caller on the event loop. On a shared store its round trips (the
        job's insert, a cache lookup this replica does not remember) are made in a thread:
        they would otherwise hold the loop, and every other request with it, for their whole
        network wait. Everything else (compiling, the cache key) stays on the loop: in a
        thread it would only contend for the interpreter's lock. On SQLite the statements take
        microseconds, less than the thread hop."""
        if not self.store.shared:
            return self.submit(request)
        steps = self._submitting(request)
        try:
            call = next(steps)
            while True:
                try:
                    answer = call.local() if call.local is not None else None
                    if answer is None:
                        answer = await asyncio.to_thread(call.run)
                except BaseException as exc:
                    call = steps.throw(exc)
                else:
                    call = steps.send(answer)
        except StopIteration as made:
            return cast(Job, made.value)

    def submit(self, request: JobRequest) -> Job:
        """Create a job: finished at once when it cannot be planned, is plan-only or is
        cached; otherwise queued for a worker. A request the user's role does not allow
        raises ``PermissionDenied`` and makes no job."""
        steps = self._submitting(request)
        try:
            call = next(steps)
            while True:
                try:
                    answer = call.run()
                except BaseException as exc:  # the steps may undo what they began, then re-raise
                    call = steps.throw(exc)
                else:
                    call = steps.send(answer)
        except StopIteration as made:
            return cast(Job, made.value)

    def _submitting(self, request: JobRequest) -> Generator[StoreCall, Any, Job]:
        """``submit``'s steps, handing each store call to the caller to make (in this thread,
        or, for a round trip, in another) and going on with its answer."""
        target = self.target(request.model_id)
        now = self.clock()
        job = Job(
            id=new_id(),
            status="ADDED",
            client_result_id=new_id(),
            model_id=request.model_id,
            request={"query": request.query, "cache": request.cache, "planOnly": request.plan_only},
            created_at=now,
            key_id=request.key_id,
            user_id=request.user_id,
        )
        watch, request_id = request.watch, request.request_id
        try:
            shown, run = self._compile(target, request.query, request.viewer)
        except PermissionDenied:
            raise
        except AssayError as exc:
            failed = self._failed(job, exc.error_type, exc.message, now)
            if isinstance(exc, CalculationsFailed):
                failed = _evolve(failed, summary={"invalid_calculations": exc.invalid})
            yield self._adding(failed)
            return self._made(failed, target, request_id)
        if watch is not None:
            watch.mark("compile")
        if request.plan_only:
            planned = _evolve(
                job, status="PLANNED", finished_at=now, summary=summary_of(shown, None, None)
            )
            yield self._adding(planned)
            return self._made(planned, target, request_id)
        key = cache_key(target.model, run)
        hit = None
        age = target.model.cache_age(shown.topic)
        if request.cache == USE_CACHE and age != 0:
            hit = yield StoreCall(lambda: self.store.cached(key, now),
                                  local=lambda: self.store.remembered(key, now))  # fmt: skip
            if hit is not None and age is not None and hit.computed_at + age <= now:
                hit = None  # stored by a query with a longer policy (the same SQL elsewhere)
            self.counters.add(CACHE_LOOKUPS, "miss" if hit is None else "hit")
        if hit is not None:
            # The SQL is the same, but what this query asked for (and dropped) is its own.
            summary = {
                **hit.summary,
                "missing_fields": list(shown.missing_fields),
                "cache_type": "EXACT",
                "execution_time_ms": 0,
            }
            done = _evolve(
                job,
                status="COMPLETE",
                finished_at=now,
                summary=summary,
                cache_metadata=cache_metadata_of(hit),
                result_file=hit.result_file,
            )
            yield self._adding(done)
            return self._made(done, target, request_id)
        claimed = self._worker_free()
        if claimed:  # it starts now: added as EXECUTING, one write instead of two
            job = _evolve(job, status="EXECUTING", started_at=now, attempts=1)
        # On a store of this process alone, a job an idle worker takes is handed to it before
        # its row is written: the engine starts while this thread writes the row, and the
        # worker records nothing about the job until the row is there. No one can know the
        # job's id before then (it is handed out once this returns), and a crash before the
        # row is written leaves no trace of a job no one was told of.
        early = claimed and not self.store.shared
        work = Work(job, target, shown, run, key, claimed, watch, request_id,
                    written=Future() if early else None)  # fmt: skip
        if claimed:
            self._owned.add(job.id)  # this replica's lease, renewed while it waits its turn
        if early:
            self._enqueue(work)
        try:
            yield self._adding(job)
        except BaseException:
            self._owned.discard(job.id)
            if work.written is not None:
                work.written.set_result(False)
            raise
        if watch is not None and not early:  # (early: the worker's stages run meanwhile)
            watch.mark("insert")
        try:
            self._made(job, target, request_id)
        finally:
            if work.written is not None:  # after its EXECUTING line: the log keeps the order
                work.written.set_result(True)
        if work.written is None:
            self._enqueue(work)
        return job

    def _adding(self, job: Job) -> StoreCall:
        return StoreCall(lambda: self.store.add_jobs([job]))

    def _made(self, job: Job, target: Target, request_id: str | None) -> Job:
        """Count and log a job just created (and, when it ended at once, its end)."""
        self.counters.add(JOBS_SUBMITTED, target.engine.name)
        if job.done:
            self._ended(job, target.engine.name, request_id)
        else:
            log_transition(job, job.status, target.engine.name, request_id)
        return job

    def _ended(self, job: Job, engine: str, request_id: str | None) -> None:
        """Count and log a job's end, once, by whoever ended it."""
        self.counters.add(JOBS_ENDED, job.status, engine, job.error_type or "")
        log_transition(job, job.status, engine, request_id)

    def _worker_free(self) -> bool:
        """Whether a worker is idle, so that a job submitted now starts at once. (A guess
        that two submits race on only makes one of them wait its turn marked EXECUTING.)"""
        with self._count_lock:
            return self._queued + self._active < self.workers

    def _compile(
        self, target: Target, query: Mapping[str, Any], viewer: Viewer | None
    ) -> tuple[CompiledQuery, CompiledQuery]:
        """The query as shown, and as run: one row past the limit, to tell whether it cut rows."""
        if sql_mode(query) == "raw":  # raw SQL: the run stops reading at the cap instead
            raw = compile_verbatim(target.model, query, dialect=target.engine.dialect,
                                   viewer=viewer)  # fmt: skip
            return raw, raw
        shown = compile_query(target.model, query, dialect=target.engine.dialect,
                              default_limit=self.default_row_limit, viewer=viewer)  # fmt: skip
        if shown.limit is None:
            return shown, shown
        if sql_mode(query) == "omnisql":  # its LIMIT is in its SQL, not in the query object
            return shown, omnisql_probe(shown)
        probe = {**query, "limit": shown.limit + 1}
        # calculations see only the rows shown, not the one past the limit (spec 3.2)
        calc_rows = shown.limit if shown.calculated else None
        return shown, compile_query(
            target.model, probe, dialect=target.engine.dialect, viewer=viewer, calc_rows=calc_rows
        )

    def _enqueue(self, work: Work) -> None:
        with self._count_lock:
            self._queued += 1
        self._pool.submit(self._execute, work)

    def _schedule_existing(self, job: Job, *, claimed: bool = False) -> None:
        """Run a job again. ``claimed``: the store already counted this attempt."""
        if job.attempts - int(claimed) >= MAX_ATTEMPTS:
            self._give_up(job, "INTERNAL", f"Gave up after {job.attempts} attempts: the job "
                          "was running each time the server stopped")  # fmt: skip
            return
        try:
            target = self.target(job.model_id)
            viewer = self.viewer_for(job.user_id, job.model_id)
            shown, run = self._compile(target, job.request["query"], viewer)
        except AssayError as exc:
            self._give_up(job, exc.error_type, exc.message)
            return
        logger.info("re-running job %s left unfinished by a previous run", job.id)
        self._enqueue(Work(job, target, shown, run, cache_key(target.model, run), claimed))

    def _give_up(self, job: Job, error_type: str, message: str) -> None:
        at = self.clock()
        if self.store.finish(job.id, status="FAILED", at=at, error_type=error_type,
                             error_message=message):  # fmt: skip
            target = self.targets.get(job.model_id)
            ended = self._failed(job, error_type, message, at)
            self._ended(ended, target.engine.name if target else "", None)
            self._notify(job.id, ended)

    def _failed(self, job: Job, error_type: str, message: str, now: float) -> Job:
        return _evolve(
            job, status="FAILED", finished_at=now, error_type=error_type, error_message=message
        )

    # ------------------------------------------------------------------ execute (worker threads)

    def _execute(self, work: Work) -> None:
        with self._count_lock:
            self._queued -= 1
            self._active += 1
        try:
            started = self.clock()
            job = work.job
            if not work.claimed:
                if not self.store.start(job.id, started):
                    return  # cancelled while queued, or another replica took it
                job = _evolve(job, status="EXECUTING", started_at=started,
                              attempts=job.attempts + 1)  # fmt: skip
                log_transition(job, job.status, work.target.engine.name, work.request_id)
            if work.watch is not None:
                work.watch.mark("queue")
            self._owned.add(job.id)
            try:
                self._run_claimed(work, job, started)
            finally:
                self._owned.discard(job.id)
        finally:
            with self._count_lock:
                self._active -= 1

    def _run_claimed(self, work: Work, job: Job, started: float) -> None:
        """Run a job this replica holds (``job``: as the store has it now) to its end."""
        job_id, shown, watch = job.id, work.shown, work.watch
        name = f"{work.key[:40]}-{new_uuid().hex[:8]}.arrows"
        path = self.results_dir / name
        try:
            started_query = start_query(work.target.engine, work.run)
            handle = pivot_capped(with_totals_row(work.target.engine, started_query, shown), shown)
            self._running[job_id] = handle
            try:
                written = write_result(handle, path, result_columns(shown), shown.row_cap,
                                       self.max_result_bytes, shown.limit_per,
                                       self.arrow_compression)  # fmt: skip
                written = with_pivot_cut(written, handle)
            finally:
                self._running.pop(job_id, None)
        except AssayError as exc:
            discard(path)
            if isinstance(exc, ResultsUnwritable):  # the operator's to fix: the log says it too
                logger.error("job %s: %s", job_id, exc.message)
            if self._closing:  # a graceful stop, not a cancel: close() put the job back
                return
            self._end(job_id, job, work, status="FAILED", error_type=exc.error_type,
                      error_message=exc.message)  # fmt: skip
            return
        except Exception as exc:  # a bug or an unexpected driver error: the job still ends
            logger.exception("job %s failed unexpectedly", job_id)
            discard(path)
            self._end(
                job_id,
                job,
                work,
                status="FAILED",
                error_type="INTERNAL",
                error_message=f"Internal error: {exc}",
            )
            return
        if not row_written(work):
            discard(path)
            return
        if watch is not None:
            watch.mark("run")
        engine = work.target.engine.name
        self.counters.add(RESULT_BYTES, engine, amount=written.bytes)
        self.counters.add(RESULT_ROWS, engine, amount=written.rows)
        finished = self.clock()
        summary = summary_of(shown, written, (finished - started) * 1000)
        try:
            self.store.save_result(name, path)  # before any job refers to it
        except Exception as exc:
            logger.exception("job %s: saving its result failed", job_id)
            discard(path)
            self._end(job_id, job, work, status="FAILED", error_type="INTERNAL",
                      error_message=f"Saving the result failed: {exc}")  # fmt: skip
            return
        # The model's cache policy for the query's topic, else the server's setting
        age = work.target.model.cache_age(shown.topic)
        ttl = self.cache_ttl if age is None else age
        result = CachedResult(work.key, name, summary, written.rows, written.bytes, finished,
                              finished + ttl)  # fmt: skip
        # (a cancel may have won meanwhile: the job stays cancelled, the cache keeps the result)
        self._end(job_id, job, work, status="COMPLETE", summary=summary,
                  cached=result if ttl > 0 else None, cache_metadata=cache_metadata_of(result),
                  result_file=name)  # fmt: skip

    def _end(
        self,
        job_id: str,
        running: Job | None = None,
        work: Work | None = None,
        **outcome: Any,
    ) -> bool:
        """End a job and wake its waiters. ``running``: the job as the store holds it while
        it runs here (``work``: what it runs); if this call ends it, waiters are handed it as
        ended (what the store now holds) instead of reading it back, and the end is counted
        here (a cancel counts its own). The request's stopwatch is marked before they wake."""
        if work is not None and not row_written(work):
            return False  # the job was never made: its request failed writing it
        at = self.clock()
        ended = self.store.finish(job_id, at=at, **outcome)
        handed = None
        if ended and running is not None:
            changes = {k: v for k, v in outcome.items() if k != "cached"}
            handed = _evolve(running, finished_at=at, **changes)
        if handed is not None and work is not None:  # before anyone is told: a client that
            # reads its answer, then the metrics or the log, finds the job's end in them
            self._ended(handed, work.target.engine.name, work.request_id)
        if work is not None and work.watch is not None:
            work.watch.mark("record")
        self._notify(job_id, handed)
        return ended

    # ------------------------------------------------------------------ wait and cancel

    def _notify(self, job_id: str, ended: Job | None = None) -> None:
        self.endings.notify(job_id, ended)

    async def wait(
        self, ids: Iterable[str], timeout: float, *, known: Iterable[Job] = ()
    ) -> dict[str, Job]:
        """The jobs, once all are terminal or ``timeout`` seconds have passed (``known``: jobs
        the caller has just read or made, not read again)."""
        return await self.endings.wait(ids, timeout, known=known)

    def cancel(self, ids: Iterable[str], *, request_id: str | None = None) -> dict[str, Job]:
        """Stop jobs: queued ones never start, running ones are interrupted in the engine."""
        ids = list(dict.fromkeys(ids))
        cancelled = []
        for job_id in ids:
            if self._end(job_id, status="FAILED", error_type=QueryCancelled.error_type,
                         error_message="The query was cancelled by request"):  # fmt: skip
                cancelled.append(job_id)
                handle = self._running.get(job_id)
                if handle is not None:
                    handle.cancel()
        jobs = self.store.get_jobs(ids)
        for job_id in cancelled:
            if (job := jobs.get(job_id)) is not None:
                target = self.targets.get(job.model_id)
                self._ended(job, target.engine.name if target else "", request_id)
        return jobs

    def result_path(self, job: Job) -> Path | None:
        """Where the job's result file is on this machine, brought from the shared store
        first when another replica computed it (None when it is gone everywhere)."""
        if not job.result_file:
            return None
        path = self.results_dir / job.result_file
        if self.store.shared and not path.exists():
            self.store.fetch_result(job.result_file, path)
        return path


def _evolve(job: Job, **changes: Any) -> Job:
    return replace(job, **changes)
