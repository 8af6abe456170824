"""Table calculations compiled to SQL: an outer SELECT around the limited base query.

Omni evaluates calculations after the limit, on the rows shown, like a spreadsheet beside the
result. So the base query numbers its rows (``$omni_row``, by its own sort) and keeps the first
``limit`` of them, and each calculation is an expression (a window function for the ones that
read other rows) over that numbered result. Calculations that use other calculations go in a
further SELECT, since a window cannot hold a window. Division is done in double precision
and by ``NULLIF(divisor, 0)``, so that ``1/2`` is 0.5 and ``x/0`` is NULL on every engine
(PostgreSQL divides integers and raises on zero, MariaDB and DuckDB do neither).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlglot import exp

from assay.errors import CalculationsFailed, InvalidQuery, NotSupported, did_you_mean
from assay.semantic.calculations import (
    Calculation,
    CallNode,
    FieldNode,
    LiteralNode,
    Node,
    SqlTypeNode,
)
from assay.semantic.compiler.build import dialect_named

ROW = "$omni_row"
#: the value of ``swallow_errors`` cells (a string, as Omni shows it)
ERROR_CELL = "#ERROR!"
_Q = "q"
#: offsets at least this far mean "the whole column" (Omni writes C:C as +-536870911 rows)
_WHOLE = 536870911


@dataclass(frozen=True, slots=True)
class Calculated:
    tree: exp.Select
    #: the result's columns in order: field aliases and calc names
    columns: tuple[str, ...]
    invalid: dict[str, str]


class _Invalid(Exception):
    """This calculation cannot be compiled; the message says why, for the summary."""


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
) -> Calculated:
    """Wrap ``base`` (with its ORDER BY and LIMIT) in the SELECTs computing ``calcs``.

    ``columns``: ``query.fields`` as listed (calc names in their places); ``selected``: the
    aliases of the base query's columns; ``missing``: fields dropped for an invalid grain.
    ``window_rows``: calculations see only the first that many rows (the job runner's probe
    fetches one row past the limit to tell whether it cut rows; that row is not the user's).
    Raises ``CalculationsFailed`` when a calculation is invalid and does not swallow errors.
    """
    if not isinstance(base, exp.Select):
        raise NotSupported("query.calculations: calculations on this query are not supported")
    by_name = {c.name: c for c in calcs}
    base_cols = set(selected)
    deps: dict[str, list[str]] = {}
    invalid: dict[str, str] = {}
    for c in calcs:
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
    by_row = exp.Ordered(this=_col(ROW), nulls_first=_nulls_small(dialect))
    _number_rows(base, by_row)
    partition = _partition(offset, window_rows)
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
                    values[c.name] = _Translator(partition, by_row).node(c.expression)
                except _Invalid as exc:
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
    for name in shown:
        value = values[name] if name in values else _col(name)
        layer.append("expressions", exp.Alias(this=value, alias=_ident(name, True)))
    layer.set("order", exp.Order(expressions=[by_row.copy()]))
    return Calculated(layer, tuple(shown), invalid)


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
    shown = exp.If(this=exp.LTE(this=_col(ROW), expression=last), true=exp.Literal.number(0))
    return [exp.Case(ifs=[shown], default=exp.Literal.number(1))]


def _ident(name: str, quoted: bool = False) -> exp.Identifier:
    return exp.Identifier(this=name, quoted=quoted)


def _alias(name: str) -> exp.TableAlias:
    return exp.TableAlias(this=_ident(name))


def _col(name: str) -> exp.Column:
    return exp.Column(this=_ident(name, True), table=_ident(_Q))


def _p(e: exp.Expr) -> exp.Expr:
    """Parenthesised unless atomic: trees built here carry no precedence of their own."""
    atomic = (exp.Column, exp.Literal, exp.Func, exp.Paren, exp.Null, exp.Boolean, exp.Window)
    return e if isinstance(e, atomic) else exp.Paren(this=e)


def _double(e: exp.Expr) -> exp.Expr:
    return exp.Cast(this=e, to=exp.DataType.build("DOUBLE"))


def _divide(a: exp.Expr, b: exp.Expr) -> exp.Expr:
    nullif = exp.Nullif(this=b, expression=exp.Literal.number(0))
    return exp.Div(this=_double(a), expression=nullif)


_BINARY: dict[str, Callable[[exp.Expr, exp.Expr], exp.Expr]] = {
    "PLUS": lambda a, b: exp.Add(this=_p(a), expression=_p(b)),
    "MINUS": lambda a, b: exp.Sub(this=_p(a), expression=_p(b)),
    "MULTIPLY": lambda a, b: exp.Mul(this=_p(a), expression=_p(b)),
    "DIVIDE": _divide,
    "SAFE_DIVIDE": _divide,
    "EQUALS": lambda a, b: exp.EQ(this=_p(a), expression=_p(b)),
    "NOT_EQUALS": lambda a, b: exp.NEQ(this=_p(a), expression=_p(b)),
    "GREATER_THAN": lambda a, b: exp.GT(this=_p(a), expression=_p(b)),
    "GREATER_THAN_OR_EQUAL": lambda a, b: exp.GTE(this=_p(a), expression=_p(b)),
    "LESS_THAN": lambda a, b: exp.LT(this=_p(a), expression=_p(b)),
    "LESS_THAN_OR_EQUAL": lambda a, b: exp.LTE(this=_p(a), expression=_p(b)),
    "AND": lambda a, b: exp.And(this=_p(a), expression=_p(b)),
    "OR": lambda a, b: exp.Or(this=_p(a), expression=_p(b)),
    "POWER": lambda a, b: exp.Pow(this=a, expression=b),
    "AMPERSAND": lambda a, b: exp.Concat(expressions=[_text(a), _text(b)]),
}
#: operator name -> the binary operation, per namespace (Omni's OMNI_FX_ forms are the same)
_SQL_STD = {k: v for k, v in _BINARY.items() if k not in ("SAFE_DIVIDE", "AMPERSAND")}
_OMNI_FX = {
    k: _BINARY[k]
    for k in ("PLUS", "MINUS", "MULTIPLY", "SAFE_DIVIDE", "EQUALS", "NOT_EQUALS", "AMPERSAND")
}
_AGGREGATES: dict[str, Callable[[exp.Expr], exp.Expr]] = {
    "SUM": lambda e: exp.Sum(this=e),
    "COUNT": lambda e: exp.Count(this=e),
    "COUNTA": lambda e: exp.Count(this=e),
    "AVERAGE": lambda e: exp.Avg(this=e),
    "MIN": lambda e: exp.Min(this=e),
    "MAX": lambda e: exp.Max(this=e),
}
_TYPES = {
    "DOUBLE": "DOUBLE", "FLOAT": "DOUBLE", "REAL": "DOUBLE", "DECIMAL": "DECIMAL",
    "INTEGER": "INT", "BIGINT": "BIGINT", "VARCHAR": "VARCHAR", "CHAR": "VARCHAR",
    "BOOLEAN": "BOOLEAN", "DATE": "DATE", "TIMESTAMP": "TIMESTAMP",
}  # fmt: skip


def _text(e: exp.Expr) -> exp.Expr:
    """``&`` is null-safe: a NULL side is the empty string, as in a spreadsheet."""
    as_text = exp.Cast(this=e, to=exp.DataType.build("VARCHAR"))
    return exp.Coalesce(this=as_text, expressions=[exp.Literal.string("")])


class _Translator:
    """One calculation's tree to SQL over the layer below (``q``)."""

    def __init__(self, partition: list[exp.Expr], by_row: exp.Ordered) -> None:
        self.partition = partition
        self._by_row = by_row

    def node(self, n: Node) -> exp.Expr:
        if isinstance(n, FieldNode):
            return _col(n.name)
        if isinstance(n, LiteralNode):
            return _literal(n.value)
        if isinstance(n, CallNode):
            return self.call(n)
        if isinstance(n, SqlTypeNode):
            raise _Invalid(f"a type ({n.type_name}) outside CAST")
        raise _Invalid(f"Unsupported node type {n.type!r}")

    def call(self, n: CallNode) -> exp.Expr:
        space, _, name = n.operator.partition(".")
        ops = n.operands
        if space == "SqlStdOperatorTable":
            if name in _SQL_STD:
                return _SQL_STD[name](*self.args(n, 2))
            if name == "NOT":
                return exp.Not(this=_p(self.args(n, 1)[0]))
            if name == "UNARY_MINUS":
                return exp.Neg(this=_p(self.args(n, 1)[0]))
            if name == "UNARY_PLUS":
                return self.args(n, 1)[0]
            if name in ("IS_NULL", "IS_NOT_NULL"):
                test = exp.Is(this=_p(self.args(n, 1)[0]), expression=exp.Null())
                return test if name == "IS_NULL" else exp.Not(this=exp.Paren(this=test))
            if name == "CASE":
                return self.case(n, else_last=True)
            if name == "CAST":
                return self.cast(n)
        elif space == "Omni":
            fx = name.removeprefix("OMNI_FX_")
            if name.startswith("OMNI_FX_") and fx in _OMNI_FX:
                return _OMNI_FX[fx](*self.args(n, 2))
            if name == "OMNI_FX_IFS":
                return self.case(n, else_last=False)
            if name.startswith("OMNI_FX_") and fx in _AGGREGATES and len(ops) == 1:
                return self.aggregate(fx, ops[0], n.operator)
            if name in _ROW_OPERATORS:
                value = self.column_operand(n)
                return _ROW_OPERATORS[name](self, value)
            if name == "OMNI_OFFSET_MULTI":
                return self.offset(n)
            if name == "OMNI_LEGACY_OFFSET":
                return self.legacy_offset(n)
        raise _Invalid(f"Unsupported operator {n.operator}")

    def args(self, n: CallNode, count: int) -> list[exp.Expr]:
        if len(n.operands) != count:
            raise _Invalid(f"{n.operator} takes {count} operands, not {len(n.operands)}")
        return [self.node(o) for o in n.operands]

    def case(self, n: CallNode, *, else_last: bool) -> exp.Expr:
        """Calcite's CASE is ``cond, value, ..., else``; OMNI_FX_IFS is ``cond, value, ...``
        with no else (the UI writes one as the condition 1 = 1)."""
        ops = [self.node(o) for o in n.operands]
        default = ops.pop() if else_last and len(ops) % 2 == 1 else None
        if not ops or len(ops) % 2:
            raise _Invalid(f"{n.operator} takes pairs of condition and value")
        ifs = [exp.If(this=ops[i], true=ops[i + 1]) for i in range(0, len(ops), 2)]
        return exp.Case(ifs=ifs, default=default)

    def cast(self, n: CallNode) -> exp.Expr:
        if len(n.operands) != 2 or not isinstance(target := n.operands[1], SqlTypeNode):
            raise _Invalid("CAST takes a value and a sql_type")
        name = _TYPES.get(target.type_name)
        if name is None:
            raise _Invalid(f"Unsupported CAST type {target.type_name}")
        if name == "DECIMAL" and target.precision:
            name = f"DECIMAL({target.precision}, {target.scale or 0})"
        return exp.Cast(this=self.node(n.operands[0]), to=exp.DataType.build(name))

    def column_operand(self, n: CallNode) -> exp.Expr:
        """The one column a row operator (percent of total ...) reads."""
        if len(n.operands) != 1 or not isinstance(n.operands[0], FieldNode):
            raise _Invalid(f"{n.operator} takes one column")
        return self.node(n.operands[0])

    def over(
        self,
        func: exp.Expr,
        *,
        order: list[exp.Ordered] | None = None,
        spec: exp.Expr | None = None,
    ) -> exp.Window:
        window = exp.Window(this=func, over="OVER")
        if self.partition:
            window.set("partition_by", [p.copy() for p in self.partition])
        if order is not None:
            window.set("order", exp.Order(expressions=order))
        if spec is not None:
            window.set("spec", spec)
        return window

    def by_row(self) -> list[exp.Ordered]:
        return [self._by_row.copy()]

    def aggregate(self, fx: str, operand: Node, operator: str) -> exp.Expr:
        """``SUM(B:B)`` (a column: every row) or ``SUM(OFFSET(...))`` (a frame of rows)."""
        make = _AGGREGATES[fx]
        if isinstance(operand, FieldNode):
            return self.over(make(self.node(operand)))
        if isinstance(operand, CallNode) and operand.operator == "Omni.OMNI_OFFSET_MULTI":
            value, start, end = self.frame(operand)
            if start is None and end is None:
                return self.over(make(value))
            spec = exp.WindowSpec(kind="ROWS")
            for side, bound in (("start", start), ("end", end)):
                if bound is None:
                    spec.set(side, "UNBOUNDED")
                    spec.set(f"{side}_side", "PRECEDING" if side == "start" else "FOLLOWING")
                elif bound == 0:
                    spec.set(side, "CURRENT ROW")
                else:
                    spec.set(side, exp.Literal.number(abs(bound)))
                    spec.set(f"{side}_side", "PRECEDING" if bound < 0 else "FOLLOWING")
            return self.over(make(value), order=self.by_row(), spec=spec)
        raise _Invalid(f"{operator} takes a column or an OMNI_OFFSET_MULTI range")

    def frame(self, n: CallNode) -> tuple[exp.Expr, int | None, int | None]:
        """``OMNI_OFFSET_MULTI(f, rows, cols, height, width)`` (Excel's OFFSET) as the first
        and last row of a frame relative to the current one; None is unbounded. The start
        ``ABSOLUTE_POSITION(1)`` with height 1 is ``B$1:B1``, the rows up to this one."""
        if len(n.operands) != 5 or not isinstance(n.operands[0], FieldNode):
            raise _Invalid("OMNI_OFFSET_MULTI takes a column, rows, columns, height, width")
        value = self.node(n.operands[0])
        start_node = n.operands[1]
        cols, height, width = (_int(o) for o in n.operands[2:])
        if cols != 0 or width != 1 or height is None or height < 1:
            raise _Invalid("OMNI_OFFSET_MULTI over other columns or no rows is not supported")
        if isinstance(start_node, CallNode) and start_node.operator == "Omni.ABSOLUTE_POSITION":
            if [_int(o) for o in start_node.operands] == [1] and height == 1:
                return value, None, 0
            raise _Invalid("OMNI_OFFSET_MULTI from an absolute row other than 1 to this one")
        start = _int(start_node)
        if start is None:
            raise _Invalid("OMNI_OFFSET_MULTI rows must be a whole number")
        end = start + height - 1
        return (
            value,
            None if start <= -_WHOLE else start,
            None if end >= _WHOLE else end,
        )

    def offset(self, n: CallNode) -> exp.Expr:
        """A single cell ``rows`` away from this one (a relative reference such as B0)."""
        value, start, end = self.frame(n)
        if start is None or start != end:
            raise _Invalid("OMNI_OFFSET_MULTI of several rows outside an aggregate (SUM ...)")
        return self.shifted(value, start)

    def legacy_offset(self, n: CallNode) -> exp.Expr:
        """``OFFSET(column, rows)``: the value ``rows`` rows below (negative: above)."""
        if len(n.operands) != 2 or not isinstance(n.operands[0], FieldNode):
            raise _Invalid("OMNI_LEGACY_OFFSET takes a column and a number of rows")
        rows = _int(n.operands[1])
        if rows is None:
            raise _Invalid("OMNI_LEGACY_OFFSET rows must be a whole number")
        return self.shifted(self.node(n.operands[0]), rows)

    def shifted(self, value: exp.Expr, rows: int) -> exp.Expr:
        if rows == 0:
            return value
        func = exp.Lag if rows < 0 else exp.Lead
        return self.over(
            func(this=value, offset=exp.Literal.number(abs(rows))), order=self.by_row()
        )

    def previous(self, value: exp.Expr) -> exp.Expr:
        return self.over(exp.Lag(this=value.copy()), order=self.by_row())


def _percent_of_total(t: _Translator, f: exp.Expr) -> exp.Expr:
    return _divide(f, t.over(exp.Sum(this=f.copy())))


def _running_total(t: _Translator, f: exp.Expr) -> exp.Expr:
    spec = exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW")
    return t.over(exp.Sum(this=f), order=t.by_row(), spec=spec)


def _percent_of_previous(t: _Translator, f: exp.Expr) -> exp.Expr:
    return _divide(f, t.previous(f))


def _percent_change(t: _Translator, f: exp.Expr) -> exp.Expr:
    return _divide(exp.Sub(this=f, expression=t.previous(f)), t.previous(f))


def _rank(t: _Translator, f: exp.Expr) -> exp.Expr:
    # Largest first; NULLs rank last on every engine (PostgreSQL puts them first by default).
    return t.over(exp.Rank(), order=[exp.Ordered(this=f, desc=True, nulls_first=False)])


_ROW_OPERATORS: dict[str, Callable[[_Translator, exp.Expr], exp.Expr]] = {
    "OMNI_PERCENT_OF_TOTAL": _percent_of_total,
    "OMNI_RUNNING_TOTAL": _running_total,
    "OMNI_PERCENT_OF_PREVIOUS": _percent_of_previous,
    "OMNI_PERCENT_CHANGE_FROM_PREVIOUS": _percent_change,
    "OMNI_RANK": _rank,
}


def _literal(value: str | int | float | bool | None) -> exp.Expr:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    return exp.Literal.number(value)


def _int(n: Node) -> int | None:
    """A whole-number literal (Omni writes a negative one as UNARY_MINUS of a literal)."""
    if isinstance(n, LiteralNode) and not isinstance(n.value, bool):
        value = n.value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
    if isinstance(n, CallNode) and n.operator == "SqlStdOperatorTable.UNARY_MINUS":
        inner = _int(n.operands[0]) if len(n.operands) == 1 else None
        return -inner if inner is not None else None
    return None
