"""Query views: a view whose table is the result of a semantic query (Omni's ``query:``
block), compiled once the rest of the model is built and spliced in as a derived table.

The inner query runs as no one: it is part of the model, the same for every user, so a
query view over fields or topics that access rules guard is refused (it would need one
derived table per user). A filter that reads the clock is refused too: the derived table is
compiled when the model loads, so "last 30 days" would freeze at that moment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime

from sqlglot import exp

from assay.errors import AssayError, Forbidden, PermissionDenied, did_you_mean
from assay.semantic.compiler import CompiledQuery, compile_query
from assay.semantic.files import QueryViewFile
from assay.semantic.filters import Filter, FilterError, depends_on_clock, parse_yaml_filter
from assay.semantic.model import SemanticModel, View
from assay.semantic.query import FieldRef, SemanticQuery, Sort, parse_field

Issue = Callable[[str, str, str], None]


@dataclasses.dataclass(frozen=True, slots=True)
class QueryViewSpec:
    view: str
    file: str
    spec: QueryViewFile


def placeholder(view: str) -> exp.Expr:
    """The source a query view has until its query is compiled: never rendered into SQL (a
    model with a query view left unresolved is refused)."""
    return exp.alias_(exp.Table(this=exp.to_identifier(f"__query_view_{view}")), view, table=True)


def settle(model: SemanticModel, specs: list[QueryViewSpec], issue: Issue) -> SemanticModel:
    """``model`` with each query view's source compiled from its query. A query view may
    read another: they are compiled in the order their queries need, and a cycle is an
    issue naming the views in it."""
    pending = {s.view: s for s in specs if s.view in model.views}
    if not pending:
        return model
    views = dict(model.views)
    current = model
    while pending:
        progressed = False
        for name, qv in list(pending.items()):
            query = _semantic_query(qv, issue)
            if query is None:
                pending.pop(name)
                progressed = True
                continue
            try:
                compiled = _compile(current, query)
            except (Forbidden, PermissionDenied) as exc:
                issue(qv.file, "query", "a query view over fields or a topic that access rules "
                      "guard is not supported yet: its table is compiled once, for everyone, "
                      f"so it cannot hold each user's rows ({exc.message})")  # fmt: skip
                pending.pop(name)
                progressed = True
                continue
            except AssayError as exc:
                issue(qv.file, "query", f"the query view's query does not compile: {exc.message}")
                pending.pop(name)
                progressed = True
                continue
            needs = {compiled.base_view, *compiled.joined_views}
            if needs & pending.keys():
                continue  # reads a query view not compiled yet: next round
            _check_columns(views[name], qv, issue)
            views[name] = dataclasses.replace(views[name], source=_derived(name, qv, compiled))
            pending.pop(name)
            progressed = True
            current = _with_views(model, views)
        if not progressed:
            cycle = ", ".join(sorted(pending))
            for qv in pending.values():
                issue(qv.file, "query", f"query views read each other in a cycle: {cycle}")
            break
    return _with_views(model, views)


def _semantic_query(qv: QueryViewSpec, issue: Issue) -> SemanticQuery | None:
    spec, ok = qv.spec, True
    fields: list[FieldRef] = []
    for source in spec.fields:
        try:
            fields.append(parse_field(source))
        except AssayError as exc:
            issue(qv.file, f"query.fields.{source}", exc.message)
            ok = False
    filters: list[tuple[FieldRef, Filter]] = []
    for key, raw in spec.filters.items():
        path = f"query.filters.{key}"
        try:
            ref, parsed = parse_field(key), parse_yaml_filter(raw, where="")
        except (AssayError, FilterError) as exc:
            issue(qv.file, path, str(exc).lstrip(": .").strip())
            ok = False
            continue
        if depends_on_clock(parsed):
            issue(qv.file, path, "a query view's filter that reads the clock is not supported "
                  "yet: the view is compiled when the model loads, so the dates would freeze "
                  "then; filter on fixed dates")  # fmt: skip
            ok = False
        filters.append((ref, parsed))
    sorts: list[Sort] = []
    for i, raw in enumerate(spec.sorts):
        if not isinstance(raw, Mapping) or not isinstance(raw.get("field"), str):
            issue(qv.file, f"query.sorts[{i}]", "expected {field: view.field, desc: true|false}")
            ok = False
            continue
        sorts.append(Sort(raw["field"], bool(raw.get("desc"))))
    columns = list(spec.fields.values())
    for column in {c for c in columns if columns.count(c) > 1}:
        issue(qv.file, "query.fields", f"two fields become the column {column!r}")
        ok = False
    if not ok:
        return None
    return SemanticQuery(
        fields=tuple(fields),
        table=spec.base_view,
        topic=spec.topic,
        filters=tuple(filters),
        sorts=tuple(sorts),
        limit=spec.limit,
        limit_given=True,
    )


def _compile(model: SemanticModel, query: SemanticQuery) -> CompiledQuery:
    return compile_query(model, query, now=datetime(2000, 1, 1))  # no filter reads the clock


def _check_columns(view: View, qv: QueryViewSpec, issue: Issue) -> None:
    """Every column a field of the view reads is one its query returns (a dimension without
    ``sql`` reads the column of its own name)."""
    columns = set(qv.spec.fields.values())
    fields = [*view.dimensions.values()]
    for field in fields:
        for col in field.expr.find_all(exp.Column):
            if col.table == view.name and col.name not in columns:
                listed = ", ".join(sorted(columns))
                hint = did_you_mean(col.name, columns)
                issue(qv.file, f"dimensions.{field.name}", f"column {col.name!r} is not one the "
                      f"query view's query returns ({listed}).{hint}")  # fmt: skip


def _derived(view: str, qv: QueryViewSpec, compiled: CompiledQuery) -> exp.Expr:
    """``SELECT "orders.o_custkey" AS o_custkey, ... FROM (<the compiled query>)``: the
    columns under the names the view's dimensions read."""
    inner = exp.Subquery(this=compiled.expression.copy(), alias=exp.TableAlias(this="q"))
    select = exp.Select().from_(inner)
    for source, column in qv.spec.fields.items():
        select = select.select(
            exp.alias_(exp.column(exp.to_identifier(source, quoted=True), "q"), column)
        )
    return exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(view)))


def _with_views(model: SemanticModel, views: Mapping[str, View]) -> SemanticModel:
    """A fresh model (no cached fragments of placeholder sources) with ``views``."""
    return dataclasses.replace(
        model, views=dict(views), fragments={}, deduplicated={}, compiled=type(model.compiled)()
    )
