"""``level_of_detail`` measures and dimensions in a model build: the inner aggregate and its grain
(``fixed``, ``always_include`` or ``always_exclude``) checked with their file and YAML path,
and turned into a ``LevelOfDetail`` (the compiler's ``compiler.lod`` builds the SQL).

What is not implemented is refused by name, never read another way: the block's own
``filters`` and ``custom_primary_key_sql``, a timeframe in the grain's fields, and inner
aggregates that need parameters the block cannot hold (``percentile``, ``*_distinct_on``).
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from assay.semantic.build_special import SpecialBuilder
from assay.semantic.files import DISTINCT_ON_TYPES, DimensionFile, MeasureFile
from assay.semantic.model import (
    LOD_DIM_PREFIX,
    Dimension,
    DimensionLod,
    LevelOfDetail,
    LodGrain,
    Measure,
)
from assay.semantic.templates import Ref, Template, contains_aggregate

#: inner aggregates: each needs only the measure's ``sql``
INNER_TYPES = ("sum", "count", "count_distinct", "average", "min", "max", "median")
#: Omni's grouping strategies, one per level of detail
GRAINS: tuple[LodGrain, ...] = ("fixed", "always_include", "always_exclude")
_NOT_YET = (
    "Assay does not support {what} yet: it changes query results, so the model is refused "
    "rather than served without it"
)


class LodBuilder(SpecialBuilder):
    # Defined by ``FieldBuilder``, the pass that resolves fields (it inherits this one).
    def _lookup_dimension(self, view: str, ref: Ref, file: str, path: str) -> Dimension | None:
        raise NotImplementedError

    def _resolve_dims(
        self, view: str, tpl: Template, file: str, path: str, views_used: set[str]
    ) -> exp.Expr | None:
        raise NotImplementedError

    def _is_measure_ref(self, view: str, ref: tuple[str | None, str]) -> bool:
        raise NotImplementedError

    def _lod_measure(
        self, view: str, name: str, spec: MeasureFile, file: str, common: dict[str, Any]
    ) -> Measure | None:
        """A ``level_of_detail`` measure: its ``sql`` aggregated by the block's
        ``aggregate_type`` per value of ``fixed``, then by its own ``aggregate_type``. Every
        problem is reported in one round; None when there is any."""
        lod = spec.level_of_detail
        assert lod is not None
        path = f"measures.{name}"
        at = f"{path}.level_of_detail"
        outer = spec.aggregate_type
        problems: list[tuple[str, str]] = []
        if outer is None:
            problems.append(
                (
                    f"{path}.aggregate_type",
                    "a level_of_detail measure needs "
                    "aggregate_type: how the inner values are aggregated at the "
                    "query's grain (the inner one goes in level_of_detail)",
                )
            )
        elif outer in DISTINCT_ON_TYPES:
            what = f"aggregate_type {outer} on a level_of_detail measure"
            problems.append((f"{path}.aggregate_type", _NOT_YET.format(what=what)))
        elif outer == "percentile" and spec.percentile is None:
            problems.append((f"{path}.percentile", "a percentile measure needs percentile: N"))
        if spec.percentile is not None and outer != "percentile":
            problems.append(
                (
                    f"{path}.percentile",
                    "percentile only applies to aggregate_type "
                    "percentile (the outer aggregate of a level_of_detail measure)",
                )
            )
        if lod.aggregate_type not in INNER_TYPES:
            what = f"aggregate_type {lod.aggregate_type} inside level_of_detail"
            works = f" (it works with {', '.join(INNER_TYPES)})"
            problems.append((f"{at}.aggregate_type", _NOT_YET.format(what=what) + works))
        if spec.filters:
            what = "filters on a level_of_detail measure"
            unsettled = " (whether they apply to the inner or the outer aggregate is not settled)"
            problems.append((f"{path}.filters", _NOT_YET.format(what=what) + unsettled))
        if spec.custom_primary_key_sql is not None:
            what = "custom_primary_key_sql on a level_of_detail measure"
            problems.append((f"{path}.custom_primary_key_sql", _NOT_YET.format(what=what)))
        strategies = [g for g in GRAINS if getattr(lod, g) is not None]
        if not strategies:
            problems.append(
                (
                    at,
                    "level_of_detail needs its grain: fixed: [view.field, ...] "
                    "(fixed: [] for one grand total), always_include: [...] (the query's "
                    "dimensions and these) or always_exclude: [...] (the query's but these)",
                )
            )
        elif len(strategies) > 1:
            problems.append(
                (
                    f"{at}.{strategies[1]}",
                    f"level_of_detail takes one grouping strategy, not {' and '.join(strategies)}",
                )
            )
        for where, message in problems:
            self.issue(file, where, message)
        ok = not problems
        grain: LodGrain = strategies[0] if strategies else "fixed"
        grain_views: set[str] = set()
        listed = getattr(lod, grain) or []
        fields = self._lod_fields(view, listed, file, f"{at}.{grain}", grain, grain_views)
        if grain == "always_exclude":
            # Excluded fields only leave the query's grain: their views never join for them.
            grain_views = set()
        inner_views = {view}
        tree = self._lod_input(view, spec, lod.aggregate_type, file, path, inner_views)
        if not ok or fields is None or tree is False:
            return None
        value = tree if isinstance(tree, exp.Expr) else None
        # The inner measure is keyed apart from the outer one (``$`` is in no field name), so
        # their rendered SQL is cached apart.
        inner = Measure(
            view=view,
            name=f"{name}$lod",
            label=common["label"],
            aggregate_type=lod.aggregate_type,
            views_used=frozenset(inner_views),
            input=value,
        )
        return Measure(
            **common,
            views_used=frozenset(inner_views | grain_views),
            percentile=spec.percentile,
            data_type="STRING" if outer == "list" else "NUMBER",
            lod=LevelOfDetail(
                inner=inner,
                fields=fields,
                grain=grain,
                cancel_query_filters=lod.cancel_query_filters,
            ),
        )

    def _lod_input(
        self,
        view: str,
        spec: MeasureFile,
        inner_type: str,
        file: str,
        path: str,
        views_used: set[str],
    ) -> exp.Expr | bool | None:
        """The row-level SQL the inner aggregate reads (None: a count of rows); False when
        it is wrong (reported). It names dimensions: an aggregate or a measure inside would
        be an aggregate of an aggregate that no grain explains."""
        if spec.sql is None:
            if inner_type != "count":
                self.issue(file, f"{path}.sql", f"the inner aggregate_type {inner_type} needs sql")
                return False
            return None
        sql_path = f"{path}.sql"
        tpl = self._template(file, sql_path, spec.sql, view)
        if tpl is None or not self._template_attributes(tpl, file, sql_path):
            return False
        if any(self._is_measure_ref(view, r) for r in tpl.refs):
            self.issue(
                file,
                sql_path,
                "a level_of_detail measure aggregates dimensions, not other measures",
            )
            return False
        tree = self._resolve_dims(view, tpl, file, sql_path, views_used)
        if tree is None:
            return False
        if contains_aggregate(tree):
            self.issue(
                file,
                sql_path,
                "a level_of_detail measure's sql is row-level: the "
                "aggregates are the two aggregate_types",
            )
            return False
        return tree

    def _lod_fields(
        self,
        view: str,
        entries: list[Any],
        file: str,
        path: str,
        strategy: str,
        views_used: set[str],
    ) -> tuple[Dimension, ...] | None:
        """The dimensions of a grain's list (``view.field`` or a field of the same view);
        None when one is wrong (each reported)."""
        out: list[Dimension] = []
        ok = True
        for i, raw in enumerate(entries):
            where = f"{path}[{i}]"
            text = (
                raw.strip().removeprefix("${").removesuffix("}").strip()
                if isinstance(raw, str)
                else ""
            )
            if not text:
                self.issue(
                    file,
                    where,
                    f"invalid field specified in {strategy}: {raw!r} (a field "
                    "name such as customers.id)",
                )
                ok = False
                continue
            if text.endswith("*"):
                self.issue(
                    file,
                    where,
                    f"Invalid field specified in {strategy}: {text} (a level "
                    "of detail names single fields, not a view's wildcard)",
                )
                ok = False
                continue
            if "[" in text:
                self.issue(
                    file,
                    where,
                    _NOT_YET.format(what=f"a timeframe in level_of_detail {strategy} ({text})"),
                )
                ok = False
                continue
            named, _, field = text.rpartition(".")
            ref = Ref(view=self._own_name(view, named) or None, name=field)
            dim = self._lookup_dimension(view, ref, file, where)
            if dim is None:
                ok = False
                continue
            if dim not in out:
                out.append(dim)
                views_used.update(dim.views_used)
        return tuple(out) if ok else None

    def _lod_dimension(
        self,
        view: str,
        name: str,
        spec: DimensionFile,
        tree: exp.Expr,
        file: str,
        views_used: set[str],
    ) -> DimensionLod | None:
        """A ``level_of_detail`` dimension: its resolved ``sql`` (``tree``) aggregated by the
        block's ``aggregate_type`` per value of ``fixed``, and the views its grain joins. The
        dimension itself reads the inner value joined back to each row (``compiler.lod_dims``);
        the grain's views join ``views_used``.
        Every problem is reported in one round; None when there is any."""
        lod = spec.level_of_detail
        assert lod is not None
        path = f"dimensions.{name}"
        at = f"{path}.level_of_detail"
        problems: list[tuple[str, str]] = []
        if lod.aggregate_type not in INNER_TYPES:
            what = f"aggregate_type {lod.aggregate_type} inside level_of_detail"
            works = f" (it works with {', '.join(INNER_TYPES)})"
            problems.append((f"{at}.aggregate_type", _NOT_YET.format(what=what) + works))
        for grain in ("always_include", "always_exclude"):
            if getattr(lod, grain) is not None:
                # The grain would be the query's grouping, which holds this dimension itself.
                what = f"{grain} on a level_of_detail dimension (only fixed)"
                problems.append((f"{at}.{grain}", _NOT_YET.format(what=what)))
        if lod.fixed is None and not problems:
            problems.append((at, "a level_of_detail dimension needs its grain: fixed: "
                             "[view.field, ...] (fixed: [] for one grand value)"))  # fmt: skip
        for kind in ("groups", "bin_boundaries", "duration", "timeframes", "order_by_field"):
            if getattr(spec, kind):
                what = f"{kind} on a level_of_detail dimension"
                problems.append((f"{path}.{kind}", _NOT_YET.format(what=what)))
        if contains_aggregate(tree):
            problems.append((f"{path}.sql", "a level_of_detail dimension's sql is row-level: "
                             "the aggregate is level_of_detail's aggregate_type"))  # fmt: skip
        if _reads_lod(tree):
            what = "a level_of_detail dimension over another one"
            problems.append((f"{path}.sql", _NOT_YET.format(what=what)))
        grain_views: set[str] = set()
        fields = self._lod_fields(view, lod.fixed or [], file, f"{at}.fixed", "fixed", grain_views)
        for i, d in enumerate(fields or ()):
            if d.lod is not None or _reads_lod(d.expr):
                what = f"a level_of_detail dimension ({d.key}) in fixed"
                problems.append((f"{at}.fixed[{i}]", _NOT_YET.format(what=what)))
        for where, message in problems:
            self.issue(file, where, message)
        if problems or fields is None:
            return None
        inner_views = frozenset(views_used)
        views_used |= grain_views
        inner = Measure(
            view=view,
            name=f"{name}$lod",
            label=name,
            aggregate_type=lod.aggregate_type,
            views_used=inner_views,
            input=tree,
        )
        return DimensionLod(
            inner=inner,
            fields=fields,
            alias=f"{LOD_DIM_PREFIX}{view}_{name}",
            cancel_query_filters=lod.cancel_query_filters,
        )


def _reads_lod(tree: exp.Expr) -> bool:
    """Whether ``tree`` reads a level of detail dimension's joined value."""
    return any(c.table.startswith(LOD_DIM_PREFIX) for c in tree.find_all(exp.Column))
