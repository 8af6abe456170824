"""Read an OmniSQL statement (semantic layer): ``${...}`` references swapped for placeholder
names, parsed with sqlglot, and held to the one shape Assay can govern.

Governance is why the shape is narrow: the model's access rules are added to one SELECT over
one ``${view}``/``${topic}``, so anything that could read rows past them (a subquery, a UNION,
a CTE, a table named directly, a column that is not a ``${view.field}``, a function sqlglot
does not know) is refused by name, never passed through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from assay.errors import InvalidQuery, NotSupported

_REF = re.compile(r"\$\{([^{}]*)\}")
PLACEHOLDER = "__assay_omnisql_ref_"
# The clauses of the one SELECT governed here; any other (QUALIFY, WINDOW, INTO, FOR UPDATE,
# LATERAL VIEW, SAMPLE ...) is refused by its name.
_CLAUSES = {"expressions", "from_", "where", "group", "having", "order", "limit", "offset"}
_CLAUSE_NAMES = {"with_": "WITH (a CTE)", "distinct": "SELECT DISTINCT", "joins": "JOIN"}
# Functions that read files or other databases, whatever rules hold the statement.
_READERS = tuple(
    getattr(exp, name) for name in ("ReadCSV", "ReadParquet", "ReadJSON") if hasattr(exp, name)
)


@dataclass(frozen=True, slots=True)
class Statement:
    """A parsed OmniSQL SELECT; its ``${...}`` references are columns named by placeholder."""

    select: exp.Select
    refs: dict[str, str]  # placeholder -> the reference's text (``view.field[grain]``)
    source: str  # what FROM names: a topic or a view
    limit: int | None
    offset: int

    def shown(self, node: exp.Expr) -> str:
        """A node's SQL as the user wrote it, references and all (for messages)."""
        text = node.sql()
        for placeholder in sorted(self.refs, key=len, reverse=True):
            text = text.replace(placeholder, "${" + self.refs[placeholder] + "}")
        return text


def parse_statement(sql: str, dialect: str) -> Statement:
    """Parse ``sql`` (written for ``dialect``, the model's database) into a ``Statement``.

    Raises:
        InvalidQuery: it does not parse, is not one SELECT, or reads what rules cannot hold.
        NotSupported: a SELECT shape Assay does not plan yet (window functions, DISTINCT).
    """
    if PLACEHOLDER in sql:
        raise InvalidQuery(f"userEditedSQL must not contain {PLACEHOLDER!r}")
    refs: dict[str, str] = {}
    names: dict[str, str] = {}

    def swap(match: re.Match[str]) -> str:
        text = match.group(1).strip()
        if text not in names:
            names[text] = f"{PLACEHOLDER}{len(names)}"
            refs[names[text]] = text
        return names[text]

    text = _REF.sub(swap, sql)
    try:
        parsed = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except SqlglotError as exc:
        raise InvalidQuery(f"userEditedSQL does not parse as {dialect} SQL: {_first(exc)}") from exc
    if len(parsed) != 1:
        raise InvalidQuery(f"userEditedSQL must be one SELECT statement, not {len(parsed)}")
    (select,) = parsed
    if isinstance(select, exp.SetOperation):
        raise InvalidQuery(
            f"userEditedSQL: {type(select).__name__.upper()} is not supported in OmniSQL: "
            "write one SELECT over ${topic}"
        )
    if not isinstance(select, exp.Select):
        raise InvalidQuery(
            f"userEditedSQL must be a SELECT; {select.key.upper()} statements are refused"
        )
    for key, value in select.args.items():
        if value and key not in _CLAUSES:
            what = _CLAUSE_NAMES.get(key, key.rstrip("_").upper())
            hint = " (joins come from the topic: select FROM ${topic})" if key == "joins" else ""
            error = NotSupported if key == "distinct" else InvalidQuery
            raise error(f"userEditedSQL: {what} is not supported in OmniSQL{hint}")
    source = _source(select, refs)
    _check_nodes(select, refs)
    _restore_literals(select, refs)
    return Statement(select, refs, source, _number(select, "limit"), _number(select, "offset") or 0)


