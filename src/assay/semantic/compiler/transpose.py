"""``transposed_measures``: measures turned from columns into rows (spec section 6).

The result gains ``measure_name`` (the field name), ``measure_order`` (0, 1, ... in list
order) and ``measure_value`` where the first transposed measure was, and has one row per
(query row x transposed measure). The query is built as usual, with its sort, limit and the
user's rules; it numbers its rows by its own sort (``$omni_row``), and is cross-joined with
a ``UNION ALL`` of one row per measure, a ``CASE`` picking each row's value: the grouped
query runs once, where a ``UNION ALL`` of N copies of it would run it N times. Rows come out
by query row, then measure order. ``limit`` counts query rows, so N x limit rows at most.

The measures' values share one column, so they are cast to DOUBLE: a count and a sum of
decimals are comparable numbers, and DOUBLE exists on every dialect (a DECIMAL wide enough for
every sum does not). A measure whose values are not numbers (a min of dates, a list) is
refused by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlglot import exp

from assay.errors import InvalidQuery
from assay.semantic.compiler.build import dialect_named
from assay.semantic.compiler.calcs import ROW, _number_rows
from assay.semantic.compiler.resolve import Selected

if TYPE_CHECKING:
    from assay.semantic.compiler import FieldMeta

NAME, ORDER, VALUE = "measure_name", "measure_order", "measure_value"
_BASE, _MEASURES = "t", "m"


def check_transposable(selected: Sequence[Selected], names: Sequence[str]) -> None:
    """Each transposed name must be a numeric measure of the query."""
    by_alias = {s.alias: s for s in selected}
    for name in names:
        sel = by_alias.get(name)
        if sel is None:
            raise InvalidQuery(
                f"query.transposed_measures: {name!r} is not a valid field of this query "
                "(its grain does not exist)"
            )
        if sel.measure is None:
            raise InvalidQuery(
                f"query.transposed_measures: {name!r} is a dimension; only measures can be "
                "transposed"
            )
        if sel.measure.data_type != "NUMBER":
            raise InvalidQuery(
                f"query.transposed_measures: {name!r} has {sel.measure.data_type} values, and "
                "measure_value holds numbers; transpose only numeric measures"
            )


def transposed_columns(columns: Sequence[str], names: Sequence[str]) -> list[str]:
    """The result's columns: the three measure columns where the first transposed one was."""
    out: list[str] = []
    for col in columns:
        if col == names[0]:
            out += [NAME, ORDER, VALUE]
        elif col not in names:
            out.append(col)
    return out


def transposed_meta(fields: Sequence[FieldMeta], names: Sequence[str]) -> tuple[FieldMeta, ...]:
    """``summary.fields`` of the transposed result: the three columns replace the measures."""
    by_name = {f.fully_qualified_name: f for f in fields}
    first = by_name[names[0]]
    made = {
        NAME: replace(first, field_name=NAME, view_name="", fully_qualified_name=NAME,
                      label="Measure", data_type="STRING", is_dimension=True,
                      aggregate_type=None, format=None, description=None),
        ORDER: replace(first, field_name=ORDER, view_name="", fully_qualified_name=ORDER,
                       label="Measure Order", data_type="NUMBER", is_dimension=True,
                       aggregate_type=None, format=None, description=None),
        VALUE: replace(first, field_name=VALUE, view_name="", fully_qualified_name=VALUE,
                       label="Value", data_type="NUMBER", is_dimension=False,
                       aggregate_type=None, format=None, description=None),
    }  # fmt: skip
    columns = transposed_columns(list(by_name), names)
    return tuple(made.get(c) or by_name[c] for c in columns)


def transpose(
    base: exp.Select, columns: Sequence[str], names: Sequence[str], dialect: str
) -> exp.Select:
    """Wrap ``base`` (its columns named ``columns``, with ORDER BY and LIMIT) so that each of
    its rows becomes one row per measure of ``names``."""
    nulls_small = dialect_named(dialect).NULL_ORDERING == "nulls_are_small"
    _number_rows(base, exp.Ordered(this=_col(ROW), nulls_first=nulls_small))
    branches: list[exp.Select] = [
        exp.Select(
            expressions=[
                exp.Alias(this=exp.Literal.string(name), alias=_ident(NAME)),
                exp.Alias(this=exp.Literal.number(i), alias=_ident(ORDER)),
            ]
        )
        for i, name in enumerate(names)
    ]
    measures: exp.Expr = branches[0]
    for branch in branches[1:]:
        measures = exp.Union(this=measures, expression=branch, distinct=False)
    pick = exp.Case(
        this=_col(ORDER, _MEASURES),
        ifs=[
            exp.If(this=exp.Literal.number(i), true=_double(_col(name, _BASE)))
            for i, name in enumerate(names)
        ],
    )
    out = exp.Select()
    for col in transposed_columns(columns, names):
        if col in (NAME, ORDER):
            out.append("expressions", exp.Alias(this=_col(col, _MEASURES), alias=_ident(col)))
        elif col == VALUE:
            out.append("expressions", exp.Alias(this=pick, alias=_ident(VALUE)))
        else:
            out.append("expressions", exp.Alias(this=_col(col, _BASE), alias=_ident(col)))
    out.set("from_", exp.From(this=exp.Subquery(this=base, alias=_alias(_BASE))))
    out.append(
        "joins", exp.Join(this=exp.Subquery(this=measures, alias=_alias(_MEASURES)), kind="CROSS")
    )
    order = [
        exp.Ordered(this=_col(ROW, _BASE), nulls_first=nulls_small),
        exp.Ordered(this=_col(ORDER, _MEASURES), nulls_first=nulls_small),
    ]
    out.set("order", exp.Order(expressions=order))
    return out


def _ident(name: str) -> exp.Identifier:
    return exp.Identifier(this=name, quoted=True)


def _alias(name: str) -> exp.TableAlias:
    return exp.TableAlias(this=exp.Identifier(this=name))


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=_ident(name), table=exp.Identifier(this=table) if table else None)


def _double(e: exp.Expr) -> exp.Expr:
    return exp.Cast(this=e, to=exp.DataType.build("DOUBLE"))
