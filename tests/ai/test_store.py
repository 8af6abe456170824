"""The AI job store on a real SQLite file: results expire but jobs stay, a cancel that landed
first is never overwritten, and everything survives reopening (a server restart)."""

from __future__ import annotations

from pathlib import Path

from assay.ai.store import AIJob, SQLiteAIStore, evolve


def job(job_id: str, conversation: str = "c1", **changes: object) -> AIJob:
    base = AIJob(id=job_id, conversation_id=conversation, state="QUEUED", prompt="revenue?",
                 model_id="m", created_at=1.0, updated_at=1.0)  # fmt: skip
    return evolve(base, **changes)


def test_results_expire_but_the_job_stays(tmp_path: Path) -> None:
    store = SQLiteAIStore(tmp_path / "jobs.sqlite")
    store.add(job("old", state="COMPLETE", result={"message": "a"}, result_expires_at=100.0))
    store.add(job("new", "c2", state="COMPLETE", result={"message": "b"}, result_expires_at=300.0))
    assert store.expire_results(200.0) == 1
    old, new = store.get("old"), store.get("new")
    assert old is not None and old.state == "COMPLETE" and old.result is None
    assert new is not None and new.result == {"message": "b"}


def test_a_terminal_state_is_never_overwritten(tmp_path: Path) -> None:
    store = SQLiteAIStore(tmp_path / "jobs.sqlite")
    store.add(job("j"))
    assert store.update(job("j", state="CANCELLED", cancelled_at=2.0))
    assert not store.update(job("j", state="COMPLETE", result={"message": "late"}))
    stored = store.get("j")
    assert stored is not None and stored.state == "CANCELLED" and stored.result is None


def test_jobs_survive_reopening_and_unfinished_ones_are_found(tmp_path: Path) -> None:
    store = SQLiteAIStore(tmp_path / "jobs.sqlite")
    store.add(job("running", state="EXECUTING", webhook={"url": "http://h", "secret": "s"}))
    store.add(job("done", "c2", state="FAILED", error={"code": "INTERNAL_ERROR"}))
    store.close()
    reopened = SQLiteAIStore(tmp_path / "jobs.sqlite")
    assert [j.id for j in reopened.unfinished()] == ["running"]
    running = reopened.get("running")
    assert running is not None and running.webhook == {"url": "http://h", "secret": "s"}
    assert [j.id for j in reopened.conversation("c2")] == ["done"]