def _first(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if errors:
        return str(errors[0].get("description") or exc)
    return str(exc).splitlines()[0]


def _source(select: exp.Select, refs: dict[str, str]) -> str:
    from_ = select.args.get("from_")
    table = from_.this if isinstance(from_, exp.From) else None
    if not isinstance(table, exp.Table) or table.args.get("db") or table.name not in refs:
        raise InvalidQuery(
            "userEditedSQL: FROM must name a topic or view as ${topic} or ${view}; tables are "
            "not queried by name in OmniSQL"
        )
    extra = [k for k, v in table.args.items() if v and k not in ("this", "alias")]
    if extra:  # a PIVOT, a sample, hints ... on the FROM would be dropped with it
        raise InvalidQuery(
            f"userEditedSQL: {extra[0].upper()} on the FROM is not supported in OmniSQL"
        )
    name = refs[table.name]
    if not name or "." in name or "[" in name:
        raise InvalidQuery(f"userEditedSQL: FROM ${{{name}}} must name a topic or view")
    return name


def _check_nodes(select: exp.Select, refs: dict[str, str]) -> None:
    """Refuse every node that could read rows or columns the model's rules do not hold."""
    from_table = select.args["from_"].this
    aliases = {e.alias for e in select.expressions if isinstance(e, exp.Alias)}
    for node in select.walk():
        if node is select or node is from_table:
            continue
        if isinstance(node, exp.Select | exp.Subquery | exp.SetOperation):
            raise InvalidQuery("userEditedSQL: subqueries are not supported in OmniSQL")
        if isinstance(node, exp.Table):
            raise InvalidQuery(
                f'userEditedSQL: "{node.sql()}" names a table: OmniSQL reads only the '
                "FROM ${topic} (write fields as ${view.field})"
            )
        if isinstance(node, exp.Window):
            raise NotSupported("userEditedSQL: window functions are not supported in OmniSQL yet")
        if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
            raise InvalidQuery("userEditedSQL: SELECT * is not supported: name each ${view.field}")
        if isinstance(node, exp.Anonymous | exp.Command | exp.Placeholder | exp.Parameter):
            what = node.name if isinstance(node, exp.Anonymous) else node.sql()
            raise InvalidQuery(
                f'userEditedSQL: "{what}" is not a SQL function or value OmniSQL knows; use '
                "standard functions over ${view.field} references"
            )
        if _READERS and isinstance(node, _READERS):
            raise InvalidQuery(f"userEditedSQL: {node.key.upper()} reads files; refused")
        if isinstance(node, exp.Column):
            if node.table or (node.name not in refs and node.name not in aliases):
                raise InvalidQuery(
                    f'userEditedSQL: column "{node.sql()}" is not a field reference: write '
                    "${view.field}"
                )
            ref = refs.get(node.name, "")
            if ref and "." not in ref:
                raise InvalidQuery(
                    f"userEditedSQL: ${{{ref}}} names a view; in an expression write "
                    "${view.field}"
                )


def _restore_literals(select: exp.Select, refs: dict[str, str]) -> None:
    """A ``${...}`` inside a quoted string is text, not a reference: put it back."""
    for lit in select.find_all(exp.Literal):
        if lit.is_string and PLACEHOLDER in lit.this:
            value = lit.this
            for placeholder in sorted(refs, key=len, reverse=True):
                value = value.replace(placeholder, "${" + refs[placeholder] + "}")
            lit.set("this", value)


def _number(select: exp.Select, clause: str) -> int | None:
    node = select.args.get(clause)
    if node is None:
        return None
    value = node.args.get("expression") or node.this
    if not (isinstance(value, exp.Literal) and value.is_int and int(value.this) >= 0):
        raise InvalidQuery(f"userEditedSQL: {clause.upper()} must be a whole number")
    return int(value.this)
