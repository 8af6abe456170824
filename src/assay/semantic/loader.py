"""Load a model folder into a ``SemanticModel``, or refuse it whole with every issue found.

Files, as Omni names them (a ``.yaml`` suffix is optional): ``model``, ``relationships``,
``<view>.view`` and ``<topic>.topic``, in the folder or below it. Checking runs in passes
(structure, then references, then joins and filters) and never stops at the first problem, so a
model author fixes everything in one round.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import sqlglot
import yaml
from pydantic import BaseModel, ValidationError
from sqlglot import exp
from sqlglot.errors import ParseError

from assay.errors import ModelInvalid, ModelIssue, did_you_mean
from assay.semantic.catalog import (
    DEFAULT_TIMEFRAMES,
    Catalog,
    data_type_of,
    omni_type,
    table_columns,
)
from assay.semantic.files import (
    DimensionFile,
    MeasureFile,
    ModelFile,
    RelationshipFile,
    TopicFile,
    ViewFile,
)
from assay.semantic.filters import Filter, FilterError, depends_on_clock, parse_yaml_filter
from assay.semantic.model import (
    Dimension,
    JoinStep,
    Measure,
    MeasureFilter,
    Relationship,
    SampleQuery,
    SemanticModel,
    Topic,
    View,
    titleize,
)
from assay.semantic.templates import (
    MeasureRef,
    Ref,
    Template,
    TemplateError,
    contains_aggregate,
    parse_template,
)

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SUFFIXES = (".view", ".topic")


def read_model_files(folder: Path) -> dict[str, str]:
    """The model's files as ``{omni file name: text}`` (``orders.view``, ``relationships``)."""
    files: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        name = path.name.removesuffix(".yaml").removesuffix(".yml")
        if name in ("model", "relationships") or name.endswith(_SUFFIXES):
            rel = path.relative_to(folder).with_name(name).as_posix()
            files[rel] = path.read_text(encoding="utf-8")
    return files


