"""The user directory contract (``jobs.users.Directory``), on both job stores: a real SQLite
file, and a schema of its own on the real PostgreSQL."""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from assay.jobs.keys import create_key, hash_token, org_admin, user_for_email
from assay.jobs.model import Job
from assay.jobs.postgres import PostgresJobStore
from assay.jobs.sqlite import SQLiteJobStore
from assay.jobs.store import JobStore
from assay.jobs.users import (
    AttributeConflict,
    AttributeDef,
    AttributeExists,
    DirectoryError,
    InvalidAttributeValue,
    User,
    UserExists,
    UserNotFound,
    new_user,
)
from tests.live import POSTGRES_URL, unavailable


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    if request.param == "sqlite":
        lite = SQLiteJobStore(tmp_path / "assay.sqlite")
        yield lite
        lite.close()
        return
    schema = f"assay_d_{uuid.uuid4().hex[:10]}"
    try:
        shared = PostgresJobStore(POSTGRES_URL, schema=schema, pool_size=2)
    except Exception as exc:  # no server: skipped (or failed under CI)
        unavailable(f"no PostgreSQL at {POSTGRES_URL}: {exc}")
    yield shared
    shared.close()
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def raw_sql(store: JobStore, statement: str) -> None:
    """Run SQL on the store's database behind its back, as another program would."""
    if isinstance(store, SQLiteJobStore):
        with sqlite3.connect(store.path) as db:
            db.executescript(statement)
        return
    assert isinstance(store, PostgresJobStore)
    with psycopg.connect(POSTGRES_URL, autocommit=True,
                         options=f"-c search_path={store.schema}") as conn:  # fmt: skip
        conn.execute(statement)


def person(name: str, at: float = 100.0, **kw: object) -> User:
    return new_user(name, None, at, **kw)  # type: ignore[arg-type]


def define(store: JobStore, name: str, **kw: object) -> AttributeDef:
    store.users.add_attribute(AttributeDef(name, "", **kw))  # type: ignore[arg-type]
    return {d.name: d for d in store.users.attribute_definitions()}[name]


def test_users_are_found_by_id_and_by_name_in_any_case(store: JobStore) -> None:
    ann = person("Ann@Example.com")
    store.users.add_user(ann)
    assert store.users.user(ann.id) == ann
    assert store.users.user_named("ann@EXAMPLE.com") == ann
    assert store.users.user(str(uuid.uuid4())) is None
    with pytest.raises(UserExists, match=re.escape("Ann@Example.com")):
        store.users.add_user(person("ANN@example.COM"))
    with pytest.raises(UserExists, match=ann.id):
        store.users.add_user(person("other@example.com", user_id=ann.id))
    assert store.users.users() == (1, [ann])
    assert store.users.users(user_name="ann@example.com") == (1, [ann])
    assert store.users.users(user_name="nobody@example.com") == (0, [])


def test_users_page_oldest_first(store: JobStore) -> None:
    people = [person(f"u{i}@example.com", at=100.0 + i) for i in range(5)]
    for p in reversed(people):
        store.users.add_user(p)
    assert store.users.users(start=1, count=2) == (5, people[1:3])
    assert store.users.users(start=3) == (5, people[3:])
    assert store.users.users(start=9, count=2) == (5, [])
    assert store.users.users(count=0) == (5, [])


def test_replace_writes_a_new_record_and_keeps_names_unique(store: JobStore) -> None:
    ann, bob = person("ann@example.com"), person("bob@example.com")
    store.users.add_user(ann)
    store.users.add_user(bob)
    renamed = replace(ann, user_name="anne@example.com", display_name="Anne", active=False,
                      updated_at=200.0)  # fmt: skip
    assert store.users.replace_user(renamed)
    assert store.users.user(ann.id) == renamed
    with pytest.raises(UserExists):
        store.users.replace_user(replace(bob, user_name="ANNE@example.com"))
    assert store.users.user(bob.id) == bob, "the refused write left the user as it was"
    assert not store.users.replace_user(person("ghost@example.com"))


def test_values_are_checked_against_the_definitions_when_written(store: JobStore) -> None:
    define(store, "region")
    define(store, "level", type="Number", multiple_values=True)
    ann = person("ann@example.com", attributes={"region": ("west",), "level": ("05", "2.50")})
    store.users.add_user(ann)
    stored = store.users.user(ann.id)
    assert stored is not None
    assert stored.attributes == {"region": ("west",), "level": ("5", "2.5")}, "normal form"
    for bad, message in (
        ({"regoin": ("west",)}, 'No user attribute named .regoin.. Did you mean "region"'),
        ({"level": ("high",)}, "is of type Number: 'high' is not a number"),
        ({"region": ("a", "b")}, "takes one value, not a list of 2"),
        ({"omni_user_email": ("x@y.z",)}, "system attribute"),
    ):
        with pytest.raises(InvalidAttributeValue, match=message):
            store.users.replace_user(replace(ann, attributes=bad))
        with pytest.raises(InvalidAttributeValue):
            store.users.add_user(person("new@example.com", attributes=bad))
    assert store.users.user(ann.id) == stored
    assert store.users.user_named("new@example.com") is None


