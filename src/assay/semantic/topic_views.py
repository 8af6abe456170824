"""A topic's own ``views``: views only that topic sees (Omni's topic ``views`` parameter).

An entry is either a new view (``sellers: {extends: [users]}``, or one with its own
``table_name`` or ``sql``) or, under a model view's name, that view with more or changed
fields and labels. Either way it is seen only by queries through the topic.

How: the model is built twice over. Its own build leaves such a topic out; then, for each one,
the whole model is built again with the topic's views laid over the view files' YAML (an entry
under a model view's name merges into that view as ``extends`` merges, the topic's parameters
winning), and only that topic. The result is a variant of the model, ``SemanticModel.
topic_models[topic]``, with caches of its own, and every query through the topic compiles
against it (``compile_query`` switches): the compiler needs no notion of scope, two topics'
``lineitem.revenue`` never share cached SQL, and a view extended inline is built by
``semantic.extends`` like any other. The variant's views inherit the model views' grants; its
query views keep the tables the model compiled for them.

The model's own ``topics`` keep the topic as the rest of the model sees it (its joins to the
topic's new views left out), so what iterates topics over the model's views (the AI planner)
never meets a view it does not have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlglot import exp

from assay.errors import ModelIssue, did_you_mean
from assay.semantic.build_state import NAME
from assay.semantic.extends import resolve_extends
from assay.semantic.files import ViewFile
from assay.semantic.model import JoinStep, SemanticModel, Topic
from assay.semantic.names import file_stem
from assay.semantic.query_views import placeholder

#: between a topic's file and the YAML path of one of its views, in the file a topic view is
#: built from (issues are reported as the topic file and ``views.<name>.<path>``)
_SEP = "\0"
#: what an entry under a model view's name may not set: it is that view, in this topic
_NOT_ON_OVERRIDES = ("extends", "table_name", "sql", "query", "schema", "catalog", "template",
                     "ignored")  # fmt: skip
#: what a new topic view may not set (yet)
_NOT_ON_NEW = {
    "query": "a query view in a topic's views is not supported yet: declare it as a view of "
    "the model (its own .view file)",
    "template": "a template in a topic's views is not supported: a template is a view file "
    "other views extend",
    "ignored": "ignored does not apply to a topic's views: remove the entry instead",
}


class TopicViewsBuild:
    """Mixed into the loader's builder for the build of the model as one topic sees it."""

    only_topic: str | None
    topic_file: str = ""
    topic_views: Mapping[str, Any] = {}
    #: the model's own build: its views (query views' tables) and alias names
    base: SemanticModel | None = None
    reserved: frozenset[str] = frozenset()
    #: view -> the fields this topic's entry for it declares (their issues are the topic's)
    declared: Mapping[str, set[str]] = {}
    #: a new view that names no table of its own -> the table its extended view reads
    default_tables: Mapping[str, str] = {}
    _raw_files: Mapping[str, str] = {}

    def issue(self, file: str, path: str, message: str, *, warning: bool = False) -> None:
        """Issues of a topic view's YAML are the topic file's, at ``views.<name>...``."""
        if _SEP in file:
            file, prefix = file.split(_SEP, 1)
            path = f"{prefix}.{path}" if path else prefix
        else:
            for view, fields in self.declared.items():
                if file == self._view_file(view) and _field_of(path) in fields:
                    file, path = self.topic_file, f"views.{view}.{path}"
                    break
        super().issue(file, path, message, warning=warning)  # type: ignore[misc]

    def _view_file(self, view: str) -> str | None:
        found = self.view_files.get(view)  # type: ignore[attr-defined]
        return found[0] if found else self._raw_files.get(view)

    def _add_topic_views(self, raw: dict[str, tuple[str, dict[str, Any]]]) -> None:
        declared: dict[str, set[str]] = {}
        self.declared, self.default_tables = declared, {}
        self._raw_files = {view: file for view, (file, _) in raw.items()}
        new: dict[str, tuple[str, dict[str, Any]]] = {}
        for key, data in self.topic_views.items():
            name, path = str(key), f"views.{key}"
            if not isinstance(data, dict):
                self.issue(self.topic_file, path, "a topic's view is a mapping of view "
                           "parameters ({} for none)")  # fmt: skip
                continue
            fields = {str(f) for k in ("dimensions", "measures")
                      if isinstance(data.get(k), dict) for f in data[k]}  # fmt: skip
            if name in raw:
                refused = [k for k in _NOT_ON_OVERRIDES if k in data]
                for param in refused:
                    other = f"{name}_{self.only_topic}".lower()
                    self.issue(self.topic_file, f"{path}.{param}", f"{name!r} is a view of the "
                               "model: a topic's entry of that name is that view in this "
                               f"topic (its fields and labels), so it cannot set {param}; for "
                               f"a view of its own, use a new name (e.g. {other!r}) with "
                               f"extends: [{name}]")  # fmt: skip
                if not refused:
                    file, own = raw[name]
                    raw[name] = (file, _overlay(own, data))
                    declared[name] = fields
                continue
            problem = self._new_view_problem(name, data)
            if problem is not None:
                self.issue(self.topic_file, problem[0], problem[1])
                continue
            new[name] = (f"{self.topic_file}{_SEP}{path}", data)
        for name, entry in new.items():
            raw[name] = entry
        self.default_tables = {
            name: table
            for name in new
            if (table := self._inherited_table(name, raw, [])) is not None
        }

    def _new_view_problem(self, name: str, data: Mapping[str, Any]) -> tuple[str, str] | None:
        """(path, why) ``name`` cannot be a new view of this topic; None: it can."""
        path = f"views.{name}"
        if not NAME.match(name):
            return path, f"view name {name!r} must match [a-z][a-z0-9_]*"
        if name in self.ignored_views or name in self.quiet:  # type: ignore[attr-defined]
            return path, (f"view {name!r} is ignored (or broken) in the model: a topic "
                          "cannot define a view of that name")  # fmt: skip
        if name in self.reserved:
            return path, (f"{name!r} is an alias (join_to_view_as) in the relationships "
                          "file: choose another name for this topic's view")  # fmt: skip
        for key, why in _NOT_ON_NEW.items():
            if key in data:
                return f"{path}.{key}", why
        if not any(k in data for k in ("extends", "table_name", "sql")):
            known = did_you_mean(name, self._raw_files)
            return path, (
                f"no view {name!r} in the model, and this topic's entry reads no "
                "table: give it extends: [a view], table_name or sql." + known
            )
        return None

    def _inherited_table(
        self, name: str, raw: Mapping[str, tuple[str, dict[str, Any]]], chain: list[str]
    ) -> str | None:
        """The table a new view reads when neither it nor what it extends names one: the one
        its first extended view reads (a view file without a table reads its file's name)."""
        data = raw[name][1]
        if any(k in data for k in ("table_name", "sql", "query")):
            return None
        parents = data.get("extends")
        if not isinstance(parents, list) or not parents or not isinstance(parents[0], str):
            return None
        parent = parents[0]
        if parent not in raw or parent in chain:
            return None  # an unknown view or a cycle is reported by extends
        if _SEP in raw[parent][0]:
            return self._inherited_table(parent, raw, [*chain, name])
        return None if _reads_table(parent, raw) else file_stem(raw[parent][0])

    def _source(self, view: str, file: str, vf: ViewFile) -> exp.Expr | None:
        """A query view reads the table the model compiled for it; a new view that names no
        table reads the one of the view it extends."""
        if vf.query is not None:
            if self.base is None:  # the model is refused already: only issues matter
                return placeholder(view)
            if view in self.base.views:
                return self.base.views[view].source.copy()
            self.issue(file, "extends", "extending a query view in a topic's views is not "
                       "supported yet: join the query view itself")  # fmt: skip
            return None
        table = self.default_tables.get(view)
        if table is not None and not (vf.table_name or vf.sql):
            vf = vf.model_copy(update={"table_name": table})
        return super()._source(view, file, vf)  # type: ignore[misc, no-any-return]


