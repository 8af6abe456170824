"""Load a model folder into a ``SemanticModel``, or refuse it whole with every issue found.

Files, as Omni names them (a ``.yaml`` suffix is optional): ``model``, ``relationships``,
``<view>.view`` and ``<topic>.topic``, in the folder or below it. Checking runs in passes
(structure, then references, then joins and filters) and never stops at the first problem, so a
model author fixes everything in one round.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from pathlib import Path

from assay.errors import ModelInvalid, ModelIssue, did_you_mean
from assay.semantic.build_state import NAME
from assay.semantic.build_topics import TopicBuilder, reads_clock
from assay.semantic.catalog import Catalog
from assay.semantic.compiler import DIALECTS
from assay.semantic.files import ModelFile
from assay.semantic.model import SemanticModel, Topic

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

    def build(self) -> SemanticModel | None:
        model_file = ModelFile()
        if "model" in self.files:
            model_file = self.parse("model", ModelFile) or model_file
        self.name = model_file.name or self.name
        self.dialect = model_file.dialect
        if self.dialect not in DIALECTS:  # sqlglot would refuse it in every template below
            hint = did_you_mean(self.dialect, DIALECTS)
            self.issue("model", "dialect", f"unknown dialect {self.dialect!r}: expected one of "
                       f"{', '.join(DIALECTS)}.{hint}")  # fmt: skip
            self.dialect = "duckdb"  # read the rest anyway, so every other issue shows too
        self._read_grants(model_file)
        if not NAME.match(self.name):
            self.issue("model", "name", f"model name {self.name!r} must match [a-z][a-z0-9_]*")
        for file in self.files:
            base = file.rsplit("/", 1)[-1]
            if base.endswith(".view"):
                self._read_view_file(file, base.removesuffix(".view"))
        views = self._build_views()
        relationships = self._build_relationships(views)
        topics = self._build_topics(views, relationships)
        ai_topics = self._ai_chat_topics(model_file.ai_chat_topics, topics)
        if not views and not self.quiet:
            self.issue("model", "", "the model has no views (expected <name>.view files)")
        if any(not i.is_warning for i in self.issues):
            return None
        digest = hashlib.sha256()
        for file in sorted(self.files):
            digest.update(file.encode() + b"\0" + self.files[file].encode() + b"\0")
        return SemanticModel(
            name=self.name,
            dialect=self.dialect,
            views=views,
            topics=topics,
            relationships=tuple(relationships),
            label=model_file.label,
            description=model_file.description,
            ai_context=model_file.ai_context,
            connection=model_file.connection,
            default_row_limit=model_file.default_row_limit,
            ai_chat_topics=ai_topics,
            version=digest.hexdigest()[:16],
            files=dict(self.files),
            clock_filters=reads_clock(views, topics),
            warnings=tuple(i for i in self.issues if i.is_warning),
            attributes_used=frozenset(self.attributes_used),
            grants=dict(self.access_grants),
        )