def test_deleting_a_user_revokes_their_keys_and_roles(store: JobStore) -> None:
    ann = user_for_email(store, "ann@example.com")
    bob = user_for_email(store, "bob@example.com")
    own = [create_key(store, "pat", user=ann)[0] for _ in range(2)]
    _, other = create_key(store, "pat", user=bob)
    store.users.set_model_role(ann.id, "m1", "VIEWER")
    assert store.users.delete_user(ann.id, 50.0)
    assert store.users.user(ann.id) is None and store.users.model_roles(ann.id) == {}
    revoked = {k.id: k.revoked_at for k in store.api_keys()}
    assert [revoked[k.id] for k in own] == [50.0, 50.0]
    assert store.key_by_hash(hash_token(other)).revoked_at is None  # type: ignore[union-attr]
    assert not store.users.delete_user(ann.id, 60.0)


def test_deleting_a_user_is_one_transaction(store: JobStore) -> None:
    """When revoking the keys fails, the user and their roles are still there."""
    ann = user_for_email(store, "ann@example.com")
    key, _ = create_key(store, "pat", user=ann)
    store.users.set_model_role(ann.id, "m1", "MODELER")
    if isinstance(store, SQLiteJobStore):
        raw_sql(store, "CREATE TRIGGER no_revoke BEFORE UPDATE ON api_keys "
                       "BEGIN SELECT RAISE(ABORT, 'revocation refused'); END;")  # fmt: skip
        failure: type[Exception] = sqlite3.IntegrityError
    else:
        raw_sql(store, "CREATE FUNCTION no_revoke() RETURNS trigger LANGUAGE plpgsql AS $$ "
                       "BEGIN RAISE EXCEPTION 'revocation refused'; END $$; "
                       "CREATE TRIGGER no_revoke BEFORE UPDATE ON api_keys "
                       "FOR EACH ROW EXECUTE FUNCTION no_revoke();")  # fmt: skip
        failure = psycopg.Error
    with pytest.raises(failure, match="revocation refused"):
        store.users.delete_user(ann.id, 50.0)
    assert store.users.user(ann.id) == ann
    assert store.users.model_roles(ann.id) == {"m1": "MODELER"}
    assert [k.revoked_at for k in store.api_keys() if k.id == key.id] == [None]


def test_attribute_definitions(store: JobStore) -> None:
    region = define(store, "region", default_value=("west",), description="  sales region ")
    assert (region.label, region.type, region.default_value, region.description) == (
        "Region", "String", ("west",), "sales region"
    )  # fmt: skip
    assert region.id and region.created_at > 0
    define(store, "level", type="Number", multiple_values=True, default_value=("1.50", 2))
    assert [d.name for d in store.users.attribute_definitions()] == ["level", "region"]
    assert store.users.attribute_definitions()[0].default_value == ("1.5", "2")
    with pytest.raises(AttributeExists):
        define(store, "region")
    with pytest.raises(DirectoryError, match="system attribute"):
        define(store, "omni_user_id")
    with pytest.raises(DirectoryError, match="not valid"):
        define(store, "Region")
    with pytest.raises(DirectoryError, match=r"default_value: .* not a number"):
        define(store, "size", type="Number", default_value=("big",))
    assert [d.name for d in store.users.attribute_definitions()] == ["level", "region"]


def test_deleting_an_attribute_clears_every_users_value(store: JobStore) -> None:
    define(store, "region")
    define(store, "team")
    ann = person("ann@example.com", attributes={"region": ("west",), "team": ("a",)})
    bob = person("bob@example.com", attributes={"region": ("east",)})
    store.users.add_user(ann)
    store.users.add_user(bob)
    assert store.users.delete_attribute("region")
    assert [d.name for d in store.users.attribute_definitions()] == ["team"]
    assert store.users.user(ann.id).attributes == {"team": ("a",)}  # type: ignore[union-attr]
    assert store.users.user(bob.id).attributes == {}  # type: ignore[union-attr]
    assert not store.users.delete_attribute("region")


