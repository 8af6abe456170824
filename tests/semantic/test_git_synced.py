"""A model laid out as Omni's git sync writes one (tests/fixtures/models/git_synced/): views in
schema folders named by the comment Omni writes (``<schema>__<table>``, or ``<table>`` in the
default schema), topics named after their files with their capitals, ``ignored_views``, field
curation in Omni's order of operations, and a query through schema-prefixed names that reads
the right tables.

    sales.orders              sales.customers        sales.customer_scores    main.orders (decoy)
    id cust status  amount    id name email          customer score segment   id cust status amount
    1  10   shipped 5         10 ann  a@x            10       3     gold      1  10   shipped 1000
    2  10   open    7         20 bob  b@x            20       4     silver
    3  20   shipped 11
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from assay.engines import DuckDBEngine
from assay.errors import ModelInvalid, UnknownField, UnknownTopic
from assay.semantic.compiler import compile_query
from assay.semantic.loader import build_model, load_model
from assay.semantic.model import SemanticModel, exposed
from assay.semantic.names import declared_name, view_name
from tests.conftest import FIXTURES

FOLDER = FIXTURES / "models" / "git_synced"

DATA = """
CREATE SCHEMA sales;
CREATE TABLE sales.orders AS SELECT * FROM (VALUES (1, 10, 'shipped', 5.0), (2, 10, 'open', 7.0),
  (3, 20, 'shipped', 11.0)) t(id, customer_id, status, amount);
CREATE TABLE sales.customers AS SELECT * FROM (VALUES (10, 'ann', 'a@x'), (20, 'bob', 'b@x'))
  t(id, name, email);
CREATE TABLE sales.customer_scores AS SELECT * FROM (VALUES (10, 3, 'gold'), (20, 4, 'silver'))
  t(customer_id, score, segment);
CREATE TABLE orders AS SELECT * FROM (VALUES (1, 10, 'shipped', 1000.0))
  t(id, customer_id, status, amount);
