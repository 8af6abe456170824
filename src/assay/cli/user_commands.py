"""``assay users`` and ``assay attributes``: the user directory from the command line, on the
job store the server uses (SQLite in home, or the shared PostgreSQL store), with or without a
server running. SCIM writes the same users over HTTP."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from assay.cli.app import HomeOption, app, fail, settings_of
from assay.config import Settings
from assay.errors import AssayError, did_you_mean
from assay.jobs.users import (
    SYSTEM_ATTRIBUTES,
    AttributeDef,
    AttributeNotFound,
    DirectoryError,
    User,
    UserNotFound,
    all_definitions,
    attribute_values,
    checked_attributes,
    is_email,
    new_user,
)

if TYPE_CHECKING:  # the store's modules load when a command opens it, not for --help
    from assay.jobs.store import JobStore

users = typer.Typer(
    help="Users' attribute values and model roles. SCIM writes the same directory.",
    no_args_is_help=True,
)
attributes = typer.Typer(help="User attribute definitions.", no_args_is_help=True)
app.add_typer(users, name="users")
app.add_typer(attributes, name="attributes")

Assignments = Annotated[
    list[str] | None,
    typer.Argument(help="ATTR=VALUE; repeat ATTR=V for several values; ATTR= clears it."),
]


@contextmanager
def _store(ctx: typer.Context, home: Path | None) -> Iterator[JobStore]:
    """The job store, closed afterwards; an Assay error is printed and exits 1."""
    from assay.jobs.stores import open_job_store

    try:
        store = open_job_store(settings_of(ctx, home), pool_size=2)
    except AssayError as exc:
        raise fail(exc) from exc
    try:
        yield store
    except AssayError as exc:
        raise fail(exc) from exc
    finally:
        store.close()


def _user(store: JobStore, email: str) -> User:
    found = store.users.user_named(email)
    if found is None:
        _, everyone = store.users.users()
        hint = did_you_mean(email, [u.user_name for u in everyone])
        raise UserNotFound(f"No user {email!r}.{hint}")
    return found


def _assignments(
    items: list[str], definitions: list[AttributeDef]
) -> dict[str, tuple[str, ...] | None]:
    """ATTR=VALUE words as checked values: repeated names gather into a list, ``ATTR=`` clears
    (and cannot be mixed with values for the same name)."""
    raw: dict[str, list[str]] = {}
    cleared: set[str] = set()
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise DirectoryError(f"{item!r} is not ATTR=VALUE")
        if value == "":
            cleared.add(name)
        else:
            raw.setdefault(name, []).append(value)
    both = sorted(cleared & set(raw))
    if both:
        raise DirectoryError(f"{both[0]}= clears the attribute: do not give it values too")
    given: dict[str, object] = {name: None for name in cleared}
    given.update(raw)
    return checked_attributes(given, definitions)


def _apply(user: User, changes: dict[str, tuple[str, ...] | None]) -> dict[str, tuple[str, ...]]:
    values = dict(user.attributes)
    for name, new in changes.items():
        if new:
            values[name] = new
        else:
            values.pop(name, None)
    return values


def _describe(user: User, roles: dict[str, str]) -> str:
    values = " ".join(f"{n}={','.join(v)}" for n, v in sorted(user.attributes.items()))
    role_text = " ".join(f"{m}={r}" for m, r in sorted(roles.items()))
    return "  ".join(part for part in (
        user.id, user.user_name, user.display_name, "admin" if user.org_admin else "member",
        "active" if user.active else "inactive", values, f"roles: {role_text}" if roles else "",
    ) if part)  # fmt: skip


# ---------------------------------------------------------------------- users


@users.command("create")
def users_create(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The user's email (their userName).")],
    assignments: Assignments = None,
    name: Annotated[
        str | None, typer.Option(help="Display name (default: from the email).")
    ] = None,
    admin: Annotated[
        bool, typer.Option("--admin", help="An organization admin (every right on every model).")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Create a user, with attribute values (ATTR=VALUE ...)."""
    from assay.jobs.keys import fresh_user_id

    if not is_email(email):
        raise typer.BadParameter(f"{email!r} is not an email address")
    with _store(ctx, home) as store:
        values = _assignments(assignments or [], store.users.attribute_definitions())
        given = {n: v for n, v in values.items() if v}
        user = new_user(email, name, time.time(), user_id=fresh_user_id(store, email),
                        org_admin=admin, attributes=given)  # fmt: skip
        store.users.add_user(user)
        typer.echo(_describe(user, {}))


@users.command("list")
def users_list(ctx: typer.Context, home: HomeOption = None) -> None:
    """List users: id, email, name, admin or member, active, attribute values, model roles."""
    with _store(ctx, home) as store:
        _, everyone = store.users.users()
        for user in everyone:
            typer.echo(_describe(user, store.users.model_roles(user.id)))


