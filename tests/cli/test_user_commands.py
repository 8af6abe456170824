"""``assay users``, ``assay attributes`` and the user side of ``assay keys``, run in process
through typer's runner against a real SQLite job store in a temporary home."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from assay.cli.app import app
from assay.cli.main import main  # noqa: F401 (registers the commands)
from assay.jobs.keys import hash_token
from assay.jobs.sqlite import SQLiteJobStore
from assay.semantic.model import model_id_for

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def assay(home: Path, *args: str) -> Result:
    group, command, *rest = args
    return runner.invoke(app, [group, command, "--home", str(home), *rest])


def ok(home: Path, *args: str) -> str:
    result = assay(home, *args)
    assert result.exit_code == 0, result.output
    return result.output


def words(output: str) -> str:
    """The output as one line: rich wraps long messages (in boxes, for usage errors)."""
    return " ".join(output.replace("│", " ").split())


def failed(home: Path, *args: str) -> str:
    result = assay(home, *args)
    assert result.exit_code == 1, result.output
    return words(result.output)


def token(output: str) -> str:
    return output.strip().splitlines()[-1]


def test_org_keys_belong_to_one_admin_user_made_on_first_use(home: Path) -> None:
    first = token(ok(home, "keys", "create", "--org"))
    second = token(ok(home, "keys", "create", "--org", "--label", "ci"))
    store = SQLiteJobStore(home / "assay.sqlite")
    try:
        a, b = store.key_by_hash(hash_token(first)), store.key_by_hash(hash_token(second))
        assert a is not None and b is not None and a.user_id == b.user_id
        admin = store.users.user(a.user_id or "")
        assert admin is not None and admin.org_admin and admin.user_name == "admin@localhost"
        assert store.users.users()[0] == 1
    finally:
        store.close()
    listed = ok(home, "keys", "list").splitlines()
    assert len(listed) == 2 and all("admin@localhost" in line for line in listed)
    assert ok(home, "users", "list").count("admin@localhost  Organization admin  admin") == 1


def test_personal_tokens_make_or_reuse_their_user(home: Path) -> None:
    ann = token(ok(home, "keys", "create", "--user", "ann@example.com"))
    again = token(ok(home, "keys", "create", "--user", "ANN@example.com"))
    store = SQLiteJobStore(home / "assay.sqlite")
    try:
        a, b = store.key_by_hash(hash_token(ann)), store.key_by_hash(hash_token(again))
        assert a is not None and b is not None and a.user_id == b.user_id
        user = store.users.user(a.user_id or "")
        assert user is not None and user.user_name == "ann@example.com" and not user.org_admin
    finally:
        store.close()
    result = assay(home, "keys", "create", "--user", "not-an-email")
    assert result.exit_code == 2 and "not an email address" in words(result.output)


def test_users_create_list_set_and_clear_attribute_values(home: Path) -> None:
    ok(home, "attributes", "create", "region")
    ok(home, "attributes", "create", "brands", "--multiple")
    ok(home, "attributes", "create", "level", "--type", "number")
    created = ok(home, "users", "create", "ann@example.com", "--name", "Ann Lee",
                 "region=west", "brands=a", "brands=b", "level=07")  # fmt: skip
    assert "ann@example.com  Ann Lee  member  active  brands=a,b level=7 region=west" in created
    ok(home, "users", "create", "root@example.com", "--admin")
    listed = ok(home, "users", "list")
    assert "root@example.com  root  admin" in listed and "level=7" in listed

    ok(home, "users", "set", "ANN@example.com", "region=east", "brands=")
    line = next(x for x in ok(home, "users", "list").splitlines() if "ann@" in x)
    assert line.endswith("level=7 region=east"), line

    assert "A user with userName 'ann@example.com' already exists" in failed(
        home, "users", "create", "Ann@Example.com")  # fmt: skip
    assert 'No user attribute named \'regoin\'. Did you mean "region"?' in failed(
        home, "users", "set", "ann@example.com", "regoin=x")  # fmt: skip
    assert "takes one value, not a list of 2" in failed(
        home, "users", "set", "ann@example.com", "region=a", "region=b")  # fmt: skip
    assert "'high' is not a number" in failed(home, "users", "set", "ann@example.com",
                                              "level=high")  # fmt: skip
    assert "region= clears the attribute" in failed(
        home, "users", "set", "ann@example.com", "region=", "region=x")  # fmt: skip
    assert 'No user \'an@example.com\'. Did you mean "ann@example.com"' in failed(
        home, "users", "set", "an@example.com", "region=x")  # fmt: skip
    assert "DIRECTORY: '=x' is not ATTR=VALUE" in failed(home, "users", "set", "ann@example.com",
                                                          "=x")  # fmt: skip
    line = next(x for x in ok(home, "users", "list").splitlines() if "ann@" in x)
    assert line.endswith("level=7 region=east"), "refused changes changed nothing"


def test_users_set_name_and_admin_rights(home: Path) -> None:
    ok(home, "users", "create", "ann@example.com")
    out = ok(home, "users", "set", "ann@example.com", "--name", "Ann Lee", "--admin")
    assert "ann@example.com  Ann Lee  admin" in out
    assert "ann@example.com  Ann Lee  member" in ok(home, "users", "set", "ann@example.com",
                                                     "--member")  # fmt: skip
    ok(home, "keys", "create", "--org")
    assert "holds 1 organization key(s)" in failed(home, "users", "set", "admin@localhost",
                                                   "--member")  # fmt: skip
    assert "admin@localhost  Organization admin  admin" in ok(home, "users", "list")
    result = assay(home, "users", "set", "ann@example.com")
    assert result.exit_code == 2 and "--admin/--member" in words(result.output)


def test_users_role_by_model_name_or_id(home: Path) -> None:
    ok(home, "users", "create", "ann@example.com")
    out = ok(home, "users", "role", "ann@example.com", "tpch", "viewer")
    tpch = model_id_for("tpch")
    assert f"ann@example.com is VIEWER on model tpch ({tpch})" in out
    other = "11111111-2222-3333-4444-555555555555"
    ok(home, "users", "role", "ann@example.com", other, "MODELER")
    assert f"roles: {other}=MODELER {tpch}=VIEWER" in ok(home, "users", "list")
    assert 'Did you mean "VIEWER"' in failed(home, "users", "role", "ann@example.com", "tpch",
                                             "VIEWR")  # fmt: skip
    assert 'No model named \'tpc\' in the settings (models: tpch)' in failed(
        home, "users", "role", "ann@example.com", "tpc", "VIEWER")  # fmt: skip


def test_users_delete_revokes_their_keys(home: Path) -> None:
    ann = token(ok(home, "keys", "create", "--user", "ann@example.com"))
    ok(home, "keys", "create", "--user", "ann@example.com")
    bob = token(ok(home, "keys", "create", "--user", "bob@example.com"))
    out = ok(home, "users", "delete", "ann@example.com")
    assert "deleted ann@example.com" in out and "revoked 2 key(s)" in out
    store = SQLiteJobStore(home / "assay.sqlite")
    try:
        assert store.key_by_hash(hash_token(ann)).revoked_at is not None  # type: ignore[union-attr]
        assert store.key_by_hash(hash_token(bob)).revoked_at is None  # type: ignore[union-attr]
        assert store.users.user_named("ann@example.com") is None
    finally:
        store.close()
    assert ok(home, "keys", "list").count("ann@example.com (deleted user)") == 2
    assert "No user 'ann@example.com'" in failed(home, "users", "delete", "ann@example.com")


def test_attributes_create_list_delete(home: Path) -> None:
    out = ok(home, "attributes", "create", "brands", "--multiple", "--default", "a",
             "--default", "b", "--label", "Brands", "--description", "what they sell")  # fmt: skip
    assert "brands  Brands  String (multiple)  custom  default=a,b  what they sell" in out
    listed = ok(home, "attributes", "list").splitlines()
    assert listed[0].startswith("omni_user_email") and listed[-1].startswith("brands")
    assert "omni_user_groups  User groups  String (multiple)  system" in listed

    result = assay(home, "attributes", "create", "size", "--type", "Numbr")
    assert result.exit_code == 2 and 'Did you mean "Number"?' in words(result.output)
    assert "already exists" in failed(home, "attributes", "create", "brands")
    assert "system attribute" in failed(home, "attributes", "create", "omni_user_id")
    assert "takes one value" in failed(home, "attributes", "create", "region", "--default",
                                       "a", "--default", "b")  # fmt: skip
    assert "system attribute" in failed(home, "attributes", "delete", "omni_user_email")
    assert 'Did you mean "brands"?' in failed(home, "attributes", "delete", "brand")

    ok(home, "users", "create", "ann@example.com", "brands=x")
    assert "deleted attribute brands" in ok(home, "attributes", "delete", "brands")
    assert "brands" not in ok(home, "attributes", "list")
    assert "brands=" not in ok(home, "users", "list"), "the users' values went with it"


def test_attributes_delete_help_warns_about_models() -> None:
    result = runner.invoke(app, ["attributes", "delete", "--help"])
    assert result.exit_code == 0
    assert "a model that still reads the attribute will fail to load" in words(result.output)
