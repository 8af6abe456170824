"""The user directory: users (SCIM), user attribute definitions and per-model roles, as the
job store keeps them, and the ``Viewer`` the semantic layer governs a query by.

Attribute values are stored as text, as Omni stores them ("Number values are stored as strings
for precision"); a Number attribute's values are checked to be numbers when they are set, so
nothing that is not a number is ever rendered into SQL as one.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal, Protocol

from assay.errors import AssayError, Forbidden, did_you_mean
from assay.jobs.model import ApiKey
from assay.semantic.viewer import DEFAULT_ROLE, ROLES, Viewer
from assay.semantic.viewer import SYSTEM_ATTRIBUTES as SYSTEM_ATTRIBUTES  # noqa: PLC0414

if TYPE_CHECKING:  # it reads keys' rows, which name users: only its name is needed here
    from assay.jobs.chat_sessions import ChatSession

AttributeType = Literal["String", "Number"]
_SYSTEM_LABELS = {
    "omni_user_email": "User email",
    "omni_user_id": "User ID",
    "omni_user_name": "User name",
    "omni_user_groups": "User groups",
    "omni_is_org_admin": "Is organization admin",
}
ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
#: the organization's admin user, made by ``assay keys create --org`` on first use
ADMIN_USER_NAME = "admin@localhost"


class DirectoryError(AssayError):
    """The user directory refused a change."""

    code = "directory_error"
    status = 400
    error_type = "DIRECTORY"


class UserExists(DirectoryError):
    """A user with this userName already exists."""

    code = "user_exists"
    status = 409


class InvalidAttributeValue(DirectoryError):
    """A user attribute value does not fit the attribute's definition."""

    code = "invalid_attribute_value"


@dataclass(frozen=True, slots=True)
class AttributeDef:
    """A user attribute definition (``GET /api/v1/user-attributes`` record)."""

    name: str
    label: str
    type: AttributeType = "String"
    multiple_values: bool = False
    #: default values as text; None when the attribute has no default
    default_value: tuple[str, ...] | None = None
    description: str | None = None
    id: str = ""
    system: bool = False
    created_at: float = 0.0

    def record(self) -> dict[str, Any]:
        """Omni's list record: a multi-valued attribute's default is an array."""
        default: Any = None
        if self.default_value is not None:
            default = list(self.default_value) if self.multiple_values else self.default_value[0]
        return {
            "id": self.id,
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "multiple_values": self.multiple_values,
            "default_value": default,
            "description": self.description,
            "system": self.system,
        }


SYSTEM_DEFINITIONS: tuple[AttributeDef, ...] = tuple(
    AttributeDef(
        name, _SYSTEM_LABELS[name], multiple_values=name == "omni_user_groups", system=True
    )
    for name in SYSTEM_ATTRIBUTES
)


@dataclass(frozen=True, slots=True)
class User:
    """A member of the organization. ``id`` is the membership id (the SCIM ``id`` and the
    ``userId`` a query may run as); ``attributes`` holds only values set on the user."""

    id: str
    user_name: str
    display_name: str
    created_at: float
    updated_at: float
    active: bool = True
    org_admin: bool = False
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Profile:
    """What governs a user's requests, read together: the user, the attribute definitions
    (their defaults), and the user's role on each model that has one."""

    user: User
    definitions: tuple[AttributeDef, ...]
    roles: Mapping[str, str]


