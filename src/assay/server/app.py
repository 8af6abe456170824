"""The application factory: one object per server process, built from settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response

from assay import __version__
from assay.ai.jobs import AIJobRunner
from assay.ai.llm import planner_from_settings
from assay.ai.store import AIStore, SQLiteAIStore
from assay.config import Settings
from assay.counters import Counters
from assay.demo.tpch import tpch_model_dir
from assay.engines import DuckDBEngine, Engine
from assay.engines.connect import open_engine
from assay.engines.urls import redact
from assay.errors import ConfigError, EngineUnavailable, did_you_mean
from assay.jobs.runner import JobRunner
from assay.jobs.store import JobStore
from assay.jobs.stores import open_job_store
from assay.jobs.users import lookup_viewer
from assay.jobs.work import Target
from assay.outbound import allowed_hosts
from assay.semantic.loader import load_model
from assay.server import (
    ai_routes,
    ai_tool_routes,
    chat_page,
    conversation_routes,
    errors,
    model_routes,
    query_routes,
    scim_routes,
    user_routes,
)
from assay.server.auth import RateLimiter
from assay.server.errors import ApiError
from assay.server.limits import BodyLimits
from assay.server.metrics import CONTENT_TYPE as METRICS_TEXT
from assay.server.metrics import Metrics, ScrapePolicy
from assay.server.observe import Observe
from assay.server.quotas import KeyQuotas
from assay.server.registry import ModelRegistry
from assay.server.state import ServerState
from assay.server.traces import open_traces

logger = logging.getLogger(__name__)
PRUNE_EVERY_SECONDS = 60.0


def serve_configured_models(settings: Settings, registry: ModelRegistry) -> None:
    """The models of the ``models`` setting, each on its named connection; without it, the
    configured model folder on the configured DuckDB file (the demo's, by default). Each is
    checked against the organization's user attributes."""
    attributes = registry.attributes()
    if not settings.models:
        demo = DuckDBEngine(settings.resolved_duckdb_path, threads=settings.duckdb_threads)
        folder = settings.resolved_models_dir or tpch_model_dir()
        columns = demo.catalog()
        model = load_model(folder, catalog=columns, attributes=attributes)
        registry.add(folder, Target(model, demo), connection="default", catalog=columns)
        return
    engines: dict[str, tuple[Engine, dict[str, dict[str, str]] | None]] = {}
    for spec in settings.models:
        name = spec["connection"]
        if name not in settings.connections:
            hint = did_you_mean(name, settings.connections)
            raise ConfigError(f"Model folder {spec['folder']} names connection {name!r}, which "
                              f"the connections setting does not define.{hint}")  # fmt: skip
        if name not in engines:
            url = settings.connections[name]
            engine = open_engine(url, threads=settings.duckdb_threads)
            engines[name] = (engine, _catalog_if_reachable(engine, name, url))
        engine, catalog = engines[name]
        folder = Path(spec["folder"])
        model = load_model(folder, catalog=catalog, attributes=attributes)
        if model.id in registry.ids():
            raise ConfigError(
                f"Two model folders define the model {model.name!r}: names are unique"
            )
        registry.add(folder, Target(model, engine), connection=name, catalog=catalog)


def _catalog_if_reachable(engine: Engine, name: str, url: str) -> dict[str, dict[str, str]] | None:
    """The database's columns, to check the model against; a database that is down does not
    keep the server from starting (its queries fail as OFFLINE until it is back)."""
    try:
        return engine.catalog()
    except EngineUnavailable as exc:
        logger.warning("connection %s (%s) is unreachable at start-up, serving its model "
                       "unchecked: %s", name, redact(url), exc.message)  # fmt: skip
        return None


def create_app(
    settings: Settings,
    *,
    store: JobStore | None = None,
    targets: Mapping[str, Target] | None = None,
) -> FastAPI:
    # Opened here, not in the lifespan: a damaged store or an unusable results folder stops
    # `assay serve` with its message (a lifespan error is printed by uvicorn as a traceback).
    scrapes = ScrapePolicy(settings)  # a bad metrics setting stops start-up, before the store
    traces = open_traces(settings)  # so does tracing without its extra (None when off)
    job_store = store or open_job_store(
        settings, pool_size=settings.workers + 4, counters=Counters()
    )
    metrics = Metrics(job_store.counters)
    directory = job_store.users
    try:
        runner = JobRunner(
            job_store,
            {},
            settings.results_dir,
            workers=settings.workers,
            cache_ttl_seconds=settings.cache_ttl_seconds,
            default_row_limit=settings.default_row_limit,
            viewer_for=lambda user_id, model_id: lookup_viewer(directory, user_id, model_id),
            max_result_bytes=settings.max_result_bytes,
            arrow_compression=settings.arrow_codec,
        )
    except BaseException:
        if store is None:
            job_store.close()
        raise

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = ModelRegistry(
            runner, attributes=lambda: [d.name for d in directory.attribute_definitions()]
        )
        if targets is None:
            serve_configured_models(settings, registry)
        else:
            for target in targets.values():
                registry.add(Path("."), target, connection="default", catalog=None)
        ai_store = _ai_store(settings, job_store)
        planner = planner_from_settings(
            settings.ai_planner, settings.ai_base_url, settings.ai_model, settings.ai_api_key
        )
        ai = AIJobRunner(
            ai_store, runner, planner=planner, retention_days=settings.ai_result_retention_days,
            webhook_hosts=allowed_hosts(settings.webhook_allowed_hosts),
        )  # fmt: skip
        quotas = KeyQuotas(max_waits=settings.max_waits_per_key, max_jobs=settings.max_jobs_per_key)
        app.state.assay = ServerState(
            settings, job_store, runner, _rate_limiter(settings, job_store), registry, ai, quotas
        )
        _watch_load(metrics, runner, ai)
        resumed = runner.attach(asyncio.get_running_loop())
        resumed += ai.attach()
        if resumed:
            logger.info("re-running %d job(s) a previous run left unfinished", resumed)
        pruner = asyncio.create_task(_prune_forever(app.state.assay))
        try:
            yield
        finally:
            pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruner
            await ai.close()
            ai_store.close()
            runner.close()
            for target in runner.targets.values():
                target.engine.close()
            if store is None:
                job_store.close()
            if traces is not None:
                traces.shutdown()  # the last requests' spans leave before the process does

    app = FastAPI(
        title="Assay",
        version=__version__,
        description="A self-hosted analytics API, wire-compatible with Omni's REST API.",
        lifespan=lifespan,
        # FastAPI's own telemetry follows OpenTelemetry's global providers, and asks them on
        # every request whether to record it: off. Assay's traces are its own (traces.py).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    errors.install(app)
    app.add_middleware(
        BodyLimits, max_bytes=settings.max_body_bytes, timeout=settings.client_timeout_seconds
    )
    app.add_middleware(Observe, metrics=metrics, traces=traces)  # added last: the outermost
    app.include_router(query_routes.router)
    app.include_router(model_routes.router)
    app.include_router(ai_routes.router)
    app.include_router(conversation_routes.router)
    app.include_router(ai_tool_routes.router)
    app.include_router(chat_page.router)
    app.include_router(user_routes.router)
    app.include_router(scim_routes.router)
    _document_bearer_auth(app)

    @app.get("/health", include_in_schema=False)
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    @app.get("/metrics", include_in_schema=False)
    async def scrape(request: Request) -> Response:
        refused = scrapes.refusal(request.headers)
        if refused == 404:
            raise ApiError(404, "Not Found: metrics are off (setting metrics, metrics_token)")
        if refused == 401:
            raise ApiError(401, "Unauthorized: /metrics needs the metrics_token as a bearer "
                           "token", headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        return Response(metrics.render(), media_type=METRICS_TEXT)

    return app


def _watch_load(metrics: Metrics, runner: JobRunner, ai: AIJobRunner) -> None:
    """The server's load, read at each scrape."""
    metrics.gauge("assay_workers", "Query worker threads (setting workers).",
                  lambda: runner.workers)  # fmt: skip
    metrics.gauge("assay_workers_busy", "Query workers running a job now.",
                  lambda: runner.occupancy()[1])  # fmt: skip
    metrics.gauge("assay_jobs_queued", "Query jobs waiting for a worker (the queue's depth).",
                  lambda: runner.occupancy()[0])  # fmt: skip
    metrics.gauge("assay_waited_jobs", "Jobs that long-polling requests are waiting on now.",
                  lambda: runner.occupancy()[2])  # fmt: skip
    metrics.gauge("assay_ai_jobs_running", "AI jobs being planned, run or answered now.",
                  ai.running)  # fmt: skip


def _document_bearer_auth(app: FastAPI) -> None:
    """Routes read the bearer token themselves; the OpenAPI document still says so."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)  # fmt: skip
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "API key"}
            }
            schema["security"] = [{"bearerAuth": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _ai_store(settings: Settings, job_store: JobStore) -> AIStore:
    """AI jobs live beside query jobs: in the same PostgreSQL schema for replicas. (psycopg
    is imported only then: a single node on SQLite does not load it.)"""
    if not job_store.shared:
        return SQLiteAIStore(settings.job_store_path)
    from assay.ai.store_postgres import PostgresAIStore  # noqa: PLC0415
    from assay.jobs.postgres import PostgresJobStore  # noqa: PLC0415

    assert isinstance(job_store, PostgresJobStore)
    return PostgresAIStore(settings.job_store, schema=job_store.schema)


def _rate_limiter(settings: Settings, store: JobStore) -> RateLimiter:
    """Replicas count requests in the shared store, so a key's limit holds across them."""
    if not store.shared:
        return RateLimiter(settings.rate_limit_per_minute, counters=store.counters)
    from assay.jobs.postgres import PostgresJobStore  # noqa: PLC0415

    assert isinstance(store, PostgresJobStore)
    return RateLimiter(
        settings.rate_limit_per_minute, shared=store.take_token, counters=store.counters
    )


def prune_once(state: ServerState) -> int:
    """Delete expired cache entries, jobs past retention, and result files no one refers to."""
    now = time.time()
    keep_since = now - state.settings.result_retention_hours * 3600
    state.ai.expire()
    orphans = state.store.prune(now, keep_since)
    for name in orphans:
        (state.settings.results_dir / name).unlink(missing_ok=True)
    if state.store.shared:  # other replicas' prunes: drop local copies nothing refers to now
        orphans.extend(_drop_unreferenced_copies(state, now))
    return len(orphans)


def _drop_unreferenced_copies(state: ServerState, now: float) -> list[str]:
    folder = state.settings.results_dir
    # Young files may belong to a query still being recorded: leave them for the next round.
    old = [p.name for p in folder.glob("*.arrows") if p.stat().st_mtime < now - 600]
    unreferenced = sorted(set(old) - state.store.referenced_results(old))
    for name in unreferenced:
        (folder / name).unlink(missing_ok=True)
    return unreferenced


async def _prune_forever(state: ServerState) -> None:
    while True:
        try:
            await asyncio.to_thread(prune_once, state)
        except Exception:  # pruning must never take the server down
            logger.exception("pruning results failed")
        await asyncio.sleep(PRUNE_EVERY_SECONDS)
