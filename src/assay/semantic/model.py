"""The loaded, validated semantic model: views, fields, relationships and topics.

Built only by the loader; every SQL tree here is already resolved (``${}`` inlined, columns
qualified by view alias), so the compiler copies trees and never parses model SQL again.
"""

from __future__ import annotations

import fnmatch
import functools
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlglot import exp

from assay.errors import ModelIssue
from assay.semantic.calendar import ISO, Calendar
from assay.semantic.filters import Filter
from assay.semantic.timezones import Zones
from assay.semantic.viewer import Viewer

RelationshipType = Literal["one_to_one", "many_to_one", "one_to_many", "many_to_many"]
JoinType = Literal["always_left", "inner", "full_outer", "cross"]


@dataclass(frozen=True, slots=True)
class GrantRule:
    """``required_access_grants``: every element must hold; an element (``a|b&c``) holds when
    one of its ``|`` alternatives does, and an alternative when all of its ``&`` grants are
    held (``&`` binds tighter). No elements: open to everyone."""

    elements: tuple[tuple[frozenset[str], ...], ...] = ()

    def holds(self, granted: frozenset[str]) -> bool:
        return all(any(alt <= granted for alt in element) for element in self.elements)


OPEN = GrantRule()


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """A named grant from the model file: held by a user with any value of ``attribute`` in
    ``allowed`` (exact text match)."""

    name: str
    attribute: str
    allowed: frozenset[str]


@dataclass(frozen=True, slots=True)
class AccessFilter:
    """A topic's row-level filter: ``field`` (a dimension key) must match the user's values of
    ``attribute`` (``LIKE`` when ``wildcards``); users holding a value in ``unfiltered`` are
    not filtered by it."""

    field: str
    attribute: str
    unfiltered: frozenset[str] = frozenset()
    wildcards: bool = False


@dataclass(frozen=True, slots=True)
class SqlCondition:
    """A predicate the model writes in SQL (``always_where_sql``, ``always_having_sql``,
    ``where_sql``): its resolved tree (``MeasureRef`` nodes in a HAVING one) and what it reads."""

    tree: exp.Expr
    views_used: frozenset[str]
    sql: str


def model_id_for(name: str) -> str:
    """The stable id of the model called ``name``: uuid5(NAMESPACE_URL, "assay:model:<name>"),
    the same on every machine and across restarts (tpch: abd3361c-705d-5dd2-b031-d77674fb926b)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"assay:model:{name}"))


def titleize(name: str) -> str:
    """Default label from a name, as Omni shows it: ``o_orderdate`` -> ``O Orderdate``."""
    return " ".join(w.capitalize() for w in name.replace("_", " ").split())


@dataclass(frozen=True, slots=True)
class Dimension:
    view: str
    name: str
    expr: exp.Expr
    views_used: frozenset[str]
    label: str
    primary_key: bool = False
    description: str | None = None
    synonyms: tuple[str, ...] = ()
    ai_context: str | None = None
    all_values: tuple[Any, ...] | None = None
    sample_values: tuple[Any, ...] | None = None
    #: ``week_start_day`` of this dimension (Monday 0 ... Sunday 6): wins over topic and model
    week_start: int | None = None
    hidden: bool = False
    format: str | None = None
    group_label: str | None = None
    timeframes: tuple[str, ...] | None = None
    data_type: str | None = None
    tags: tuple[str, ...] = ()
    grants: GrantRule = OPEN
    #: ``mask_unless_access_grants``: users who do not meet it see the values hashed
    mask: GrantRule | None = None
    #: ``duration``: the value in each interval, queried as ``view.name[days]`` (the bare
    #: field is NULL, as in Omni)
    durations: tuple[tuple[str, exp.Expr], ...] | None = None
    #: ``order_by_field``: the dimension of the same view that sorting by this one sorts by
    order_by: str | None = None
    #: ``level_of_detail``: ``expr`` reads the value column of this inner aggregate, which the
    #: compiler joins to the query's rows (``compiler.lod_dims``)
    lod: DimensionLod | None = None

    def duration(self, unit: str) -> exp.Expr | None:
        """The value in ``unit`` of a duration dimension (None: not one of its intervals)."""
        return next((e for u, e in self.durations or () if u == unit), None)

    @property
    def key(self) -> str:
        return f"{self.view}.{self.name}"


@dataclass(frozen=True, slots=True)
class MeasureFilter:
    """A condition from a measure's ``filters``: the field it tests and its resolved SQL."""

    field: str
    target: exp.Expr
    filter: Filter
    #: the tested dimension's own ``week_start_day``, if it has one
    week_start: int | None = None


