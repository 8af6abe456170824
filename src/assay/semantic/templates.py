"""Omni SQL templates: ``${view.field}`` / ``${field}`` references inside model SQL.

A template is parsed once, at load time, into a sqlglot tree in which every reference is a
``Ref`` node; the loader then replaces each ``Ref`` by the referenced field's own tree. Values
never reach SQL through these strings: only model authors write them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

_REF = re.compile(r"\$\{\s*([^}]*?)\s*\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


class Ref(exp.Expression):
    """A ``${...}`` reference awaiting resolution. Never rendered."""

    arg_types = {"view": False, "name": True}

    @property
    def view(self) -> str | None:
        v = self.args.get("view")
        return str(v) if v else None

    @property
    def field(self) -> str:
        return str(self.args["name"])


class MeasureRef(exp.Expression):
    """A reference from a derived measure to another measure, replaced at compile time."""

    arg_types = {"view": True, "name": True}

    @property
    def measure_key(self) -> str:
        """``view.measure`` (sqlglot reserves ``key`` for the node type)."""
        return f"{self.args['view']}.{self.args['name']}"


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed model SQL snippet and the references it makes."""

    tree: exp.Expr
    refs: tuple[tuple[str | None, str], ...]


class TemplateError(ValueError):
    """A model SQL snippet cannot be parsed (message says why)."""


def parse_template(sql: str, *, own_view: str, dialect: str) -> Template:
    """Parse ``sql`` and qualify bare columns with ``own_view`` (the view's table alias).

    >>> t = parse_template("${l_price} * (1 - discount)", own_view="li", dialect="duckdb")
    >>> t.refs
    ((None, 'l_price'),)
    """
    found: list[tuple[str | None, str]] = []

    def _swap(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner.upper() == "TABLE":
            raise TemplateError("${TABLE} is not supported: write the column name instead")
        if not _NAME.match(inner):
            raise TemplateError(
                f"invalid reference ${{{inner}}}: expected ${{field}} or ${{view.field}}"
            )
        view, _, name = inner.rpartition(".")
        found.append((view or None, name))
        return f"__assay_ref_{len(found) - 1}__"

    text = _REF.sub(_swap, sql)
    if "${" in text:
        raise TemplateError("unterminated ${...} reference")
    try:
        tree = sqlglot.parse_one(text, read=dialect)
    except ParseError as exc:
        raise TemplateError(f"invalid SQL: {_first_line(exc)}") from exc
    if not isinstance(tree, exp.Expr) or isinstance(tree, exp.Query):
        raise TemplateError("expected a SQL expression, not a statement")

    def _resolve(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table:
            name = node.name
            if name.startswith("__assay_ref_") and name.endswith("__"):
                view, field = found[int(name[len("__assay_ref_") : -2])]
                return Ref(view=view, name=field)
            return exp.column(node.this.copy(), table=exp.to_identifier(own_view))
        return node

    tree = strip_annotations(tree.transform(_resolve, copy=False))
    return Template(tree=tree, refs=tuple(found))


def strip_annotations(tree: exp.Expr) -> exp.Expr:
    """Drop parser type annotations and comments: the compiler copies model trees on every
    query, and sqlglot deep-copies those extras through the slow generic path."""
    for node in tree.walk():
        node._type = None
        node._meta = None  # token positions from the parser
        node.comments = None
    return tree


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def contains_aggregate(tree: exp.Expr) -> bool:
    """Whether the snippet aggregates (a raw SQL measure such as ``SUM(x) / COUNT(y)``)."""
    return tree.find(exp.AggFunc) is not None
