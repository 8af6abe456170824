"""What every fuzz target shares: its description (``Target``), its corpus on disk, and the
atheris entry point that instruments Assay and hands libFuzzer a structure-aware mutator.

atheris is imported inside ``fuzz`` only: the regression test replays the corpus through each
target's ``check`` without it.
"""

from __future__ import annotations

import importlib
import json
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from tests.fuzz.mutate import MutateBytes, TreeMutator, graft

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "fixtures" / "fuzz"
SCRATCH = REPO / ".cache" / "fuzz"
# Realistic clocks: the server's is datetime.now(); what parses must hold at any of them.
NOW = datetime(2026, 11, 23, 10, 30)
CLOCKS = (NOW, datetime(1970, 1, 1), datetime(2100, 12, 31, 23, 59, 59))
DIALECTS = ("duckdb", "postgres", "mysql", "snowflake", "bigquery", "trino", "spark")

Mutate = Callable[[bytes, random.Random, MutateBytes, TreeMutator], bytes]


@dataclass(frozen=True)
class Target:
    """One fuzz target: the property, the words its grammar uses and how to mutate it.

    ``decode``/``encode`` turn an input into a JSON-like tree and back, for structured
    mutation; ``mutate`` replaces that whole step when a target needs its own (several files).
    """

    name: str
    check: Callable[[bytes], None]
    tokens: tuple[str, ...] = ()
    decode: Callable[[bytes], Any] | None = None
    encode: Callable[[Any], bytes] | None = None
    mutate: Mutate | None = None
    max_len: int = 4096
    instrument: tuple[str, ...] = ("assay",)
    # Seeds made at run time from files the repo already has (whole models), so the
    # committed corpus stays small; the regression test replays them too.
    seeds: Callable[[], Iterator[tuple[str, bytes]]] | None = None


def text(data: bytes) -> str:
    """Fuzz bytes as text, as a server would have decoded them (bad UTF-8 replaced)."""
    return data.decode("utf-8", "replace")


