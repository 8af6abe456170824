"""Pass two of a model build: views, their dimensions and their measures, with every
``${}`` reference resolved and checked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from assay.errors import did_you_mean
from assay.semantic.build_measures import MeasureBuilder
from assay.semantic.build_state import NAME
from assay.semantic.calendar import ISO, Calendar, weekday_number
from assay.semantic.catalog import DEFAULT_TIMEFRAMES, data_type_of, omni_type, table_columns
from assay.semantic.extends import resolve_extends, resolve_field_extends
from assay.semantic.files import DimensionFile, MeasureFile, ViewFile
from assay.semantic.model import Dimension, Measure, MeasureFilter, View, titleize
from assay.semantic.names import file_stem
from assay.semantic.query_views import QueryViewSpec, placeholder
from assay.semantic.templates import (
    Ref,
    Template,
    TemplateError,
    contains_aggregate,
    parse_view_sql,
)
from assay.semantic.timezones import (
    Decision,
    TemporalKind,
    Zones,
    decide,
    kind_of_sql_type,
    temporal_kind,
)


class FieldBuilder(MeasureBuilder):
    #: the model file's calendar, and whether it sets ``fiscal_month_offset`` (read first)
    calendar: Calendar = ISO
    fiscal: bool = False
    #: views the model soft-deletes (the model's ``ignored_views``, a view's ``ignored: true``):
    #: as in Omni, they are not in the model and whatever names them is an error
    ignored_views: frozenset[str] = frozenset()
    #: the model's ``timezone`` (read first): timestamp dimensions convert to its query zone
    zones: Zones = Zones()

    def _no_view(self, name: str) -> str:
        """Why ``name`` is not a view, with the likeliest fix."""
        if name in self.ignored_views:
            return (f"view {name!r} is ignored (the model's ignored_views, or its own "
                    "ignored: true), so nothing can use it")  # fmt: skip
        return f"no view {name!r}.{did_you_mean(name, self.view_files)}"

    def _read_view_files(self, names: Mapping[str, str]) -> None:
        """Read every view file (``file -> view name``), resolving ``extends`` on the YAML
        first; template views are starting points only, never views of the model."""
        raw: dict[str, tuple[str, dict[str, Any]]] = {}
        broken: set[str] = set()
        for file, view in names.items():
            if not NAME.match(view):
                self.issue(file, "", f"view name {view!r} must match [a-z][a-z0-9_]*")
                continue
            if view in raw or view in broken:
                first = raw[view][0] if view in raw else "another file"
                self.issue(file, "", f"view {view!r} is defined twice (also in {first})")
                continue
            data = self.load_yaml(file)
            if data is None:
                broken.add(view)
                self.quiet.add(view)
            else:
                raw[view] = (file, data)
        self._add_topic_views(raw)
        resolved = resolve_extends("view", raw, self.issue, broken=frozenset(broken))
        files = {view: file for view, (file, _) in raw.items()}
        resolved = resolve_field_extends(resolved, files, self.issue)
        for view, (file, _) in raw.items():
            if view not in resolved:
                self.quiet.add(view)
            elif resolved[view].get("template") is not True:
                self._read_view_file(file, view, resolved[view])

    def _add_topic_views(self, raw: dict[str, tuple[str, dict[str, Any]]]) -> None:
        """Lay a topic's own ``views`` over the view files' YAML: only in the build of the
        model as that topic sees it (``semantic.topic_views``); the model's own build adds
        nothing."""

    def _read_view_file(self, file: str, view: str, data: dict[str, Any]) -> None:
        parsed = self._validate(file, ViewFile, data, "")
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
        if parsed.query is not None and (parsed.sql or parsed.table_name):
            self.issue(file, "query", "a query view has a query, and neither table_name nor sql")
        if parsed.query is not None and not any(d.primary_key for d in dims.values()):
            self.issue(file, "dimensions", "a query view needs a primary key: mark the "
                       "dimension that is unique per row primary_key: true")  # fmt: skip
        for kind, fields in (("dimensions", dims), ("measures", measures)):
            for field in fields:
                if not NAME.match(field):
                    self.issue(file, f"{kind}.{field}", "field names must match [a-z][a-z0-9_]*")
        for field in set(dims) & set(measures):
            self.issue(file, f"measures.{field}", f"{field!r} is both a dimension and a measure")

    # ------------------------------------------------------------ pass 2: fields

    def _source(self, view: str, file: str, vf: ViewFile) -> exp.Expr | None:
        """What a view reads: its table (aliased by the view's name) or its derived SQL."""
        if vf.query is not None:
            self.query_views.append(QueryViewSpec(view, file, vf.query))
            return placeholder(view)
        if vf.sql:
            try:
                query, attributes = parse_view_sql(vf.sql, dialect=self.dialect)
            except TemplateError as exc:
                self.issue(file, "sql", str(exc))
                return None
            for name in attributes:
                self._attribute(file, "sql", name)
            return exp.Subquery(this=query, alias=exp.TableAlias(this=exp.to_identifier(view)))
        table = exp.Table(
            this=exp.to_identifier(vf.table_name or file_stem(file)),
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

    def _duration_template(
        self, view: str, name: str, spec: DimensionFile, file: str
    ) -> Template | None:
        """A duration's start and end as one template (a pair), resolved like any SQL."""
        assert spec.duration is not None
        parts = []
        for end in ("sql_start", "sql_end"):
            path = f"dimensions.{name}.duration.{end}"
            tpl = self._template(file, path, getattr(spec.duration, end), view)
            if tpl is None or not self._template_attributes(tpl, file, path):
                return None
            self._check_columns(view, tpl, file, path)
            parts.append(tpl)
        start, end_ = parts
        return Template(
            tree=exp.Tuple(expressions=[start.tree, end_.tree]),
            refs=start.refs + end_.refs,
            attributes=start.attributes + end_.attributes,
        )

    def _build_views(self) -> dict[str, View]:
        sources = {
            view: self._source(view, file, vf) for view, (file, vf) in self.view_files.items()
        }
        if self.catalog is not None:
            for view, source in sources.items():
                derived = self.view_files[view][1].query is not None
                self.columns[view] = (
                    table_columns(self.catalog, source) if source and not derived else None
                )
        for view, (file, vf) in self.view_files.items():
            for dim_name, dim in vf.dimensions.items():
                if dim.duration is not None:
                    tpl = self._duration_template(view, dim_name, dim, file)
                    if tpl is not None:
                        self.templates[f"{view}.{dim_name}"] = tpl
                    continue
                sql = dim.sql or dim_name
                path = f"dimensions.{dim_name}.sql"
                tpl = self._template(file, path, sql, view)
                if tpl is not None and self._template_attributes(tpl, file, path):
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
                grants=self._grant_rule(file, "required_access_grants", vf.required_access_grants),
                tags=tuple(vf.tags),
            )
        return views

    def _lookup_dimension(self, view: str, ref: Ref, file: str, path: str) -> Dimension | None:
        target_view = ref.view or view
        if target_view in self.quiet or f"{target_view}.{ref.field}" in self.quiet:
            return None
        if target_view not in self.view_files:
            self.issue(file, path, f"${{{target_view}.{ref.field}}}: {self._no_view(target_view)}")
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
        path = f"dimensions.{name}.{'duration' if vf.dimensions[name].duration else 'sql'}"
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
        special = self._special(view, name, spec, tree, file)
        if special is None:
            self.quiet.add(key)
            return None
        tree, durations = special
        lod = None
        if spec.level_of_detail is not None:
            lod = self._lod_dimension(view, name, spec, tree, file, views_used)
            if lod is None:
                self.quiet.add(key)
                return None
            tree = exp.Column(this=exp.to_identifier("v", quoted=True),
                              table=exp.to_identifier(lod.alias, quoted=True))  # fmt: skip
        timeframes = tuple(spec.timeframes) if spec.timeframes else None
        fiscal = [t for t in timeframes or () if t.startswith("fiscal_")]
        if fiscal and not self.fiscal:
            self.issue(file, f"dimensions.{name}.timeframes", f"{', '.join(fiscal)} needs the "
                       "model's fiscal_month_offset (Omni: fiscal timeframes do not work "
                       "without it); set it in the model file, 0 for calendar years")  # fmt: skip
        data_type = "TIMESTAMP" if timeframes else _infer_type(tree)
        if lod is not None:
            at = lod.inner.aggregate_type
            inner = lod.inner.input
            data_type = _infer_type(inner) if at in ("min", "max") and inner else "NUMBER"
        if spec.groups is not None or spec.bin_boundaries is not None:
            data_type = "STRING"  # labels
        elif durations is not None:
            data_type = "NUMBER"
        columns = self.columns.get(view)
        if columns is not None and isinstance(tree, exp.Column) and tree.table == view:
            sql_type = columns.get(tree.name.lower())
            if sql_type is not None:
                data_type = omni_type(sql_type, self.dialect)
                if data_type == "TIMESTAMP" and timeframes is None:
                    timeframes = DEFAULT_TIMEFRAMES  # Omni's default set for date columns
        if self.zones.converts:
            zoned = self._in_query_zone(view, name, spec, tree, data_type, bool(timeframes))
            if zoned.problem is not None:
                self.issue(file, f"dimensions.{name}.convert_tz", zoned.problem)
            tree, timeframes = zoned.tree, () if zoned.not_a_time else timeframes
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
            grants=self._grant_rule(
                file, f"dimensions.{name}.required_access_grants", spec.required_access_grants
            ),
            mask=None
            if spec.mask_unless_access_grants is None
            else self._grant_rule(
                file, f"dimensions.{name}.mask_unless_access_grants", spec.mask_unless_access_grants
            ),
            durations=durations,
            order_by=self._order_by_field(view, name, spec, file),
            week_start=None if spec.week_start_day is None else weekday_number(spec.week_start_day),
            lod=lod,
        )
        self.dimensions[key] = dim
        return dim

    def _in_query_zone(
        self, view: str, name: str, spec: DimensionFile, tree: exp.Expr, data_type: str | None,
        timeframes: bool,
    ) -> Decision:  # fmt: skip
        """The dimension in the model's query zone (``timezones.decide``), its type read from
        the catalog's column type, else a CAST in its SQL, else what its SQL shows."""
        columns = self.columns.get(view) or {}
        node = tree.unnest()
        kind: TemporalKind | None = None
        if spec.groups is not None or spec.bin_boundaries is not None or spec.duration:
            kind = "other"
        elif isinstance(node, exp.Column) and node.table == view and node.name.lower() in columns:
            kind = kind_of_sql_type(columns[node.name.lower()], self.dialect)
        elif isinstance(node, exp.Cast):
            kind = temporal_kind(node.to)
        elif data_type not in (None, "TIMESTAMP", "UNKNOWN"):
            kind = "other"
        reads = tuple(
            c.name for c in tree.find_all(exp.Column)
            if c.table == view and kind_of_sql_type(columns.get(c.name.lower(), ""),
                                                    self.dialect) in ("naive", "aware")
        )  # fmt: skip
        return decide(self.zones, tree, kind=kind, explicit=spec.convert_tz,
                      timeframes=timeframes, reads=reads)  # fmt: skip

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
            grants=self._grant_rule(
                file, f"{path}.required_access_grants", spec.required_access_grants
            ),
        )
        if spec.level_of_detail is not None:
            return self._lod_measure(view, name, spec, file, common)
        # Parameter problems are collected, then the SQL is still checked: all in one round.
        ok = self._distinct_on_problems(spec, file, path)
        percentile = spec.aggregate_type in ("percentile", "percentile_distinct_on")
        if percentile and spec.percentile is None:
            self.issue(
                file, f"{path}.percentile", "a percentile measure needs percentile: N (0-100)"
            )
            ok = False
        if spec.percentile is not None and not percentile:
            self.issue(file, f"{path}.percentile", "percentile only applies to aggregate_type "
                       "percentile or percentile_distinct_on")  # fmt: skip
            ok = False
        tpl = self._template(file, f"{path}.sql", spec.sql, view) if spec.sql else None
        if spec.sql and (tpl is None or not self._template_attributes(tpl, file, f"{path}.sql")):
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
        key_ok, key = self._distinct_key(view, spec.custom_primary_key_sql, file, path, views_used)
        if filters is None or not key_ok:
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
            distinct_key=key,
        )

    def _distinct_key(
        self, view: str, sql: str | None, file: str, path: str, views_used: set[str]
    ) -> tuple[bool, exp.Expr | None]:
        """Whether ``custom_primary_key_sql`` is right (else it is reported), and its
        row-level SQL (None when there is none). It keys rows, so it names dimensions, never
        measures."""
        if sql is None:
            return True, None
        path = f"{path}.custom_primary_key_sql"
        tpl = self._template(file, path, sql, view)
        if tpl is None or not self._template_attributes(tpl, file, path):
            return False, None
        self._check_columns(view, tpl, file, path)
        if any(self._is_measure_ref(view, r) for r in tpl.refs):
            self.issue(file, path, "custom_primary_key_sql keys rows: it names dimensions "
                       "(${orders.id}), not measures")  # fmt: skip
            return False, None
        tree = self._resolve_dims(view, tpl, file, path, views_used)
        return tree is not None, tree

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

    def _measure_filters(
        self, view: str, spec: Mapping[str, Any], file: str, path: str, views_used: set[str]
    ) -> list[MeasureFilter] | None:
        out: list[MeasureFilter] = []
        ok = True
        for field, raw in spec.items():
            named, _, name = field.rpartition(".")
            ref = Ref(view=self._own_name(view, named) or None, name=name)
            dim = self._lookup_dimension(view, ref, file, f"{path}.{field}")
            parsed = self._yaml_filter(raw, file, f"{path}.{field}")
            if dim is None or parsed is None:
                ok = False
                continue
            views_used.update(dim.views_used)
            out.append(MeasureFilter(dim.key, dim.expr, parsed, dim.week_start))
        return out if ok else None


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
