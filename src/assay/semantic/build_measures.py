"""Measures in a model build: derived measures (arithmetic over other measures) and the
checks of ``custom_primary_key_sql``, kept apart from ``build_fields`` to keep it readable."""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from assay.errors import did_you_mean
from assay.semantic.build_lod import LodBuilder
from assay.semantic.files import DISTINCT_ON_TYPES, MeasureFile
from assay.semantic.model import Measure
from assay.semantic.templates import MeasureRef, Ref, Template

_DISTINCT_ON_NAMES = ", ".join(sorted(DISTINCT_ON_TYPES))


class MeasureBuilder(LodBuilder):
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

    def _distinct_on_problems(self, spec: MeasureFile, file: str, path: str) -> bool:
        """Report a ``*_distinct_on`` measure without its key, or a key on another aggregate
        type; True when there is none. Omni defines ``custom_primary_key_sql`` for the
        ``*_distinct_on`` types; what it would do elsewhere is not documented, so it is
        refused by name there rather than guessed."""
        at = spec.aggregate_type
        key_path = f"{path}.custom_primary_key_sql"
        if at in DISTINCT_ON_TYPES and spec.custom_primary_key_sql is None:
            self.issue(
                file,
                key_path,
                f"aggregate_type {at} needs custom_primary_key_sql: the field whose each "
                "distinct value is aggregated once, e.g. ${orders.id}",
            )
            return False
        if at not in DISTINCT_ON_TYPES and spec.custom_primary_key_sql is not None:
            self.issue(
                file,
                key_path,
                f"Assay does not support custom_primary_key_sql on aggregate_type {at} yet: it "
                "changes query results, so the model is refused rather than served without it "
                f"(it works with {_DISTINCT_ON_NAMES})",
            )
            return False
        return True