def json_value(data: bytes) -> tuple[bool, Any]:
    """``(True, value)`` for valid JSON as the server's body parser reads it (NaN included)."""
    try:
        return True, json.loads(data)
    except (ValueError, RecursionError):
        return False, None


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The loader model files are read with (build_state's): safe, C-accelerated."""


def yaml_value(data: bytes | str) -> tuple[bool, Any]:
    """``(True, value)`` for a YAML document as the model loader reads it."""
    try:
        return True, yaml.load(data, Loader=_Loader)
    except (yaml.YAMLError, RecursionError, ValueError, OverflowError):
        # ValueError/OverflowError: PyYAML's own timestamp reading (2024-13-45, year 0)
        return False, None


def encode_json(value: Any) -> bytes:
    compact = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return compact.encode("utf-8", "surrogatepass")


def decode_json(data: bytes) -> Any:
    return json.loads(data)


def encode_yaml(value: Any) -> bytes:
    dumped = yaml.safe_dump(value, allow_unicode=True, sort_keys=False, width=120)
    return dumped.encode("utf-8", "surrogatepass")


def decode_yaml(data: bytes) -> Any:
    ok, value = yaml_value(data)
    if not ok:
        raise ValueError("not YAML")
    return value


def corpus_files(name: str) -> list[Path]:
    """The committed seeds and saved crash inputs of target ``name``, sorted."""
    folder = CORPUS / name
    seeds = [p for p in folder.glob("*") if p.is_file() and not p.name.startswith(".")]
    crashes = [p for p in (folder / "crashes").glob("*") if p.is_file()]
    return sorted(seeds) + sorted(crashes)


def libfuzzer_dict(tokens: tuple[str, ...]) -> str:
    """``tokens`` in libFuzzer's -dict format (one quoted, escaped word per line)."""
    lines = []
    for token in dict.fromkeys(tokens):
        raw = token.encode("utf-8")
        body = "".join(
            chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\x{b:02x}" for b in raw
        )
        lines.append(f'"{body}"')
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the atheris entry point


def fuzz(module: str, instrument: tuple[str, ...]) -> None:
    """Run target ``module`` (``tests.fuzz.NAME``) under atheris with libFuzzer's argv.

    The packages in ``instrument`` are imported afresh under instrumentation (the caller's
    copies were imported before atheris could hook them), and so is the target module, so
    that its ``check`` calls the instrumented code. atheris's regex and ``str`` hooks are on:
    the grammars' regular expressions and prefix tests then guide the fuzzer.
    """
    import atheris  # type: ignore[import-untyped]

    atheris.enabled_hooks.add("RegEx")
    atheris.enabled_hooks.add("str")
    for loaded in list(sys.modules):
        if loaded.split(".", 1)[0] in instrument or loaded == module:
            del sys.modules[loaded]
    with atheris.instrument_imports(include=list(instrument)):
        target: Target = importlib.import_module(module).TARGET

    argv = list(sys.argv)
    work = SCRATCH / target.name
    work.mkdir(parents=True, exist_ok=True)
    # libFuzzer re-runs argv[0] for -merge and -fork: make it a program that runs this target.
    rerun = work / "run"
    rerun.write_text(
        "#!/bin/sh\n"
        f'PYTHONPATH="{REPO}${{PYTHONPATH:+:$PYTHONPATH}}" '
        f'exec "{sys.executable}" -m {module} "$@"\n'
    )
    rerun.chmod(0o755)
    argv[0] = str(rerun)
    if target.tokens and not any(a.startswith("-dict=") for a in argv):
        dict_file = work / "tokens.dict"
        dict_file.write_text(libfuzzer_dict(target.tokens))
        argv.insert(1, f"-dict={dict_file}")
    if not any(a.startswith("-max_len=") for a in argv):
        argv.insert(1, f"-max_len={target.max_len}")
    corpus = next((Path(a) for a in argv[1:] if not a.startswith("-")), None)
    if target.seeds is not None and corpus is not None and corpus.is_dir():
        for name, data in target.seeds():
            (corpus / f"seed-{name}").write_bytes(data)

    tree = TreeMutator(target.tokens)
    for path in corpus_files(target.name):
        for value in _trees(target, path.read_bytes()):
            try:
                tree.harvest(value)
            except RecursionError:  # a crash input nested on purpose: no graft material
                continue

    def mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        out = b""
        if rng.random() >= 0.2:
            limit = sys.getrecursionlimit()
            sys.setrecursionlimit(20000)  # copying deep trees; the target's own limit is kept
            try:
                out = _structured(target, data, rng, atheris.Mutate, tree)
            except Exception:  # any tree it cannot rebuild: byte-level mutation instead
                out = b""
            finally:
                sys.setrecursionlimit(limit)
        if not out or len(out) > max_size:
            out = atheris.Mutate(data, max_size)
        return bytes(out)

    def crossover(data1: bytes, data2: bytes, max_out_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        out = b""
        if target.decode is not None and target.encode is not None:
            try:
                out = target.encode(graft(target.decode(data1), target.decode(data2), rng))
            except Exception:  # undecodable parents: spliced as bytes below
                out = b""
        if not out or len(out) > max_out_size:
            out = (data1[: rng.randint(0, len(data1))] + data2[rng.randint(0, len(data2)) :])[
                :max_out_size
            ]
        return out

    atheris.Setup(argv, target.check, custom_mutator=mutator, custom_crossover=crossover)
    atheris.Fuzz()


def _structured(
    target: Target, data: bytes, rng: random.Random, mutate_bytes: MutateBytes, tree: TreeMutator
) -> bytes:
    if target.mutate is not None:
        return target.mutate(data, rng, mutate_bytes, tree)
    if target.decode is None or target.encode is None:
        return mutate_bytes(data, len(data) + 64)
    value = target.decode(data)
    for _ in range(rng.randint(1, 3)):
        value = tree.mutate(value, rng, mutate_bytes)
    return target.encode(value)


def _trees(target: Target, data: bytes) -> Iterator[Any]:
    """The trees in one seed, for the graft pool."""
    if target.decode is None:
        return
    try:
        yield target.decode(data)
    except Exception:  # a seed that is not well-formed gives no graft material
        return
