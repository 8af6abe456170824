"""``default_group_by: false``: a query without measures returns its rows ungrouped.

Omni: "duplicate rows will not be grouped"; its model-level setting adds that totals and
pivots "will continue to force aggregation", and so do measures (an aggregate needs its
groups) and ``always_having_sql`` (a HAVING needs them too). ``fill_fields`` joins its series
to grouped rows, so the two together are refused rather than guessed at.
"""

from __future__ import annotations

from sqlglot import exp

from assay.errors import NotSupported
from assay.semantic.compiler.resolve import Resolution
from assay.semantic.query import SemanticQuery


def ungroups(q: SemanticQuery, res: Resolution) -> bool:
    """Whether the query's GROUP BY is to be dropped."""
    if q.keys.default_group_by or q.pivots or q.column_totals is not None:
        return False
    aggregated = any(s.measure is not None for s in res.selected)
    if aggregated or res.having or res.rule_having:
        return False
    if q.fill_fields:
        raise NotSupported(
            "query.default_group_by: false together with fill_fields is not supported yet "
            "(a fill completes grouped rows); remove 'fill_fields' or 'default_group_by'"
        )
    return True


def ungroup(tree: exp.Expr) -> exp.Expr:
    """``tree`` without its GROUP BY (a query without measures builds one plain SELECT)."""
    assert isinstance(tree, exp.Select) and not tree.args.get("with_")
    tree.set("group", None)
    return tree
