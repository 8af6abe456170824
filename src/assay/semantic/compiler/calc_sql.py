"""One table calculation's parse tree as a SQL expression (the operators Assay compiles).

Each calculation reads the columns of the layer below it (``q``). Operators that read other
rows are window functions; their PARTITION BY is the translator's (the probe's rows apart,
and with pivots each pivot column, or each pivot row for ``outside_pivot``), their order the
result's row number. An operator not compiled here makes its calculation invalid, with the
reason for ``summary.invalid_calculations``.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from assay.semantic.calculations import CallNode, FieldNode, LiteralNode, Node, SqlTypeNode
from assay.semantic.compiler.calc_functions import Functions, Invalid
from assay.semantic.compiler.calc_functions import whole_number as _int

_Q = "q"
#: offsets at least this far mean "the whole column" (Omni writes C:C as +-536870911 rows)
_WHOLE = 536870911


def col(name: str) -> exp.Column:
    """A column of the layer below (``q``)."""
    return exp.Column(this=exp.Identifier(this=name, quoted=True), table=exp.Identifier(this=_Q))


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


class Translator:
    """One calculation's tree to SQL over the layer below (``q``)."""

    def __init__(
        self,
        partition: list[exp.Expr],
        by_row: exp.Ordered,
        columns_between: Callable[[int, int], exp.Expr] | None = None,
        dialect: str = "duckdb",
    ) -> None:
        self.partition = partition
        #: the spreadsheet functions, some of which exist only on some dialects
        self.functions = Functions(self, dialect)
        self._by_row = by_row
        #: ``outside_pivot`` on a pivoted query: the condition "this cell's pivot column is
        #: in first..last" (OMNI_PIVOT_OFFSET reads a range of a row's columns); else None
        self.columns_between = columns_between

    def node(self, n: Node) -> exp.Expr:
        if isinstance(n, FieldNode):
            return col(n.name)
        if isinstance(n, LiteralNode):
            return _literal(n.value)
        if isinstance(n, CallNode):
            return self.call(n)
        if isinstance(n, SqlTypeNode):
            raise Invalid(f"a type ({n.type_name}) outside CAST")
        raise Invalid(f"Unsupported node type {n.type!r}: not supported yet")

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
            if name == "OMNI_FX_MEDIAN" and len(ops) == 1:
                return self.aggregate(fx, ops[0], n.operator)
            if name in _ROW_OPERATORS:
                value = self.column_operand(n)
                return _ROW_OPERATORS[name](self, value)
            if name == "OMNI_OFFSET_MULTI":
                return self.offset(n)
            if name == "OMNI_LEGACY_OFFSET":
                return self.legacy_offset(n)
            if (compiled := self.functions.compile(name, n)) is not None:
                return compiled
        raise Invalid(f"Unsupported operator {n.operator}: not supported yet")

    def args(self, n: CallNode, count: int) -> list[exp.Expr]:
        if len(n.operands) != count:
            raise Invalid(f"{n.operator} takes {count} operands, not {len(n.operands)}")
        return [self.node(o) for o in n.operands]

    def case(self, n: CallNode, *, else_last: bool) -> exp.Expr:
        """Calcite's CASE is ``cond, value, ..., else``; OMNI_FX_IFS is ``cond, value, ...``
        with no else (the UI writes one as the condition 1 = 1)."""
        ops = [self.node(o) for o in n.operands]
        default = ops.pop() if else_last and len(ops) % 2 == 1 else None
        if not ops or len(ops) % 2:
            raise Invalid(f"{n.operator} takes pairs of condition and value")
        ifs = [exp.If(this=ops[i], true=ops[i + 1]) for i in range(0, len(ops), 2)]
        return exp.Case(ifs=ifs, default=default)

    def cast(self, n: CallNode) -> exp.Expr:
        if len(n.operands) != 2 or not isinstance(target := n.operands[1], SqlTypeNode):
            raise Invalid("CAST takes a value and a sql_type")
        name = _TYPES.get(target.type_name)
        if name is None:
            raise Invalid(f"Unsupported CAST type {target.type_name}")
        if name == "DECIMAL" and target.precision:
            name = f"DECIMAL({target.precision}, {target.scale or 0})"
        return exp.Cast(this=self.node(n.operands[0]), to=exp.DataType.build(name))

    def column_operand(self, n: CallNode) -> exp.Expr:
        """The one column a row operator (percent of total ...) reads."""
        if len(n.operands) != 1 or not isinstance(n.operands[0], FieldNode):
            raise Invalid(f"{n.operator} takes one column")
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

        def make(e: exp.Expr, framed: bool = False) -> exp.Expr:
            if fx == "MEDIAN":  # a window function on some dialects only
                return self.functions.median(e, framed)
            return _AGGREGATES[fx](e)

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
            return self.over(make(value, framed=True), order=self.by_row(), spec=spec)
        if isinstance(operand, CallNode) and operand.operator == "Omni.OMNI_PIVOT_OFFSET":
            return self.over(make(self.pivot_range(operand)))
        raise Invalid(
            f"{operator} takes a column, an OMNI_OFFSET_MULTI range or an OMNI_PIVOT_OFFSET range"
        )

    def pivot_range(self, n: CallNode) -> exp.Expr:
        """``OMNI_PIVOT_OFFSET(f, rows from, rows to, first column, last column)``: the row's
        cells in pivot columns first..last (an aggregate over them is a row summary across
        the pivot), for ``outside_pivot`` calculations, whose window is the pivot row."""
        if self.columns_between is None:
            raise Invalid(
                "OMNI_PIVOT_OFFSET reads across pivot columns: it needs a pivoted query and "
                "outside_pivot: true"
            )
        if len(n.operands) != 5 or not isinstance(n.operands[0], FieldNode):
            raise Invalid(
                "OMNI_PIVOT_OFFSET takes a column, rows from, rows to, first and last column"
            )
        rows_from, rows_to, first, last = (_int(o) for o in n.operands[1:])
        if rows_from != 0 or rows_to != 0:
            raise Invalid("OMNI_PIVOT_OFFSET over other rows than the current one is not supported")
        if first is None or last is None or first < 1 or last < first:
            raise Invalid("OMNI_PIVOT_OFFSET columns must be whole numbers 1 <= first <= last")
        inside = self.columns_between(first, last)
        return exp.Case(ifs=[exp.If(this=inside, true=self.node(n.operands[0]))])

    def frame(self, n: CallNode) -> tuple[exp.Expr, int | None, int | None]:
        """``OMNI_OFFSET_MULTI(f, rows, cols, height, width)`` (Excel's OFFSET) as the first
        and last row of a frame relative to the current one; None is unbounded. The start
        ``ABSOLUTE_POSITION(1)`` with height 1 is ``B$1:B1``, the rows up to this one."""
        if len(n.operands) != 5 or not isinstance(n.operands[0], FieldNode):
            raise Invalid("OMNI_OFFSET_MULTI takes a column, rows, columns, height, width")
        value = self.node(n.operands[0])
        start_node = n.operands[1]
        cols, height, width = (_int(o) for o in n.operands[2:])
        if cols != 0 or width != 1 or height is None or height < 1:
            raise Invalid("OMNI_OFFSET_MULTI over other columns or no rows is not supported")
        if isinstance(start_node, CallNode) and start_node.operator == "Omni.ABSOLUTE_POSITION":
            if [_int(o) for o in start_node.operands] == [1] and height == 1:
                return value, None, 0
            raise Invalid("OMNI_OFFSET_MULTI from an absolute row other than 1 to this one")
        start = _int(start_node)
        if start is None:
            raise Invalid("OMNI_OFFSET_MULTI rows must be a whole number")
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
            raise Invalid("OMNI_OFFSET_MULTI of several rows outside an aggregate (SUM ...)")
        return self.shifted(value, start)

    def legacy_offset(self, n: CallNode) -> exp.Expr:
        """``OFFSET(column, rows)``: the value ``rows`` rows below (negative: above)."""
        if len(n.operands) != 2 or not isinstance(n.operands[0], FieldNode):
            raise Invalid("OMNI_LEGACY_OFFSET takes a column and a number of rows")
        rows = _int(n.operands[1])
        if rows is None:
            raise Invalid("OMNI_LEGACY_OFFSET rows must be a whole number")
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


def _percent_of_total(t: Translator, f: exp.Expr) -> exp.Expr:
    return _divide(f, t.over(exp.Sum(this=f.copy())))


def _running_total(t: Translator, f: exp.Expr) -> exp.Expr:
    spec = exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW")
    return t.over(exp.Sum(this=f), order=t.by_row(), spec=spec)


def _percent_of_previous(t: Translator, f: exp.Expr) -> exp.Expr:
    return _divide(f, t.previous(f))


def _percent_change(t: Translator, f: exp.Expr) -> exp.Expr:
    return _divide(exp.Sub(this=f, expression=t.previous(f)), t.previous(f))


def _rank(t: Translator, f: exp.Expr) -> exp.Expr:
    # Largest first; NULLs rank last on every engine (PostgreSQL puts them first by default).
    return t.over(exp.Rank(), order=[exp.Ordered(this=f, desc=True, nulls_first=False)])


_ROW_OPERATORS: dict[str, Callable[[Translator, exp.Expr], exp.Expr]] = {
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