def test_a_definition_change_must_fit_every_stored_value(store: JobStore) -> None:
    define(store, "level")
    define(store, "tags", multiple_values=True)
    ann = person("ann@example.com", attributes={"level": ("07",), "tags": ("a", "b")})
    bob = person("bob@example.com", at=101.0, attributes={"level": ("high",)})
    store.users.add_user(ann)
    store.users.add_user(bob)
    with pytest.raises(AttributeConflict, match=r"user bob@example\.com .*high.* not a number"):
        store.users.replace_attribute(AttributeDef("level", "Level", type="Number"))
    assert store.users.attribute_definitions()[0].type == "String", "nothing changed"
    with pytest.raises(AttributeConflict, match=re.escape("ann@example.com")):
        store.users.replace_attribute(AttributeDef("tags", "Tags", multiple_values=False))

    store.users.replace_user(replace(bob, attributes={"level": ("3",)}))
    assert store.users.replace_attribute(AttributeDef("level", "Grade", type="Number"))
    level = store.users.attribute_definitions()[0]
    assert (level.label, level.type) == ("Grade", "Number")
    assert store.users.user(ann.id).attributes["level"] == ("7",)  # type: ignore[union-attr]
    assert not store.users.replace_attribute(AttributeDef("nope", "Nope"))


def test_model_roles(store: JobStore) -> None:
    ann = user_for_email(store, "ann@example.com")
    assert store.users.model_roles(ann.id) == {}
    store.users.set_model_role(ann.id, "m1", "VIEWER")
    store.users.set_model_role(ann.id, "m2", "MODELER")
    store.users.set_model_role(ann.id, "m1", "RESTRICTED_QUERIER")
    assert store.users.model_roles(ann.id) == {"m1": "RESTRICTED_QUERIER", "m2": "MODELER"}
    with pytest.raises(DirectoryError, match=r'Invalid role .VIEWR.* Did you mean "VIEWER"'):
        store.users.set_model_role(ann.id, "m1", "VIEWR")
    with pytest.raises(UserNotFound):
        store.users.set_model_role(str(uuid.uuid4()), "m1", "VIEWER")


def test_the_org_admin_is_made_once_and_personal_users_are_not_admins(store: JobStore) -> None:
    admin = org_admin(store)
    assert admin.org_admin and admin.user_name == "admin@localhost"
    assert org_admin(store) == admin
    ann = user_for_email(store, "ann@example.com", display_name="Ann")
    assert not ann.org_admin and user_for_email(store, "ANN@example.com") == ann
    with pytest.raises(DirectoryError, match="not an email"):
        user_for_email(store, "ann")
    assert store.users.users()[0] == 2


def test_jobs_keep_their_owner(store: JobStore) -> None:
    job = Job(id="j", status="ADDED", client_result_id="c", model_id="m",
              request={"query": {}}, created_at=time.time(), user_id="u-1")  # fmt: skip
    store.add_jobs([job])
    assert store.get_jobs(["j"])["j"].user_id == "u-1"


def test_a_profile_reads_the_user_the_definitions_and_their_roles_together(
    store: JobStore,
) -> None:
    directory = store.users
    directory.add_attribute(AttributeDef("region", "Region", multiple_values=True,
                                         default_value=("ALL",), description="where"))  # fmt: skip
    directory.add_attribute(AttributeDef("level", "Level", type="Number"))
    ann = new_user("ann@example.com", "Ann", time.time(), attributes={"level": ("3",)})
    directory.add_user(ann)
    directory.set_model_role(ann.id, "m1", "VIEWER")
    profile = directory.profile(ann.id)
    assert profile is not None
    assert profile.user == directory.user(ann.id)
    assert profile.definitions == tuple(directory.attribute_definitions())
    assert [d.name for d in profile.definitions] == ["level", "region"]
    assert profile.definitions[1].default_value == ("ALL",)
    assert profile.definitions[1].multiple_values and profile.definitions[0].type == "Number"
    assert profile.roles == {"m1": "VIEWER"}
    bob = new_user("bob@example.com", None, time.time())
    directory.add_user(bob)
    stored = directory.user(bob.id)
    assert stored is not None
    assert directory.profile(bob.id) == replace(profile, user=stored, roles={})
    assert directory.profile(str(uuid.uuid4())) is None


def test_signing_in_reads_the_key_with_its_users_profile(store: JobStore) -> None:
    ann = user_for_email(store, "ann@example.com")
    store.users.set_model_role(ann.id, "m1", "MODELER")
    _, token = create_key(store, "pat", user=ann)
    found = store.users.sign_in(hash_token(token))
    assert found is not None
    signed_key, profile = found
    assert signed_key == store.key_by_hash(hash_token(token))
    assert profile == store.users.profile(ann.id) and profile is not None
    assert profile.roles == {"m1": "MODELER"}
    assert store.users.sign_in(hash_token("not a token")) is None
    store.users.delete_user(ann.id, time.time())
    after = store.users.sign_in(hash_token(token))
    assert after is not None and after[0].revoked_at is not None and after[1] is None
