"""Row rules in a model build: topics' ``access_filters`` (their own, or the model's
defaults), ``always_where_sql`` / ``always_having_sql``, and relationships' ``where_sql``.

A rule that cannot be applied (its field is not in the topic, a measure where a dimension
belongs) refuses the model rather than load it without the rule.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlglot import exp

from assay.errors import did_you_mean
from assay.semantic.build_fields import FieldBuilder
from assay.semantic.files import AccessFilterFile
from assay.semantic.model import AccessFilter, SqlCondition, View
from assay.semantic.templates import MeasureRef, Ref


class RuleBuilder(FieldBuilder):
    def _topic_access_filters(
        self,
        file: str,
        specs: list[AccessFilterFile] | None,
        in_topic: Collection[str],
        views: Mapping[str, View],
    ) -> tuple[AccessFilter, ...] | None:
        """A topic's own ``access_filters``, else the model's defaults mapped onto it
        (``access_filters: []`` opts out). None when one cannot be applied."""
        own = specs is not None
        out: list[AccessFilter] = []
        ok = True
        chosen = list(specs) if specs is not None else list(self.default_filters)
        for i, spec in enumerate(chosen):
            where = f"access_filters[{i}]" if own else f"default_topic_access_filters[{i}]"
            in_file = file if own else "model"
            if own:
                ok = self._attribute(file, f"{where}.user_attribute", spec.user_attribute) and ok
            view, _, name = spec.field.rpartition(".")
            if not view and not own:
                # Unscoped default: every view of the topic with a dimension of that name.
                keys = [f"{v}.{name}" for v in in_topic if name in views[v].dimensions]
            else:
                keys = [spec.field]
                if not self._access_field(in_file, f"{where}.field", spec.field, in_topic, views,
                                          topic_file=None if own else file):  # fmt: skip
                    ok = False
                    continue
            for key in keys:
                out.append(AccessFilter(key, spec.user_attribute,
                                        frozenset(spec.values_for_unfiltered),
                                        spec.enable_sql_like_wildcards))  # fmt: skip
        return tuple(out) if ok else None

    def _access_field(
        self,
        file: str,
        path: str,
        field: str,
        in_topic: Collection[str],
        views: Mapping[str, View],
        *,
        topic_file: str | None,
    ) -> bool:
        view, _, name = field.rpartition(".")
        if not view:
            self.issue(file, path, f"access filter field {field!r} must be view.field")
            return False
        if view in self.quiet or field in self.quiet:
            return False
        if view not in in_topic:
            where = f" of {topic_file}" if topic_file else ""
            opt_out = " (or opt the topic out with access_filters: [])" if topic_file else ""
            self.issue(file, path, f"access filter field {field!r}: view {view!r} is not "
                       f"joined in the topic{where}; join it{opt_out}")  # fmt: skip
            return False
        v = views.get(view)
        if v is not None and name not in v.dimensions:
            what = "a measure" if name in v.measures else "not a dimension of it"
            hint = "" if name in v.measures else did_you_mean(name, v.dimensions)
            self.issue(file, path, f"access filter field {field!r} is {what}: an access filter "
                       f"needs a dimension.{hint}")  # fmt: skip
            return False
        return v is not None

    def _where_condition(
        self,
        file: str,
        path: str,
        sql: str,
        own_view: str,
        renames: Mapping[str, str] | None = None,
    ) -> SqlCondition | None:
        """A row predicate over dimensions (``always_where_sql``, ``where_sql``)."""
        tpl = self._template(file, path, sql, own_view, renames)
        if tpl is None or not self._template_attributes(tpl, file, path):
            return None
        for view, name in tpl.refs:
            target = self.view_files.get(view or own_view)
            if target is not None and name in target[1].measures:
                ref = f"${{{view or own_view}.{name}}}"
                self.issue(file, path, f"{ref} is a measure: this condition filters rows; use "
                           "always_having_sql for measures")  # fmt: skip
                return None
        used: set[str] = {own_view}
        tree = self._resolve_dims(own_view, tpl, file, path, used)
        return None if tree is None else SqlCondition(tree, frozenset(used), sql)

    def _having_condition(
        self, file: str, path: str, sql: str, own_view: str
    ) -> SqlCondition | None:
        """``always_having_sql``: a predicate over measures, as MeasureRef nodes."""
        tpl = self._template(file, path, sql, own_view)
        if tpl is None or not self._template_attributes(tpl, file, path):
            return None
        ok = True
        used: set[str] = set()

        def swap(node: exp.Expr) -> exp.Expr:
            nonlocal ok
            if isinstance(node, exp.Column) and node.table == own_view:
                self.issue(file, path, f"column {node.name!r}: always_having_sql may only use "
                           "${view.measure} references")  # fmt: skip
                ok = False
            if not isinstance(node, Ref):
                return node
            view = node.view or own_view
            target = self.view_files.get(view)
            if target is None or node.field not in target[1].measures:
                hint = did_you_mean(node.field, target[1].measures) if target else ""
                self.issue(file, path, f"${{{view}.{node.field}}}: always_having_sql may only "
                           f"use measures.{hint}")  # fmt: skip
                ok = False
                return node
            used.add(view)
            return MeasureRef(view=view, name=node.field)

        tree = tpl.tree.copy().transform(swap, copy=False)
        return SqlCondition(tree, frozenset(used), sql) if ok else None
