"""Replay every committed fuzz input through its target's ``check``: the corpus under
``tests/fixtures/fuzz/<target>/``, the crash inputs saved beside it in ``crashes/`` (a fixed
crash stays fixed), and the seeds a target makes from the repo's own files (whole models).

Runs without atheris. A hang is a failure too: each input gets a few seconds.
"""

from __future__ import annotations

import functools
import importlib
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import pytest

from tests.fuzz import TARGETS
from tests.fuzz.harness import CORPUS, Target, corpus_files

SECONDS_PER_INPUT = 5


def _target(name: str) -> Target:
    target: Target = importlib.import_module(f"tests.fuzz.{name}").TARGET
    return target


def _cases() -> Iterator[tuple[str, str, Callable[[], bytes]]]:
    for name in TARGETS:
        for path in corpus_files(name):
            yield name, path.relative_to(CORPUS / name).as_posix(), path.read_bytes
        if name == "model":  # whole models, read from their folders at test time
            from tests.fuzz.model import real_models

            for seed, data in real_models():
                yield name, f"seed-{seed}", functools.partial(bytes, data)


CASES = list(_cases())


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    def _expired(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"one input ran longer than {seconds} s (a hang)")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize(("target", "case", "read"), CASES, ids=[f"{t}/{c}" for t, c, _ in CASES])
def test_input_passes_its_check(target: str, case: str, read: Callable[[], bytes]) -> None:
    data = read()
    with _deadline(SECONDS_PER_INPUT):
        _target(target).check(data)


@pytest.mark.parametrize("name", TARGETS)
def test_every_target_has_a_corpus(name: str) -> None:
    assert (CORPUS / name).is_dir(), f"tests/fixtures/fuzz/{name}/ is missing"
    assert any(p.parent == CORPUS / name for p in corpus_files(name)), f"{name}: empty corpus"


def test_targets_are_the_modules_here() -> None:
    here = Path(__file__).parent
    modules = {p.stem for p in here.glob("*.py")} - {
        "__init__",
        "harness",
        "mutate",
        "record_seeds",
    }
    assert modules - {"test_corpus"} == set(TARGETS)