def load_model(
    folder: Path | str, *, name: str | None = None, catalog: Catalog | None = None
) -> SemanticModel:
    """Load and validate the model in ``folder``; raise ``ModelInvalid`` listing every issue.

    ``catalog`` (the database's column types, see ``semantic.catalog``) is optional.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelInvalid([ModelIssue(str(folder), "", "model folder does not exist")])
    return build_model(read_model_files(folder), name=name or folder.name, catalog=catalog)


def build_model(
    files: Mapping[str, str], *, name: str, catalog: Catalog | None = None
) -> SemanticModel:
    """Validate and build a model from file texts (used by the loader and by YAML edits)."""
    builder = _Builder(files, default_name=name, catalog=catalog)
    model = builder.build()
    errors = [i for i in builder.issues if not i.is_warning]
    if errors or model is None:
        raise ModelInvalid(builder.issues, model=builder.name)
    return model


class _Builder:
    def __init__(
        self, files: Mapping[str, str], *, default_name: str, catalog: Catalog | None = None
    ) -> None:
        self.catalog = catalog
        self.columns: dict[str, Mapping[str, str] | None] = {}  # view -> its table's columns
        self.files = dict(files)
        self.name = default_name
        self.issues: list[ModelIssue] = []
        self.dialect = "duckdb"
        self.view_files: dict[str, tuple[str, ViewFile]] = {}
        self.templates: dict[str, Template] = {}  # "view.dimension" -> parsed sql
        self.dimensions: dict[str, Dimension] = {}
        self._resolving: list[str] = []
        # derived measure -> (file, yaml path, measures it uses), for the cycle check
        self._derived_refs: dict[str, tuple[str, str, list[str]]] = {}
        # Views ("orders") and fields ("orders.amount") whose problems are already reported:
        # anything that refers to them stays quiet instead of piling up knock-on issues.
        self.quiet: set[str] = set()

    def issue(self, file: str, path: str, message: str, *, warning: bool = False) -> None:
        self.issues.append(ModelIssue(file, path, message, is_warning=warning))

    # ------------------------------------------------------------ pass 1: structure

    def parse(self, file: str, shape: type[BaseModel], *, many: bool = False) -> Any:
        try:
            data = yaml.load(self.files[file], Loader=_Loader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark else ""
            self.issue(file, where, f"invalid YAML: {getattr(exc, 'problem', exc)}")
            return None
        for path, message in _duplicate_keys(yaml.compose(self.files[file], Loader=_Loader)):
            self.issue(file, path, message)
        if data is None:
            data = [] if many else {}
        if many:
            if not isinstance(data, list):
                self.issue(file, "", "expected a list of relationships")
                return None
            return [
                x for i, d in enumerate(data) if (x := self._validate(file, shape, d, f"[{i}]"))
            ]
        if not isinstance(data, dict):
            self.issue(file, "", f"expected a mapping of parameters, got {type(data).__name__}")
            return None
        return self._validate(file, shape, data, "")

    def _validate(self, file: str, shape: type[BaseModel], data: Any, prefix: str) -> Any:
        try:
            return shape.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                loc = [str(p) for p in err["loc"]]
                path = ".".join([prefix, *loc] if prefix else loc)
                self.issue(file, path, _pydantic_message(err, shape))
            return None

    def build(self) -> SemanticModel | None:
        model_file = ModelFile()
        if "model" in self.files:
            model_file = self.parse("model", ModelFile) or model_file
        self.name = model_file.name or self.name
        self.dialect = model_file.dialect
        if not NAME.match(self.name):
            self.issue("model", "name", f"model name {self.name!r} must match [a-z][a-z0-9_]*")
        for file in self.files:
            base = file.rsplit("/", 1)[-1]
            if base.endswith(".view"):
                self._read_view_file(file, base.removesuffix(".view"))
        views = self._build_views()
        relationships = self._build_relationships(views)
        topics = self._build_topics(views, relationships)
        if not views and not self.quiet:
            self.issue("model", "", "the model has no views (expected <name>.view files)")
        if any(not i.is_warning for i in self.issues):
            return None
        digest = hashlib.sha256()
        for file in sorted(self.files):
            digest.update(file.encode() + b"\0" + self.files[file].encode() + b"\0")
        return SemanticModel(
            name=self.name,
            dialect=self.dialect,
            views=views,
            topics=topics,
            relationships=tuple(relationships),
            label=model_file.label,
            description=model_file.description,
            ai_context=model_file.ai_context,
            connection=model_file.connection,
            default_row_limit=model_file.default_row_limit,
            version=digest.hexdigest()[:16],
            files=dict(self.files),
            clock_filters=_reads_clock(views, topics),
            warnings=tuple(i for i in self.issues if i.is_warning),
        )

    def _read_view_file(self, file: str, view: str) -> None:
        if not NAME.match(view):
            self.issue(file, "", f"view name {view!r} must match [a-z][a-z0-9_]*")
            return
        if view in self.view_files:
            self.issue(
                file, "", f"view {view!r} is defined twice (also in {self.view_files[view][0]})"
            )
            return
        parsed = self.parse(file, ViewFile)
        if parsed is None:
            self.quiet.add(view)
            return
        # Each field is checked on its own: a typo in one must not hide problems in others.
        dims: dict[str, DimensionFile] = {}
        measures: dict[str, MeasureFile] = {}
        for kind, shape, entries, valid in (
            ("dimensions", DimensionFile, parsed.dimensions, dims),
            ("measures", MeasureFile, parsed.measures, measures),
        ):
            for name, raw in entries.items():
                spec = self._validate(file, shape, {} if raw is None else raw, f"{kind}.{name}")
                if spec is None:
                    self.quiet.add(f"{view}.{name}")
                else:
                    valid[str(name)] = spec
        parsed = parsed.model_copy(update={"dimensions": dims, "measures": measures})
        self.view_files[view] = (file, parsed)
        if parsed.sql and parsed.table_name:
            self.issue(file, "sql", "a view has either table_name or sql, not both")
        for kind, fields in (("dimensions", dims), ("measures", measures)):
            for field in fields:
                if not NAME.match(field):
                    self.issue(file, f"{kind}.{field}", "field names must match [a-z][a-z0-9_]*")
        for field in set(dims) & set(measures):
            self.issue(file, f"measures.{field}", f"{field!r} is both a dimension and a measure")

    # ------------------------------------------------------------ pass 2: fields

    def _template(self, file: str, path: str, sql: str, view: str) -> Template | None:
        try:
            return parse_template(sql, own_view=view, dialect=self.dialect)
        except TemplateError as exc:
            self.issue(file, path, str(exc))
            return None

    def _source(self, view: str, file: str, vf: ViewFile) -> exp.Expr | None:
        """What a view reads: its table (aliased by the view's name) or its derived SQL."""
        if vf.sql:
            try:
                query = sqlglot.parse_one(vf.sql, read=self.dialect)
            except ParseError as exc:
                self.issue(file, "sql", f"invalid SQL: {str(exc).splitlines()[0]}")
                return None
            return exp.Subquery(this=query, alias=exp.TableAlias(this=exp.to_identifier(view)))
        table = exp.Table(
            this=exp.to_identifier(vf.table_name or view),
            db=exp.to_identifier(vf.schema_) if vf.schema_ else None,
            catalog=exp.to_identifier(vf.catalog) if vf.catalog else None,
        )
        if self.catalog is not None and table_columns(self.catalog, table) is None:
            self.issue(file, "table_name", f"table {table.sql()!r} was not found in the "
                       "database", warning=True)  # fmt: skip
        return exp.alias_(table, view, table=True)

    def _check_columns(self, view: str, tpl: Template, file: str, path: str) -> None:
        """Warn about columns of the view's own table that the database does not have."""
        columns = self.columns.get(view)
        if columns is None:
            return
        for col in tpl.tree.find_all(exp.Column):
            if col.table == view and col.name.lower() not in columns:
                hint = did_you_mean(col.name, columns)
                self.issue(file, path, f"column {col.name!r} does not exist in the table of view "
                           f"{view!r}.{hint}", warning=True)  # fmt: skip

    def _build_views(self) -> dict[str, View]:
        sources = {
            view: self._source(view, file, vf) for view, (file, vf) in self.view_files.items()
        }
        if self.catalog is not None:
            for view, source in sources.items():
                self.columns[view] = table_columns(self.catalog, source) if source else None
        for view, (file, vf) in self.view_files.items():
            for dim_name, dim in vf.dimensions.items():
                sql = dim.sql or dim_name
                path = f"dimensions.{dim_name}.sql"
                tpl = self._template(file, path, sql, view)
                if tpl is not None:
                    self._check_columns(
                        view, tpl, file, path if dim.sql else f"dimensions.{dim_name}"
                    )
                    self.templates[f"{view}.{dim_name}"] = tpl
        for view, (_, vf) in self.view_files.items():
            for dim_name in vf.dimensions:
                self._dimension(view, dim_name)
        views: dict[str, View] = {}
        for view, (file, vf) in self.view_files.items():
            dims = {
                n: self.dimensions[f"{view}.{n}"]
                for n in vf.dimensions
                if f"{view}.{n}" in self.dimensions
            }
            pks = [d for d in dims.values() if d.primary_key]
            if len(pks) > 1:
                names = ", ".join(d.name for d in pks)
                self.issue(file, "dimensions", f"a view has one primary key; found {names}")
            measures = {
                n: m
                for n, spec in vf.measures.items()
                if (m := self._measure(view, n, spec, file)) is not None
            }
            source = sources[view]
            if source is None:
                continue
            views[view] = View(
                name=view,
                source=source,
                label=vf.label or titleize(view),
                dimensions=dims,
                measures=measures,
                description=vf.description,
                ai_context=vf.ai_context,
                hidden=vf.hidden,
                file=file,
            )
        return views

    def _lookup_dimension(self, view: str, ref: Ref, file: str, path: str) -> Dimension | None:
        target_view = ref.view or view
        if target_view in self.quiet or f"{target_view}.{ref.field}" in self.quiet:
            return None
        if target_view not in self.view_files:
            hint = did_you_mean(target_view, self.view_files)
            self.issue(
                file, path, f"${{{target_view}.{ref.field}}}: no view {target_view!r}.{hint}"
            )
            return None
        vf = self.view_files[target_view][1]
        if ref.field not in vf.dimensions:
            where = f"{target_view}.{ref.field}"
            if ref.field in vf.measures:
                self.issue(file, path, f"${{{where}}} is a measure; a dimension is needed here")
            else:
                hint = did_you_mean(ref.field, vf.dimensions)
                self.issue(
                    file,
                    path,
                    f"${{{where}}}: no dimension {ref.field!r} in view {target_view!r}.{hint}",
                )
            return None
        return self._dimension(target_view, ref.field)

    def _dimension(self, view: str, name: str) -> Dimension | None:
        key = f"{view}.{name}"
        if key in self.dimensions:
            return self.dimensions[key]
        if key in self.quiet:
            return None
        file, vf = self.view_files[view]
        path = f"dimensions.{name}.sql"
        if key in self._resolving:
            cycle = " -> ".join([*self._resolving[self._resolving.index(key) :], key])
            self.issue(file, path, f"reference cycle: {cycle}")
            self.quiet.add(key)
            return None
        tpl = self.templates.get(key)
        if tpl is None:
            self.quiet.add(key)
            return None
        spec = vf.dimensions[name]
        self._resolving.append(key)
        try:
            views_used = {view}
            ok = True

            def swap(node: exp.Expr) -> exp.Expr:
                nonlocal ok
                if not isinstance(node, Ref):
                    return node
                if node.view is None and node.field == name:
                    # ${own_name} in a dimension's own sql means the underlying column.
                    return exp.column(name, table=view)
                dim = self._lookup_dimension(view, node, file, path)
                if dim is None:
                    ok = False
                    return node
                views_used.update(dim.views_used)
                return (
                    exp.Paren(this=dim.expr.copy()) if _needs_parens(dim.expr) else dim.expr.copy()
                )

            tree = tpl.tree.copy().transform(swap, copy=False)
        finally:
            self._resolving.pop()
        if not ok:
            self.quiet.add(key)  # reported once, where it went wrong
            return None
        timeframes = tuple(spec.timeframes) if spec.timeframes else None
        data_type = "TIMESTAMP" if timeframes else _infer_type(tree)
        columns = self.columns.get(view)
        if columns is not None and isinstance(tree, exp.Column) and tree.table == view:
            sql_type = columns.get(tree.name.lower())
            if sql_type is not None:
                data_type = omni_type(sql_type, self.dialect)
                if data_type == "TIMESTAMP" and timeframes is None:
                    timeframes = DEFAULT_TIMEFRAMES  # Omni's default set for date columns
        dim = Dimension(
            view=view,
            name=name,
            expr=tree,
            views_used=frozenset(views_used),
            label=spec.label or titleize(name),
            primary_key=spec.primary_key,
            description=spec.description,
            synonyms=tuple(spec.synonyms),
            ai_context=spec.ai_context,
            all_values=tuple(spec.all_values) if spec.all_values is not None else None,
            sample_values=tuple(spec.sample_values) if spec.sample_values is not None else None,
            hidden=spec.hidden,
            format=spec.format,
            group_label=spec.group_label,
            timeframes=timeframes,
            data_type=data_type,
            tags=tuple(spec.tags),
        )
        self.dimensions[key] = dim
        return dim

    def _measure(self, view: str, name: str, spec: MeasureFile, file: str) -> Measure | None:
        path = f"measures.{name}"
        views_used = {view}
        common: dict[str, Any] = dict(
            view=view,
            name=name,
            label=spec.label or titleize(name),
            aggregate_type=spec.aggregate_type,
            description=spec.description,
            synonyms=tuple(spec.synonyms),
            ai_context=spec.ai_context,
            hidden=spec.hidden,
            format=spec.format,
            group_label=spec.group_label,
            tags=tuple(spec.tags),
        )
        # Parameter problems are collected, then the SQL is still checked: all in one round.
        ok = True
        if spec.aggregate_type == "percentile" and spec.percentile is None:
            self.issue(
                file, f"{path}.percentile", "a percentile measure needs percentile: N (0-100)"
            )
            ok = False
        if spec.percentile is not None and spec.aggregate_type != "percentile":
            self.issue(
                file, f"{path}.percentile", "percentile only applies to aggregate_type: percentile"
            )
            ok = False
        tpl = self._template(file, f"{path}.sql", spec.sql, view) if spec.sql else None
        if spec.sql and tpl is None:
            return None
        if tpl is not None:
            self._check_columns(view, tpl, file, f"{path}.sql")
        measure_refs = [r for r in (tpl.refs if tpl else ()) if self._is_measure_ref(view, r)]
        if tpl is not None and measure_refs:
            if spec.aggregate_type is not None:
                self.issue(
                    file,
                    f"{path}.sql",
                    "a measure with aggregate_type must aggregate "
                    "dimensions, not other measures (drop aggregate_type to combine measures)",
                )
                return None
            if spec.filters:
                self.issue(file, f"{path}.filters", "filters need aggregate_type on the measure; "
                           "filter the measures this one combines instead")  # fmt: skip
                ok = False
            derived = self._derived_measure(view, name, tpl, file, path, common)
            return derived if ok else None
        tree = self._resolve_dims(view, tpl, file, f"{path}.sql", views_used) if tpl else None
        if (tpl is not None and tree is None) or not ok:
            return None
        filters = self._measure_filters(view, spec.filters, file, f"{path}.filters", views_used)
        if filters is None:
            return None
        if spec.aggregate_type is None:
            if tree is None or not contains_aggregate(tree):
                self.issue(
                    file,
                    path,
                    "a measure needs aggregate_type (sum, count, count_distinct, "
                    "average, min, max, median, percentile, list), an aggregate in sql, or "
                    "sql combining other measures",
                )
                return None
            if filters:
                self.issue(file, f"{path}.filters", "filters need aggregate_type on the measure")
                return None
            return Measure(**common, views_used=frozenset(views_used), custom=tree)
        if tree is None and spec.aggregate_type not in ("count",):
            self.issue(
                file, f"{path}.sql", f"an aggregate_type {spec.aggregate_type} measure needs sql"
            )
            return None
        data_type = "STRING" if spec.aggregate_type == "list" else "NUMBER"
        if spec.aggregate_type in ("min", "max") and tree is not None:
            data_type = _infer_type(tree) or "NUMBER"
        return Measure(
            **common,
            views_used=frozenset(views_used),
            input=tree,
            filters=tuple(filters),
            percentile=spec.percentile,
            data_type=data_type,
        )

    def _is_measure_ref(self, view: str, ref: tuple[str | None, str]) -> bool:
        target = self.view_files.get(ref[0] or view)
        return target is not None and ref[1] in target[1].measures

    def _resolve_dims(
        self, view: str, tpl: Template, file: str, path: str, views_used: set[str]
    ) -> exp.Expr | None:
        ok = True

        def swap(node: exp.Expr) -> exp.Expr:
            nonlocal ok
            if not isinstance(node, Ref):
                return node
            dim = self._lookup_dimension(view, node, file, path)
            if dim is None:
                ok = False
                return node
            views_used.update(dim.views_used)
            return exp.Paren(this=dim.expr.copy()) if _needs_parens(dim.expr) else dim.expr.copy()

        tree = tpl.tree.copy().transform(swap, copy=False)
        return tree if ok else None

    def _derived_measure(
        self, view: str, name: str, tpl: Template, file: str, path: str, common: dict[str, Any]
    ) -> Measure | None:
        ok = True
        refs: list[str] = []

        def swap(node: exp.Expr) -> exp.Expr:
            nonlocal ok
            if not isinstance(node, Ref):
                return node
            target_view = node.view or view
            target = self.view_files.get(target_view)
            if target_view in self.quiet or f"{target_view}.{node.field}" in self.quiet:
                ok = False  # already reported where it is defined
                return node
            if target is None or node.field not in target[1].measures:
                hint = did_you_mean(node.field, target[1].measures) if target else ""
                self.issue(
                    file,
                    f"{path}.sql",
                    f"${{{target_view}.{node.field}}}: a derived measure "
                    f"can only combine measures.{hint}",
                )
                ok = False
                return node
            refs.append(f"{target_view}.{node.field}")
            return MeasureRef(view=target_view, name=node.field)

        tree = tpl.tree.copy().transform(swap, copy=False)
        if not ok:
            return None
        key = f"{view}.{name}"
        if key in refs:
            self.issue(file, f"{path}.sql", f"measure {key} refers to itself")
            return None
        self._derived_refs[key] = (file, f"{path}.sql", refs)
        return Measure(**common, views_used=frozenset({view}), derived=tree)

    def _measure_filters(
        self, view: str, spec: Mapping[str, Any], file: str, path: str, views_used: set[str]
    ) -> list[MeasureFilter] | None:
        out: list[MeasureFilter] = []
        ok = True
        for field, raw in spec.items():
            ref = Ref(view=field.rpartition(".")[0] or None, name=field.rpartition(".")[2])
            dim = self._lookup_dimension(view, ref, file, f"{path}.{field}")
            parsed = self._yaml_filter(raw, file, f"{path}.{field}")
            if dim is None or parsed is None:
                ok = False
                continue
            views_used.update(dim.views_used)
            out.append(MeasureFilter(dim.key, dim.expr, parsed))
        return out if ok else None

    def _yaml_filter(self, raw: Any, file: str, path: str) -> Filter | None:
        try:
            return parse_yaml_filter(raw, where="")
        except FilterError as exc:
            self.issue(file, path, str(exc).lstrip(": .").strip())
            return None

    # ------------------------------------------------------------ pass 3: joins, topics

    def _build_relationships(self, views: Mapping[str, View]) -> list[Relationship]:
        self._check_derived_cycles()
        if "relationships" not in self.files:
            return []
        parsed = self.parse("relationships", RelationshipFile, many=True) or []
        out: list[Relationship] = []
        for i, rel in enumerate(parsed):
            path = f"[{i}]"
            bad = False
            for key in ("join_from_view", "join_to_view"):
                name = getattr(rel, key)
                if name in self.quiet:
                    bad = True
                elif name not in self.view_files:
                    hint = did_you_mean(name, self.view_files)
                    self.issue("relationships", f"{path}.{key}", f"no view {name!r}.{hint}")
                    bad = True
            if bad:
                continue
            tpl = self._template("relationships", f"{path}.on_sql", rel.on_sql, rel.join_from_view)
            if tpl is None:
                continue
            used: set[str] = set()
            on = self._resolve_dims(
                rel.join_from_view, tpl, "relationships", f"{path}.on_sql", used
            )
            if on is None:
                continue
            stray = used - {rel.join_from_view, rel.join_to_view}
            if stray:
                self.issue(
                    "relationships",
                    f"{path}.on_sql",
                    f"on_sql may only use the two joined views; it also uses {sorted(stray)}",
                )
                continue
            out.append(
                Relationship(
                    rel.join_from_view,
                    rel.join_to_view,
                    on,
                    rel.relationship_type,
                    rel.join_type,
                    rel.on_sql,
                )
            )
        return out

    def _check_derived_cycles(self) -> None:
        graph = {k: refs for k, (_, _, refs) in self._derived_refs.items()}
        state: dict[str, int] = {}

        def visit(node: str, stack: list[str]) -> None:
            if state.get(node) == 2 or node not in graph:
                return
            if state.get(node) == 1:
                file, path, _ = self._derived_refs[node]
                cycle = " -> ".join([*stack[stack.index(node) :], node])
                self.issue(file, path, f"reference cycle: {cycle}")
                return
            state[node] = 1
            for nxt in graph[node]:
                visit(nxt, [*stack, node])
            state[node] = 2

        for node in graph:
            visit(node, [])

    def _build_topics(
        self, views: Mapping[str, View], relationships: list[Relationship]
    ) -> dict[str, Topic]:
        topics: dict[str, Topic] = {}
        for file in self.files:
            base = file.rsplit("/", 1)[-1]
            if not base.endswith(".topic"):
                continue
            name = base.removesuffix(".topic")
            if not NAME.match(name):
                self.issue(file, "", f"topic name {name!r} must match [a-z][a-z0-9_]*")
                continue
            if name in topics:
                self.issue(file, "", f"topic {name!r} is defined twice")
                continue
            spec = self.parse(file, TopicFile)
            if spec is None:
                continue
            topic = self._topic(file, name, spec, views, relationships)
            if topic is not None:
                topics[name] = topic
        return topics

    def _topic(
        self,
        file: str,
        name: str,
        spec: TopicFile,
        views: Mapping[str, View],
        relationships: list[Relationship],
    ) -> Topic | None:
        if spec.base_view in self.quiet:
            return None
        if spec.base_view not in self.view_files:
            hint = did_you_mean(spec.base_view, self.view_files)
            self.issue(file, "base_view", f"no view {spec.base_view!r}.{hint}")
            return None
        joins: dict[str, JoinStep] = {}
        self._join_tree(
            file, spec.base_view, spec.joins, "joins", relationships, joins, spec.base_view
        )
        in_topic = {spec.base_view, *joins}
        ok = self._check_topic_fields(file, spec, in_topic)
        filters: dict[str, list[tuple[str, Filter]]] = {}
        for kind in ("default_filters", "always_where_filters", "always_having_filters"):
            filters[kind] = []
            for field, raw in getattr(spec, kind).items():
                where = f"{kind}.{field}"
                if not self._topic_field_exists(file, where, field, in_topic, views):
                    ok = False
                    continue
                parsed = self._yaml_filter(raw, file, where)
                if parsed is None:
                    ok = False
                    continue
                filters[kind].append((field, parsed))
        samples = tuple(
            SampleQuery(
                key,
                sq.label or titleize(key),
                sq.prompt,
                sq.ai_context,
                _api_query(sq.query, name, spec.base_view),
            )
            for key, sq in spec.sample_queries.items()
        )
        if not ok:
            return None
        return Topic(
            name=name,
            base_view=spec.base_view,
            label=spec.label or titleize(name),
            joins=joins,
            description=spec.description,
            ai_context=spec.ai_context,
            hidden=spec.hidden,
            group_label=spec.group_label,
            field_patterns=tuple(spec.fields) if spec.fields is not None else None,
            default_filters=tuple(filters["default_filters"]),
            always_where_filters=tuple(filters["always_where_filters"]),
            always_having_filters=tuple(filters["always_having_filters"]),
            sample_queries=samples,
            default_row_limit=spec.default_row_limit,
            file=file,
        )

    def _join_tree(
        self,
        file: str,
        parent: str,
        tree: Any,
        path: str,
        relationships: list[Relationship],
        out: dict[str, JoinStep],
        base: str,
    ) -> None:
        """Walk a topic's nested ``joins``; below a join that failed nothing more is checked,
        so one misspelt view is one issue."""
        if tree is None:
            return
        if not isinstance(tree, Mapping):
            self.issue(file, path, "joins are a mapping of view names ({} for a view joined "
                       f"with nothing below it), not {type(tree).__name__}")  # fmt: skip
            return
        for key, sub in tree.items():
            child, where = str(key), f"{path}.{key}"
            if child in self.quiet:
                continue
            if child not in self.view_files:
                self.issue(file, where, f"no view {child!r}.{did_you_mean(child, self.view_files)}")
                continue
            if child in out or child == base:
                self.issue(file, where, f"view {child!r} is joined twice in this topic")
                continue
            rel = find_relationship(relationships, parent, child)
            if rel is None:
                self.issue(file, where, f"no relationship joins {parent!r} to {child!r}: add "
                           "one to the relationships file")  # fmt: skip
                continue
            out[child] = JoinStep(parent, child, rel)
            self._join_tree(file, child, sub, where, relationships, out, base)

    def _topic_field_exists(
        self, file: str, where: str, field: str, in_topic: set[str], views: Mapping[str, View]
    ) -> bool:
        view, _, name = field.partition(".")
        if view in self.quiet or field in self.quiet:
            return False
        if not name:
            self.issue(file, where, f"{field!r}: topic filters name fields as view.field")
            return False
        if view not in in_topic:
            hint = did_you_mean(view, in_topic)
            self.issue(file, where, f"view {view!r} is not joined in this topic.{hint}")
            return False
        v = views.get(view)
        if v is not None and name not in v.dimensions and name not in v.measures:
            hint = did_you_mean(name, v.field_names())
            self.issue(file, where, f"no field {name!r} in view {view!r}.{hint}")
            return False
        return True

    def _check_topic_fields(self, file: str, spec: TopicFile, in_topic: set[str]) -> bool:
        ok = True
        for i, pattern in enumerate(spec.fields or ()):
            body = pattern.lstrip("-")
            if body.startswith("tag:") or body.startswith("all_views."):
                continue
            view = body.partition(".")[0]
            if view not in in_topic:
                hint = did_you_mean(view, in_topic)
                self.issue(
                    file, f"fields[{i}]", f"view {view!r} is not joined in this topic.{hint}"
                )
                ok = False
        return ok


# ---------------------------------------------------------------- helpers


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML loading (C-accelerated where available)."""


def _duplicate_keys(node: yaml.Node | None, path: str = "") -> Iterator[tuple[str, str]]:
    """``(yaml path, message)`` for each key written twice in one mapping: PyYAML would keep
    the last silently and the first definition would vanish."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            where = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in seen:
                yield where, f"{key!r} is defined twice (lines {seen[key]} and {line})"
            seen.setdefault(key, line)
            yield from _duplicate_keys(value_node, where)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, f"{path}[{i}]")


