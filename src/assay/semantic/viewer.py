"""Who a query runs for, as the semantic layer sees them: their user attribute values and
what their role on the model lets them do. Pure data; the job store builds it from its user
directory, the compiler and the governed model read it.

Roles are Omni's base roles, least to most: ``VIEWER`` (reads, queries nothing),
``RESTRICTED_QUERIER`` (topic queries only, no SQL shown), ``QUERIER`` (any query, SQL shown),
``MODELER`` (also edits the model). Organization admins have every permission, as in Omni.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

#: built in, read-only, and set from the user record itself
SYSTEM_ATTRIBUTES: tuple[str, ...] = (
    "omni_user_email",
    "omni_user_id",
    "omni_user_name",
    "omni_user_groups",
    "omni_is_org_admin",
)
Role = Literal["VIEWER", "RESTRICTED_QUERIER", "QUERIER", "MODELER"]
ROLES: tuple[Role, ...] = ("VIEWER", "RESTRICTED_QUERIER", "QUERIER", "MODELER")
DEFAULT_ROLE: Role = "QUERIER"
#: what whoami reports for an organization admin on every model
ADMIN_ROLE = "CONNECTION_ADMIN"

QUERY_TOPICS = "QUERY_TOPICS"
QUERY_FULL_MODEL = "QUERY_FULL_MODEL"
QUERY_SQL = "QUERY_SQL"
VIEW_SQL = "VIEW_SQL"
UPDATE = "UPDATE"
PERMISSIONS: Mapping[str, tuple[str, ...]] = {
    "VIEWER": (),
    "RESTRICTED_QUERIER": (QUERY_TOPICS,),
    "QUERIER": (QUERY_TOPICS, QUERY_FULL_MODEL, QUERY_SQL, VIEW_SQL),
    "MODELER": (QUERY_TOPICS, QUERY_FULL_MODEL, QUERY_SQL, VIEW_SQL, UPDATE),
    ADMIN_ROLE: (QUERY_TOPICS, QUERY_FULL_MODEL, QUERY_SQL, VIEW_SQL, UPDATE),
}


@dataclass(frozen=True)
class Viewer:
    """A user on one model.

    ``attributes`` holds each attribute's effective values as text (the user's own, else the
    attribute's default); an attribute with no value is absent. ``numeric`` names the
    attributes of type Number, rendered into SQL as number literals rather than strings.
    """

    user_id: str
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    numeric: frozenset[str] = frozenset()
    role: str = DEFAULT_ROLE
    org_admin: bool = False

    @property
    def resolved_role(self) -> str:
        return ADMIN_ROLE if self.org_admin else self.role

    @property
    def permissions(self) -> tuple[str, ...]:
        return PERMISSIONS.get(self.resolved_role, ())

    def may(self, permission: str) -> bool:
        return permission in self.permissions

    def values(self, attribute: str) -> tuple[str, ...]:
        return self.attributes.get(attribute, ())

    def fingerprint(self, attributes: Iterable[str]) -> str:
        """What of this user can change a compiled query on a model that reads
        ``attributes``: those values and the role. Users alike in both share compiled SQL."""
        values = {name: list(self.values(name)) for name in sorted(attributes)}
        return json.dumps([self.resolved_role, values], separators=(",", ":"))
