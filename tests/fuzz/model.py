"""Fuzz target: the model loader (``build_model``) on fuzzed file texts.

Input: several model files in one text, each opened by a ``#== NAME`` line (``#== model``,
``#== orders.view``, ``#== relationships``); text before the first is ignored. The loader must
refuse a bad model with ``ModelInvalid`` (listing its issues) or return a model; nothing else.
A model that loads is then queried a little (each view's first fields, each topic, its sample
queries): what loads must compile, or be refused with a ``QueryError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, get_args

from pydantic import BaseModel

from assay.demo.tpch import tpch_model_dir
from assay.errors import ModelInvalid, QueryError
from assay.semantic import files as shapes
from assay.semantic.compiler import compile_query
from assay.semantic.filters import YAML_OPERATORS
from assay.semantic.loader import build_model, read_model_files
from assay.semantic.model import SemanticModel
from tests.fuzz.harness import NOW, REPO, Target, encode_yaml, fuzz, text, yaml_value

HEADER = "#== "
_FILE_NAMES = (
    "model", "relationships", "orders.view", "customers.view", "x.view", "x.topic",
    "orders.topic", "sub/orders.view", "Bad-Name.view", ".view", "a.topic.view",
)  # fmt: skip
_WORDS = (
    "duckdb", "postgres", "snowflake", "bigquery", "mysql", "trino", "spark", "nope", "${",
    "}", "${id}", "${orders.id}", "${TABLE}", "${x.y.z}", "{{ omni_attributes.region }}",
    "'{{ omni_attributes.region }}'", "{{", "}}", "SUM(", "COUNT(*)", "SELECT 1", "1 +* 2", "'",
    '"', "(", ")", ";", "__assay_ref_0__", "__assay_attr_0__", "&", "|", "tag:", "all_views.",
    "-", "*", "30 days ago", "2024-01-01", "&a", "*a", "<<: ", "!!str", "? ", "~", "\n  ",
)  # fmt: skip


def _shape_words() -> tuple[str, ...]:
    """Every parameter name of Omni's file shapes, and every value of their Literal types."""
    words: list[str] = []
    for shape in vars(shapes).values():
        if isinstance(shape, type) and issubclass(shape, BaseModel) and shape is not BaseModel:
            for name, info in shape.model_fields.items():
                words.append(info.alias or name)
    for literal in (shapes.AggregateType, shapes.Timeframe):
        words.extend(get_args(literal))
    words += ["one_to_one", "many_to_one", "one_to_many", "many_to_many"]
    words += ["always_left", "inner", "full_outer", "cross"]
    return tuple(dict.fromkeys(words))


def files_of(data: bytes) -> dict[str, str]:
    """The ``{name: text}`` files of one input."""
    files: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for line in text(data).split("\n"):
        if line.startswith(HEADER):
            if name is not None:
                files[name] = "\n".join(lines)
            name, lines = line[len(HEADER) :].strip(), []
        else:
            lines.append(line)
    if name is not None:
        files[name] = "\n".join(lines)
    return files


def join_files(files: dict[str, str]) -> bytes:
    """One input holding ``files`` (the inverse of ``files_of``)."""
    return "\n".join(f"{HEADER}{name}\n{body}" for name, body in files.items()).encode(
        "utf-8", "surrogatepass"
    )


def decode(data: bytes) -> dict[str, Any]:
    """Each file as its YAML value (its text when it is not YAML), for tree mutation."""
    out: dict[str, Any] = {}
    for name, body in files_of(data).items():
        ok, value = yaml_value(body)
        out[name] = value if ok and not isinstance(value, str) else body
    return out


def encode(tree: Any) -> bytes:
    if not isinstance(tree, dict):
        raise ValueError("a model is a mapping of files")
    return join_files(
        {
            str(name): value if isinstance(value, str) else encode_yaml(value).decode()
            for name, value in tree.items()
        }
    )


def real_models() -> Iterator[tuple[str, bytes]]:
    """The demo model and every model folder under tests/fixtures/models, as inputs."""
    fixtures = REPO / "tests" / "fixtures" / "models"
    folders = [tpch_model_dir(), *sorted(p for p in fixtures.glob("*/") if p.name != "invalid")]
    folders += sorted(fixtures.glob("invalid/*/"))
    for folder in folders:
        files = read_model_files(folder)
        if files:
            yield folder.name, join_files(files)


def _queries(model: SemanticModel) -> list[dict[str, Any]]:
    """A few queries touching each view and each topic of a model that loaded."""
    out: list[dict[str, Any]] = []
    for view in list(model.views.values())[:4]:
        fields = [*list(view.dimensions)[:2], *list(view.measures)[:2]]
        out.append({"table": view.name, "fields": [f"{view.name}.{f}" for f in fields]})
    for topic in list(model.topics.values())[:4]:
        fields = [f"{topic.base_view}.{f}" for f in model.views[topic.base_view].field_names()[:1]]
        fields += [
            f"{v}.{m}" for v in list(topic.joins)[:3] for m in list(model.views[v].measures)[:1]
        ]
        out.append({"table": topic.base_view, "join_paths_from_topic_name": topic.name,
                    "fields": fields})  # fmt: skip
        out += [dict(sample.query) for sample in topic.sample_queries[:2]]
    return out


def check(data: bytes) -> None:
    try:
        model = build_model(files_of(data), name="fuzz")
    except ModelInvalid:
        return
    for query in _queries(model):
        try:
            compile_query(model, query, now=NOW)
        except QueryError:
            continue


TARGET = Target(
    name="model",
    check=check,
    tokens=(*_FILE_NAMES, *_WORDS, *_shape_words(), *YAML_OPERATORS),
    decode=decode,
    encode=encode,
    max_len=65536,
    seeds=real_models,
)


def main() -> None:
    fuzz("tests.fuzz.model", TARGET.instrument)


if __name__ == "__main__":
    main()
