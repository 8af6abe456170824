"""Fuzz target: the query object (``parse_query``) compiled against the TPC-H demo model.

Input: a JSON document, as a client sends ``query`` to ``/api/v1/query/run``. ``parse_query``
documents ``InvalidQuery`` and ``NotSupported``; ``compile_query`` documents ``QueryError``
subclasses. Both are ``QueryError``s, which the server answers as a 400; anything else would
be a 500, so it is a bug. What parses is compiled for every dialect.
"""

from __future__ import annotations

from functools import cache

from assay.demo.tpch import tpch_model_dir
from assay.errors import QueryError
from assay.semantic.compiler import compile_query
from assay.semantic.filters import DATE_KINDS, NUMBER_KINDS, STRING_KINDS
from assay.semantic.loader import load_model
from assay.semantic.model import SemanticModel
from assay.semantic.query import parse_query
from tests.fuzz.harness import (
    DIALECTS,
    NOW,
    Target,
    decode_json,
    encode_json,
    fuzz,
    json_value,
)

_KEYS = (
    "fields", "table", "join_paths_from_topic_name", "filters", "sorts", "limit", "offset",
    "modelId", "column_name", "sort_descending", "null_sort", "pivots", "calculations",
    "column_totals", "row_totals", "fill_fields", "controls", "userEditedSQL",
    "type", "kind", "values", "is_negative", "left_side", "right_side", "conjunction",
    "user_attribute_name",
)  # fmt: skip
_WORDS = (
    "FIRST", "LAST", "DIALECT_DEFAULT", "OMNI_DEFAULT", "string", "number", "date", "boolean",
    "null", "composite", "user_attribute", "[month]", "[date]", "[year]", "[week]", "[raw]",
    "[day_of_week_name]", "[quarter_of_year]", "[hour_of_day]", "[nope]", "[]", "30 days ago",
    "30 days", "last month", "2024-01-01", "\u00b2",
)  # fmt: skip


@cache
def _model() -> SemanticModel:
    return load_model(tpch_model_dir())


@cache
def _names() -> tuple[str, ...]:
    """The demo model's views, topics and ``view.field`` names: the words of a valid query."""
    model = _model()
    fields = [f"{v.name}.{n}" for v in model.views.values() for n in v.field_names()]
    return (*model.views, *model.topics, *fields)


def check(data: bytes) -> None:
    ok, obj = json_value(data)
    if not ok:
        return
    try:
        query = parse_query(obj)
    except QueryError:
        return
    for dialect in DIALECTS:
        try:
            compile_query(_model(), query, dialect=dialect, now=NOW)
        except QueryError:
            return


TARGET = Target(
    name="query",
    check=check,
    tokens=(*_KEYS, *_WORDS, *STRING_KINDS, *NUMBER_KINDS, *DATE_KINDS, *_names()),
    decode=decode_json,
    encode=encode_json,
    max_len=32768,
)


def main() -> None:
    fuzz("tests.fuzz.query", TARGET.instrument)


if __name__ == "__main__":
    main()