class Directory(Protocol):
    """Users, attribute definitions and model roles, kept by the job store (SQLite, or the
    shared PostgreSQL store so every replica sees the same users)."""

    def add_user(self, user: User) -> None:
        """Store a new user; ``UserExists`` when the userName (any case) is taken."""
        ...

    def user(self, user_id: str) -> User | None: ...

    def profile(self, user_id: str) -> Profile | None:
        """The user with the definitions and their roles: what every request reads, so a
        shared store answers it in one round trip."""
        ...

    def sign_in(self, token_hash: str) -> tuple[ApiKey, Profile | None] | None:
        """The key with this token hash and its user's profile (None when the user is gone),
        together: a request's first read, one round trip on a shared store."""
        ...

    def open_chat_session(self, session: ChatSession) -> None:
        """Store a chat page session (its id only as a hash)."""
        ...

    def chat_session(
        self, id_hash: str, now: float
    ) -> tuple[ChatSession, ApiKey, Profile | None] | None:
        """The live session with this hash, its key as stored now and the key's user's
        profile, read together: every chat page request's first read."""
        ...

    def end_chat_session(self, id_hash: str) -> bool:
        """Forget a session (sign-out); False when it was not there."""
        ...

    def user_named(self, user_name: str) -> User | None:
        """The user with this userName, compared without regard to case."""
        ...

    def users(
        self, *, user_name: str | None = None, start: int = 0, count: int | None = None
    ) -> tuple[int, list[User]]:
        """(how many match, the page from ``start``), oldest first."""
        ...

    def replace_user(self, user: User) -> bool:
        """Write a user's new record; False when it no longer exists."""
        ...

    def delete_user(self, user_id: str, at: float) -> bool:
        """Remove a user and revoke every key of theirs, in one transaction."""
        ...

    def attribute_definitions(self) -> list[AttributeDef]:
        """The custom (non-system) definitions, by name."""
        ...

    def add_attribute(self, definition: AttributeDef) -> None: ...

    def replace_attribute(self, definition: AttributeDef) -> bool: ...

    def delete_attribute(self, name: str) -> bool:
        """Remove a definition and every user's value for it."""
        ...

    def model_roles(self, user_id: str) -> dict[str, str]:
        """{model id: role} assigned to the user (models without one use the default)."""
        ...

    def set_model_role(self, user_id: str, model_id: str, role: str) -> None: ...


def new_user(
    user_name: str,
    display_name: str | None,
    at: float,
    *,
    user_id: str | None = None,
    org_admin: bool = False,
    attributes: Mapping[str, tuple[str, ...]] | None = None,
) -> User:
    name = user_name.strip()
    return User(
        id=user_id or str(uuid.uuid4()),
        user_name=name,
        display_name=(display_name or "").strip() or name.split("@")[0],
        created_at=at,
        updated_at=at,
        org_admin=org_admin,
        attributes=dict(attributes or {}),
    )


def all_definitions(custom: Iterable[AttributeDef]) -> list[AttributeDef]:
    return [*SYSTEM_DEFINITIONS, *sorted(custom, key=lambda d: d.name)]


def attribute_values(definition: AttributeDef, raw: Any) -> tuple[str, ...] | None:
    """A value as given (SCIM, CLI, a default) checked against its definition and stored as
    text; None clears it. ``InvalidAttributeValue`` says what is wrong."""
    if raw is None:
        return None
    items = list(raw) if isinstance(raw, list | tuple) else [raw]
    if not definition.multiple_values and len(items) != 1:
        raise InvalidAttributeValue(
            f"User attribute {definition.name!r} takes one value, not a list of {len(items)}"
        )
    if not items:
        return None
    return tuple(_text(definition, item) for item in items)


def _text(definition: AttributeDef, value: Any) -> str:
    if definition.type == "Number":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidAttributeValue(_not_a(definition, value, "a number"))
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise InvalidAttributeValue(_not_a(definition, value, "a number")) from None
        if not number.is_finite():
            raise InvalidAttributeValue(_not_a(definition, value, "a finite number"))
        text = format(number.normalize(), "f")
        return "0" if text in ("-0", "") else text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise InvalidAttributeValue(_not_a(definition, value, "text"))


def _not_a(definition: AttributeDef, value: Any, what: str) -> str:
    shown = value if isinstance(value, str | int | float) else type(value).__name__
    kind = f"User attribute {definition.name!r} is of type {definition.type}"
    return f"{kind}: {shown!r} is not {what}"


def checked_attributes(
    raw: Mapping[str, Any], definitions: Iterable[AttributeDef]
) -> dict[str, tuple[str, ...] | None]:
    """Values keyed by attribute name, each checked; unknown and system names are refused
    (with a suggestion). None values mean "clear"."""
    known = {d.name: d for d in definitions}
    out: dict[str, tuple[str, ...] | None] = {}
    for name, value in raw.items():
        if name in SYSTEM_ATTRIBUTES:
            raise InvalidAttributeValue(
                f"User attribute {name!r} is a system attribute: it cannot be set"
            )
        definition = known.get(name)
        if definition is None:
            hint = did_you_mean(name, known)
            raise InvalidAttributeValue(f"No user attribute named {name!r}.{hint}")
        out[name] = attribute_values(definition, value)
    return out