@users.command("set")
def users_set(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The user's email.")],
    assignments: Assignments = None,
    name: Annotated[str | None, typer.Option(help="A new display name.")] = None,
    admin: Annotated[
        bool | None,
        typer.Option("--admin/--member", help="Make them an organization admin, or not."),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Set (or, with ATTR=, clear) a user's attribute values, others left as they are; and
    their display name or admin rights."""
    if not assignments and name is None and admin is None:
        raise typer.BadParameter("give ATTR=VALUE (ATTR= clears it), --name or --admin/--member")
    with _store(ctx, home) as store:
        user = _user(store, email)
        changes = _assignments(assignments or [], store.users.attribute_definitions())
        if admin is False and user.org_admin:
            _keep_org_keys_with_an_admin(store, user)
        changed = replace(user, attributes=_apply(user, changes), updated_at=time.time(),
                          display_name=name.strip() if name and name.strip() else user.display_name,
                          org_admin=user.org_admin if admin is None else admin)  # fmt: skip
        if not store.users.replace_user(changed):
            raise UserNotFound(f"No user {email!r}")
        typer.echo(_describe(changed, store.users.model_roles(user.id)))


def _keep_org_keys_with_an_admin(store: JobStore, user: User) -> None:
    """Organization keys act with admin rights: their user must stay an admin."""
    live = [k for k in store.api_keys()
            if k.user_id == user.id and k.kind == "org" and k.revoked_at is None]  # fmt: skip
    if live:
        raise DirectoryError(f"{user.user_name} holds {len(live)} organization key(s), which act "
                             "as an admin: revoke them (assay keys revoke ID) first")  # fmt: skip


@users.command("role")
def users_role(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The user's email.")],
    model: Annotated[str, typer.Argument(help="The model's name or id.")],
    role: Annotated[str, typer.Argument(help="VIEWER, RESTRICTED_QUERIER, QUERIER or MODELER.")],
    home: HomeOption = None,
) -> None:
    """Give a user a role on a model (without one, a user is a QUERIER)."""
    settings = settings_of(ctx, home)
    with _store(ctx, home) as store:
        model_id = _model_id(settings, model)
        user = _user(store, email)
        store.users.set_model_role(user.id, model_id, role.strip().upper())
        typer.echo(f"{user.user_name} is {role.strip().upper()} on model {model} ({model_id})")


def _model_id(settings: Settings, model: str) -> str:
    """A model id as given, or the id of a model named as the settings serve it."""
    try:
        return str(uuid.UUID(model))
    except ValueError:
        pass
    from assay.demo.tpch import tpch_model_dir
    from assay.semantic.model import model_id_for

    if settings.models:
        names = [Path(spec["folder"]).name for spec in settings.models]
    else:
        names = [(settings.resolved_models_dir or tpch_model_dir()).name]
    if model not in names:
        hint = did_you_mean(model, names)
        raise DirectoryError(f"No model named {model!r} in the settings (models: "
                             f"{', '.join(names)}); give an id for another.{hint}")  # fmt: skip
    return model_id_for(model)


@users.command("delete")
def users_delete(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The user's email.")],
    home: HomeOption = None,
) -> None:
    """Delete a user, their model roles, and revoke every key of theirs."""
    with _store(ctx, home) as store:
        user = _user(store, email)
        keys = [k for k in store.api_keys() if k.user_id == user.id and k.revoked_at is None]
        if not store.users.delete_user(user.id, time.time()):
            raise UserNotFound(f"No user {email!r}")
        typer.echo(f"deleted {user.user_name} ({user.id}); revoked {len(keys)} key(s)")


# ---------------------------------------------------------------------- attributes


@attributes.command("create")
def attributes_create(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="Reference name, as models use it: a-z, 0-9 and _, from a letter.")
    ],
    label: Annotated[str | None, typer.Option(help="Label (default: from the name).")] = None,
    kind: Annotated[str, typer.Option("--type", help="String or Number.")] = "String",
    multiple: Annotated[
        bool, typer.Option("--multiple", help="Takes several values (a list).")
    ] = False,
    default: Annotated[
        list[str] | None,
        typer.Option("--default", help="Default value, for users with none; repeat for several."),
    ] = None,
    description: Annotated[str | None, typer.Option(help="What it is for.")] = None,
    home: HomeOption = None,
) -> None:
    """Create a user attribute definition."""
    typed = {"string": "String", "number": "Number"}.get(kind.strip().lower())
    if typed is None:
        hint = did_you_mean(kind, ("String", "Number"))
        raise typer.BadParameter(f"--type must be String or Number, not {kind!r}.{hint}")
    draft = AttributeDef(name, label or "", type="Number" if typed == "Number" else "String",
                         multiple_values=multiple, description=description)  # fmt: skip
    with _store(ctx, home) as store:
        values = attribute_values(draft, default) if default else None
        store.users.add_attribute(replace(draft, default_value=values))
        created = {d.name: d for d in store.users.attribute_definitions()}[name]
        typer.echo(_definition_line(created))


@attributes.command("list")
def attributes_list(ctx: typer.Context, home: HomeOption = None) -> None:
    """List attribute definitions, the built-in (system) ones first."""
    with _store(ctx, home) as store:
        for definition in all_definitions(store.users.attribute_definitions()):
            typer.echo(_definition_line(definition))


@attributes.command("delete")
def attributes_delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The attribute's name.")],
    home: HomeOption = None,
) -> None:
    """Delete an attribute definition and every user's value for it. The command line does
    not know what a server serves: a model that still reads the attribute will fail to load
    (the server's DELETE /api/v1/user-attributes/NAME refuses while a served model reads it)."""
    with _store(ctx, home) as store:
        custom = [d.name for d in store.users.attribute_definitions()]
        if name in SYSTEM_ATTRIBUTES:
            raise DirectoryError(f"User attribute {name!r} is a system attribute: it is built in "
                                 "and cannot be deleted")  # fmt: skip
        if name not in custom:
            raise AttributeNotFound(
                f"No user attribute named {name!r}.{did_you_mean(name, custom)}"
            )
        store.users.delete_attribute(name)
        typer.echo(f"deleted attribute {name}")


def _definition_line(d: AttributeDef) -> str:
    shape = f"{d.type}{' (multiple)' if d.multiple_values else ''}"
    default = "" if d.default_value is None else f"default={','.join(d.default_value)}"
    return "  ".join(part for part in (
        d.name, d.label, shape, "system" if d.system else "custom", default,
        d.description or "",
    ) if part)  # fmt: skip
