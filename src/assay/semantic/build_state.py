"""Shared state of a model build: the files, the issues found so far, and reading YAML into
the file shapes so that every problem is reported with its file and YAML path.

The build runs in passes, one class per pass (this one, ``build_fields``, ``build_topics``),
each inheriting the one before; ``loader`` puts them together.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from sqlglot import exp

from assay.errors import ModelIssue, did_you_mean
from assay.semantic.catalog import Catalog
from assay.semantic.files import (
    AccessFilterFile,
    DimensionFile,
    LevelOfDetailFile,
    MeasureFile,
    ViewFile,
)
from assay.semantic.filters import Filter, FilterError, parse_yaml_filter
from assay.semantic.model import AccessGrant, Dimension, GrantRule
from assay.semantic.query_views import QueryViewSpec
from assay.semantic.templates import Ref, Template, TemplateError, parse_template

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# libyaml's scanner slows quadratically with [ and { nesting and its composer overflows the C
# stack near 30,000 levels (the process dies): deeper files are refused before it sees them.
MAX_NESTING = 100
_BRACKETS = re.compile(r"[\[\]{}]")


class BuildState:
    def __init__(
        self,
        files: Mapping[str, str],
        *,
        default_name: str,
        catalog: Catalog | None = None,
        attributes: Collection[str] | None = None,
    ) -> None:
        self.catalog = catalog
        # The organization's user attributes, when the caller knows them (a server does; a
        # model folder checked on its own does not): names the model reads are checked.
        self.known_attributes = None if attributes is None else frozenset(attributes)
        self.attributes_used: set[str] = set()
        self.access_grants: dict[str, AccessGrant] = {}
        self.default_grants: GrantRule | None = None
        self.default_filters: tuple[AccessFilterFile, ...] = ()
        self.columns: dict[str, Mapping[str, str] | None] = {}  # view -> its table's columns
        #: views whose table is a semantic query, compiled once the model is built
        self.query_views: list[QueryViewSpec] = []
        #: the model's cache policies (name -> seconds), and the age of its default one
        self.cache_policies: dict[str, float] = {}
        self.default_cache_age: float | None = None
        self.cache_policies_known = True
        self.files = dict(files)
        self.name = default_name
        self.issues: list[ModelIssue] = []
        self.dialect = "duckdb"
        self.view_files: dict[str, tuple[str, ViewFile]] = {}
        #: ``join_to_view_as`` aliases: alias -> the view it is a second copy of (each alias
        #: is also in ``view_files``, with its target's file and fields)
        self.alias_of: dict[str, str] = {}
        self.templates: dict[str, Template] = {}  # "view.dimension" -> parsed sql
        self.dimensions: dict[str, Dimension] = {}
        self._resolving: list[str] = []
        # derived measure -> (file, yaml path, measures it uses), for the cycle check
        self._derived_refs: dict[str, tuple[str, str, list[str]]] = {}
        # Views ("orders") and fields ("orders.amount") whose problems are already reported:
        # anything that refers to them stays quiet instead of piling up knock-on issues.
        self.quiet: set[str] = set()

    def issue(self, file: str, path: str, message: str, *, warning: bool = False) -> None:
        self.issues.append(ModelIssue(file, path, message, is_warning=warning))

    # ------------------------------------------------------------ pass 1: structure

    def parse(
        self, file: str, shape: type[BaseModel], *, many: bool = False, keep_failures: bool = False
    ) -> Any:
        """The file as ``shape`` (``many``: a list of them, failures left out, or kept as None
        with ``keep_failures`` so that positions match the file's); None if it is broken."""
        data = self.load_yaml(file, many=many)
        if data is None:
            return None
        if many:
            items = [self._validate(file, shape, d, f"[{i}]") for i, d in enumerate(data)]
            return items if keep_failures else [x for x in items if x is not None]
        return self._validate(file, shape, data, "")

    def load_yaml(self, file: str, *, many: bool = False) -> Any:
        """The file's YAML (a list when ``many``, else a mapping), or None when it is broken
        (reported): read apart from validation so that ``extends`` can be resolved between."""
        text = self.files[file]
        if _flow_depth(text) > MAX_NESTING:
            self.issue(file, "", f"YAML nested more than {MAX_NESTING} levels deep")
            return None
        try:
            data = yaml.load(text, Loader=_Loader)
            duplicates = list(_duplicate_keys(yaml.compose(text, Loader=_Loader)))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark else ""
            self.issue(file, where, f"invalid YAML: {getattr(exc, 'problem', exc)}")
            return None
        except RecursionError:  # block nesting that deep takes a large file, but it can be sent
            self.issue(file, "", "YAML nested too deeply")
            return None
        except ValueError as exc:  # PyYAML reads 2024-02-30 as a date, and datetime refuses it
            self.issue(file, "", f"invalid YAML: {exc} (quote a value that is not a date)")
            return None
        for path, message in duplicates:
            self.issue(file, path, message)
        if data is None:
            data = [] if many else {}
        if many:
            if not isinstance(data, list):
                self.issue(file, "", "expected a list of relationships")
                return None
            return data
        if not isinstance(data, dict):
            self.issue(file, "", f"expected a mapping of parameters, got {type(data).__name__}")
            return None
        return data

    def _validate(self, file: str, shape: type[BaseModel], data: Any, prefix: str) -> Any:
        try:
            return shape.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                loc = [str(p) for p in err["loc"]]
                path = ".".join([prefix, *loc] if prefix else loc)
                self.issue(file, path, _pydantic_message(err, shape))
            return None

    def _own_name(self, view: str, named: str) -> str:
        """``named`` as written in ``view``'s fields: in an alias's copy of its target's
        fields, the target's name stands for the alias itself."""
        return view if named and named == self.alias_of.get(view) else named

    def _template(
        self,
        file: str,
        path: str,
        sql: str,
        view: str,
        renames: Mapping[str, str] | None = None,
    ) -> Template | None:
        """``sql`` parsed with ``view`` as its own view. In an alias's copy of its target's
        fields, and wherever ``renames`` says so, a name of the target stands for the alias:
        otherwise a field of ``customer_nation`` would read the table of ``nation``."""
        try:
            tpl = parse_template(sql, own_view=view, dialect=self.dialect)
        except TemplateError as exc:
            self.issue(file, path, str(exc))
            return None
        if view in self.alias_of:
            renames = {self.alias_of[view]: view, **(renames or {})}
        return renamed(tpl, renames) if renames else tpl

    def cache_age(self, file: str, path: str, policy: str | None) -> float | None:
        """The age of the named cache policy (None when no policy is named, or the name is
        not one: then an issue says so)."""
        if policy is None or not self.cache_policies_known:
            return None
        if policy not in self.cache_policies:
            hint = did_you_mean(policy, self.cache_policies)
            self.issue(
                file, path, f"no cache policy {policy!r} in the model's cache_policies.{hint}"
            )
            return None
        return self.cache_policies[policy]

    def _yaml_filter(self, raw: Any, file: str, path: str) -> Filter | None:
        try:
            return parse_yaml_filter(raw, where="")
        except FilterError as exc:
            self.issue(file, path, str(exc).lstrip(": .").strip())
            return None


def renamed(tpl: Template, renames: Mapping[str, str]) -> Template:
    """``tpl`` with the views named in ``renames`` renamed, in ``${view.field}`` references
    and in columns qualified by hand (``nation.n_name``)."""

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, Ref) and node.view is not None and node.view in renames:
            return Ref(view=renames[node.view], name=node.field)
        if isinstance(node, exp.Column) and node.table in renames:
            return exp.column(node.this.copy(), table=renames[node.table])
        return node

    refs = tuple((renames.get(v, v) if v else v, f) for v, f in tpl.refs)
    return Template(tpl.tree.copy().transform(swap, copy=False), refs, tpl.attributes)


