"""Fuzz target: the YAML filter syntax of model files (``parse_yaml_filter``).

Input: a YAML document, read as the model loader reads it (dates, YAML 1.1 booleans, ``.nan``
included), and the same text as a raw string. Reading may refuse with ``FilterError`` only
(the loader turns exactly that into a model issue). What reads is checked the way a loaded
model uses it: a measure or topic filter that loads must compile, so ``filter_condition``
must succeed for every dialect at any clock from 1970 to 2100 — a date that only fails at
query time would fail every query that touches the field, long after the model loaded.
"""

from __future__ import annotations

from sqlglot import exp

from assay.semantic.filters import (
    YAML_OPERATORS,
    FilterError,
    depends_on_clock,
    filter_condition,
    parse_yaml_filter,
)
from tests.fuzz.harness import (
    CLOCKS,
    DIALECTS,
    Target,
    decode_yaml,
    encode_yaml,
    fuzz,
    text,
    yaml_value,
)

_WORDS = (
    "not_", "not_and", "not_or", "day_of_quarter", "date_offset_from_query", "null", "true",
    "false", "falsey", "yes", "no", "~", ".nan", ".inf", "2024-01-01", "2024-01-01 10:00:00",
    "2001-12-14t21:59:43.10-05:00", "30 days ago", "30 days", "last month", "FY2024",
    "2024 Q1", "monday", "december", "[]", "{}", "- ", ": ", "\n  ",
)  # fmt: skip
_TARGET = exp.column("x", table="t")


def check(data: bytes) -> None:
    raw = text(data)
    try:
        parse_yaml_filter(raw, where="fuzz")
    except FilterError:
        pass
    else:
        raise AssertionError("a raw string was read as a filter")
    ok, obj = yaml_value(data)
    if not ok:
        return
    try:
        f = parse_yaml_filter(obj, where="fuzz")
    except FilterError:
        return
    depends_on_clock(f)
    for now in CLOCKS:  # dates resolve per clock; the SQL of each dialect is rendered once
        filter_condition(f, _TARGET, now=now)
    for dialect in DIALECTS:
        filter_condition(f, _TARGET, now=CLOCKS[0], dialect=dialect).sql(dialect=dialect)


TARGET = Target(
    name="yaml_filter",
    check=check,
    tokens=(*YAML_OPERATORS, *_WORDS),
    decode=decode_yaml,
    encode=encode_yaml,
    max_len=32768,
)


def main() -> None:
    fuzz("tests.fuzz.yaml_filter", TARGET.instrument)


if __name__ == "__main__":
    main()
