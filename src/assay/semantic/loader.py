"""Load a model folder into a ``SemanticModel``, or refuse it whole with every issue found.

Files, as Omni names them (a ``.yaml`` suffix is optional): ``model``, ``relationships``,
``<view>.view`` and ``<topic>.topic``, in the folder or below it. Checking runs in passes
(structure, then references, then joins and filters) and never stops at the first problem, so a
model author fixes everything in one round.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import replace
from pathlib import Path

from assay.errors import ModelInvalid, ModelIssue, did_you_mean
from assay.semantic.build_topics import TopicBuilder, reads_clock
from assay.semantic.calendar import Calendar, weekday_number
from assay.semantic.catalog import Catalog
from assay.semantic.compiler import DIALECTS
from assay.semantic.files import ModelFile
from assay.semantic.model import SemanticModel, Topic, View
from assay.semantic.names import MODEL_NAME, view_name
from assay.semantic.query_views import settle as settle_query_views
from assay.semantic.timezones import MYSQL_REFUSAL, Zones, converted
from assay.semantic.topic_views import TopicViewsBuild, as_variant, new_issues, seen_elsewhere

_SUFFIXES = (".view", ".topic")


def read_model_files(folder: Path) -> dict[str, str]:
    """The model's files as ``{omni file name: text}`` (``orders.view``, ``relationships``)."""
    files: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        name = path.name.removesuffix(".yaml").removesuffix(".yml")
        if name in ("model", "relationships") or name.endswith(_SUFFIXES):
            rel = path.relative_to(folder).with_name(name).as_posix()
            files[rel] = path.read_text(encoding="utf-8")
    return files


