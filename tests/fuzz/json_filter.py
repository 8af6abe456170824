"""Fuzz target: Omni's typed JSON filters (``parse_json_filter``), then ``filter_condition``.

Input: a JSON document, as a client sends it in ``query.filters``. Reading may refuse it with
``FilterError`` only (``parse_query`` turns exactly that into ``InvalidQuery``). A filter that
reads becomes a condition for every dialect, rendered to SQL; the condition may still refuse a
date with ``FilterError`` (the query target holds compilation to the stricter contract).
"""

from __future__ import annotations

from sqlglot import exp

from assay.semantic.dates import DateGrammarError
from assay.semantic.filters import (
    DATE_KINDS,
    NUMBER_KINDS,
    STRING_KINDS,
    FilterError,
    depends_on_clock,
    filter_condition,
    parse_json_filter,
    with_user_values,
)
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
    "type", "kind", "values", "is_negative", "case_insensitive", "is_inclusive", "left_side",
    "right_side", "conjunction", "filters", "treat_nulls_as_false", "user_attribute_name",
    "ui_type",
)  # fmt: skip
_WORDS = (
    "string", "number", "date", "boolean", "null", "composite", "user_attribute", "query",
    "AND", "OR", "QUERY_OFFSET", "IS_ON_DAY_OF_QUARTER", "monday", "sun", "december", "2024-01-01",
    "2024-03-31 23:59:59", "30 days ago", "30 days", "last month", "this quarter", "FY2024",
    "2024 Q1", "today", "1e999", "NaN", "-0", "0x10", "1_000", "\u00b2", "\u0663",
)  # fmt: skip
# A target with each shape a field's SQL takes (a column, a binary expression, a function).
_TARGETS = (
    exp.column("x", table="t"),
    exp.Add(this=exp.column("a", table="t"), expression=exp.column("b", table="t")),
)


def check(data: bytes) -> None:
    ok, obj = json_value(data)
    if not ok:
        return
    try:
        f = parse_json_filter(obj, where="fuzz")
    except FilterError:
        return
    if f is None:
        return
    depends_on_clock(f)
    bound = with_user_values(f, lambda name: (name, "x"))
    for dialect in DIALECTS:
        for target in _TARGETS:
            try:
                cond = filter_condition(bound, target, now=NOW, dialect=dialect)
            except (FilterError, DateGrammarError):
                return
            cond.sql(dialect=dialect)


TARGET = Target(
    name="json_filter",
    check=check,
    tokens=(*_KEYS, *_WORDS, *STRING_KINDS, *NUMBER_KINDS, *DATE_KINDS),
    decode=decode_json,
    encode=encode_json,
    max_len=32768,
)


def main() -> None:
    fuzz("tests.fuzz.json_filter", TARGET.instrument)


if __name__ == "__main__":
    main()
