"""The one error tree of Assay. Bottom layer: imports nothing from the package.

Every error carries a stable ``code`` (snake_case, for clients and logs), an HTTP ``status``
and the ``error_type`` Omni puts on a failed job line (PLAN, QUERY, KILL, ...), so the server
and the job runner translate errors without isinstance ladders.

    AssayError
    ├── ConfigError
    │   └── StoreDamaged        (the SQLite store file fails its start-up check: restore it)
    ├── BackupError             (a backup or restore of the SQLite store could not be made)
    │   ├── BackupInvalid       (not a backup, or an incomplete or damaged one)
    │   └── StoreInUse          (restore refused: a server or command has the store open)
    ├── ResultsUnwritable       (INTERNAL: the results folder is full, read-only or gone)
    ├── ResultTooLarge          (QUERY: the result passed the max_result_bytes setting)
    ├── ModelError
    │   ├── ModelInvalid            (carries every ModelIssue found, never just the first)
    │   └── ModelNotFound
    ├── PermissionDenied            (403: the user's role does not allow the request)
    ├── QueryError                  (PLAN: the query cannot be planned against the model)
    │   ├── InvalidQuery
    │   ├── UnknownField
    │   ├── UnknownTopic
    │   ├── NotSupported
    │   ├── CalculationsFailed      (CALCS_FAILED: a table calculation cannot be evaluated)
    │   ├── Forbidden               (FORBIDDEN: an access rule of the model refuses the query)
    │   └── FanoutNeedsPrimaryKey   (PLAN_PK_REQUIRED_DUE_TO_JOIN_FANOUT)
    └── EngineError                 (QUERY: the database refused or failed)
        ├── QueryCancelled          (KILL)
        └── EngineUnavailable       (OFFLINE)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar


def suggest(name: str, candidates: Iterable[str], *, limit: int = 3) -> list[str]:
    """Close matches for a mistyped name, best first (case-insensitive)."""
    pool = {c.lower(): c for c in candidates}
    hits = difflib.get_close_matches(name.lower(), list(pool), n=limit, cutoff=0.6)
    return [pool[h] for h in hits]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ' Did you mean "x"?' suffix, or '' when nothing is close."""
    hits = suggest(name, candidates)
    if not hits:
        return ""
    quoted = " or ".join(f'"{h}"' for h in hits)
    return f" Did you mean {quoted}?"


class AssayError(Exception):
    """Something went wrong in Assay."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or self.code).strip()
        super().__init__(self.message)


class ConfigError(AssayError):
    """The settings are invalid."""

    code = "config_invalid"
    status = 500


class StoreDamaged(ConfigError):
    """A SQLite store file is damaged (not a database, truncated, corrupted pages).

    A configuration error, not a runtime one: the server must not start on it (it would
    fail requests one by one, or write over what could still be recovered)."""

    code = "store_damaged"


class BackupError(AssayError):
    """The job store could not be backed up or restored; what was there is unchanged."""

    code = "backup_failed"
    status = 500


class BackupInvalid(BackupError):
    """What was given is not a backup of the job store, or an incomplete or damaged one.

    Found before anything is written: the home being restored is left as it was."""

    code = "backup_invalid"
    status = 400


class StoreInUse(BackupError):
    """A restore would replace a job store that a running server (or another command) has
    open: its next writes would go to a file no one reads, or tear the restored one."""

    code = "store_in_use"
    status = 409


class ResultsUnwritable(AssayError):
    """The results folder cannot take the query's result file (disk full, read-only, removed).

    ``INTERNAL``: the query is fine and the same query runs once the operator frees space or
    mounts the folder read-write; no change to the query would help (507: Insufficient
    Storage, the server cannot store what the request needs)."""

    code = "results_unwritable"
    status = 507
    error_type = "INTERNAL"


class ResultTooLarge(AssayError):
    """The query's result passed the ``max_result_bytes`` setting; writing it stopped.

    ``QUERY``: the plan was valid, running it showed the result is too large, and the caller
    fixes it by changing the query (a limit, filters), as for an error the database raises."""

    code = "result_too_large"
    status = 400
    error_type = "QUERY"

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        super().__init__(
            f"The result is larger than max_result_bytes ({max_bytes} bytes): add a limit or "
            "filters, or raise the setting"
        )


class ModelError(AssayError):
    """The semantic model cannot be used."""

    code = "model_error"
    status = 400
    error_type = "PLAN"


@dataclass(frozen=True, slots=True)
class ModelIssue:
    """One problem in a model's files: where it is and what to do about it."""

    file: str
    yaml_path: str
    message: str
    is_warning: bool = False

    def __str__(self) -> str:
        where = f"{self.file}: {self.yaml_path}" if self.yaml_path else self.file
        return f"{where}: {self.message}"


class ModelInvalid(ModelError):
    """The model has errors and was not loaded."""

    code = "model_invalid"

    def __init__(self, issues: list[ModelIssue], *, model: str = "") -> None:
        self.issues = issues
        errors = [i for i in issues if not i.is_warning]
        head = f"Model {model!r} is invalid" if model else "The model is invalid"
        lines = "\n".join(f"  - {i}" for i in errors)
        super().__init__(f"{head} ({len(errors)} error{'s' * (len(errors) != 1)}):\n{lines}")


class ModelNotFound(ModelError):
    """No such model."""

    code = "model_not_found"
    status = 404


class QueryError(AssayError):
    """The query cannot be planned against the model."""

    code = "query_invalid"
    status = 400
    error_type = "PLAN"


class InvalidQuery(QueryError):
    """The query object is malformed."""

    code = "query_invalid"


class UnknownField(QueryError):
    """The query names a field the model does not have."""

    code = "unknown_field"


class UnknownTopic(QueryError):
    """The query names a topic or view the model does not have."""

    code = "unknown_topic"
    status = 404


class NotSupported(QueryError):
    """The query uses a feature Assay does not support yet."""

    code = "not_supported"


class CalculationsFailed(QueryError):
    """A table calculation cannot be evaluated (and does not swallow its errors)."""

    code = "calculations_failed"
    error_type = "CALCS_FAILED"

    def __init__(self, invalid: Mapping[str, str], failed: Mapping[str, str]) -> None:
        #: every invalid calculation and why (``summary.invalid_calculations``)
        self.invalid = dict(invalid)
        reasons = "; ".join(f"{name!r} {why}" for name, why in failed.items())
        super().__init__(
            f"Invalid calculations: {reasons}. Fix or remove them, or set swallow_errors: true "
            "on a calculation to show #ERROR! in its cells instead"
        )


class Forbidden(QueryError):
    """An access rule of the model refuses the query for this user."""

    code = "forbidden"
    status = 403
    error_type = "FORBIDDEN"


class PermissionDenied(AssayError):
    """The user's role on the model does not allow this request (no job is made)."""

    code = "permission_denied"
    status = 403
    error_type = "FORBIDDEN"


class FanoutNeedsPrimaryKey(QueryError):
    """A measure would be multiplied by a one-to-many join and its view has no primary key."""

    code = "pk_required_due_to_join_fanout"
    error_type = "PLAN_PK_REQUIRED_DUE_TO_JOIN_FANOUT"


class EngineError(AssayError):
    """The database failed to run the query."""

    code = "engine_error"
    status = 500
    error_type = "QUERY"


class QueryCancelled(EngineError):
    """The query was cancelled."""

    code = "query_cancelled"
    status = 499
    error_type = "KILL"


class EngineUnavailable(EngineError):
    """The database cannot be reached."""

    code = "engine_unavailable"
    status = 503
    error_type = "OFFLINE"
