"""AI jobs: a question becomes a plan of semantic queries, run as ordinary query jobs, and a
markdown answer. QUEUED -> EXECUTING -> DELIVERING -> COMPLETE (or FAILED / CANCELLED).

A job runs as a task on the server's event loop; the queries it makes run on the query
runner's workers. Jobs left unfinished by a stopped server run again at start-up (they only
read), and one conversation has at most one active job.

A job is its user's: it plans against the model as that user sees it (what they may not see
is never offered to the planner), its queries run as them, and a conversation is continued
only by the user who started it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assay.ai import answer, webhooks
from assay.ai.chart import chart_png, chart_svg, warm_up_soon
from assay.ai.chart_spec import Theme
from assay.ai.llm import BuiltinPlanner, Planner
from assay.ai.planner import Plan, PlannedQuery, PlanStep
from assay.ai.store import AIJob, AIStore, ConversationBusy, evolve
from assay.counters import AI_JOBS_ENDED
from assay.errors import AssayError, ModelNotFound, PermissionDenied
from assay.jobs.runner import JobRunner
from assay.jobs.work import JobRequest
from assay.results.arrow import read_table
from assay.semantic.access import visible_model
from assay.semantic.ai_view import as_seen_by_ai
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel
from assay.semantic.viewer import QUERY_TOPICS, Viewer


class UnknownConversation(AssayError):
    """Conversation not found."""

    code = "conversation_not_found"
    status = 404


logger = logging.getLogger(__name__)


def _now_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


CHARTS_KEPT = 64  # drawn charts kept (about 100 KB each): /vis and the chat page ask again


def main_query(result: dict[str, Any]) -> dict[str, Any] | None:
    """The result of an answer's last successful query: the one ``/vis`` draws."""
    return next(
        (a["result"] for a in reversed(result.get("actions", []))
         if a.get("type") == "generate_query" and a.get("result", {}).get("status") == "success"),
        None,
    )  # fmt: skip


def _draw(path: Path, fields: dict[str, Any], kind: str, theme: Theme) -> bytes | str | None:
    table = read_table(path)
    return chart_png(table, fields, theme) if kind == "png" else chart_svg(table, fields, theme)