#: how a level of detail's fields make its grain (Omni's grouping strategies)
LodGrain = Literal["fixed", "always_include", "always_exclude"]


@dataclass(frozen=True, slots=True)
class LevelOfDetail:
    """A measure's ``level_of_detail``: ``inner`` (a measure of the same view, with the inner
    aggregate) is computed once per value of a grain, and the measure aggregates those values
    at the query's grain (see ``compiler.lod``). The grain is ``fields`` (``fixed``; none: one
    grand total), the query's dimensions and ``fields`` (``always_include``), or the query's
    dimensions but ``fields`` (``always_exclude``): the last two are known per query.
    ``cancel_query_filters``: the query's filters stay out of the inner aggregate (the model's
    row rules never do)."""

    inner: Measure
    fields: tuple[Dimension, ...]
    grain: LodGrain = "fixed"
    cancel_query_filters: bool = False


#: the table alias of a level of detail dimension's inner aggregate (``_lod_<view>_<name>``)
LOD_DIM_PREFIX = "_lod_"


@dataclass(frozen=True, slots=True)
class DimensionLod:
    """A dimension's ``level_of_detail``: ``inner`` (a measure of the dimension's view) is
    computed once per value of the ``fields`` (``fixed``; none: one grand value) and joined
    back to each row on them, under ``alias`` (the dimension reads its column ``v``).
    ``cancel_query_filters``: the query's filters stay out of the inner aggregate (the model's
    row rules never do)."""

    inner: Measure
    fields: tuple[Dimension, ...]
    alias: str
    cancel_query_filters: bool = False


@dataclass(frozen=True, slots=True)
class Measure:
    """An aggregate over rows of its view, or (``derived``) arithmetic over other measures.

    Kept in parts (``input``, ``filters``, ``aggregate_type``) rather than one tree because
    filters may hold relative dates that are resolved at compile time, and because fan-out
    handling needs the row-level inputs apart from the aggregate wrapped around them.
    ``custom`` is a raw SQL aggregate (``sql: SUM(x) / COUNT(y)``); ``derived`` an expression
    over ``MeasureRef`` nodes. ``distinct_key`` (``custom_primary_key_sql`` of a
    ``*_distinct_on`` measure): row-level SQL whose each distinct value is aggregated once.
    """

    view: str
    name: str
    label: str
    aggregate_type: str | None
    views_used: frozenset[str]
    input: exp.Expr | None = None
    filters: tuple[MeasureFilter, ...] = ()
    percentile: float | None = None
    custom: exp.Expr | None = None
    derived: exp.Expr | None = None
    distinct_key: exp.Expr | None = None
    #: ``level_of_detail``: this measure's ``aggregate_type`` aggregates the inner one's values
    lod: LevelOfDetail | None = None
    description: str | None = None
    synonyms: tuple[str, ...] = ()
    ai_context: str | None = None
    hidden: bool = False
    format: str | None = None
    group_label: str | None = None
    data_type: str = "NUMBER"
    tags: tuple[str, ...] = ()
    grants: GrantRule = OPEN

    @property
    def key(self) -> str:
        return f"{self.view}.{self.name}"


@dataclass(frozen=True, slots=True)
class View:
    name: str
    source: exp.Expr  # a Table, or a Subquery for derived-table views
    label: str
    dimensions: Mapping[str, Dimension]
    measures: Mapping[str, Measure]
    description: str | None = None
    ai_context: str | None = None
    hidden: bool = False
    file: str = ""
    grants: GrantRule = OPEN
    #: the view's own ``tags``: a topic's ``tag:x`` selects all its fields
    tags: tuple[str, ...] = ()

    @property
    def primary_key(self) -> Dimension | None:
        return next((d for d in self.dimensions.values() if d.primary_key), None)

    def field_names(self) -> list[str]:
        return [*self.dimensions, *self.measures]


@dataclass(frozen=True, slots=True)
class Relationship:
    """A join between two views, oriented ``left -> right`` with its cardinality that way."""

    left: str
    right: str
    on: exp.Expr
    type: RelationshipType
    join_type: JoinType
    sql: str
    #: ``where_sql``: applied as WHERE whenever a query uses this join
    where: SqlCondition | None = None
    #: the topic whose own ``relationships`` declare it (None: the model's relationships)
    topic: str | None = None

    def reversed(self) -> Relationship:
        flip: dict[str, RelationshipType] = {
            "many_to_one": "one_to_many",
            "one_to_many": "many_to_one",
        }
        return Relationship(self.right, self.left, self.on, flip.get(self.type, self.type),
                            self.join_type, self.sql, self.where, self.topic)  # fmt: skip

    @property
    def multiplies_left(self) -> bool:
        """Joining ``right`` onto ``left`` repeats ``left``'s rows."""
        return self.type in ("one_to_many", "many_to_many")

    @property
    def multiplies_right(self) -> bool:
        return self.type in ("many_to_one", "many_to_many")


