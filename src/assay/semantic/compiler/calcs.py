"""Table calculations compiled to SQL: an outer SELECT around the limited base query.

Omni evaluates calculations after the limit, on the rows shown, like a spreadsheet beside the
result. So the base query numbers its rows (``$omni_row``, by its own sort) and keeps the first
``limit`` of them, and each calculation is an expression (a window function for the ones that
read other rows) over that numbered result. Calculations that use other calculations go in a
further SELECT, since a window cannot hold a window. Division is done in double precision
and by ``NULLIF(divisor, 0)``, so that ``1/2`` is 0.5 and ``x/0`` is NULL on every engine
(PostgreSQL divides integers and raises on zero, MariaDB and DuckDB do neither).

On a pivoted query (spec 3.2) the rows are its cells: each pivot column is a series of its
own (windows ``PARTITION BY $omni_pivot_col_num``, in pivot-row order), and an
``outside_pivot`` calculation works across one pivot row's columns 1..``column_limit``
instead (``PARTITION BY $omni_pivot_row_num``, in column order). How one calculation's tree
becomes SQL is ``calc_sql``'s business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp

from assay.errors import CalculationsFailed, InvalidQuery, NotSupported, did_you_mean
from assay.semantic.calculations import Calculation
from assay.semantic.compiler.build import dialect_named
from assay.semantic.compiler.calc_functions import Invalid
from assay.semantic.compiler.calc_sql import Translator, col

ROW = "$omni_row"
#: the value of ``swallow_errors`` cells (a string, as Omni shows it)
ERROR_CELL = "#ERROR!"
_Q = "q"


@dataclass(frozen=True, slots=True)
class Calculated:
    tree: exp.Select
    #: the result's columns in order: field aliases and calc names
    columns: tuple[str, ...]
    invalid: dict[str, str]


@dataclass(frozen=True, slots=True)
class PivotCells:
    """A pivoted base: its rows are cells numbered by pivot row and pivot column."""

    row_num: str
    col_num: str
    column_limit: int

    def partition(self, calc: Calculation, window_rows: int | None) -> list[exp.Expr]:
        """Each pivot column its own series; an ``outside_pivot`` calculation each pivot
        row's columns 1..``column_limit`` (the first cell a row keeps past them apart). The
        probe's extra pivot row is kept out of every window, as on unpivoted queries."""
        if calc.outside_pivot:
            inside = exp.Case(
                ifs=[exp.If(this=self.in_columns(1, self.column_limit), true=_number(0))],
                default=_number(1),
            )
            return [col(self.row_num), inside]
        probe: list[exp.Expr] = []
        if window_rows is not None:
            shown = exp.LTE(this=col(self.row_num), expression=_number(window_rows))
            probe.append(exp.Case(ifs=[exp.If(this=shown, true=_number(0))], default=_number(1)))
        return [*probe, col(self.col_num)]

    def in_columns(self, first: int, last: int) -> exp.Expr:
        last = min(last, self.column_limit)
        return exp.Between(this=col(self.col_num), low=_number(first), high=_number(last))


def calculate(
    base: exp.Expr,
    calcs: Sequence[Calculation],
    columns: Sequence[str],
    selected: Sequence[str],
    missing: Sequence[str],
    *,
    offset: int = 0,
    window_rows: int | None = None,
    dialect: str = "duckdb",
    pivot: PivotCells | None = None,
) -> Calculated:
    """Wrap ``base`` (with its ORDER BY and LIMIT) in the SELECTs computing ``calcs``.

    ``columns``: ``query.fields`` as listed (calc names in their places); ``selected``: the
    aliases of the base query's columns; ``missing``: fields dropped for an invalid grain.
    ``window_rows``: calculations see only the first that many rows (the job runner's probe
    fetches one row past the limit to tell whether it cut rows; that row is not the user's);
    on a pivoted base (``pivot``) that many pivot rows, whose two numbers follow the columns.
    Raises ``CalculationsFailed`` when a calculation is invalid and does not swallow errors.
    """
    if not isinstance(base, exp.Select):
        raise NotSupported("query.calculations: calculations on this query are not supported")
    by_name = {c.name: c for c in calcs}
    base_cols = set(selected)
    deps: dict[str, list[str]] = {}
    invalid: dict[str, str] = {}
    for c in calcs:
        if c.outside_pivot and pivot is None:
            raise InvalidQuery(
                f"query.calculations ({c.name!r}): outside_pivot works across pivot columns, "
                "and this query has no pivots; remove outside_pivot or add 'pivots'"
            )
        deps[c.name] = []
        for ref in c.references():
            if ref in by_name:
                if ref not in deps[c.name]:
                    deps[c.name].append(ref)
            elif ref not in base_cols and c.name not in invalid:
                invalid[c.name] = _unselected(c, ref, missing, [*selected, *by_name])
    levels = _levels(deps)
    # The row number is never NULL: order by it as the dialect orders NULLs by default, or
    # sqlglot spells out a NULL ordering the engine lacks (MySQL) with a CASE per row.
    by_row = exp.Ordered(this=col(ROW), nulls_first=_nulls_small(dialect))
    _number_rows(base, by_row)
    layer: exp.Select = base
    done: dict[str, bool] = {}  # calc name -> valid
    top = max(levels.values())
    for level in range(top + 1):
        here = [c for c in calcs if levels[c.name] == level]
        values: dict[str, exp.Expr] = {}
        for c in here:
            bad = next((d for d in deps[c.name] if not done[d]), None)
            if bad is not None and c.name not in invalid:
                invalid[c.name] = f"uses the invalid calculation {bad!r}"
            if c.name not in invalid:
                try:
                    values[c.name] = _translate(c, by_row, offset, window_rows, pivot, dialect)
                except Invalid as exc:
                    invalid[c.name] = str(exc)
            done[c.name] = c.name not in invalid
            if c.name in invalid:
                values[c.name] = exp.Literal.string(ERROR_CELL)
        outer = exp.Select()
        outer.set("from_", exp.From(this=exp.Subquery(this=layer, alias=_alias(_Q))))
        if level < top:
            outer.append("expressions", exp.Column(this=exp.Star(), table=_ident(_Q)))
            for name, value in values.items():
                outer.append("expressions", exp.Alias(this=value, alias=_ident(name, True)))
        layer = outer
    failed = {n: r for n, r in invalid.items() if not by_name[n].swallow_errors}
    if failed:
        raise CalculationsFailed(invalid, failed)
    shown = [
        name
        for name in columns
        if (name in by_name and by_name[name].listed) or (name in base_cols)
    ]
    carried = [pivot.row_num, pivot.col_num] if pivot is not None else []
    for name in [*shown, *carried]:
        value = values[name] if name in values else col(name)
        layer.append("expressions", exp.Alias(this=value, alias=_ident(name, True)))
    layer.set("order", exp.Order(expressions=[by_row.copy()]))
    return Calculated(layer, tuple(shown), invalid)