def _flow_depth(text: str) -> int:
    """How deep ``[...]`` and ``{...}`` nest in ``text``, quotes and comments not told apart
    (an overestimate, which only a file of a hundred unclosed brackets would notice)."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(text):
        depth = depth + 1 if match.group() in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    return deepest


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML loading (C-accelerated where available)."""


def _duplicate_keys(node: yaml.Node | None, path: str = "") -> Iterator[tuple[str, str]]:
    """``(yaml path, message)`` for each key written twice in one mapping: PyYAML would keep
    the last silently and the first definition would vanish."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            where = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in seen:
                yield where, f"{key!r} is defined twice (lines {seen[key]} and {line})"
            seen.setdefault(key, line)
            yield from _duplicate_keys(value_node, where)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, f"{path}[{i}]")


def _pydantic_message(err: Mapping[str, Any], shape: type[BaseModel]) -> str:
    kind = err["type"]
    loc = err["loc"]
    if kind == "extra_forbidden":
        owner = _owner_shape(shape, loc[:-1])
        fields = [f.alias or n for n, f in owner.model_fields.items()] if owner else []
        hint = did_you_mean(str(loc[-1]), fields)
        if loc[-1] == "type" and owner is DimensionFile:
            hint = " Omni dimensions have no type parameter; the column's type is used."
        if loc[-1] == "aggregate_type" and owner is DimensionFile:
            return (
                "Invalid property name 'aggregate_type': a dimension has no aggregate; a level "
                "of detail dimension's aggregate_type goes inside level_of_detail"
            )
        return f"unknown parameter {loc[-1]!r}.{hint}"
    if kind == "literal_error":
        expected = str(err.get("ctx", {}).get("expected", ""))
        options = re.findall(r"'([^']+)'", expected)
        hint = did_you_mean(str(err.get("input")), options)
        return f"invalid value {err.get('input')!r}: expected one of {', '.join(options)}.{hint}"
    if kind == "missing":
        return f"missing required parameter {loc[-1]!r}"
    return str(err["msg"])


_NESTED: Mapping[str, type[BaseModel]] = {"dimensions": DimensionFile, "measures": MeasureFile}


def _owner_shape(shape: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic class that owns the key at ``loc``: ``("dimensions", "x")`` -> Dimension."""
    if not loc:
        return shape
    if len(loc) == 2 and str(loc[0]) in _NESTED:
        return _NESTED[str(loc[0])]
    if shape in (MeasureFile, DimensionFile) and tuple(loc) == ("level_of_detail",):
        return LevelOfDetailFile
    return None
