"""Verbatim raw SQL (``userEditedSQL`` with ``rewriteSql: false``): who may run it, which
query keys go with it, and the statement the engine is handed. Semantic layer: pure.

Raw SQL bypasses the model, so it is governed from the outside: the user's role must carry
``QUERY_SQL``, and the model's access rules must not restrict them (an access filter that
binds them, a grant they lack, SQL tailored by their attributes): otherwise the statement
would read what the rules hide. The text must be one read (``sql_guard``). Keys that would
change the answer and that Assay does not apply to raw SQL are refused by name, never
dropped. The query's ``limit`` is ignored, as in Omni; the result is capped at ``ROW_CAP``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from assay.errors import Forbidden, InvalidQuery, NotSupported
from assay.semantic.access import granted
from assay.semantic.compiler import DIALECTS, CompiledQuery
from assay.semantic.model import Dimension, Measure, SemanticModel
from assay.semantic.query import read_sort
from assay.semantic.sql_guard import check_read_only
from assay.semantic.viewer import QUERY_SQL, Viewer

#: rows a raw SQL job returns at most (Omni's cap); ``row_limit_reached`` says it cut rows
ROW_CAP = 50_000
SQL_RESTRICTED = "Permission denied - queries based on manually written SQL are restricted"
RULES_RESTRICT = "raw SQL is not allowed on a model whose access rules restrict you"
# Keys that change what a raw SQL job returns and that it does not apply (yet).
_REFUSED = {
    "pivots": "pivots",
    "calculations": "calculations",
    "column_totals": "column totals",
    "row_totals": "row totals",
    "fill_fields": "fill fields",
    "controls": "controls",
    "staticQueryReferences": "static query references",
    "period_over_period_computations": "period-over-period computations",
    "filters": "filters",
    "transposed_measures": "transposed measures",
    "join_via_map": "join paths (join_via_map)",
    "custom_summary_types": "custom summary types",
}
_JINJA = re.compile(r"\{\{|\{%")
_WRAPPER = "omni_sql"


@dataclass(frozen=True, slots=True)
class VerbatimQuery(CompiledQuery):
    """A raw SQL job as the runner sees it: ``sql`` is what the engine runs (the user's text,
    wrapped only to apply ``sorts``), ``fields`` is empty (the result's own columns are its
    fields, named as the database returns them), ``limit`` is the row cap."""

    text: str = ""

    @property
    def columns(self) -> list[str]:
        return []

    def pretty_sql(self) -> str:
        return self.sql


def compile_verbatim(
    model: SemanticModel,
    query: Mapping[str, Any],
    *,
    dialect: str | None = None,
    viewer: Viewer | None = None,
) -> VerbatimQuery:
    """The raw SQL job ``query`` asks for, as ``viewer``; ``Forbidden`` when their role or the
    model's rules do not let them run raw SQL, ``InvalidQuery`` when the SQL is not one read,
    ``NotSupported`` for keys raw SQL does not apply."""
    if model.source is not None:
        viewer = viewer or model.viewer
        model = model.source
    target = dialect or model.dialect
    if target not in DIALECTS:
        raise InvalidQuery(f"Unknown dialect {target!r}: expected one of {', '.join(DIALECTS)}")
    text = query.get("userEditedSQL")
    if not isinstance(text, str) or not text.strip():
        raise InvalidQuery("query.userEditedSQL: expected the SQL text of one SELECT")
    if viewer is not None and not viewer.may(QUERY_SQL):
        raise Forbidden(SQL_RESTRICTED)
    reason = restriction(model, viewer)
    if reason is not None:
        raise Forbidden(f"Permission denied - {RULES_RESTRICT} ({reason})")
    if query.get("dbtMode") is True and _JINJA.search(text):
        raise NotSupported(
            "query.dbtMode: DBT_RENDER_FAILED - Assay does not render dbt/Jinja "
            "({{ ref(...) }}, {{ var }}); send the rendered SQL with rewriteSql: false"
        )
    _refuse_keys(query)
    tree = check_read_only(text, target)
    body = _statement(text)
    sorts = _sorts(query)
    sql = _sorted(body, sorts, target) if sorts else body
    return VerbatimQuery(
        sql=sql,
        expression=tree,
        dialect=target,
        fields=(),
        missing_fields=(),
        base_view="",
        topic=None,
        joined_views=(),
        deduplicated_views=(),
        limit=ROW_CAP,
        offset=0,
        text=text,
    )


def restriction(model: SemanticModel, viewer: Viewer | None) -> str | None:
    """What of the model's access rules restricts ``viewer`` (None: nothing does). Raw SQL
    skips every rule, so any rule that would narrow what they see rules it out."""
    if not model.governed:
        return None
    held = granted(model, viewer)
    rule_attributes = {g.attribute for g in model.grants.values()}
    for topic in model.topics.values():
        for f in topic.access_filters:
            rule_attributes.add(f.attribute)
            values = viewer.values(f.attribute) if viewer is not None else ()
            if f.unfiltered.isdisjoint(values):
                return f"the access filter on {f.field} in topic {topic.name!r}"
        if not topic.grants.holds(held):
            return f"topic {topic.name!r} requires access grants you do not hold"
    for view in model.views.values():
        if not view.grants.holds(held):
            return f"view {view.name!r} requires access grants you do not hold"
        items: list[Dimension | Measure] = [*view.dimensions.values(), *view.measures.values()]
        for item in items:
            if not item.grants.holds(held):
                return f"field {item.key} requires access grants you do not hold"
            mask = item.mask if isinstance(item, Dimension) else None
            if mask is not None and not mask.holds(held):
                return f"field {item.key} is masked for you"
    tailored = sorted(model.attributes_used - rule_attributes)
    if tailored:
        return f"the model's SQL reads your user attributes ({', '.join(tailored)})"
    return None


def _refuse_keys(query: Mapping[str, Any]) -> None:
    for key, what in _REFUSED.items():
        if query.get(key):
            raise NotSupported(
                f"query.{key}: {what} are not supported with raw SQL (rewriteSql: false); "
                f"remove {key!r} or write it into the SQL"
            )
    if query.get("offset"):
        raise NotSupported(
            "query.offset: an offset is not supported with raw SQL; write OFFSET into the SQL"
        )
    if query.get("sorts") and query.get("sqlSortsEnabled") is not True:
        raise NotSupported(
            "query.sorts: sorts apply to raw SQL only with sqlSortsEnabled: true (Omni drops "
            "them otherwise); send sqlSortsEnabled: true, or remove sorts"
        )


def _statement(text: str) -> str:
    """The text without trailing semicolons and blank space (so that it can be wrapped)."""
    body = text.strip()
    while body.endswith(";"):
        body = body[:-1].rstrip()
    return body


def _sorts(query: Mapping[str, Any]) -> list[tuple[str, bool, str]]:
    raw = query.get("sorts") or []
    if not isinstance(raw, list):
        raise InvalidQuery("query.sorts: expected a list of {column_name, sort_descending}")
    return [read_sort(item, i) for i, item in enumerate(raw)]


def _sorted(body: str, sorts: list[tuple[str, bool, str]], dialect: str) -> str:
    """``body`` ordered by its output columns. The text stays as written inside the wrapper
    (a newline before the closing parenthesis, so that a trailing ``--`` comment ends)."""
    order = []
    for name, descending, nulls in sorts:
        column = exp.column(
            exp.to_identifier(name, quoted=True), table=exp.to_identifier(_WRAPPER, quoted=True)
        )
        ordered = exp.Ordered(this=column, desc=descending)
        if nulls in ("FIRST", "LAST"):
            ordered.set("nulls_first", nulls == "FIRST")
        order.append(ordered.sql(dialect=dialect))
    wrapper = exp.to_identifier(_WRAPPER, quoted=True).sql(dialect=dialect)
    return f"SELECT * FROM (\n{body}\n) AS {wrapper} ORDER BY {', '.join(order)}"
