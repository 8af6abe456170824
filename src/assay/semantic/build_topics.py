"""Pass three of a model build: relationships and topics (join trees, curation, filters,
sample queries)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assay.errors import did_you_mean
from assay.semantic.build_rules import RuleBuilder
from assay.semantic.build_state import NAME
from assay.semantic.calendar import weekday_number
from assay.semantic.extends import resolve_extends
from assay.semantic.files import RelationshipFile, TopicFile
from assay.semantic.filters import Filter, depends_on_clock
from assay.semantic.model import (
    OPEN,
    JoinStep,
    Relationship,
    SampleQuery,
    Topic,
    View,
    titleize,
)
from assay.semantic.names import TOPIC_NAME


class TopicBuilder(RuleBuilder):
    #: the build of the model as one topic sees it builds that topic only (topic_views)
    only_topic: str | None = None
    #: topics with their own ``views`` (file, parsed), built apart (semantic.topic_views)
    scoped_topics: dict[str, tuple[str, TopicFile]] = {}
    #: the relationships file's entries, read before the views (their aliases are views)
    relationship_files: tuple[RelationshipFile | None, ...] = ()
    #: positions of relationships whose alias was refused (reported once, not again per use)
    refused_aliases: frozenset[int] = frozenset()

    def _read_aliases(self) -> None:
        """Read the relationships file and make each ``join_to_view_as`` a view: a copy of its
        target's fields under the alias, reading the target's table under the alias's name,
        so that one query can join the same view twice (a customer's and a supplier's
        nation). Runs before the views are built; an alias that takes a view's name is an
        error (Omni could not tell the two apart)."""
        if "relationships" not in self.files:
            return
        parsed = self.parse("relationships", RelationshipFile, many=True, keep_failures=True)
        self.relationship_files = tuple(parsed or ())
        labels: dict[str, str | None] = {}
        refused: set[int] = set()
        for i, rel in enumerate(self.relationship_files):
            if rel is None:
                continue
            path = f"[{i}]"
            alias, target = rel.join_to_view_as, rel.join_to_view
            if alias is None:
                if rel.join_to_view_as_label is not None:
                    self.issue("relationships", f"{path}.join_to_view_as_label", "a label for "
                               "an alias: it needs join_to_view_as")  # fmt: skip
                continue
            target = self.alias_of.get(target, target)  # an alias of an alias: the same view
            problem = self._alias_problem(alias, target, f"{rel.join_from_view}_{target}")
            if problem is not None:
                self.issue("relationships", f"{path}.join_to_view_as", problem)
                refused.add(i)
            elif target in self.view_files and alias not in self.alias_of:
                # (an unknown target is reported with the relationship)
                self.alias_of[alias] = target
                labels[alias] = rel.join_to_view_as_label
        self.refused_aliases = frozenset(refused)
        for alias, target in self.alias_of.items():
            file, spec = self.view_files[target]
            label = labels[alias] or titleize(alias)
            self.view_files[alias] = (file, spec.model_copy(update={"label": label}))

    def _alias_problem(self, alias: str, target: str, suggestion: str) -> str | None:
        """Why ``alias`` cannot name a copy of ``target`` (None: it can)."""
        if not NAME.match(alias):
            return f"alias {alias!r} must match [a-z][a-z0-9_]*"
        if alias in self.alias_of:
            if self.alias_of[alias] == target:
                return None  # the same copy, joined from another view too
            return (f"alias {alias!r} already names a copy of view {self.alias_of[alias]!r}; "
                    f"choose another name, e.g. {suggestion!r}")  # fmt: skip
        if alias in self.view_files or alias in self.ignored_views or alias in self.quiet:
            return (f"alias {alias!r} is the name of a view: an alias names a second copy of "
                    "the joined view and must differ from every view's name; choose another, "
                    f"e.g. {suggestion!r}")  # fmt: skip
        return None

    def _build_relationships(self, views: Mapping[str, View]) -> list[Relationship]:
        self._check_derived_cycles()
        out: list[Relationship] = []
        for i, rel in enumerate(self.relationship_files):
            if rel is None or i in self.refused_aliases:
                continue
            built = self._relationship("relationships", f"[{i}]", rel)
            if built is not None:
                out.append(built)
        return out

    def _relationship(
        self, file: str, path: str, rel: RelationshipFile, topic: str | None = None
    ) -> Relationship | None:
        """One relationship of the relationships file, or of ``topic``'s own
        ``relationships`` (``file`` and ``path`` say where, for its issues)."""
        bad = False
        for key in ("join_from_view", "join_to_view"):
            name = getattr(rel, key)
            if name in self.quiet:
                bad = True
            elif name not in self.view_files:
                self.issue(file, f"{path}.{key}", self._no_view(name))
                bad = True
        right = rel.join_to_view_as or rel.join_to_view
        if bad or right not in self.view_files:  # a bad alias is reported already
            return None
        # Omni: on_sql may name the joined view by its alias or by its own name (unless
        # the view is joined to itself, where its own name is the other side).
        renames = {}
        if rel.join_to_view not in (right, rel.join_from_view):
            renames = {rel.join_to_view: right}
        tpl = self._template(file, f"{path}.on_sql", rel.on_sql, rel.join_from_view, renames)
        if tpl is None:
            return None
        used: set[str] = set()
        on = self._resolve_dims(rel.join_from_view, tpl, file, f"{path}.on_sql", used)
        if on is None:
            return None
        stray = used - {rel.join_from_view, right}
        if stray:
            self.issue(
                file,
                f"{path}.on_sql",
                f"on_sql may only use the two joined views; it also uses {sorted(stray)}",
            )
            return None
        if not self._template_attributes(tpl, file, f"{path}.on_sql"):
            return None
        where = None
        if rel.where_sql is not None:
            where = self._where_condition(
                file, f"{path}.where_sql", rel.where_sql, rel.join_from_view, renames
            )
            if where is None:
                return None
        return Relationship(
            rel.join_from_view,
            right,
            on,
            rel.relationship_type,
            rel.join_type,
            rel.on_sql,
            where,
            topic,
        )

    def _topic_relationships(
        self, file: str, name: str, spec: TopicFile
    ) -> list[Relationship] | None:
        """A topic's own ``relationships``: joins only that topic uses (one-off joins, or a
        join with its own condition), tried before the model's. None when one is broken."""
        out: list[Relationship] = []
        ok = True
        for i, rel in enumerate(spec.relationships or ()):
            path = f"relationships[{i}]"
            if rel.join_to_view_as is not None or rel.join_to_view_as_label is not None:
                self.issue(file, f"{path}.join_to_view_as", "an alias declared in a topic's "
                           "relationships is not supported yet: declare it in the model's "
                           "relationships file, where it is a view of its own")  # fmt: skip
                ok = False
                continue
            built = self._relationship(file, path, rel, name)
            if built is None:
                ok = False
            else:
                out.append(built)
        return out if ok else None

    def _check_derived_cycles(self) -> None:
        graph = {k: refs for k, (_, _, refs) in self._derived_refs.items()}
        state: dict[str, int] = {}

        def visit(node: str, stack: list[str]) -> None:
            if state.get(node) == 2 or node not in graph:
                return
            if state.get(node) == 1:
                file, path, _ = self._derived_refs[node]
                cycle = " -> ".join([*stack[stack.index(node) :], node])
                self.issue(file, path, f"reference cycle: {cycle}")
                return
            state[node] = 1
            for nxt in graph[node]:
                visit(nxt, [*stack, node])
            state[node] = 2

        for node in graph:
            visit(node, [])

    def _build_topics(
        self, views: Mapping[str, View], relationships: list[Relationship]
    ) -> dict[str, Topic]:
        topics: dict[str, Topic] = {}
        raw: dict[str, tuple[str, dict[str, Any]]] = {}
        broken: set[str] = set()
        for file in self.files:
            base = file.rsplit("/", 1)[-1]
            if not base.endswith(".topic"):
                continue
            name = base.removesuffix(".topic")
            if not TOPIC_NAME.match(name):
                self.issue(file, "", f"topic name {name!r} must match [A-Za-z][A-Za-z0-9_]*")
                continue
            if name in raw or name in broken:
                self.issue(file, "", f"topic {name!r} is defined twice")
                continue
            data = self.load_yaml(file)
            if data is None:
                broken.add(name)
            else:
                raw[name] = (file, data)
        # extends resolved on the YAML; a template topic is a starting point, never a topic
        resolved = resolve_extends("topic", raw, self.issue, broken=frozenset(broken))
        self.scoped_topics = {}
        for name, data in resolved.items():
            file = raw[name][0]
            if data.get("template") is True or self.only_topic not in (None, name):
                continue
            spec = self._validate(file, TopicFile, data, "")
            if spec is None:
                continue
            if spec.views is not None and self.only_topic is None:
                self.scoped_topics[name] = (file, spec)
                continue
            topic = self._topic(file, name, spec, views, relationships)
            if topic is not None:
                topics[name] = topic
        return topics

    def _topic(
        self,
        file: str,
        name: str,
        spec: TopicFile,
        views: Mapping[str, View],
        relationships: list[Relationship],
    ) -> Topic | None:
        # Omni hides a topic whose base view is ignored and leaves it out of validation: it
        # is not in the model.
        if spec.base_view in self.quiet or spec.base_view in self.ignored_views:
            return None
        if spec.base_view not in self.view_files:
            self.issue(file, "base_view", self._no_view(spec.base_view))
            return None
        own = self._topic_relationships(file, name, spec)
        if own is None:
            return None
        joins: dict[str, JoinStep] = {}
        known = [*own, *relationships]
        self._join_tree(file, spec.base_view, spec.joins, "joins", known, joins, spec.base_view)
        in_topic = {spec.base_view, *joins}
        ok = self._check_topic_fields(file, spec, in_topic)
        filters: dict[str, list[tuple[str, Filter]]] = {}
        for kind in ("default_filters", "always_where_filters", "always_having_filters"):
            filters[kind] = []
            for field, raw in getattr(spec, kind).items():
                where = f"{kind}.{field}"
                if not self._topic_field_exists(file, where, field, in_topic, views):
                    ok = False
                    continue
                parsed = self._yaml_filter(raw, file, where)
                if parsed is None:
                    ok = False
                    continue
                filters[kind].append((field, parsed))
        access_filters = self._topic_access_filters(file, spec.access_filters, in_topic, views)
        always_where = always_having = None
        if spec.always_where_sql is not None:
            always_where = self._where_condition(
                file, "always_where_sql", spec.always_where_sql, spec.base_view
            )
            ok = ok and always_where is not None
        if spec.always_having_sql is not None:
            always_having = self._having_condition(
                file, "always_having_sql", spec.always_having_sql, spec.base_view
            )
            ok = ok and always_having is not None
        for where, condition in (("always_where_sql", always_where),
                                 ("always_having_sql", always_having)):  # fmt: skip
            stray = sorted(condition.views_used - in_topic) if condition else []
            if stray:
                self.issue(file, where, f"uses views the topic does not join: {stray}")
                ok = False
        for step in joins.values():
            rel_where = step.relationship.where
            stray = sorted(rel_where.views_used - in_topic) if rel_where else []
            if stray:
                self.issue(file, f"joins.{step.view}", f"the relationship's where_sql uses "
                           f"views the topic does not join: {stray}")  # fmt: skip
                ok = False
        grants = (
            self._grant_rule(file, "required_access_grants", spec.required_access_grants)
            if spec.required_access_grants is not None
            else self.default_grants or OPEN
        )
        samples = tuple(
            SampleQuery(
                key,
                sq.label or titleize(key),
                sq.prompt,
                sq.ai_context,
                _api_query(sq.query, name, spec.base_view),
            )
            for key, sq in spec.sample_queries.items()
        )
        if not ok or access_filters is None:
            return None
        return Topic(
            name=name,
            base_view=spec.base_view,
            label=spec.label or titleize(name),
            joins=joins,
            description=spec.description,
            ai_context=spec.ai_context,
            hidden=spec.hidden,
            group_label=spec.group_label,
            field_patterns=tuple(spec.fields) if spec.fields is not None else None,
            view_tags={v: views[v].tags for v in sorted(in_topic) if v in views and views[v].tags},
            ai_field_patterns=tuple(spec.ai_fields) if spec.ai_fields is not None else None,
            week_start=None if spec.week_start_day is None else weekday_number(spec.week_start_day),
            default_filters=tuple(filters["default_filters"]),
            always_where_filters=tuple(filters["always_where_filters"]),
            always_having_filters=tuple(filters["always_having_filters"]),
            sample_queries=samples,
            default_row_limit=spec.default_row_limit,
            cache_max_age=(
                self.cache_age(file, "cache_policy", spec.cache_policy)
                if spec.cache_policy is not None
                else self.default_cache_age
            ),
            file=file,
            grants=grants,
            access_filters=access_filters,
            always_where=always_where,
            always_having=always_having,
        )

    def _join_tree(
        self,
        file: str,
        parent: str,
        tree: Any,
        path: str,
        relationships: list[Relationship],
        out: dict[str, JoinStep],
        base: str,
    ) -> None:
        """Walk a topic's nested ``joins``; below a join that failed nothing more is checked,
        so one misspelt view is one issue."""
        if tree is None:
            return
        if not isinstance(tree, Mapping):
            self.issue(file, path, "joins are a mapping of view names ({} for a view joined "
                       f"with nothing below it), not {type(tree).__name__}")  # fmt: skip
            return
        for key, sub in tree.items():
            child, where = str(key), f"{path}.{key}"
            if child in self.quiet:
                continue
            if child not in self.view_files:
                self.issue(file, where, self._no_view(child))
                continue
            if child in out or child == base:
                self.issue(file, where, f"view {child!r} is joined twice in this topic")
                continue
            rel = find_relationship(relationships, parent, child)
            if rel is None:
                self.issue(file, where, f"no relationship joins {parent!r} to {child!r}: add "
                           "one to the relationships file")  # fmt: skip
                continue
            out[child] = JoinStep(parent, child, rel)
            self._join_tree(file, child, sub, where, relationships, out, base)

    def _topic_field_exists(
        self, file: str, where: str, field: str, in_topic: set[str], views: Mapping[str, View]
    ) -> bool:
        view, _, name = field.partition(".")
        if view in self.quiet or field in self.quiet:
            return False
        if not name:
            self.issue(file, where, f"{field!r}: topic filters name fields as view.field")
            return False
        if view not in in_topic:
            hint = did_you_mean(view, in_topic)
            self.issue(file, where, f"view {view!r} is not joined in this topic.{hint}")
            return False
        v = views.get(view)
        if v is not None and name not in v.dimensions and name not in v.measures:
            hint = did_you_mean(name, v.field_names())
            self.issue(file, where, f"no field {name!r} in view {view!r}.{hint}")
            return False
        return True

    def _check_topic_fields(self, file: str, spec: TopicFile, in_topic: set[str]) -> bool:
        """``fields`` and ``ai_fields`` name views the topic joins (a typo would silently
        expose or hide a field)."""
        ok = True
        listed = [("fields", p) for p in spec.fields or ()]
        listed += [("ai_fields", p) for p in spec.ai_fields or ()]
        counts: dict[str, int] = {}
        for key, pattern in listed:
            i = counts[key] = counts.get(key, -1) + 1
            body = pattern.lstrip("-")
            if body.startswith("tag:") or body.startswith("all_views."):
                continue
            view = body.partition(".")[0]
            if view not in in_topic:
                hint = did_you_mean(view, in_topic)
                self.issue(file, f"{key}[{i}]", f"view {view!r} is not joined in this topic.{hint}")
                ok = False
        return ok


