"""Verbatim raw SQL (``userEditedSQL`` with ``rewriteSql: false``): who may run it, which
query keys go with it, and the statement the engine is handed. Semantic layer: pure.

Raw SQL bypasses the model, so it is governed from the outside: the user's role must carry
``QUERY_SQL``, and the model's access rules must not restrict them (an access filter that
binds them, a grant they lack, SQL tailored by their attributes): otherwise the statement
would read what the rules hide. The text must be one read (``sql_guard``). Keys that would
change the answer and that Assay does not apply to raw SQL are refused by name, never
dropped. The query's ``limit`` is ignored, as in Omni; the result is capped at ``ROW_CAP``.

``column_totals`` keyed by the SQL's result columns add one totals row, as Omni's
``__omni_summ`` sidecars (``jobs.raw_sql_totals`` lays it out): the sums come from a second
read-only statement over the whole SQL result, built here (``totals_sql``), not from the rows
kept under the cap.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from assay.errors import Forbidden, InvalidQuery, NotSupported
from assay.semantic.access import granted
from assay.semantic.column_totals import GRAND_TOTAL, check_total_kind
from assay.semantic.compiler import DIALECTS, CompiledQuery
from assay.semantic.compiler.totals import INDICATOR
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
#: the alias of the n-th sum in ``totals_sql``: result columns are read by position anyway
_SUM_ALIAS = "omni_summ_{}"


@dataclass(frozen=True, slots=True)
class VerbatimQuery(CompiledQuery):
    """A raw SQL job as the runner sees it: ``sql`` is what the engine runs (the user's text,
    wrapped only to apply ``sorts``), ``fields`` is empty (the result's own columns are its
    fields, named as the database returns them), ``limit`` is the row cap."""

    text: str = ""
    #: result columns ``column_totals`` names, in request order (empty: no totals row)
    totals: tuple[str, ...] = ()
    #: the statement that sums them over the whole SQL result (one row, in ``totals`` order)
    totals_sql: str = ""

    @property
    def columns(self) -> list[str]:
        return []

    def pretty_sql(self) -> str:
        """The SQL as run: with totals, the statement that computes them follows."""
        if not self.totals_sql:
            return self.sql
        return f"{self.sql}\n;\n-- column totals (the last row)\n{self.totals_sql}"


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
    totals = _totals(query)
    totals_sql = summed(body, totals, target) if totals else ""
    if totals_sql:  # the same wall as the user's text, for the statement that wraps it
        check_read_only(totals_sql, target)
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
        # the totals row is a kind of its own: the cap counts data rows alone
        limit_per=INDICATOR if totals else None,
        totals=totals,
        totals_sql=totals_sql,
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
    scoped = [v for m in model.topic_models.values() for v in m.views.values()]  # topics' own
    for view in [*model.views.values(), *scoped]:
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


def _totals(query: Mapping[str, Any]) -> tuple[str, ...]:
    """The result columns ``column_totals`` asks to total. Which of them exist and are
    numeric is known only from the result (``jobs.raw_sql_totals`` checks it)."""
    raw = query.get("column_totals")
    if raw in (None, {}):
        return ()
    if not isinstance(raw, Mapping):
        raise InvalidQuery(
            "query.column_totals: expected an object keyed by result columns, such as "
            f'{{"order_count": {{"type": "aggregation"}}}}, got {type(raw).__name__}'
        )
    if query.get("sqlSortsEnabled") is not True:
        raise NotSupported(
            "query.column_totals: column totals apply to raw SQL only with sqlSortsEnabled: "
            "true (Omni drops them otherwise); send sqlSortsEnabled: true, or remove "
            "column_totals"
        )
    names: list[str] = []
    for key, value in raw.items():
        check_total_kind(key, value)
        if key == GRAND_TOTAL:
            raise InvalidQuery(
                f"query.column_totals: {GRAND_TOTAL!r} does not apply to raw SQL (its result "
                "has no measures to re-aggregate); name the result columns to total instead"
            )
        if not isinstance(key, str) or not key:
            raise InvalidQuery(f"query.column_totals: {key!r} is not a result column name")
        names.append(key)
    return tuple(names)


def summed(body: str, columns: tuple[str, ...], dialect: str) -> str:
    """The statement that sums ``columns`` over the whole result of ``body`` (one row, the
    n-th sum aliased ``omni_summ_<n>``). The text stays as written inside the wrapper, a
    newline before the closing parenthesis so that a trailing ``--`` comment ends.

    >>> summed("SELECT 1 AS n", ("n",), "duckdb")
    'SELECT SUM("omni_sql"."n") AS "omni_summ_0" FROM (\\nSELECT 1 AS n\\n) AS "omni_sql"'
    """
    wrapper = exp.to_identifier(_WRAPPER, quoted=True)
    sums = [
        exp.alias_(
            exp.Sum(this=exp.column(exp.to_identifier(name, quoted=True), table=wrapper.copy())),
            exp.to_identifier(_SUM_ALIAS.format(i), quoted=True),
        ).sql(dialect=dialect)
        for i, name in enumerate(columns)
    ]
    return f"SELECT {', '.join(sums)} FROM (\n{body}\n) AS {wrapper.sql(dialect=dialect)}"


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