"""


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return load_model(FOLDER)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBEngine]:
    path: Path = tmp_path_factory.mktemp("git_synced") / "shop.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute(DATA)
    eng = DuckDBEngine(path)
    yield eng
    eng.close()


def rows(
    model: SemanticModel, engine: DuckDBEngine, query: dict[str, Any]
) -> list[tuple[Any, ...]]:
    compiled = compile_query(model, {"limit": None, **query})
    return [tuple(r.values()) for r in engine.execute(compiled.sql).to_pylist()]


# ---------------------------------------------------------------- names


def test_views_are_named_by_the_comment_omni_writes(model: SemanticModel) -> None:
    assert sorted(model.views) == [
        "regions",  # the default schema's folder: no prefix
        "sales__customer_scores",
        "sales__customers",
        "sales__orders",
        "sales__payments",  # moved to another folder: the comment keeps its name
    ]
    assert model.views["sales__orders"].file == "sales/orders.view"
    assert model.views["sales__payments"].file == "elsewhere/payments.view"


def test_each_view_reads_its_own_schema_and_table(model: SemanticModel) -> None:
    sources = {name: view.source.sql() for name, view in model.views.items()}
    assert sources["sales__orders"] == "sales.orders AS sales__orders"
    assert sources["sales__customers"] == "sales.customers AS sales__customers"
    # no table_name: the file's name, as Omni defaults it
    assert sources["sales__payments"] == "sales.payments AS sales__payments"
    assert sources["regions"] == "shop.regions AS regions"


def test_topic_names_keep_their_capitals(model: SemanticModel) -> None:
    assert list(model.topics) == ["Orders"]
    assert model.topics["Orders"].file == "Orders.topic"


def test_ignored_views_and_the_topics_built_on_them_are_not_in_the_model(
    model: SemanticModel,
) -> None:
    assert "sales__returns" not in model.views  # the model's ignored_views
    assert "archive__orders" not in model.views  # its own ignored: true
    assert "returns" not in model.topics  # base view ignored: left out, as Omni hides it


def test_display_only_parameters_change_nothing(model: SemanticModel, tmp_path: Path) -> None:
    """schema_label, the dbt block, included_schemas and reversible describe; removing them
    builds the same views and joins."""
    copy = tmp_path / "git_synced"
    shutil.copytree(FOLDER, copy)
    orders = copy / "sales" / "orders.view.yaml"
    text = orders.read_text()
    orders.write_text(text.replace('schema_label: ""\n', "").split("#Read-only")[0])
    (copy / "model.yaml").write_text("ignored_views: [ sales__returns ]\n")
    rels = copy / "relationships.yaml"
    rels.write_text(rels.read_text().replace("  reversible: false\n", ""))
    bare = load_model(copy, name="git_synced")
    assert {n: v.source.sql() for n, v in bare.views.items()} == {
        n: v.source.sql() for n, v in model.views.items()
    }
    assert bare.views["sales__orders"].dimensions == model.views["sales__orders"].dimensions
    assert [(r.left, r.right, r.type, r.on.sql()) for r in bare.relationships] == [
        (r.left, r.right, r.type, r.on.sql()) for r in model.relationships
    ]


@pytest.mark.parametrize(
    ("file", "text", "name"),
    [
        ("orders.view", "dimensions: {}\n", "orders"),
        # no comment: the file's name (the folder may be the default schema's, unprefixed)
        ("sales/orders.view", "dimensions: {}\n", "orders"),
        ("sales/orders.view", "# Reference this view as sales__orders\n", "sales__orders"),
        ("sales/orders.view", "# Reference this view as orders\n", "orders"),
        ("orders.view", "# Reference this view as sales__orders\n", "sales__orders"),
        ("x/orders.view", "\n# note\n#Reference this view as orders\nschema: s\n", "orders"),
        # only the leading comment block counts
        ("orders.view", "schema: s\n# Reference this view as sales__orders\n", "orders"),
    ],
)
def test_view_name(file: str, text: str, name: str) -> None:
    assert view_name(file, text) == (name, None)


def test_a_comment_naming_another_view_is_reported() -> None:
    name, problem = view_name("orders.view", "# Reference this view as shipments\n")
    assert name == "orders"
    assert problem is not None and "shipments" in problem
    assert declared_name("dimensions: {}\n") is None


@pytest.mark.parametrize("folder", ["BigQuery", "estore (demo)"])
def test_model_names_are_free_text_as_in_omni(folder: str, tmp_path: Path) -> None:
    copy = tmp_path / folder
    shutil.copytree(FOLDER, copy)
    assert load_model(copy).name == folder


@pytest.mark.parametrize("name", [" padded", "two\nlines", "x" * 201])
def test_model_names_with_line_breaks_or_surrounding_spaces_are_refused(name: str) -> None:
    with pytest.raises(ModelInvalid) as info:
        load_model(FOLDER, name=name)
    assert [i.yaml_path for i in info.value.issues] == ["name"]


# ---------------------------------------------------------------- curation


def test_curation_follows_omnis_order_of_operations(model: SemanticModel) -> None:
    topic = model.topics["Orders"]
    assert topic.exposes("sales__orders", "total_amount")
    assert not topic.exposes("sales__customers", "email")
    assert topic.exposes("sales__customers", "name")
    # [..., sales__customer_scores.score, -sales__customer_scores.*]: the view is excluded
    # before the field is added back, whatever order they are written in
    assert topic.exposes("sales__customer_scores", "score")
    assert not topic.exposes("sales__customer_scores", "segment")


@pytest.mark.parametrize(
    ("patterns", "field", "tags", "shown"),
    [
        # the examples of Omni's topic fields documentation
        (["users.*"], "users.id", (), True),
        (["users.*"], "orders.id", (), False),
        (["all_views.*", "-users.*"], "users.id", (), False),
        (["all_views.*", "-users.*"], "orders.id", (), True),
        (["all_views.*", "-users.id"], "users.id", (), False),
        (["all_views.*", "-users.id"], "users.name", (), True),
        (["all_views.*", "-tag:pii"], "users.email", ("pii",), False),
        (["all_views.*", "-tag:pii"], "users.name", (), True),
        (["all_views.*", "-facts.*", "facts.ltv"], "facts.ltv", (), True),
        (["all_views.*", "-facts.*", "facts.ltv"], "facts.cost", (), False),
        (["-all_views.*", "tag:mkt", "-users.cost"], "users.cost", ("mkt",), False),
        (["-all_views.*", "tag:mkt", "-users.cost"], "users.name", ("mkt",), True),
        (["-all_views.*", "tag:mkt", "-users.cost"], "users.id", (), False),
        # written out of order, evaluated in Omni's order
        (["facts.ltv", "-facts.*", "all_views.*"], "facts.ltv", (), True),
        (["-users.email", "all_views.*"], "users.email", (), False),
        (["users.id", "-tag:pii"], "users.id", ("pii",), True),
        # the same rank: the later one wins
        (["users.*", "-users.*"], "users.id", (), False),
        (["-users.*", "users.*"], "users.id", (), True),
    ],
)
def test_exposed(patterns: list[str], field: str, tags: tuple[str, ...], shown: bool) -> None:
    view, _, name = field.partition(".")
    assert exposed(tuple(patterns), view, name, tags) is shown


def test_a_tag_selects_the_fields_of_a_view_so_tagged() -> None:
    """Omni: ``tag:x`` "targets fields and views with the specified tag"."""
    files = {
        "people.view": "tags: [pii]\ndimensions:\n  id: {primary_key: true}\n  name: {}\n",
        "orders.view": "dimensions:\n  id: {primary_key: true}\n  person_id: {}\n",
        "relationships": "- {join_from_view: orders, join_to_view: people, "
        "on_sql: '${orders.person_id} = ${people.id}'}\n",
        "orders.topic": "base_view: orders\njoins: {people: {}}\n"
        "fields: [all_views.*, -tag:pii, people.id]\n",
    }
    topic = build_model(files, name="tags").topics["orders"]
    assert topic.view_tags == {"people": ("pii",)}
    assert not topic.exposes("people", "name")
    assert topic.exposes("people", "id")  # a field selector comes after tags
    assert topic.exposes("orders", "person_id")
    assert exposed(("all_views.*", "-tag:pii"), "people", "name", (), ("pii",)) is False


# ---------------------------------------------------------------- queries


def test_a_query_through_schema_prefixed_names_reads_the_schemas_tables(
    model: SemanticModel, engine: DuckDBEngine
) -> None:
    """ann's orders 1 and 2 (5 + 7), bob's order 3 (11); the decoy main.orders (1000) is
    never read."""
    query = {
        "join_paths_from_topic_name": "Orders",
        "fields": ["sales__customers.name", "sales__orders.total_amount", "sales__orders.count"],
        "sorts": [{"column_name": "sales__customers.name"}],
    }
    assert rows(model, engine, query) == [("ann", 12.0, 2), ("bob", 11.0, 1)]


def test_one_to_one_join_and_a_raw_sql_measure(model: SemanticModel, engine: DuckDBEngine) -> None:
    """Scores 3 (ann, two orders) and 4 (bob, one): the one-to-one join repeats nothing beyond
    the customers' own fan-out, and 2 of 3 orders are shipped."""
    query = {
        "join_paths_from_topic_name": "Orders",
        "fields": ["sales__customer_scores.score", "sales__orders.count"],
        "sorts": [{"column_name": "sales__customer_scores.score"}],
    }
    assert rows(model, engine, query) == [(3, 2), (4, 1)]
    share = {"join_paths_from_topic_name": "Orders", "fields": ["sales__orders.shipped_share"]}
    assert rows(model, engine, share) == [(pytest.approx(2 / 3),)]


def test_a_curated_out_field_and_a_wrongly_cased_topic_are_refused(model: SemanticModel) -> None:
    with pytest.raises(UnknownField, match="not exposed"):
        compile_query(model, {"join_paths_from_topic_name": "Orders",
                              "fields": ["sales__customers.email"]})  # fmt: skip
    with pytest.raises(UnknownTopic):
        compile_query(model, {"join_paths_from_topic_name": "orders",
                              "fields": ["sales__orders.count"]})  # fmt: skip