def load_model(
    folder: Path | str,
    *,
    name: str | None = None,
    catalog: Catalog | None = None,
    attributes: Collection[str] | None = None,
) -> SemanticModel:
    """Load and validate the model in ``folder``; raise ``ModelInvalid`` listing every issue.

    ``catalog`` (the database's column types, see ``semantic.catalog``) is optional, and so is
    ``attributes`` (the organization's user attribute names, to check the model's against).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelInvalid([ModelIssue(str(folder), "", "model folder does not exist")])
    files = read_model_files(folder)
    return build_model(files, name=name or folder.name, catalog=catalog, attributes=attributes)


def build_model(
    files: Mapping[str, str],
    *,
    name: str,
    catalog: Catalog | None = None,
    attributes: Collection[str] | None = None,
) -> SemanticModel:
    """Validate and build a model from file texts (used by the loader and by YAML edits)."""
    builder = _Builder(files, default_name=name, catalog=catalog, attributes=attributes)
    model = builder.build()
    errors = [i for i in builder.issues if not i.is_warning]
    if errors or model is None:
        raise ModelInvalid(builder.issues, model=builder.name)
    return model


class _Builder(TopicBuilder):
    """All passes together: structure, fields, then joins and topics."""

    def _ai_chat_topics(
        self, names: list[str] | None, topics: Mapping[str, Topic]
    ) -> tuple[str, ...] | None:
        """The topics the AI may answer from; a name that is no topic is an error (a typo
        would otherwise hide a topic from the AI, or, if all were typos, every topic)."""
        if names is None:
            return None
        files = {f.rsplit("/", 1)[-1].removesuffix(".topic") for f in self.files
                 if f.endswith(".topic")}  # fmt: skip
        for i, name in enumerate(names):
            if name not in topics and name not in files:  # a broken topic is reported already
                hint = did_you_mean(name, files)
                self.issue("model", f"ai_chat_topics[{i}]", f"no topic {name!r}.{hint}")
        return tuple(names)

    def _drop_ignored_views(self, listed: list[str]) -> None:
        """Soft-delete the views the model's ``ignored_views`` lists or that say ``ignored:
        true``; a listed view with no file is one Assay never had (Omni lists schema tables)."""
        ignored = {*listed, *(v for v, (_, spec) in self.view_files.items() if spec.ignored)}
        for view in ignored:
            self.view_files.pop(view, None)
        self.ignored_views = frozenset(ignored)

    def build(self) -> SemanticModel | None:
        model_file = ModelFile()
        parsed = self.parse("model", ModelFile) if "model" in self.files else model_file
        model_file = parsed or model_file
        self._read_calendar(model_file, broken=parsed is None)
        self.name = model_file.name or self.name
        self.dialect = model_file.dialect
        if self.dialect not in DIALECTS:  # sqlglot would refuse it in every template below
            hint = did_you_mean(self.dialect, DIALECTS)
            self.issue("model", "dialect", f"unknown dialect {self.dialect!r}: expected one of "
                       f"{', '.join(DIALECTS)}.{hint}")  # fmt: skip
            self.dialect = "duckdb"  # read the rest anyway, so every other issue shows too
        self._read_zones(model_file)
        self._read_grants(model_file)
        self._read_cache_policies(model_file, broken=parsed is None)
        if not MODEL_NAME.match(self.name):
            self.issue("model", "name", f"model name {self.name!r} must be 1 to 200 characters "
                       "of text, without line breaks or surrounding spaces")  # fmt: skip
        view_names: dict[str, str] = {}
        for file in self.files:
            if file.endswith(".view"):
                name, problem = view_name(file, self.files[file])
                if problem:
                    self.issue(file, "", problem)
                view_names[file] = name
        self._read_view_files(view_names)
        self._drop_ignored_views(model_file.ignored_views)
        self._read_aliases()
        views = self._build_views()
        if self.dialect == "mysql":
            self._refuse_mysql_conversions(views)
        relationships = self._build_relationships(views)
        topics = self._build_topics(views, relationships)
        ai_topics = self._ai_chat_topics(model_file.ai_chat_topics, topics)
        if not views and not self.quiet:
            self.issue("model", "", "the model has no views (expected <name>.view files)")
        # An alias's fields are its target's: a problem in them is reported once, not per copy.
        self.issues = list(dict.fromkeys(self.issues))
        self._refuse_query_views_through_scoped_topics()
        if any(not i.is_warning for i in self.issues):
            self._topic_variants(None)  # their problems are reported in the same round
            return None
        digest = hashlib.sha256()
        for file in sorted(self.files):
            digest.update(file.encode() + b"\0" + self.files[file].encode() + b"\0")
        model = SemanticModel(
            name=self.name,
            dialect=self.dialect,
            views=views,
            lod_dimensions={
                d.lod.alias: d for v in views.values() for d in v.dimensions.values() if d.lod
            },
            topics=topics,
            relationships=tuple(relationships),
            label=model_file.label,
            description=model_file.description,
            ai_context=model_file.ai_context,
            connection=model_file.connection,
            default_row_limit=model_file.default_row_limit,
            cache_max_age=self.default_cache_age,
            ai_chat_topics=ai_topics,
            version=digest.hexdigest()[:16],
            files=dict(self.files),
            clock_filters=reads_clock(views, topics),
            warnings=tuple(i for i in self.issues if i.is_warning),
            attributes_used=frozenset(self.attributes_used),
            grants=dict(self.access_grants),
            calendar=self.calendar,
            fiscal=self.fiscal,
            zones=self.zones if model_file.timezone is not None else None,
        )
        model = settle_query_views(model, self.query_views, self.issue)
        variants = self._topic_variants(model)
        if any(not i.is_warning for i in self.issues):
            return None
        return self._with_topic_variants(model, variants) if variants else model

    def _refuse_query_views_through_scoped_topics(self) -> None:
        """A query view is compiled with the model, before any topic's variant exists."""
        for qv in list(self.query_views):
            if qv.spec.topic in self.scoped_topics:
                self.issue(qv.file, "query.topic", f"a query view through topic "
                           f"{qv.spec.topic!r}, which has views of its own, is not supported "
                           "yet: use another topic, or none")  # fmt: skip
                self.query_views.remove(qv)

    def _topic_variants(self, model: SemanticModel | None) -> dict[str, SemanticModel]:
        """Each topic with its own ``views``, built with them over the model's
        (semantic.topic_views); their new problems join the model's issues."""
        out: dict[str, SemanticModel] = {}
        for topic, (file, spec) in self.scoped_topics.items():
            builder = _TopicBuilder(self.files, default_name=self.name, catalog=self.catalog,
                                    attributes=self.known_attributes)  # fmt: skip
            builder.only_topic, builder.topic_file = topic, file
            builder.topic_views, builder.base = spec.views or {}, model
            builder.reserved = frozenset(self.alias_of)
            variant = builder.build()
            self.issues += new_issues(builder.issues, self.issues, topic)
            if variant is not None and topic in variant.topics:
                out[topic] = as_variant(variant, topic, file)
        return out

    def _with_topic_variants(
        self, model: SemanticModel, variants: Mapping[str, SemanticModel]
    ) -> SemanticModel:
        """``model`` with its scoped topics (as the rest of it sees them) and their variants;
        topics in their files' order."""
        order = [f.rsplit("/", 1)[-1].removesuffix(".topic") for f in self.files]
        seen = {n: seen_elsewhere(v.topics[n], model.views) for n, v in variants.items()}
        every = {**model.topics, **seen}
        topics = {n: every[n] for n in sorted(every, key=order.index)}
        attributes = model.attributes_used.union(*(v.attributes_used for v in variants.values()))
        clock = model.clock_filters or any(v.clock_filters for v in variants.values())
        return replace(model, topics=topics, topic_models=dict(variants),
                       attributes_used=attributes, clock_filters=clock)  # fmt: skip

    def _read_cache_policies(self, model_file: ModelFile, *, broken: bool) -> None:
        """The model's cache policies by name, and its default one's age. A broken model
        file is reported once: topics do not add that their policy is unknown."""
        self.cache_policies = {n: p.max_cache_age for n, p in model_file.cache_policies.items()}
        self.cache_policies_known = not broken
        name = model_file.default_cache_policy
        self.default_cache_age = self.cache_age("model", "default_cache_policy", name)

    def _read_zones(self, model_file: ModelFile) -> None:
        """The connection's time zones (``timezone``), read before any dimension uses them."""
        zones = model_file.timezone
        self.zones = Zones(zones.database, zones.query) if zones is not None else Zones()

    def _refuse_mysql_conversions(self, views: Mapping[str, View]) -> None:
        """A MySQL/MariaDB model whose dimensions would convert zones is refused here, with
        the model file and the dimensions, rather than at each query (CONVERT_TZ may be NULL)."""
        which = [d.key for v in views.values() for d in v.dimensions.values() if converted(d.expr)]
        if which:
            shown = ", ".join(which[:3]) + (", ..." if len(which) > 3 else "")
            self.issue("model", "timezone.query", f"{MYSQL_REFUSAL} (converted: {shown})")

    def _read_calendar(self, model_file: ModelFile, *, broken: bool) -> None:
        """The model's week start and fiscal offset, read before any field uses them. A
        broken model file is reported once: fields do not add that it lacks an offset."""
        week_start = model_file.week_start_day
        self.calendar = Calendar(
            week_start=0 if week_start is None else weekday_number(week_start),
            fiscal_month_offset=model_file.fiscal_month_offset or 0,
        )
        self.fiscal = broken or model_file.fiscal_month_offset is not None


class _TopicBuilder(TopicViewsBuild, _Builder):
    """The build of the model as one topic with its own ``views`` sees it."""
