"""The models a server serves: each from its own folder, on its own engine, editable through
the YAML API.

A YAML write is validated against the whole model first and then applied in one step: the
file is written atomically (a temporary file renamed into place) and the served model is
swapped by a single assignment, so a query sees the old model or the new one, never a mix.
Results cached for the old version are not served for the new one: the cache key holds the
model's version.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from assay.errors import ModelInvalid, PermissionDenied
from assay.jobs.runner import JobRunner
from assay.jobs.work import Target
from assay.semantic.catalog import Catalog
from assay.semantic.loader import build_model
from assay.semantic.model import SemanticModel
from assay.semantic.viewer import UPDATE, Viewer
from assay.server.errors import ApiError

# Topics keep their file's capitals, as in Omni (``Customers.topic``); views are lower case.
_FILE_NAME = re.compile(
    r"^(?:[a-z][a-z0-9_]*/)*(?:model|relationships|[a-z][a-z0-9_]*\.view|[A-Za-z][A-Za-z0-9_]*\.topic)$"
)


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def connection_id_for(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"assay:connection:{name}"))


@dataclass
class Served:
    folder: Path
    connection: str
    catalog: Catalog | None
    created_at: float
    updated_at: float


class ModelRegistry:
    def __init__(
        self,
        runner: JobRunner,
        *,
        attributes: Callable[[], Collection[str] | None] | None = None,
    ) -> None:
        self.runner = runner
        #: the organization's user attribute names, which a model's rules may read (None:
        #: unknown, so not checked)
        self.attributes: Callable[[], Collection[str] | None] = attributes or (lambda: None)
        self._served: dict[str, Served] = {}
        self._lock = threading.Lock()

    def add(
        self, folder: Path, target: Target, *, connection: str, catalog: Catalog | None
    ) -> None:
        created = folder.stat().st_mtime if folder.exists() else time.time()
        self._served[target.model.id] = Served(folder, connection, catalog, created, created)
        self.runner.targets[target.model.id] = target

    def ids(self) -> list[str]:
        return list(self._served)

    def model(self, model_id: str) -> SemanticModel:
        target = self.runner.targets.get(model_id)
        if target is None or model_id not in self._served:
            raise ApiError(404, f"Model {model_id} not found")
        return target.model

    def models_using_attribute(self, name: str) -> list[str]:
        """The served models whose rules read user attribute ``name`` (it must not go away
        while they do)."""
        return sorted(
            target.model.name
            for model_id, target in self.runner.targets.items()
            if model_id in self._served and name in target.model.attributes_used
        )

    def editable(self, model_id: str, viewer: Viewer) -> SemanticModel:
        """The model, to a user whose role may read and change its files (a modeler): its
        YAML holds every rule and field, whatever that user's grants."""
        model = self.model(model_id)
        if not viewer.may(UPDATE):
            raise PermissionDenied("Permission denied - modeler role required on the model")
        return model

    def served(self, model_id: str) -> Served:
        self.model(model_id)
        return self._served[model_id]

    def connection_id(self, model_id: str) -> str:
        return connection_id_for(self.served(model_id).connection)

    def checksums(self, model_id: str) -> dict[str, str]:
        return {name: checksum(text) for name, text in self.model(model_id).files.items()}

    def write(
        self,
        model_id: str,
        file_name: str,
        text: str,
        previous_checksum: str | None,
        *,
        viewer: Viewer,
    ) -> SemanticModel:
        """Replace (or, with empty text, delete) one file: all or nothing."""
        return self.write_files(
            model_id, {file_name: text}, {file_name: previous_checksum}, viewer=viewer
        )

    def write_files(
        self,
        model_id: str,
        changes: dict[str, str],
        previous: dict[str, str | None] | None = None,
        *,
        viewer: Viewer,
    ) -> SemanticModel:
        """Replace, add or (empty text) delete files together, for a modeler: all or
        nothing."""
        self.editable(model_id, viewer)
        for file_name in changes:
            if not _FILE_NAME.match(file_name):
                raise ApiError(400, f"fileName {file_name!r} is not a model file: expected "
                               "model, relationships, <name>.view or <name>.topic")  # fmt: skip
        with self._lock:  # one write at a time per server; queries never wait on this
            served = self.served(model_id)
            current = self.model(model_id)
            files = dict(current.files)
            for file_name, text in changes.items():
                expected = (previous or {}).get(file_name)
                if expected is not None and checksum(files.get(file_name, "")) != expected:
                    raise ApiError(409, f"{file_name} has changed since it was read (checksum "
                                   "mismatch): read it again and reapply the change")  # fmt: skip
                if text.strip():
                    files[file_name] = text
                elif file_name in files:
                    del files[file_name]
                else:
                    raise ApiError(404, f"No file {file_name} in model {current.name}")
            try:
                new = build_model(
                    files, name=current.name, catalog=served.catalog, attributes=self.attributes()
                )
            except ModelInvalid as exc:
                issues = [{"file": i.file, "yaml_path": i.yaml_path, "message": i.message,
                           "is_warning": i.is_warning} for i in exc.issues]  # fmt: skip
                raise ApiError(
                    400, exc.message, code="model_invalid", extra={"issues": issues}
                ) from exc
            if new.id != model_id:
                raise ApiError(400, "The model's name cannot change through the YAML API")
            for file_name, text in changes.items():
                _write_atomically(served.folder, file_name, text)
            target = self.runner.targets[model_id]
            self.runner.targets[model_id] = Target(new, target.engine)
            served.updated_at = time.time()
            return new


def _disk_path(folder: Path, file_name: str) -> Path:
    """Where an Omni file name lives: ``orders.view`` may be ``orders.view.yaml`` on disk."""
    for suffix in (".yaml", ".yml", ""):
        path = folder / f"{file_name}{suffix}"
        if path.exists():
            return path
    return folder / f"{file_name}.yaml"


def _write_atomically(folder: Path, file_name: str, text: str) -> None:
    path = _disk_path(folder, file_name)
    if not text.strip():
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
