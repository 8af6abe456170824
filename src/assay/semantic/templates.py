"""Omni SQL templates: ``${view.field}`` / ``${field}`` references and
``{{ omni_attributes.NAME }}`` user attributes inside model SQL.

A template is parsed once, at load time, into a sqlglot tree in which every reference is a
``Ref`` node; the loader then replaces each ``Ref`` by the referenced field's own tree. A user
attribute becomes an ``AttributeRef`` node, bound per query to the user's values as SQL
literals (never spliced as text); the node has no SQL of its own, so an unbound one can never
reach a database. Only model authors write these strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

_REF = re.compile(r"\$\{\s*([^}]*?)\s*\}")
# Omni's IDE quotes attributes itself ("the value is always treated as a string"), so a
# hand-quoted '{{ omni_attributes.x }}' means the same as the bare one.
_ATTRIBUTE = re.compile(
    r"'\s*\{\{\s*omni_attributes\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*'"
    r"|\{\{\s*omni_attributes\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}"
)
_ATTRIBUTE_TOKEN = "__assay_attr_"
_REF_TOKEN = "__assay_ref_"
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


class AttributeRef(exp.Expression):
    """``{{ omni_attributes.NAME }}``: the querying user's value(s), bound at compile time."""

    arg_types = {"this": True}

    @property
    def attribute(self) -> str:
        return str(self.args["this"])


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed model SQL snippet, the references it makes and the attributes it reads."""

    tree: exp.Expr
    refs: tuple[tuple[str | None, str], ...]
    attributes: tuple[str, ...] = ()


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
        return f"{_REF_TOKEN}{len(found) - 1}__"

    text, attributes = _swap_attributes(sql)
    text = _REF.sub(_swap, text)
    if "${" in text:
        raise TemplateError("unterminated ${...} reference")
    tree = _parse(text, dialect)
    if not isinstance(tree, exp.Expr) or isinstance(tree, exp.Query):
        raise TemplateError("expected a SQL expression, not a statement")

    def _resolve(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table:
            name = node.name
            if (i := _placeholder(name, _REF_TOKEN, len(found))) is not None:
                view, field = found[i]
                return Ref(view=view, name=field)
            if (i := _placeholder(name, _ATTRIBUTE_TOKEN, len(attributes))) is not None:
                return AttributeRef(this=attributes[i])
            return exp.column(node.this.copy(), table=exp.to_identifier(own_view))
        return node

    tree = strip_annotations(tree.transform(_resolve, copy=False))
    _check_attributes_bound(tree)
    return Template(tree=tree, refs=tuple(found), attributes=tuple(dict.fromkeys(attributes)))


def parse_view_sql(sql: str, *, dialect: str) -> tuple[exp.Query, tuple[str, ...]]:
    """A derived-table view's SELECT, with its user attributes as ``AttributeRef`` nodes."""
    text, attributes = _swap_attributes(sql)
    tree = _parse(text, dialect)
    if not isinstance(tree, exp.Query):
        raise TemplateError("a view's sql must be a SELECT query")

    def _resolve(node: exp.Expr) -> exp.Expr:
        if (
            isinstance(node, exp.Column)
            and not node.table
            and (i := _placeholder(node.name, _ATTRIBUTE_TOKEN, len(attributes))) is not None
        ):
            return AttributeRef(this=attributes[i])
        return node

    query = tree.transform(_resolve, copy=False)
    assert isinstance(query, exp.Query)  # only columns were swapped below the query
    _check_attributes_bound(query)
    return query, tuple(dict.fromkeys(attributes))


def _parse(text: str, dialect: str) -> exp.Expr | None:
    try:
        return sqlglot.parse_one(text, read=dialect)
    except (ParseError, TokenError) as exc:  # TokenError: an unterminated quote or comment
        raise TemplateError(f"invalid SQL: {_first_line(exc)}") from exc
    except RecursionError:  # sqlglot's parser recurses once per bracket: "[[[[..." or "((((..."
        raise TemplateError("invalid SQL: nested too deeply") from None
    except Exception as exc:  # sqlglot's own bugs on some bad SQL ("x{a:${:}" in MySQL)
        raise TemplateError(f"invalid SQL: the parser failed ({type(exc).__name__})") from exc


def _swap_attributes(sql: str) -> tuple[str, list[str]]:
    """``sql`` with each ``{{ omni_attributes.NAME }}`` as a placeholder column, and the
    attribute names in placeholder order."""
    names: list[str] = []

    def _swap(match: re.Match[str]) -> str:
        names.append(match.group(1) or match.group(2))
        return f"{_ATTRIBUTE_TOKEN}{len(names) - 1}__"

    text = _ATTRIBUTE.sub(_swap, sql)
    if "{{" in text or "}}" in text:
        raise TemplateError(
            "unsupported {{ }} template: model SQL may use {{ omni_attributes.NAME }} only"
        )
    return text, names


def _placeholder(name: str, token: str, count: int) -> int | None:
    """The index of the placeholder column ``name``, or None for a name that only looks like
    one: run into its neighbours ("${a}${b}", "${a}x") or written by hand. Such a name stays
    in the tree, where ``_check_attributes_bound`` refuses it."""
    if not name.startswith(token) or not name.endswith("__"):
        return None
    digits = name[len(token) : -2]
    if not (digits.isascii() and digits.isdigit() and len(digits) < 6):
        return None
    return int(digits) if int(digits) < count else None


def _check_attributes_bound(tree: exp.Expr) -> None:
    """A placeholder left anywhere but a value position (a table or column name, or inside a
    quoted string) would not be a value: refuse it rather than guess."""
    for node in tree.walk():
        if isinstance(node, exp.Literal) and _ATTRIBUTE_TOKEN in str(node.this):
            raise TemplateError(
                "a user attribute is used inside a quoted string: {{ omni_attributes.NAME }} "
                "stands for a whole value (a SQL literal); build text around it with ||, e.g. "
                "'%' || {{ omni_attributes.NAME }} || '%'"
            )
        if isinstance(node, exp.Identifier) and _ATTRIBUTE_TOKEN in str(node.this):
            raise TemplateError(
                "a user attribute is used as a table or column name: {{ omni_attributes.NAME }} "
                "stands for a value (a SQL literal) only"
            )
        # Any other name (an alias, a function, a qualified column's table) or string that
        # still holds a placeholder: the reference or attribute was not read as a value.
        texts = (
            [] if isinstance(node, Ref) else [v for v in node.args.values() if isinstance(v, str)]
        )
        if any(_REF_TOKEN in t.lower() or _ATTRIBUTE_TOKEN in t.lower() for t in texts):
            raise TemplateError(
                "a ${...} reference or {{ omni_attributes.NAME }} stands for a whole value: it "
                "cannot be part of a name (of a table, column, alias or function) or of a string"
            )


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