@dataclass(frozen=True, slots=True)
class JoinStep:
    """One edge of a topic's join tree: ``relationship.right`` joined under ``parent``."""

    parent: str
    view: str
    relationship: Relationship


@dataclass(frozen=True, slots=True)
class SampleQuery:
    name: str
    label: str
    prompt: str | None
    ai_context: str | None
    query: Mapping[str, Any]


def exposed(
    patterns: Iterable[str] | None,
    view: str,
    name: str,
    tags: Iterable[str],
    view_tags: Iterable[str] = (),
) -> bool:
    """Topic ``fields`` curation as Omni evaluates it: ``all_views.*`` first, then ``view.*``,
    then ``tag:x`` (the field's tags or its view's), then ``view.field``, whatever order they
    are written in (so ``[all_views.*, -users.*, users.id]`` keeps ``users.id``); each negatable
    with ``-``, a later selector of the same rank winning. No patterns: everything is exposed."""
    if patterns is None:
        return True
    key = f"{view}.{name}"
    tag_set = {*tags, *view_tags}
    allowed = False
    for negative, rank, body in _ranked(tuple(patterns)):
        if rank == _BY_TAG:
            tag_view, _, tag = body.rpartition(":tag:") if ":tag:" in body else ("", "", body[4:])
            hit = tag in tag_set and tag_view in ("", view)
        elif rank == _ALL_VIEWS:
            hit = fnmatch.fnmatchcase(name, body[len("all_views.") :])
        else:
            hit = fnmatch.fnmatchcase(key, body)
        if hit:
            allowed = not negative
    return allowed


_ALL_VIEWS, _WHOLE_VIEW, _BY_TAG, _ONE_FIELD = range(4)


@functools.lru_cache(maxsize=256)
def _ranked(patterns: tuple[str, ...]) -> tuple[tuple[bool, int, str], ...]:
    """``(negative, rank, selector)`` in Omni's order of operations (stable within a rank)."""
    out = []
    for pattern in patterns:
        negative = pattern.startswith("-")
        body = pattern[1:] if negative else pattern
        if body.startswith("all_views."):
            rank = _ALL_VIEWS
        elif body.startswith("tag:") or ":tag:" in body:  # ai_fields' view:tag:x too
            rank = _BY_TAG
        elif body.endswith(".*") and body.count(".") == 1:
            rank = _WHOLE_VIEW
        else:
            rank = _ONE_FIELD
        out.append((negative, rank, body))
    return tuple(sorted(out, key=lambda entry: entry[1]))


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    base_view: str
    label: str
    joins: Mapping[str, JoinStep]  # keyed by the joined view, in declaration (tree) order
    description: str | None = None
    ai_context: str | None = None
    hidden: bool = False
    group_label: str | None = None
    field_patterns: tuple[str, ...] | None = None
    #: the ``tags`` of the topic's views that have any, for ``tag:x`` in ``fields``
    view_tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: ``ai_fields``: what the AI planner is told of (not what it may query: see ``for_ai``)
    ai_field_patterns: tuple[str, ...] | None = None
    #: set on the topic as the AI planner sees it: ``ai_fields`` then narrows ``fields``
    narrowed_by: tuple[str, ...] | None = None
    default_filters: tuple[tuple[str, Filter], ...] = ()
    always_where_filters: tuple[tuple[str, Filter], ...] = ()
    always_having_filters: tuple[tuple[str, Filter], ...] = ()
    sample_queries: tuple[SampleQuery, ...] = ()
    default_row_limit: int | None = None
    #: seconds a result may be reused (its ``cache_policy``, else the model's default one)
    cache_max_age: float | None = None
    file: str = ""
    grants: GrantRule = OPEN
    access_filters: tuple[AccessFilter, ...] = ()
    always_where: SqlCondition | None = None
    always_having: SqlCondition | None = None
    #: ``week_start_day`` for queries through this topic: wins over the model's
    week_start: int | None = None

    @property
    def views(self) -> list[str]:
        return [self.base_view, *self.joins]

    def exposes(self, view: str, name: str, tags: Iterable[str] = ()) -> bool:
        view_tags = self.view_tags.get(view, ())
        if self.narrowed_by is not None and not exposed(
            self.narrowed_by, view, name, tags, view_tags
        ):
            return False
        return exposed(self.field_patterns, view, name, tags, view_tags)

    def path_to(self, view: str) -> list[JoinStep]:
        """Join steps from the base view down to ``view`` (empty for the base view)."""
        path: list[JoinStep] = []
        while view != self.base_view:
            step = self.joins[view]
            path.append(step)
            view = step.parent
        return path[::-1]


