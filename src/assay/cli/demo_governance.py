"""Row-level security on the demo: the example access filter of the tpch model's customer
topic turned on in the demo's own copy of the model, the ``region`` attribute it reads, and
two example users, so that one query shows each user only their rows."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path

from assay.jobs.keys import org_admin, user_for_email
from assay.jobs.store import JobStore
from assay.jobs.users import AttributeDef, User

# The example as the bundled model has it, commented out, and as the demo's copy has it.
_COMMENTED = (
    "# access_filters:\n"
    "#   - field: region.r_name\n"
    "#     user_attribute: region\n"
    "#     values_for_unfiltered: [ALL]\n"
)
ACCESS_FILTER = "".join(line.removeprefix("# ") for line in _COMMENTED.splitlines(keepends=True))
REGION = AttributeDef(
    "region",
    "Region",
    multiple_values=True,
    description="The customer regions a user may see (ALL: every region).",
)
#: the example users and their regions; the organization's admin gets ALL
EXAMPLE_USERS = {"ann@example.com": ("ASIA",), "bob@example.com": ("EUROPE", "AMERICA")}
QUERY_FIELDS = ["region.r_name", "customer.count", "customer.sum_acctbal"]


def enable_example_filter(models: Path) -> bool:
    """Turn the example access filter on in the demo's copy of the model; whether it is on."""
    path = models / "customer.topic.yaml"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if _COMMENTED in text:
        path.write_text(text.replace(_COMMENTED, ACCESS_FILTER), encoding="utf-8")
    return filter_is_on(models)


def filter_is_on(models: Path) -> bool:
    path = models / "customer.topic.yaml"
    return path.exists() and ACCESS_FILTER in path.read_text(encoding="utf-8")


def prepare_users(store: JobStore) -> dict[str, User]:
    """The ``region`` attribute, ALL for the admin, and the example users (made once; a
    value someone changed since is left alone)."""
    directory = store.users
    if all(d.name != REGION.name for d in directory.attribute_definitions()):
        directory.add_attribute(REGION)
    users: dict[str, User] = {}
    for email, regions in {"": ("ALL",), **EXAMPLE_USERS}.items():
        user = org_admin(store) if not email else user_for_email(store, email)
        if REGION.name not in user.attributes:
            user = _with_region(user, regions)
            directory.replace_user(user)
        users[email or user.user_name] = user
    return users


def _with_region(user: User, regions: tuple[str, ...]) -> User:
    return replace(user, attributes={**user.attributes, REGION.name: regions})


def example_commands(url: str, token: str, model_id: str, users: dict[str, User]) -> list[str]:
    """A curl per example user: the same query, each seeing only their regions."""
    body = json.dumps({"query": {"modelId": model_id, "join_paths_from_topic_name": "customer",
                                 "fields": QUERY_FIELDS}, "resultType": "csv"})  # fmt: skip
    lines = []
    for email in EXAMPLE_USERS:
        user = users[email]
        regions = ", ".join(user.attributes.get(REGION.name, ()))
        lines.append(f"  # as {email} (region {regions}):")
        lines.append(
            f"  curl -s '{url}/api/v1/query/run?userId={user.id}' "
            f"-H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' "
            f"-d {shlex.quote(body)}"
        )
    return lines