def _log_failure(task: asyncio.Task[bytes | None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("a chart could not be drawn", exc_info=task.exception())


class AIJobRunner:
    def __init__(
        self,
        store: AIStore,
        queries: JobRunner,
        *,
        planner: Planner | None = None,
        retention_days: float = 14,
        query_timeout: float = 300,
        clock: Callable[[], float] = time.time,
        webhook_hosts: frozenset[str] = frozenset(),
    ) -> None:
        self.store = store
        #: hosts webhooks may reach besides public addresses (``webhook_allowed_hosts``)
        self.webhook_hosts = webhook_hosts
        self.queries = queries
        self.planner = planner or BuiltinPlanner()
        self.retention = retention_days * 86400
        self.query_timeout = query_timeout
        self.clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._query_jobs: dict[str, list[str]] = {}
        self._deliveries: set[asyncio.Task[bool]] = set()
        self._charts: OrderedDict[tuple[str, str, str], asyncio.Future[bytes | str | None]] = (
            OrderedDict()
        )
        self._drawings: set[asyncio.Task[bytes | None]] = set()
        self.counters = queries.counters
        self._planner_label: str = getattr(self.planner, "label", "custom")

    def attach(self) -> int:
        """Run again what a stopped server left unfinished (call from the event loop)."""
        pending = self.store.unfinished()
        for job in pending:
            self._start(job.id)
        return len(pending)

    async def close(self) -> None:
        for task in [*self._tasks.values(), *self._drawings]:
            task.cancel()
        if self._deliveries:  # let webhooks in flight finish, briefly
            await asyncio.wait(list(self._deliveries), timeout=5)

    def running(self) -> int:
        """AI jobs this server is working on now."""
        return len(self._tasks)

    def model(self, model_id: str, viewer: Viewer | None = None) -> SemanticModel:
        """The model as the planner may see it for ``viewer``: what they may see, narrowed to
        the model's ``ai_chat_topics`` and each topic's ``ai_fields`` (compiling against it
        compiles against the whole model, as them)."""
        target = self.queries.targets.get(model_id)
        if target is None:
            raise ModelNotFound(f"Model {model_id} not found")
        return as_seen_by_ai(visible_model(target.model, viewer))

    def _viewer(self, job: AIJob) -> Viewer | None:
        """The job's user as they are now (a job resumed after a restart included)."""
        return self.queries.viewer_for(job.user_id, job.model_id)

    def submit(
        self,
        prompt: str,
        model_id: str,
        *,
        conversation_id: str | None,
        topic_name: str | None,
        key_id: str | None,
        user_id: str | None,
        viewer: Viewer | None = None,
        webhook: dict[str, Any] | None = None,
    ) -> AIJob:
        self.model(model_id)
        if viewer is not None and not viewer.may(QUERY_TOPICS):
            raise PermissionDenied("Permission denied - querier role required on the model")
        conversation = conversation_id or str(uuid.uuid4())
        earlier = self.store.conversation(conversation)
        if any(j.user_id != user_id for j in earlier):
            raise UnknownConversation("Conversation not found")
        if any(not j.done for j in earlier):
            raise ConversationBusy("An active job already exists for this conversation")
        now = self.clock()
        job = AIJob(
            id=str(uuid.uuid4()), conversation_id=conversation, state="QUEUED", prompt=prompt,
            model_id=model_id, created_at=now, updated_at=now, topic_name=topic_name,
            key_id=key_id, user_id=user_id, webhook=webhook,
        )  # fmt: skip
        self.store.add(job)
        self._log(job, "QUEUED", conversation_id=conversation)
        self._start(job.id)
        return job

    def _start(self, job_id: str) -> None:
        warm_up_soon()  # its chart is asked for next: start the renderer while the job runs
        task = asyncio.get_running_loop().create_task(self._run(job_id))
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job_id, None))

    def cancel(self, job_id: str) -> AIJob | None:
        job = self.store.get(job_id)
        if job is None or job.done or job.state == "DELIVERING":
            return job
        now = self.clock()
        if self.store.update(evolve(job, state="CANCELLED", cancelled_at=now, updated_at=now)):
            self._count_end(job, "CANCELLED", now)
            self.queries.cancel(self._query_jobs.get(job_id, []))
            task = self._tasks.get(job_id)
            if task is not None:
                task.cancel()
        return self.store.get(job_id)

    # ------------------------------------------------------------------ running a job

    def _conversation(self, job: AIJob) -> list[PlanStep]:
        steps = []
        for earlier in self.store.conversation(job.conversation_id):
            if earlier.id == job.id or earlier.state != "COMPLETE" or not earlier.result:
                continue
            if earlier.user_id != job.user_id:
                continue  # never another user's questions (submit refuses mixing them)
            planned = [
                PlannedQuery(a["result"]["query"], a.get("message", ""))
                for a in earlier.result.get("actions", [])
                if a.get("type") == "generate_query"
                and a.get("result", {}).get("status") == "success"
            ]
            steps.append(PlanStep(earlier.prompt, Plan(planned, topic=earlier.result.get("topic"))))
        return steps

    async def _run(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is None or job.done:
            return
        try:
            await self._execute(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the job must end, whatever went wrong
            logger.exception("AI job %s failed", job_id)
            self._fail(job_id, str(exc))
        finally:
            self._query_jobs.pop(job_id, None)

    def _progress(self, job: AIJob, iteration: int, message: str) -> AIJob:
        now = self.clock()
        changed = evolve(job, state="EXECUTING", updated_at=now,
                         execution_started_at=job.execution_started_at or now,
                         progress={"iteration": iteration, "message": message,
                                   "updatedAt": _now_iso(now)})  # fmt: skip
        self.store.update(changed)
        return changed

    async def _execute(self, job: AIJob) -> None:
        viewer = self._viewer(job)
        model = self.model(job.model_id, viewer)
        job = self._progress(job, 1, "Understanding the question")
        plan = await asyncio.to_thread(
            self.planner.plan, job.prompt, model, self._conversation(job), job.topic_name
        )
        actions: list[dict[str, Any]] = []
        outcomes: list[answer.Outcome] = []
        for i, planned in enumerate(plan.queries, start=2):
            job = self._progress(job, i, f"Running: {planned.intent}")
            outcome = await self._run_query(job, planned, viewer)
            outcomes.append(outcome)
            actions.append(answer.query_action(planned, outcome, datetime.now(UTC)))
        markdown = answer.answer_markdown(job.prompt, plan, outcomes, model=model)
        actions.append(answer.summarize_action(markdown, datetime.now(UTC)))
        now = self.clock()
        result = {
            "actions": actions,
            "message": markdown,
            "resultSummary": markdown,
            "topic": plan.topic or job.topic_name,
        }
        delivering = evolve(job, state="DELIVERING", updated_at=now, progress=None)
        if not self.store.update(delivering):
            return  # cancelled meanwhile
        done = evolve(delivering, state="COMPLETE", updated_at=now, completed_at=now, result=result,
                      result_summary=markdown, result_expires_at=now + self.retention)  # fmt: skip
        if self.store.update(done):
            self._count_end(done, "REFUSED" if plan.refusal and not plan.queries else "COMPLETE")
            self._notify(done)
            self._draw_soon(done)

    def _count_end(self, job: AIJob, outcome: str, at: float | None = None) -> None:
        self.counters.add(AI_JOBS_ENDED, outcome, self._planner_label)
        ended = at or job.completed_at or self.clock()
        self._log(job, outcome, duration_ms=round((ended - job.created_at) * 1000, 2))

    def _log(self, job: AIJob, state: str, **more: Any) -> None:
        """One log line per transition that matters to an operator (made, ended); never the
        question, which can hold what a user would not want in a log."""
        fields = {"event": "ai_job", "job_id": job.id, "state": state, "user_id": job.user_id,
                  "model_id": job.model_id, "planner": self._planner_label, **more}  # fmt: skip
        logger.info("AI job %s %s", job.id, state, extra={"fields": fields})

    def _notify(self, job: AIJob) -> None:
        """Send the terminal webhook in the background: the job is already final."""
        if not job.webhook:
            return
        body = webhooks.event_body(
            job.id, job.state, at=job.completed_at or self.clock(), summary=job.result_summary,
            error=job.error, metadata=job.webhook.get("metadata"),
        )  # fmt: skip
        hook = job.webhook
        send = webhooks.deliver(
            hook["url"], hook["secret"], body, now=self.clock(), address=hook.get("address"),
            allowed=self.webhook_hosts,
        )  # fmt: skip
        task = asyncio.get_running_loop().create_task(send)
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _run_query(
        self, job: AIJob, planned: PlannedQuery, viewer: Viewer | None
    ) -> answer.Outcome:
        return await self.run_planned(job.model_id, planned, key_id=job.key_id, owner=job.id,
                                      user_id=job.user_id, viewer=viewer)  # fmt: skip

    async def run_planned(
        self,
        model_id: str,
        planned: PlannedQuery,
        *,
        key_id: str | None,
        owner: str | None = None,
        user_id: str | None = None,
        viewer: Viewer | None = None,
    ) -> answer.Outcome:
        """Run one planned query as an ordinary query job of ``user_id`` (``owner``: the AI
        job it serves, so cancelling that job stops it too)."""
        query = {**planned.query, "modelId": model_id}
        ask = JobRequest(query, model_id, key_id=key_id, user_id=user_id, viewer=viewer)
        try:
            submitted = await self.queries.submit_from_loop(ask)
        except PermissionDenied as exc:
            return answer.QueryFailed(exc.message)
        if owner is not None:
            self._query_jobs.setdefault(owner, []).append(submitted.id)
        waited = await self.queries.wait([submitted.id], self.query_timeout, known=[submitted])
        finished = waited[submitted.id]
        path = self.queries.result_path(finished) if finished.status == "COMPLETE" else None
        if path is None:
            return answer.QueryFailed(finished.error_message or "the query did not finish")
        table = await asyncio.to_thread(read_table, path)
        fields = compile_query(self.model(model_id), query, viewer=viewer).fields  # cached
        total = (finished.summary or {}).get("total_rows")
        return answer.QueryResult.from_fields(table, fields, total)

    async def plan(
        self,
        prompt: str,
        model_id: str,
        context: dict[str, Any] | None = None,
        topic: str | None = None,
        viewer: Viewer | None = None,
    ) -> Plan:
        """Plan one question outside any job (generate-query, pick-topic) for ``viewer``;
        ``context`` is an earlier query the question follows up on, ``topic`` one the caller
        insists on."""
        model = self.model(model_id, viewer)
        steps = []
        if context:
            earlier = context.get("join_paths_from_topic_name")
            steps.append(PlanStep("", Plan([PlannedQuery(context, "")], topic=earlier)))
        return await asyncio.to_thread(self.planner.plan, prompt, model, steps, topic)

    def _fail(self, job_id: str, message: str) -> None:
        job = self.store.get(job_id)
        if job is None or job.done:
            return
        now = self.clock()
        error = {
            "code": "INTERNAL_ERROR",
            "message": "The answer could not be produced",
            "detail": message,
        }
        failed = evolve(
            job, state="FAILED", updated_at=now, completed_at=now, error=error, progress=None
        )
        if self.store.update(failed):
            self._count_end(failed, "FAILED")
            self._notify(failed)

    async def chart(self, result: dict[str, Any], job: AIJob) -> bytes | None:
        """A PNG chart of a generate_query action's rows (``/vis``), or None."""
        made = await self._chart(result, job, "png", "light")
        return made if isinstance(made, bytes) else None

    async def chart_svg(
        self, result: dict[str, Any], job: AIJob, theme: Theme = "light"
    ) -> str | None:
        """An SVG chart of a generate_query action's rows (the chat page), or None."""
        made = await self._chart(result, job, "svg", theme)
        return made if isinstance(made, str) else None

    async def _chart(
        self, result: dict[str, Any], job: AIJob, kind: str, theme: Theme
    ) -> bytes | str | None:
        """Drawn once per result file, kind and theme (a drawing costs 50-300 ms of CPU,
        bench/README.md), in a thread. The query runs again as the job's user every time (the
        result cache answers), so a user who may no longer run it gets no chart."""
        found = await self._rows(result, job)
        if found is None:
            return None
        path, fields = found
        key = (str(path), kind, theme)
        drawing = self._charts.get(key)
        if drawing is None:
            drawing = asyncio.ensure_future(asyncio.to_thread(_draw, path, fields, kind, theme))
            self._charts[key] = drawing
            while len(self._charts) > CHARTS_KEPT:
                self._charts.popitem(last=False)
        self._charts.move_to_end(key)
        try:
            return await asyncio.shield(drawing)
        except Exception:
            self._charts.pop(key, None)  # drawn again when asked again
            raise

    def _draw_soon(self, job: AIJob) -> None:
        """Draw a completed job's ``/vis`` chart while its client reads the answer."""
        main = main_query(job.result or {})
        if main is None:
            return
        task = asyncio.get_running_loop().create_task(self.chart(main, job))
        self._drawings.add(task)
        task.add_done_callback(self._drawings.discard)
        task.add_done_callback(_log_failure)

    async def _rows(self, result: dict[str, Any], job: AIJob) -> tuple[Path, dict[str, Any]] | None:
        """A generate_query action's result file and ``summary.fields``, as the AI job's user
        sees them now."""
        query = result.get("query") or {}
        model_id = query.get("modelId")
        if not isinstance(model_id, str) or model_id not in self.queries.targets:
            return None
        try:
            ask = JobRequest(query, model_id, user_id=job.user_id, viewer=self._viewer(job))
            submitted = await self.queries.submit_from_loop(ask)
        except AssayError:  # the user may no longer run it: no chart, rather than another's
            return None
        waited = await self.queries.wait([submitted.id], self.query_timeout, known=[submitted])
        finished = waited[submitted.id]
        path = self.queries.result_path(finished) if finished.status == "COMPLETE" else None
        if path is None:
            return None
        return path, (finished.summary or {}).get("fields", {})

    def expire(self) -> int:
        return self.store.expire_results(self.clock())
