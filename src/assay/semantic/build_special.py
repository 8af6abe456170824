"""Special dimensions in a model build: ``groups`` (+ ``else``), ``bin_boundaries``,
``duration`` and ``order_by_field``, checked with their file and YAML path and turned into the
dimension's SQL (``special_dimensions`` builds the trees).

Every problem of a dimension is reported in one round, as elsewhere in the build.
"""

from __future__ import annotations

from sqlglot import exp

from assay.errors import did_you_mean
from assay.semantic.build_grants import GrantBuilder
from assay.semantic.files import DimensionFile
from assay.semantic.filters import Filter
from assay.semantic.special_dimensions import (
    bin_case,
    duration_expression,
    group_case,
    group_filter_problem,
    increasing_problem,
)

#: a special dimension's SQL and, for a duration, its value in each interval
Special = tuple[exp.Expr, tuple[tuple[str, exp.Expr], ...] | None]


class SpecialBuilder(GrantBuilder):
    def _special(
        self, view: str, name: str, spec: DimensionFile, tree: exp.Expr, file: str
    ) -> Special | None:
        """The dimension's SQL: ``tree`` (its resolved ``sql``) bucketed by its groups or
        bins; for a duration (``tree`` is its start and end), NULL, as Omni answers for the
        bare field, and the value in each interval. None when something is wrong (reported)."""
        base = f"dimensions.{name}"
        kinds = [k for k in ("groups", "bin_boundaries", "duration") if getattr(spec, k)]
        ok = True
        for kind in kinds[1:]:
            self.issue(file, f"{base}.{kind}", f"a dimension is one of groups, bin_boundaries "
                       f"or duration; this one already has {kinds[0]}")  # fmt: skip
            ok = False
        if kinds and spec.timeframes is not None:
            self.issue(file, f"{base}.timeframes", f"timeframes apply to dates, not to a "
                       f"{kinds[0]} dimension")  # fmt: skip
            ok = False
        if spec.else_ is not None and spec.groups is None:
            self.issue(file, f"{base}.else", "else names the rows no group takes: it needs groups")
            ok = False
        if spec.duration is not None and spec.sql is not None:
            self.issue(file, f"{base}.sql", "a duration dimension takes sql_start and sql_end "
                       "in duration, not sql")  # fmt: skip
            ok = False
        target = exp.Paren(this=tree) if isinstance(tree, (exp.Binary, exp.Not)) else tree
        if spec.groups is not None:
            groups: list[tuple[Filter, str]] = []
            for i, group in enumerate(spec.groups):
                path = f"{base}.groups.{i}.filter"
                flt = self._yaml_filter(group.filter, file, path)
                problem = group_filter_problem(flt) if flt is not None else None
                if problem is not None:
                    self.issue(file, path, problem)
                if flt is None or problem is not None:
                    ok = False
                    continue
                groups.append((flt, group.name))
            return (group_case(target, groups, spec.else_), None) if ok else None
        if spec.bin_boundaries is not None:
            problem = increasing_problem(spec.bin_boundaries)
            if problem is not None:
                self.issue(file, f"{base}.bin_boundaries", problem)
                return None
            return (bin_case(target, spec.bin_boundaries), None) if ok else None
        if spec.duration is not None:
            assert isinstance(tree, exp.Tuple)  # built so by _duration_template
            start, end = tree.expressions
            durations = tuple(
                (unit, duration_expression(start, end, unit))
                for unit in dict.fromkeys(spec.duration.intervals)
            )
            return (exp.Null(), durations) if ok else None
        return (tree, None) if ok else None

    def _order_by_field(self, view: str, name: str, spec: DimensionFile, file: str) -> str | None:
        """The dimension of the same view that sorting by this one sorts by (reported when
        it names anything else)."""
        raw = spec.order_by_field
        if raw is None:
            return None
        path = f"dimensions.{name}.order_by_field"
        text = raw.strip().removeprefix("${").removesuffix("}").strip()
        other_view, _, field = text.rpartition(".")
        other_view = self._own_name(view, other_view)
        if other_view and other_view != view:
            self.issue(file, path, f"order_by_field {raw!r} names view {other_view!r}: it names "
                       f"a dimension of the same view, {view!r}")  # fmt: skip
            return None
        fields = self.view_files[view][1]
        if field in fields.measures:
            self.issue(file, path, f"order_by_field {raw!r} is a measure: it names a dimension "
                       f"of view {view!r}")  # fmt: skip
            return None
        if field not in fields.dimensions:
            hint = did_you_mean(field, fields.dimensions)
            self.issue(file, path, f"order_by_field {raw!r}: no dimension {field!r} in view "
                       f"{view!r}.{hint}")  # fmt: skip
            return None
        return field
