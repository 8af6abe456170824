"""Cache policies: how long a result is reused follows the query's topic's ``cache_policy``,
else the model's ``default_cache_policy``, else the server's ``cache_ttl_seconds``. A policy of
0 seconds keeps nothing: the same query runs again. Real DuckDB, SQLite store, job runner."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pytest

from assay.demo.tpch import tpch_model_dir
from assay.engines.base import Engine
from assay.jobs.runner import JobRunner
from assay.jobs.sqlite import SQLiteJobStore
from assay.jobs.work import Target
from assay.semantic.loader import load_model
from tests.jobs.test_runner_results import Watched, cached_results, engine, run, runners

__all__ = ["engine", "runners"]  # fixtures used by the tests below

POLICIES = """
cache_policies:
  never: {max_cache_age: 0 seconds}
  ten_minutes: {max_cache_age: 10 minutes}
default_cache_policy: ten_minutes
"""
BY_REGION = {"fields": ["region.r_name", "lineitem.count"]}


def make_runner(tmp_path: Path, engine: Watched, model_yaml: str) -> JobRunner:
    folder = tmp_path / "models"
    shutil.copytree(tpch_model_dir(), folder)
    model_file = folder / "model.yaml"
    model_file.write_text(model_file.read_text() + model_yaml)
    orders = folder / "orders.topic.yaml"
    orders.write_text(orders.read_text() + "\ncache_policy: never\n")
    model = load_model(folder)
    store = SQLiteJobStore(tmp_path / "assay.sqlite")
    return JobRunner(store, {model.id: Target(model, cast(Engine, engine))},
                     tmp_path / "results", workers=1, cache_ttl_seconds=3600)  # fmt: skip


def _age(job: Any) -> float:
    meta = job.cache_metadata
    computed, expires = (datetime.fromisoformat(meta[k]) for k in ("computed_at", "expires_at"))
    return (expires - computed).total_seconds()


def test_a_topic_policy_of_zero_reuses_nothing(
    tmp_path: Path, engine: Watched, runners: list[JobRunner]
) -> None:
    runner = make_runner(tmp_path, engine, POLICIES)
    runners.append(runner)
    query = {**BY_REGION, "join_paths_from_topic_name": "orders"}
    first, second = run(runner, query), run(runner, query)
    assert first.status == second.status == "COMPLETE"
    assert second.summary is not None and second.summary["cache_type"] == "MISS"
    assert cached_results(runner) == 0


@pytest.mark.parametrize(
    ("scope", "age"),
    [({"join_paths_from_topic_name": "lineitem"}, 600.0), ({"table": "lineitem"}, 600.0)],
    ids=["topic_without_policy", "no_topic"],
)
def test_the_models_default_policy_sets_the_age(
    tmp_path: Path, engine: Watched, runners: list[JobRunner], scope: dict[str, str], age: float
) -> None:
    runner = make_runner(tmp_path, engine, POLICIES)
    runners.append(runner)
    first = run(runner, {**BY_REGION, **scope})
    assert _age(first) == age
    second = run(runner, {**BY_REGION, **scope})
    assert second.summary is not None and second.summary["cache_type"] == "EXACT"


def test_without_policies_the_server_setting_holds(
    tmp_path: Path, engine: Watched, runners: list[JobRunner]
) -> None:
    runner = make_runner(tmp_path, engine, "\ncache_policies:\n  never: {max_cache_age: 0s}\n")
    runners.append(runner)
    assert _age(run(runner, {**BY_REGION, "table": "lineitem"})) == 3600.0


def test_a_shorter_policy_does_not_reuse_a_longer_ones_result(
    tmp_path: Path, engine: Watched, runners: list[JobRunner]
) -> None:
    """The same SQL from a topic that caches for ten minutes and one that caches nothing:
    the second does not take the first's result."""
    runner = make_runner(tmp_path, engine, POLICIES)
    runners.append(runner)
    first = run(runner, {"fields": ["orders.count"], "table": "orders"})
    again = run(runner, {"fields": ["orders.count"], "join_paths_from_topic_name": "orders"})
    assert first.summary is not None and again.summary is not None
    assert first.summary["sql"] == again.summary["sql"]  # the same SQL: the same cache key
    assert again.summary["cache_type"] == "MISS"
