"""A pytest plugin that records what the test suite feeds the parsers, as fuzz seeds.

    .venv/bin/python -m pytest -p tests.fuzz.record_seeds tests/semantic -q -n 0

writes each distinct input to ``.cache/fuzz/recorded/<target>/<sha1>``, in the target's input
format. The committed corpus was made from these with libFuzzer's ``-merge=1`` (keep only the
inputs that add coverage); docs/fuzzing.md has the command. Without ``-p`` it does nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import pytest
import yaml

from tests.fuzz.harness import SCRATCH
from tests.fuzz.model import join_files

OUT = SCRATCH / "recorded"


def _save(target: str, data: bytes) -> None:
    folder = OUT / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def _as_json(obj: Any) -> bytes | None:
    try:
        return json.dumps(obj, ensure_ascii=False).encode()
    except (TypeError, ValueError):
        return None


def _clock(now: Any) -> str:
    return now.isoformat() if isinstance(now, datetime) else ""


def _recorders() -> dict[tuple[str, str], Callable[..., bytes | None]]:
    """``(module, function) -> input bytes of one call`` for each recorded entry point."""

    def span(text: Any, now: Any = None, *_: Any, **__: Any) -> bytes | None:
        return f"{text}\n\n{_clock(now)}".encode() if isinstance(text, str) else None

    def duration(text: Any, *_: Any, **__: Any) -> bytes | None:
        return f"{text}\n{text}".encode() if isinstance(text, str) else None

    def interval(left: Any, right: Any, now: Any = None, *_: Any, **__: Any) -> bytes | None:
        return f"{left}\n{right}\n{_clock(now)}".encode()

    def as_yaml(obj: Any, *_: Any, **__: Any) -> bytes | None:
        try:
            return yaml.safe_dump(obj, allow_unicode=True, sort_keys=False).encode()
        except yaml.YAMLError:
            return None

    def as_json(obj: Any, *_: Any, **__: Any) -> bytes | None:
        return _as_json(obj)

    def files(obj: Any, *_: Any, **__: Any) -> bytes | None:
        return join_files(dict(obj)) if isinstance(obj, Mapping) else None

    def sql(obj: Any, *_: Any, **__: Any) -> bytes | None:
        return obj.encode() if isinstance(obj, str) else None

    return {
        ("assay.semantic.dates", "parse_span"): span,
        ("assay.semantic.dates", "parse_duration"): duration,
        ("assay.semantic.dates", "interval_span"): interval,
        ("assay.semantic.filters", "parse_json_filter"): as_json,
        ("assay.semantic.filters", "parse_yaml_filter"): as_yaml,
        ("assay.semantic.query", "parse_query"): as_json,
        ("assay.semantic.loader", "build_model"): files,
        ("assay.semantic.templates", "parse_template"): sql,
        ("assay.semantic.templates", "parse_view_sql"): sql,
    }


_TARGET_OF = {
    "parse_span": "dates", "parse_duration": "dates", "interval_span": "dates",
    "parse_json_filter": "json_filter", "parse_yaml_filter": "yaml_filter",
    "parse_query": "query", "build_model": "model", "parse_template": "templates",
    "parse_view_sql": "templates",
}  # fmt: skip


def _wrap(name: str, original: Callable[..., Any], record: Callable[..., bytes | None]) -> Any:
    @functools.wraps(original)
    def recording(*args: Any, **kwargs: Any) -> Any:
        data = record(*args, **kwargs)
        if data is not None:
            _save(_TARGET_OF[name], data)
        return original(*args, **kwargs)

    return recording


_ORIGINALS: dict[int, Any] = {}


def _install() -> None:
    """Wrap each entry point, then re-point every module's imported name at the wrapper."""
    for (module, name), record in _recorders().items():
        mod = sys.modules.get(module) or __import__(module, fromlist=[name])
        original = getattr(mod, name)
        if id(original) not in _ORIGINALS:
            wrapper = _wrap(name, original, record)
            _ORIGINALS[id(original)] = wrapper
            setattr(mod, name, wrapper)
    for mod in list(sys.modules.values()):
        for attr, value in list(vars(mod).items() if hasattr(mod, "__dict__") else ()):
            if id(value) in _ORIGINALS and not attr.startswith("__"):
                setattr(mod, attr, _ORIGINALS[id(value)])


def pytest_configure(config: pytest.Config) -> None:
    _install()


def pytest_collection_finish(session: pytest.Session) -> None:
    _install()
