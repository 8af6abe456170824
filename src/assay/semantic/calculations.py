"""Table calculations (``query.calculations``) read from Omni's query JSON.

Omni sends a calculation as a parse tree (``sql_expression``), never as a formula to parse:
the ``original_formula`` is what the user typed and is informational only. This module reads
the tree into plain nodes and checks the request's shape (names, references between
calculations). Which operators compile to SQL is the compiler's business
(``compiler/calcs.py``): an operator it cannot compile makes that one calculation invalid,
which is a property of the calculation, not a malformed request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assay.errors import InvalidQuery, NotSupported, did_you_mean

#: The keys a calculation may carry. Omni drops unknown keys; we name them instead, since a
#: mistyped ``swallow_errors`` would otherwise change what a failing calculation does.
_KEYS = frozenset(
    {
        "calc_name", "sql_expression", "label", "format", "description", "original_formula",
        "outside_pivot", "swallow_errors", "allow_refs_to_unselected_fields", "drill_disabled",
        "sql", "type", "data_type", "display_sql", "is_dimension", "align", "suffix",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class FieldNode:
    """A column of the result: a selected field (``view.field[grain]``) or a calculation."""

    name: str


@dataclass(frozen=True, slots=True)
class LiteralNode:
    value: str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class SqlTypeNode:
    """A CAST target, in Calcite's type names (DOUBLE, DECIMAL, VARCHAR ...)."""

    type_name: str
    precision: int | None
    scale: int | None


@dataclass(frozen=True, slots=True)
class CallNode:
    operator: str  # "<namespace>.<NAME>", e.g. "Omni.OMNI_FX_SUM"
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class OtherNode:
    """A node type Omni has and the compiler does not (window_call, reference, sub_query)."""

    type: str


Node = FieldNode | LiteralNode | SqlTypeNode | CallNode | OtherNode


@dataclass(frozen=True, slots=True)
class Calculation:
    name: str
    expression: Node
    label: str | None = None
    format: str | None = None
    description: str | None = None
    swallow_errors: bool = False
    allow_refs_to_unselected_fields: bool = False
    #: on a pivoted query: across each pivot row's columns, not down each pivot column
    outside_pivot: bool = False
    #: listed in ``fields`` (returned); an unlisted one is computed only for the calcs using it
    listed: bool = True

    def references(self) -> list[str]:
        """The column names the calculation reads, in order of appearance."""
        out: list[str] = []
        _collect(self.expression, out)
        return out


def _collect(node: Node, out: list[str]) -> None:
    if isinstance(node, FieldNode):
        out.append(node.name)
    elif isinstance(node, CallNode):
        for child in node.operands:
            _collect(child, out)


#: Query keys whose extra rows calculations do not know what to do with: refused, with why.
_NOT_WITH = {
    "column_totals": (
        "column totals: what a calculation shows on a totals row (the row's own arithmetic, "
        "or the calculation's total) and whether totals rows count in percent of total, "
        "running totals and offsets is not settled"
    ),
    "row_totals": (
        "row totals: what a calculation shows in a pivot row's total cell (the cell's own "
        "arithmetic, or a total of the row's calculated cells) is not settled"
    ),
}


