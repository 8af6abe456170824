"""The spreadsheet functions of table calculations: conditional aggregates, MEDIAN, RANK,
DATEDIF, EPOCH and the row's position (``calc_sql`` compiles the operators and windows).

Each is compiled only where it is exact: Excel's semantics on every dialect that can say
them, and invalid (with the reason) where one cannot, never an approximation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlglot import exp

from assay.semantic.calculations import CallNode, FieldNode, LiteralNode, Node

if TYPE_CHECKING:
    from assay.semantic.compiler.calc_sql import Translator

#: Excel's comparison prefixes of a criterion, the longest first
_COMPARE: tuple[tuple[str, Callable[[exp.Expr, exp.Expr], exp.Expr]], ...] = (
    (">=", lambda a, b: exp.GTE(this=a, expression=b)),
    ("<=", lambda a, b: exp.LTE(this=a, expression=b)),
    ("<>", lambda a, b: exp.NEQ(this=a, expression=b)),
    (">", lambda a, b: exp.GT(this=a, expression=b)),
    ("<", lambda a, b: exp.LT(this=a, expression=b)),
    ("=", lambda a, b: exp.EQ(this=a, expression=b)),
)
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

#: operator -> (the aggregate, its operands: "if" = range, criterion, [values]; "ifs" =
#: [values,] range, criterion, ...; whether the values come first, as in Excel's *IFS)
_CONDITIONAL: dict[str, tuple[str, str]] = {
    "OMNI_FX_SUM_IF": ("SUM", "if"),
    "OMNI_FX_COUNT_IF": ("COUNT", "if"),
    "OMNI_FX_AVERAGE_IF": ("AVERAGE", "if"),
    "OMNI_FX_SUM_IFS": ("SUM", "ifs"),
    "OMNI_FX_COUNT_IFS": ("COUNT", "ifs"),
    "OMNI_FX_AVERAGE_IFS": ("AVERAGE", "ifs"),
    "OMNI_FX_MAX_IFS": ("MAX", "ifs"),
    "OMNI_FX_MIN_IFS": ("MIN", "ifs"),
}
_AGG: dict[str, Callable[[exp.Expr], exp.Expr]] = {
    "SUM": lambda e: exp.Sum(this=e),
    "COUNT": lambda e: exp.Count(this=e),
    "AVERAGE": lambda e: exp.Avg(this=e),
    "MAX": lambda e: exp.Max(this=e),
    "MIN": lambda e: exp.Min(this=e),
}
#: dialects whose MEDIAN is a window function over a whole partition, and (DuckDB) a frame
MEDIAN_COLUMN = frozenset({"duckdb", "mysql", "snowflake", "spark"})
MEDIAN_FRAME = frozenset({"duckdb"})
#: spreadsheet operators Omni has whose meaning the spec does not pin down
NOT_YET = frozenset(
    {
        "OMNI_FX_VLOOKUP", "OMNI_FX_XLOOKUP", "OMNI_FX_TLOOKUP", "OMNI_FX_TEXT",
        "OMNI_FX_PIVOT_INDEX",
    }
)  # fmt: skip


class Invalid(Exception):
    """This calculation cannot be compiled; the message says why, for the summary."""


def whole_number(n: Node) -> int | None:
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
        inner = whole_number(n.operands[0]) if len(n.operands) == 1 else None
        return -inner if inner is not None else None
    return None


class Functions:
    """The functions of one translator (its dialect, partition and row order)."""

    def __init__(self, t: Translator, dialect: str) -> None:
        self.t = t
        self.dialect = dialect

    def compile(self, name: str, n: CallNode) -> exp.Expr | None:
        """``name`` (without the ``Omni.`` namespace) compiled, or None when not one of these."""
        if name in NOT_YET or name.startswith("OMNI_FX_AI_"):
            raise Invalid(f"Unsupported operator {n.operator}: not supported yet")
        if name in _CONDITIONAL:
            return self.conditional(n, *_CONDITIONAL[name])
        if name == "OMNI_FX_RANK":
            return self.rank(n)
        if name == "OMNI_FX_DATEDIF":
            return self.datedif(n)
        if name == "OMNI_EPOCH":
            return self.epoch(n)
        if name == "ABSOLUTE_POSITION":
            return self.position(n)
        return None

    # -- conditional aggregates -------------------------------------------------------------

    def conditional(self, n: CallNode, agg: str, shape: str) -> exp.Expr:
        """``SUMIF(B:B, ">5", C:C)``: ``SUM(CASE WHEN b > 5 THEN c END) OVER ()``, one value
        on every row of the column (of each pivot column). Nothing matching is NULL, as
        ``SUM`` of no rows (Excel would show 0; Omni's SQL, like ours, does not)."""
        ops = list(n.operands)
        values: Node | None = None
        if shape == "if":
            if len(ops) not in (2, 3) or (agg == "COUNT" and len(ops) != 2):
                count = "2" if agg == "COUNT" else "2 or 3"
                raise Invalid(
                    f"{n.operator} takes {count} operands (range, criterion[, values range])"
                )
            if len(ops) == 3:
                values = ops.pop()
            elif agg != "COUNT":
                values = ops[0]
        else:
            if agg != "COUNT":
                if not ops:
                    raise Invalid(f"{n.operator} takes a values range, then range, criterion pairs")
                values = ops.pop(0)
            if not ops or len(ops) % 2:
                raise Invalid(f"{n.operator} takes pairs of range and criterion")
        conditions = [
            self.criterion(self.whole_column(ops[i], n.operator), ops[i + 1], n.operator)
            for i in range(0, len(ops), 2)
        ]
        condition = conditions[0]
        for c in conditions[1:]:
            condition = exp.And(this=condition, expression=c)
        value = exp.Literal.number(1) if values is None else self.whole_column(values, n.operator)
        if agg == "AVERAGE":
            value = exp.Cast(this=value, to=exp.DataType.build("DOUBLE"))
        case = exp.Case(ifs=[exp.If(this=condition, true=value)])
        return self.t.over(_AGG[agg](case))

    def whole_column(self, n: Node, operator: str) -> exp.Expr:
        """A range of a conditional aggregate: the whole column (``C:C``, Omni's
        ``OMNI_OFFSET_MULTI(f, -536870911, 0, 1073741823, 1)``, or the bare field)."""
        if isinstance(n, FieldNode):
            return self.t.node(n)
        if isinstance(n, CallNode) and n.operator == "Omni.OMNI_OFFSET_MULTI":
            value, start, end = self.t.frame(n)
            if start is None and end is None:
                return value
        raise Invalid(f"{operator} over part of a column is not supported yet (ranges: C:C)")

    def criterion(self, value: exp.Expr, n: Node, operator: str) -> exp.Expr:
        """An Excel match criterion (``"Complete"``, ``">1000"``, ``"<>0"``,
        ``">=2024-01-01"``) as a condition on ``value``. Text matches ignore case, as in
        Excel (and alike on every engine: MariaDB's collation would otherwise ignore it and
        DuckDB's and PostgreSQL's not); ``<>`` also matches empty cells, as in Excel."""
        if not isinstance(n, LiteralNode) or n.value is None:
            raise Invalid(f"{operator}: a criterion other than a constant is not supported yet")
        raw = n.value
        if isinstance(raw, bool):
            return exp.EQ(this=value, expression=exp.Boolean(this=raw))
        if isinstance(raw, int | float):
            return self._numeric(value, exp.EQ(this=value, expression=exp.Literal.number(raw)))
        compare, text = _COMPARE[-1][1], raw
        is_not = False
        for prefix, make in _COMPARE:
            if raw.startswith(prefix):
                compare, text, is_not = make, raw[len(prefix) :], prefix == "<>"
                break
        if text == "" or any(c in text for c in "*?~"):
            raise Invalid(
                f"{operator}: criteria for empty cells or with wildcards (* ? ~) are not "
                "supported yet"
            )
        if _NUMBER.match(text):
            test = self._numeric(value, compare(value, exp.Literal.number(text)))
        elif _DATE.match(text):
            date = exp.Cast(this=exp.Literal.string(text), to=exp.DataType.build("DATE"))
            test = compare(value, date)
        else:
            as_text = exp.Lower(this=exp.Cast(this=value, to=exp.DataType.build("VARCHAR")))
            test = compare(as_text, exp.Literal.string(text.lower()))
        if is_not:
            empty = exp.Is(this=value.copy(), expression=exp.Null())
            return exp.Paren(this=exp.Or(this=test, expression=empty))
        return test

    def _numeric(self, value: exp.Expr, test: exp.Expr) -> exp.Expr:
        """``test``, a comparison with a number, on MySQL/MariaDB only where ``value`` reads
        as a number: they compare ``'1-URGENT' = 1`` as true (the text's leading digits),
        where the other engines refuse the comparison."""
        if self.dialect != "mysql":
            return test
        pattern = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"
        found = exp.Anonymous(  # MariaDB has REGEXP_INSTR, not MySQL 8's REGEXP_LIKE
            this="REGEXP_INSTR",
            expressions=[
                exp.Cast(this=value.copy(), to=exp.DataType.build("CHAR")),
                exp.Literal.string(pattern),
            ],
        )
        number = exp.GT(this=found, expression=exp.Literal.number(0))
        return exp.Paren(this=exp.And(this=number, expression=test))

    # -- MEDIAN, RANK ----------------------------------------------------------------------

    def median(self, value: exp.Expr, framed: bool) -> exp.Expr:
        """MEDIAN as a window: an ordered-set aggregate on most engines, which cannot be one
        (PostgreSQL's PERCENTILE_CONT ... WITHIN GROUP refuses OVER)."""
        if self.dialect not in MEDIAN_COLUMN:
            raise Invalid(f"OMNI_FX_MEDIAN is not supported yet on {self.dialect}")
        if framed and self.dialect not in MEDIAN_FRAME:
            raise Invalid(
                f"OMNI_FX_MEDIAN over a range of rows is not supported yet on {self.dialect} "
                "(only over the whole column)"
            )
        if self.dialect == "mysql":  # MariaDB's MEDIAN() OVER; sqlglot writes PERCENTILE_CONT
            return exp.Anonymous(this="MEDIAN", expressions=[value])
        return exp.Median(this=value)

    def rank(self, n: CallNode) -> exp.Expr:
        """Excel ``RANK(B1, B:B[, order])``: 1 + the number of values larger (order 0,
        the default) or smaller (any other order), an empty cell has no rank."""
        ops = n.operands
        if len(ops) not in (2, 3):
            raise Invalid(f"{n.operator} takes a value, a range and an optional order")
        column = self.whole_column(ops[1], n.operator)
        if not isinstance(ops[0], FieldNode) or self.t.node(ops[0]) != column:
            raise Invalid(
                f"{n.operator} of a value other than the row's own cell of the range is not "
                "supported yet"
            )
        order = 0
        if len(ops) == 3:
            got = whole_number(ops[2])
            if got is None:
                raise Invalid(f"{n.operator} order must be a whole number")
            order = got
        ordered = exp.Ordered(this=column.copy(), desc=order == 0, nulls_first=False)
        empty = exp.Is(this=column.copy(), expression=exp.Null())
        ranked = self.t.over(exp.Rank(), order=[ordered])
        return exp.Case(ifs=[exp.If(this=empty, true=exp.Null())], default=ranked)

    # -- dates, position -------------------------------------------------------------------

    def datedif(self, n: CallNode) -> exp.Expr:
        """Excel ``DATEDIF(start, end, unit)`` (Omni: ``[unit, start, end]``): whole days,
        months or years from start to end; NULL when start is after end (Excel's #NUM!)."""
        ops = n.operands
        unit = ops[0].value if ops and isinstance(ops[0], LiteralNode) else None
        if len(ops) != 3 or unit not in ("DAY", "MONTH", "YEAR"):
            raise Invalid(f"{n.operator} takes a unit (DAY, MONTH or YEAR), a start and an end")
        start, end = (exp.Cast(this=self.t.node(o), to=exp.DataType.build("DATE")) for o in ops[1:])
        if unit == "DAY":
            value: exp.Expr = exp.DateDiff(
                this=end.copy(), expression=start.copy(), unit=exp.var("DAY")
            )
        else:
            years = exp.Sub(this=exp.Year(this=end.copy()), expression=exp.Year(this=start.copy()))
            months = exp.Add(
                this=exp.Mul(this=exp.Paren(this=years), expression=exp.Literal.number(12)),
                expression=exp.Paren(
                    this=exp.Sub(
                        this=exp.Month(this=end.copy()), expression=exp.Month(this=start.copy())
                    )
                ),
            )
            # a month is whole once the end's day of month reaches the start's
            short = exp.LT(this=exp.Day(this=end.copy()), expression=exp.Day(this=start.copy()))
            value = exp.Sub(
                this=exp.Paren(this=months),
                expression=exp.Case(
                    ifs=[exp.If(this=short, true=exp.Literal.number(1))],
                    default=exp.Literal.number(0),
                ),
            )
            if unit == "YEAR":
                # whole months are never negative here, so FLOOR is integer division
                whole = exp.Div(this=exp.Paren(this=value), expression=exp.Literal.number(12))
                value = exp.Floor(this=whole)
                value = exp.Cast(this=value, to=exp.DataType.build("BIGINT"))
        after = exp.GT(this=start.copy(), expression=end.copy())
        return exp.Case(ifs=[exp.If(this=after, true=exp.Null())], default=value)

    def epoch(self, n: CallNode) -> exp.Expr:
        """Whole seconds from 1970-01-01 00:00 to the value, read as the time it shows (no
        time zone shift on any engine: MariaDB's UNIX_TIMESTAMP would apply the session's)."""
        if len(n.operands) != 1:
            raise Invalid(f"{n.operator} takes one value")
        ts = exp.Cast(this=self.t.node(n.operands[0]), to=exp.DataType.build("TIMESTAMP"))
        if self.dialect == "mysql":
            return exp.TimestampDiff(
                this=ts,
                expression=exp.Literal.string("1970-01-01 00:00:00"),
                unit=exp.var("SECOND"),
            )
        if self.dialect == "bigquery":
            return exp.UnixSeconds(this=ts)
        if self.dialect in ("duckdb", "postgres", "snowflake", "trino"):
            seconds = exp.Floor(this=exp.TimeToUnix(this=ts))
            return exp.Cast(this=seconds, to=exp.DataType.build("BIGINT"))
        raise Invalid(f"{n.operator} is not supported yet on {self.dialect}")

    def position(self, n: CallNode) -> exp.Expr:
        """``ABSOLUTE_POSITION()`` as a value: the row's position (1, 2, ...) in its series.
        With an operand it names an absolute row, which only OMNI_OFFSET_MULTI reads."""
        if n.operands:
            raise Invalid(
                f"{n.operator} with an operand outside OMNI_OFFSET_MULTI is not supported yet"
            )
        return self.t.over(exp.RowNumber(), order=self.t.by_row())