def _reads_table(view: str, raw: Mapping[str, tuple[str, dict[str, Any]]]) -> bool:
    """Whether ``view``'s resolved YAML names its table (``table_name``, ``sql``, ``query``)."""
    resolved = resolve_extends("view", {k: v for k, v in raw.items() if _SEP not in v[0]},
                               lambda *_: None).get(view, {})  # fmt: skip
    return any(k in resolved for k in ("table_name", "sql", "query"))


def _field_of(path: str) -> str | None:
    """``measures.revenue.sql`` -> ``revenue``: the field a view issue's path is in."""
    parts = path.split(".")
    return parts[1] if len(parts) > 1 and parts[0] in ("dimensions", "measures") else None


def _overlay(own: dict[str, Any], topic: Mapping[str, Any]) -> dict[str, Any]:
    """A model view's YAML with a topic's entry for it laid over: fields merge by name and
    then parameter by parameter (as ``extends`` merges), the topic's winning."""
    out = dict(own)
    for key, value in topic.items():
        below = out.get(key)
        if (
            key in ("dimensions", "measures")
            and isinstance(value, dict)
            and isinstance(below, dict)
        ):
            fields = dict(below)
            for name, spec in value.items():
                under = fields.get(name)
                both = isinstance(under, dict) and isinstance(spec, dict | None)
                fields[name] = {**under, **(spec or {})} if both else spec  # type: ignore[dict-item]
            out[key] = fields
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------- the model's side


def seen_elsewhere(topic: Topic, views: Mapping[str, Any]) -> Topic:
    """``topic`` as the rest of the model sees it: without its joins to views the model does
    not have (the topic's new views) and what hangs below them. Queries through the topic
    never use this: they compile against the topic's variant."""
    joins: dict[str, JoinStep] = {}
    for name, step in topic.joins.items():  # tree order: a parent comes before its children
        parent_kept = step.parent == topic.base_view or step.parent in joins
        if name in views and parent_kept:
            joins[name] = step
    kept = {topic.base_view, *joins}

    def seen(key: str) -> bool:
        return key.partition(".")[0] in kept

    return replace(
        topic,
        joins=joins,
        default_filters=tuple(f for f in topic.default_filters if seen(f[0])),
        always_where_filters=tuple(f for f in topic.always_where_filters if seen(f[0])),
        always_having_filters=tuple(f for f in topic.always_having_filters if seen(f[0])),
    )


def as_variant(variant: SemanticModel, topic: str, topic_file: str) -> SemanticModel:
    """The variant as ``topic_models`` keeps it: only its topic, its new views filed under
    the topic's file."""
    views = {
        name: replace(v, file=topic_file) if _SEP in v.file else v
        for name, v in variant.views.items()
    }
    return replace(variant, views=views, topics={topic: variant.topics[topic]})


def new_issues(found: list[ModelIssue], known: list[ModelIssue], topic: str) -> list[ModelIssue]:
    """Issues of a topic's build that the model's own build did not report: a problem of the
    topic's views, or one they cause elsewhere (said so)."""
    seen = set(known)
    out: list[ModelIssue] = []
    for issue in found:
        if issue in seen:
            continue
        if issue.file.endswith(".topic") or issue.is_warning:
            out.append(issue)
        else:
            note = f" (in topic {topic!r}, whose views change the views this uses)"
            out.append(replace(issue, message=issue.message + note))
    return out