def parse_calculations(query: Mapping[str, Any]) -> tuple[Calculation, ...]:
    """Read ``query.calculations`` (a calculation is returned where ``query.fields`` lists
    its name).

    Raises ``InvalidQuery`` naming the calculation and the problem, ``NotSupported`` for a
    request shape we do not evaluate (calculations with totals).
    """
    raw = query.get("calculations")
    if raw in (None, []):
        return ()
    for key, what in _NOT_WITH.items():
        if query.get(key):
            raise NotSupported(
                f"query.calculations: calculations with {what}; remove {key!r} or the calculations"
            )
    listed = query.get("fields")
    fields: Sequence[str] = listed if isinstance(listed, list) else ()
    if not isinstance(raw, list):
        raise InvalidQuery("query.calculations: expected a list of {calc_name, sql_expression}")
    calcs: list[Calculation] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        where = f"query.calculations[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidQuery(f"{where}: expected an object {{calc_name, sql_expression}}")
        for key in item:
            if key not in _KEYS:
                hint = did_you_mean(str(key), _KEYS)
                raise InvalidQuery(f"{where}: unknown key {key!r}.{hint}")
        name = item.get("calc_name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidQuery(f"{where}.calc_name: expected a non-empty name")
        where = f"query.calculations[{i}] ({name!r})"
        if ":" in name or "." in name:
            raise InvalidQuery(f"{where}: a calc_name may not contain ':' or '.'")
        if name.startswith(("$omni_", "__omni_")):
            raise InvalidQuery(f"{where}: names starting $omni_ or __omni_ are Omni's own")
        if name in names:
            raise InvalidQuery(f"{where}: calc_name {name!r} is used twice")
        names.add(name)
        tree = item.get("sql_expression")
        if tree is None:
            raise InvalidQuery(
                f"{where}: sql_expression is required. The query API takes Omni's parse tree, "
                "not original_formula: copy the calculation's sql_expression from the "
                "workbook's query JSON"
            )
        calcs.append(
            Calculation(
                name=name,
                expression=_node(tree, f"{where}.sql_expression"),
                label=_text(item, "label", where),
                format=_text(item, "format", where),
                description=_text(item, "description", where),
                swallow_errors=_flag(item, "swallow_errors", where),
                allow_refs_to_unselected_fields=_flag(
                    item, "allow_refs_to_unselected_fields", where
                ),
                outside_pivot=_flag(item, "outside_pivot", where),
                listed=name in fields,
            )
        )
    _check_unlisted(calcs)
    return tuple(calcs)


def _check_unlisted(calcs: list[Calculation]) -> None:
    """A calculation not in ``fields`` is computed for the listed ones that use it; one that
    nothing uses would be computed for nothing, which is most likely a forgotten field."""
    used = {r for c in calcs for r in c.references()}
    for c in calcs:
        if not c.listed and c.name not in used:
            raise InvalidQuery(
                f"query.calculations: {c.name!r} is not in query.fields, so it would never be "
                f"returned; add {c.name!r} to fields (its position there is its column)"
            )


def _text(item: Mapping[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidQuery(f"{where}.{key}: expected a string, got {value!r}")
    return value


def _flag(item: Mapping[str, Any], key: str, where: str) -> bool:
    value = item.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidQuery(f"{where}.{key}: expected true or false, got {value!r}")
    return value


def _node(raw: Any, where: str) -> Node:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
        raise InvalidQuery(f"{where}: expected a node object with a 'type'")
    kind = raw["type"]
    if kind == "field":
        name = raw.get("field_name")
        if not isinstance(name, str) or not name:
            raise InvalidQuery(f"{where}: a field node needs a field_name")
        return FieldNode(name.strip())
    if kind == "literal":
        if "value" not in raw:
            raise InvalidQuery(f"{where}: a literal node needs a value")
        value = raw["value"]
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidQuery(f"{where}: {value!r} is not a number a database can take")
        if value is not None and not isinstance(value, str | int | float | bool):
            # Calcite enum literals (window bounds) only appear inside window_call nodes.
            return OtherNode(f"literal of {type(value).__name__}")
        return LiteralNode(value)
    if kind == "call":
        operator = raw.get("operator")
        operands = raw.get("operands", [])
        if not isinstance(operator, str) or not operator:
            raise InvalidQuery(f"{where}: a call node needs an operator")
        if not isinstance(operands, list):
            raise InvalidQuery(f"{where}.operands: expected a list")
        children = tuple(_node(o, f"{where}.operands[{j}]") for j, o in enumerate(operands))
        return CallNode(operator, children)
    if kind == "sql_type":
        type_name = raw.get("type_name_name")
        if not isinstance(type_name, str) or not type_name:
            raise InvalidQuery(f"{where}: a sql_type node needs a type_name_name")
        return SqlTypeNode(type_name.upper(), _int(raw.get("precision")), _int(raw.get("scale")))
    if kind in ("window_call", "reference", "sub_query"):
        return OtherNode(kind)
    raise InvalidQuery(
        f"{where}: unknown node type {kind!r}; expected field, literal, call or sql_type"
    )


def _int(value: Any) -> int | None:
    """Calcite writes an absent precision or scale as 0 or a negative number."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