def reads_clock(views: Mapping[str, View], topics: Mapping[str, Topic]) -> bool:
    measure_filters = [
        f.filter for v in views.values() for m in v.measures.values() for f in m.filters
    ]
    topic_filters = [
        flt
        for t in topics.values()
        for _, flt in (*t.default_filters, *t.always_where_filters, *t.always_having_filters)
    ]
    return any(depends_on_clock(f) for f in [*measure_filters, *topic_filters])


def find_relationship(rels: list[Relationship], parent: str, child: str) -> Relationship | None:
    """The relationship joining ``child`` onto ``parent``, oriented parent -> child."""
    for rel in rels:
        if rel.left == parent and rel.right == child:
            return rel
    for rel in rels:
        if rel.left == child and rel.right == parent:
            return rel.reversed()
    return None


def _api_query(query: Mapping[str, Any], topic: str, base_view: str) -> dict[str, Any]:
    """A sample query as the API shapes it (YAML's base_view/topic/field/desc renamed)."""
    out = dict(query)
    out["table"] = out.pop("base_view", None) or out.get("table") or base_view
    out["join_paths_from_topic_name"] = out.pop("topic", None) or topic
    raw = out.get("sorts") or []
    sorts = []
    for s in raw if isinstance(raw, list) else ():  # not a list: parse_query refuses it
        if isinstance(s, Mapping) and "field" in s:
            sorts.append({"column_name": s["field"], "sort_descending": bool(s.get("desc"))})
        else:
            sorts.append(s)
    out["sorts"] = sorts if isinstance(raw, list) else raw
    out.setdefault("filters", {})
    return out
