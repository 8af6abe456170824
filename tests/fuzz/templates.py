"""Fuzz target: model SQL templates (``parse_template``, ``parse_view_sql``).

Input: the SQL text of a dimension, measure or view, with ``${field}`` / ``${view.field}``
references and ``{{ omni_attributes.NAME }}`` placeholders, parsed for every dialect. Both
functions refuse bad SQL with ``TemplateError`` only (the loader turns exactly that into a
model issue). What parses holds no leftover placeholder: every reference is a ``Ref`` the
loader resolves, every attribute an ``AttributeRef`` bound per query.
"""

from __future__ import annotations

from sqlglot import exp

from assay.semantic.templates import (
    AttributeRef,
    Ref,
    TemplateError,
    contains_aggregate,
    parse_template,
    parse_view_sql,
)
from tests.fuzz.harness import DIALECTS, Target, fuzz, text

_WORDS = (
    "${", "}", "${id}", "${orders.id}", "${TABLE}", "${ x }", "${a.b.c}", "{{", "}}",
    "{{ omni_attributes.region }}", "'{{ omni_attributes.region }}'", "omni_attributes.",
    "__assay_ref_0__", "__assay_attr_0__", "SELECT ", " FROM ", " WHERE ", " AS ", "SUM(",
    "COUNT(*)", "CASE WHEN ", " THEN ", " ELSE ", " END", "'", '"', "`", "(", ")", ";", ",",
    "||", "::", "$$", "--", "/*", "*/", " LIKE ", " IN (", "CAST(", " AS DATE)", "INTERVAL ",
    "WITH x AS (", ") SELECT * FROM x", " UNION ALL ", "OVER (PARTITION BY ", "1e999", "NULL",
)  # fmt: skip


def _placeholders_left(tree: exp.Expr) -> bool:
    """Whether text of a placeholder the parser swaps in is still anywhere in the tree (a
    name, a table, a function, a string): it would reach the database as SQL."""
    for node in tree.walk():
        if isinstance(node, Ref | AttributeRef):
            continue
        for value in node.args.values():
            if isinstance(value, str) and ("__assay_ref_" in value.lower()
                                           or "__assay_attr_" in value.lower()):  # fmt: skip
                return True
    return False


def check(data: bytes) -> None:
    sql = text(data)
    for dialect in DIALECTS:
        try:
            tpl = parse_template(sql, own_view="v", dialect=dialect)
        except TemplateError:
            pass
        else:
            contains_aggregate(tpl.tree)
            refs = [(n.view, n.field) for n in tpl.tree.find_all(Ref)]
            assert set(refs) <= set(tpl.refs), (refs, tpl.refs)
            attrs = {n.attribute for n in tpl.tree.find_all(AttributeRef)}
            assert attrs <= set(tpl.attributes), (attrs, tpl.attributes)
            assert not _placeholders_left(tpl.tree), tpl.tree
            tpl.tree.copy()
        try:
            query, attributes = parse_view_sql(sql, dialect=dialect)
        except TemplateError:
            continue
        found = {n.attribute for n in query.find_all(AttributeRef)}
        assert found <= set(attributes), (found, attributes)
        assert not _placeholders_left(query), query


TARGET = Target(
    name="templates",
    check=check,
    tokens=_WORDS,
    max_len=2048,
    instrument=("assay", "sqlglot"),
)


def main() -> None:
    fuzz("tests.fuzz.templates", TARGET.instrument)


if __name__ == "__main__":
    main()