@dataclass(frozen=True, eq=False)
class SemanticModel:
    name: str
    dialect: str
    views: Mapping[str, View]
    topics: Mapping[str, Topic]
    relationships: tuple[Relationship, ...]
    label: str | None = None
    description: str | None = None
    ai_context: str | None = None
    connection: str | None = None
    default_row_limit: int | None = None
    #: seconds a result may be reused (``default_cache_policy``; None: the server's setting)
    cache_max_age: float | None = None
    #: ``ai_chat_topics``: the topics the AI planner may answer from (None: all)
    ai_chat_topics: tuple[str, ...] | None = None
    version: str = ""
    files: Mapping[str, str] = field(default_factory=dict)
    # Problems that do not stop the model loading (e.g. a column the database lacks).
    warnings: tuple[ModelIssue, ...] = ()
    # Rendered SQL of model fragments per (dialect, field): filled by the compiler on first
    # use; a model is immutable, so entries never go stale.
    fragments: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    #: level of detail dimensions by the alias their inner aggregate joins under
    lod_dimensions: Mapping[str, Dimension] = field(default_factory=dict)
    # Measures over de-duplicated rows per (dialect, measure): SQL and the columns it reads.
    deduplicated: dict[tuple[str, str], tuple[str, tuple[tuple[str, str], ...]]] = field(
        default_factory=dict, repr=False
    )
    # Compiled queries by canonical query text (see compiler._CompileCache).
    compiled: OrderedDict[str, Any] = field(default_factory=OrderedDict, repr=False)
    # Whether any measure or topic filter reads the clock ("last 30 days").
    clock_filters: bool = False
    # The user attributes the model reads (SQL templates, access filters, access grants).
    attributes_used: frozenset[str] = frozenset()
    grants: Mapping[str, AccessGrant] = field(default_factory=dict)
    #: ``week_start_day`` and ``fiscal_month_offset`` of the model file
    calendar: Calendar = ISO
    #: whether the model file sets ``fiscal_month_offset``: Omni's fiscal grains need it
    fiscal: bool = False
    #: the model file's ``timezone`` (None: not set; relative dates read the server's clock)
    zones: Zones | None = None
    # The model as one class of user sees it (see ``semantic.access``), most recent last.
    variants: OrderedDict[str, Any] = field(default_factory=OrderedDict, repr=False)
    # Set on such a variant: the whole model it was cut from, and for whom.
    source: SemanticModel | None = field(default=None, repr=False)
    viewer: Viewer | None = field(default=None, repr=False)
    #: topics with their own ``views``: the model as each such topic sees it (its views laid
    #: over the model's, built whole at load time), with caches of its own
    topic_models: Mapping[str, SemanticModel] = field(default_factory=dict, repr=False)

    def in_topic(self, topic: object) -> SemanticModel:
        """The model queries through ``topic`` compile against: the topic's own variant
        when it has ``views``, else this model (a whole model, never a user's cut)."""
        whole = self.source or self
        found = whole.topic_models.get(topic) if isinstance(topic, str) else None
        return found if found is not None else whole

    def cache_age(self, topic: str | None) -> float | None:
        """Seconds a result of a query in ``topic`` may be reused: the topic's cache policy,
        else the model's default one; None when the model sets neither."""
        found = self.topics.get(topic) if topic else None
        return found.cache_max_age if found is not None else self.cache_max_age

    @property
    def governed(self) -> bool:
        """Whether anything in the model depends on who asks (grants, rules, attributes)."""
        return bool(self.attributes_used)

    @property
    def id(self) -> str:
        return model_id_for(self.name)

    def calendar_of(self, dimension: Dimension, topic: Topic | None = None) -> Calendar:
        """The calendar a dimension's grains and filters follow: its own week start, else
        the topic's, else the model's (Omni: the most specific setting wins)."""
        week_start = dimension.week_start
        if week_start is None and topic is not None:
            week_start = topic.week_start
        return self.calendar.with_week_start(week_start)

    def measure(self, key: str) -> Measure:
        """The measure ``view.name`` (known to exist: the loader checked every reference)."""
        view, _, name = key.partition(".")
        return self.views[view].measures[name]

    def all_field_keys(self) -> list[str]:
        return [f"{v.name}.{f}" for v in self.views.values() for f in v.field_names()]