def _reads_clock(views: Mapping[str, View], topics: Mapping[str, Topic]) -> bool:
    measure_filters = [
        f.filter for v in views.values() for m in v.measures.values() for f in m.filters
    ]
    topic_filters = [
        flt
        for t in topics.values()
        for _, flt in (*t.default_filters, *t.always_where_filters, *t.always_having_filters)
    ]
    return any(depends_on_clock(f) for f in [*measure_filters, *topic_filters])


def find_relationship(rels: list[Relationship], parent: str, child: str) -> Relationship | None:
    """The relationship joining ``child`` onto ``parent``, oriented parent -> child."""
    for rel in rels:
        if rel.left == parent and rel.right == child:
            return rel
    for rel in rels:
        if rel.left == child and rel.right == parent:
            return rel.reversed()
    return None


def _api_query(query: Mapping[str, Any], topic: str, base_view: str) -> dict[str, Any]:
    """A sample query as the API shapes it (YAML's base_view/topic/field/desc renamed)."""
    out = dict(query)
    out["table"] = out.pop("base_view", None) or out.get("table") or base_view
    out["join_paths_from_topic_name"] = out.pop("topic", None) or topic
    sorts = []
    for s in out.get("sorts") or []:
        if isinstance(s, Mapping) and "field" in s:
            sorts.append({"column_name": s["field"], "sort_descending": bool(s.get("desc"))})
        else:
            sorts.append(s)
    out["sorts"] = sorts
    out.setdefault("filters", {})
    return out