def _translate(
    c: Calculation,
    by_row: exp.Ordered,
    offset: int,
    window_rows: int | None,
    pivot: PivotCells | None,
    dialect: str,
) -> exp.Expr:
    """One calculation's value over the layer below, its windows partitioned as it reads."""
    if pivot is None:
        part = _partition(offset, window_rows)
        return Translator(part, by_row, dialect=dialect).node(c.expression)
    partition = pivot.partition(c, window_rows)
    if not c.outside_pivot:
        return Translator(partition, by_row, dialect=dialect).node(c.expression)
    value = Translator(partition, by_row, pivot.in_columns, dialect).node(c.expression)
    # a cell past column_limit (a row's only one) is in no range of columns: no value
    return exp.Case(ifs=[exp.If(this=pivot.in_columns(1, pivot.column_limit), true=value)])


def _number(n: int) -> exp.Expr:
    return exp.Literal.number(n)


def _unselected(c: Calculation, ref: str, missing: Sequence[str], known: list[str]) -> str:
    """Why a reference to a column the query does not have is refused. A field of the model
    that is not selected and a field that does not exist get the same answer: telling them
    apart would tell a user about fields their access rules hide."""
    if ref in missing:
        return f"references {ref!r}, which is in missing_fields (its timeframe is invalid)"
    if c.allow_refs_to_unselected_fields:
        raise NotSupported(
            f"query.calculations ({c.name!r}): allow_refs_to_unselected_fields is not "
            f"supported yet; add {ref!r} to fields"
        )
    return f"references {ref!r}, which is not in fields.{did_you_mean(ref, known)}"


def _levels(deps: dict[str, list[str]]) -> dict[str, int]:
    """Each calculation's SELECT: one past the calculations it uses. A cycle is refused."""
    levels: dict[str, int] = {}
    visiting: list[str] = []

    def level(name: str) -> int:
        if name in levels:
            return levels[name]
        if name in visiting:
            cycle = [*visiting[visiting.index(name) :], name]
            raise InvalidQuery(
                f"query.calculations: the calculations {' -> '.join(cycle)} use each other "
                "in a cycle"
            )
        visiting.append(name)
        levels[name] = max((level(d) + 1 for d in deps[name]), default=0)
        visiting.pop()
        return levels[name]

    for name in deps:
        level(name)
    return levels


def _nulls_small(dialect: str) -> bool:
    return dialect_named(dialect).NULL_ORDERING == "nulls_are_small"


def _number_rows(base: exp.Select, by_row: exp.Ordered) -> None:
    """Number the base query's rows by its own ORDER BY and keep them in that numbering, so
    the rows its LIMIT keeps are exactly rows 1..limit (ties included)."""
    projected: dict[str, exp.Expr] = {
        e.alias: e.this for e in base.expressions if isinstance(e, exp.Alias) and e.alias
    }

    def unalias(node: exp.Expr) -> exp.Expr:
        # A window's ORDER BY cannot name the SELECT's aliases: spell out their expressions.
        if isinstance(node, exp.Column) and not node.table and node.name in projected:
            return projected[node.name].copy()
        return node

    order = base.args.get("order")
    keys = [o.copy().transform(unalias) for o in order.expressions] if order else []
    number = exp.Window(this=exp.RowNumber(), over="OVER")
    if keys:
        number.set("order", exp.Order(expressions=keys))
    base.append("expressions", exp.Alias(this=number, alias=_ident(ROW, True)))
    by_number = by_row.copy()
    by_number.set("this", exp.Column(this=_ident(ROW, True)))
    base.set("order", exp.Order(expressions=[by_number]))


def _partition(offset: int, window_rows: int | None) -> list[exp.Expr]:
    if window_rows is None:
        return []
    last = exp.Literal.number(offset + window_rows)
    shown = exp.If(this=exp.LTE(this=col(ROW), expression=last), true=exp.Literal.number(0))
    return [exp.Case(ifs=[shown], default=exp.Literal.number(1))]


def _ident(name: str, quoted: bool = False) -> exp.Identifier:
    return exp.Identifier(this=name, quoted=quoted)


def _alias(name: str) -> exp.TableAlias:
    return exp.TableAlias(this=_ident(name))