def effective_attributes(
    user: User, definitions: Iterable[AttributeDef]
) -> dict[str, tuple[str, ...]]:
    """Each attribute's values for this user: their own, else the default; the system
    attributes from the user record. An attribute with neither is absent."""
    out: dict[str, tuple[str, ...]] = {
        "omni_user_email": (user.user_name,),
        "omni_user_id": (user.id,),
        "omni_user_name": (user.display_name,),
        "omni_is_org_admin": ("true" if user.org_admin else "false",),
    }
    for d in definitions:
        if d.system:
            continue
        values = user.attributes.get(d.name)
        if values is None:
            values = d.default_value
        if values:
            out[d.name] = tuple(values)
    return out


def viewer_for(user: User, definitions: Iterable[AttributeDef], role: str | None = None) -> Viewer:
    """The ``Viewer`` a query by ``user`` on a model is governed as (``role``: theirs on it)."""
    defs = list(definitions)
    return Viewer(
        user_id=user.id,
        attributes=effective_attributes(user, defs),
        numeric=frozenset(d.name for d in defs if d.type == "Number"),
        role=role if role in ROLES else DEFAULT_ROLE,
        org_admin=user.org_admin,
    )


# ---------------------------------------------------------------- directory errors and checks


class UserNotFound(DirectoryError):
    """No such user."""

    code = "user_not_found"
    status = 404


class AttributeExists(DirectoryError):
    """A user attribute with this name already exists."""

    code = "attribute_exists"
    status = 409


class AttributeNotFound(DirectoryError):
    """No such user attribute."""

    code = "attribute_not_found"
    status = 404


class AttributeConflict(DirectoryError):
    """A definition change that a stored user value would no longer fit."""

    code = "attribute_conflict"
    status = 409


def checked_definition(definition: AttributeDef) -> AttributeDef:
    """A custom definition made sound before it is stored: a valid, non-system name, a known
    type, and a default that fits the definition itself (normalised as user values are)."""
    name = definition.name
    if name in SYSTEM_ATTRIBUTES:
        raise DirectoryError(f"User attribute {name!r} is a system attribute: it is built in "
                             "and cannot be created, changed or deleted")  # fmt: skip
    if not ATTRIBUTE_NAME.match(name):
        raise DirectoryError(f"User attribute name {name!r} is not valid: use a lower-case "
                             "letter, then letters, digits or _ (at most 63)")  # fmt: skip
    if definition.type not in ("String", "Number"):
        hint = did_you_mean(str(definition.type), ("String", "Number"))
        raise DirectoryError(
            f"User attribute type {definition.type!r} is not String or Number.{hint}"
        )
    label = definition.label.strip() or name.replace("_", " ").capitalize()
    default = definition.default_value
    if default is not None:
        try:
            default = attribute_values(definition, list(default))
        except InvalidAttributeValue as exc:
            raise DirectoryError(f"default_value: {exc.message}") from None
    description = (definition.description or "").strip() or None
    return AttributeDef(
        name=name,
        label=label,
        type=definition.type,
        multiple_values=definition.multiple_values,
        default_value=default,
        description=description,
        id=definition.id,
        system=False,
        created_at=definition.created_at,
    )


def lookup_viewer(directory: Directory, user_id: str | None, model_id: str) -> Viewer | None:
    """The viewer a stored job runs as, read again now: a job run after a restart, or by
    another replica, is governed by the user's rules as they are. None for a job that has no
    user (made before users existed): it then runs as no one."""
    if user_id is None:
        return None
    profile = directory.profile(user_id)
    if profile is None or not profile.user.active:
        raise Forbidden(f"The user {user_id} this job runs as no longer exists")
    definitions = all_definitions(profile.definitions)
    return viewer_for(profile.user, definitions, profile.roles.get(model_id))


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def is_email(text: str) -> bool:
    """Whether ``text`` can be a userName: an email address (``name@domain``, no spaces, at
    most 254 characters). Checked loosely on purpose: ``admin@localhost`` is one."""
    name = text.strip()
    return bool(_EMAIL.match(name)) and len(name) <= 254
