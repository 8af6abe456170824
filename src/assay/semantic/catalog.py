"""What the database says about its tables: column types.

Optional input to the loader. With it, every column dimension gets Omni's ``data_type``, date
and time columns get Omni's default timeframes when the model lists none, and columns that do
not exist are reported (as warnings: the warehouse may change under a model, and one missing
column must not take every other field down with it).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp
from sqlglot.errors import ParseError

# "table" and "schema.table" (lower case) -> column name (lower case) -> the database's type
Catalog = Mapping[str, Mapping[str, str]]
DEFAULT_TIMEFRAMES = ("raw", "date", "week", "month", "quarter", "year")


def omni_type(sql_type: str, dialect: str = "duckdb") -> str:
    """Omni's ``data_type`` for a database type name."""
    try:
        return data_type_of(exp.DataType.build(sql_type, dialect=dialect))
    except (ParseError, ValueError):
        return "UNKNOWN"


def data_type_of(dtype: exp.DataType) -> str:
    """Omni's ``data_type`` for a sqlglot type (a column's, or a CAST's target)."""
    if dtype.is_type(*exp.DataType.NUMERIC_TYPES):
        return "NUMBER"
    if dtype.is_type(*exp.DataType.TEMPORAL_TYPES):
        return "TIMESTAMP"
    if dtype.is_type(*exp.DataType.TEXT_TYPES):
        return "STRING"
    if dtype.is_type(exp.DataType.Type.BOOLEAN):
        return "BOOLEAN"
    if dtype.is_type(exp.DataType.Type.ARRAY):
        return "ARRAY"
    if dtype.is_type(exp.DataType.Type.JSON):
        return "JSON"
    if dtype.is_type(exp.DataType.Type.INTERVAL):
        return "INTERVAL"
    return (
        "OTHER_UNGROUPABLE"
        if dtype.this in (exp.DataType.Type.STRUCT, exp.DataType.Type.MAP)
        else "UNKNOWN"
    )


def table_columns(catalog: Catalog, source: exp.Expr) -> Mapping[str, str] | None:
    """The columns of a view's source table, or None for derived tables and unknown tables."""
    table = source.this if isinstance(source, exp.Alias) else source
    if not isinstance(table, exp.Table):
        return None
    name = table.name.lower()
    if table.db:
        return catalog.get(f"{table.db.lower()}.{name}")
    return catalog.get(name)