def _needs_parens(tree: exp.Expr) -> bool:
    return isinstance(tree, (exp.Binary, exp.Not, exp.Neg)) and not isinstance(tree, exp.Dot)


def _infer_type(tree: exp.Expr) -> str | None:
    """A best guess at a dimension's type from its SQL alone; None when only data can tell."""
    node = tree.unnest()
    if isinstance(node, (exp.Predicate, exp.Not, exp.Boolean, exp.And, exp.Or)):
        return "BOOLEAN"
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)):
        return "NUMBER"
    if isinstance(node, (exp.DPipe, exp.Concat)):
        return "STRING"
    if isinstance(node, exp.Cast):
        kind = data_type_of(node.to)
        return None if kind == "UNKNOWN" else kind
    return None


def _pydantic_message(err: Mapping[str, Any], shape: type[BaseModel]) -> str:
    kind = err["type"]
    loc = err["loc"]
    if kind == "extra_forbidden":
        owner = _owner_shape(shape, loc[:-1])
        fields = [f.alias or n for n, f in owner.model_fields.items()] if owner else []
        hint = did_you_mean(str(loc[-1]), fields)
        if loc[-1] == "type" and owner is DimensionFile:
            hint = " Omni dimensions have no type parameter; the column's type is used."
        return f"unknown parameter {loc[-1]!r}.{hint}"
    if kind == "literal_error":
        expected = str(err.get("ctx", {}).get("expected", ""))
        options = re.findall(r"'([^']+)'", expected)
        hint = did_you_mean(str(err.get("input")), options)
        return f"invalid value {err.get('input')!r}: expected one of {', '.join(options)}.{hint}"
    if kind == "missing":
        return f"missing required parameter {loc[-1]!r}"
    return str(err["msg"])


_NESTED: Mapping[str, type[BaseModel]] = {"dimensions": DimensionFile, "measures": MeasureFile}


def _owner_shape(shape: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic class that owns the key at ``loc``: ``("dimensions", "x")`` -> Dimension."""
    if not loc:
        return shape
    if len(loc) == 2 and str(loc[0]) in _NESTED:
        return _NESTED[str(loc[0])]
    return None
