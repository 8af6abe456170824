"""Governance in the semantic layer: what a user may name and which rows their query reads.

The model is the governed tpch copy (tests/governed.py). Each test compiles as a ``Viewer``
and checks the SQL's conditions, the refusals, or the model as that user sees it; the row
counts these conditions give on real data are checked in tests/engines/test_governed_rows.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from assay.engines import DuckDBEngine
from assay.errors import Forbidden, ModelInvalid, PermissionDenied, UnknownField, UnknownTopic
from assay.semantic.access import visible_model
from assay.semantic.compiler import compile_query
from assay.semantic.describe import topic_payload
from assay.semantic.loader import build_model
from assay.semantic.model import SemanticModel
from assay.semantic.viewer import Viewer
from tests.governed import ATTRIBUTE_NAMES, governed_files, governed_model

NUMERIC = frozenset({"min_balance", "min_customers", "max_size"})
DEFAULTS = {
    "segment_pattern": ("%",),
    "min_balance": ("-1000",),
    "min_customers": ("0",),
    "max_size": ("50",),
}


def viewer(role: str = "QUERIER", admin: bool = False, **values: Any) -> Viewer:
    attrs = dict(DEFAULTS)
    for name, value in values.items():
        attrs[name] = tuple(value) if isinstance(value, list | tuple) else (str(value),)
    attrs["omni_is_org_admin"] = ("true" if admin else "false",)
    return Viewer("u-" + "-".join(sorted(values)), attrs, NUMERIC, role=role, org_admin=admin)


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return governed_model()


CUSTOMERS = {"join_paths_from_topic_name": "customer",
             "fields": ["region.r_name", "customer.count"]}  # fmt: skip


def sql(model: SemanticModel, query: dict[str, Any], who: Viewer | None) -> str:
    return compile_query(model, query, viewer=who).sql


# ---------------------------------------------------------------- row rules


def test_access_filter_single_value_is_an_equality_and_forces_its_join(
    model: SemanticModel,
) -> None:
    text = sql(model, {**CUSTOMERS, "fields": ["customer.count"]}, viewer(region="ASIA"))
    assert "region.r_name = 'ASIA'" in text
    assert "JOIN region AS region" in text  # nothing of region selected, still joined


def test_access_filter_several_values_is_in(model: SemanticModel) -> None:
    text = sql(model, CUSTOMERS, viewer(region=["ASIA", "EUROPE"]))
    assert "region.r_name IN ('ASIA', 'EUROPE')" in text


def test_values_for_unfiltered_skips_the_filter(model: SemanticModel) -> None:
    text = sql(model, CUSTOMERS, viewer(region=["ALL"]))
    assert "r_name =" not in text and "r_name IN" not in text


def test_no_value_for_an_access_filter_refuses_naming_the_attribute(model: SemanticModel) -> None:
    with pytest.raises(Forbidden, match='User attribute "region" has no value'):
        sql(model, CUSTOMERS, viewer())
    with pytest.raises(Forbidden, match="region"):
        sql(model, CUSTOMERS, None)  # no user at all: no value either


def test_wildcard_access_filter_is_like_with_the_users_patterns(model: SemanticModel) -> None:
    query = {"join_paths_from_topic_name": "lineitem", "fields": ["lineitem.count"]}
    text = sql(model, query, viewer(segment_pattern=["AUTO%", "MACH%"]))
    assert "customer.c_mktsegment LIKE 'AUTO%' OR customer.c_mktsegment LIKE 'MACH%'" in text
    assert "JOIN customer AS customer" in text


def test_always_where_and_having_sql_bind_numbers_as_numbers(model: SemanticModel) -> None:
    text = sql(model, CUSTOMERS, viewer(region="ASIA", min_balance=250, min_customers=3))
    assert "customer.c_acctbal >= 250" in text
    assert "HAVING" in text and "COUNT(*) > 3" in text


def test_a_value_can_never_break_out_of_its_literal(model: SemanticModel) -> None:
    hostile = "ASIA' OR '1'='1"
    text = sql(model, CUSTOMERS, viewer(region=hostile))
    assert "region.r_name = 'ASIA'' OR ''1''=''1'" in text


def test_where_sql_applies_only_when_its_join_is_used(model: SemanticModel) -> None:
    who = viewer(max_size=20)
    with_part = {"join_paths_from_topic_name": "lineitem",
                 "fields": ["part.p_brand", "lineitem.revenue"]}  # fmt: skip
    without = {"join_paths_from_topic_name": "lineitem", "fields": ["lineitem.revenue"]}
    assert "part.p_size <= 20" in sql(model, with_part, who)
    assert "p_size" not in sql(model, without, who)


def test_a_query_without_a_topic_is_refused_on_a_model_with_row_rules(
    model: SemanticModel,
) -> None:
    with pytest.raises(Forbidden, match="query through a topic"):
        sql(model, {"table": "customer", "fields": ["customer.count"]}, viewer(region="ALL"))


def test_a_user_no_row_rule_restricts_may_query_without_a_topic(tpch_model: SemanticModel) -> None:
    files = dict(tpch_model.files)
    files["customer.topic"] += CUSTOMER_FILTER_ONLY
    model = build_model(files, name="tpch", attributes=["region"])
    bare = {"table": "customer", "fields": ["customer.count"]}
    assert "COUNT(*)" in sql(model, bare, viewer(region="ALL"))
    with pytest.raises(Forbidden, match="query through a topic"):
        sql(model, bare, viewer(region="ASIA"))
    # always-applied SQL, even without attributes, holds everyone: no topic-less way round it
    files["orders.topic"] += "always_where_sql: ${orders.o_orderstatus} <> 'P'\n"
    strict = build_model(files, name="tpch", attributes=["region"])
    with pytest.raises(Forbidden, match="query through a topic"):
        sql(strict, bare, viewer(region="ALL"))


CUSTOMER_FILTER_ONLY = """
access_filters:
  - field: region.r_name
    user_attribute: region
    values_for_unfiltered: [ALL]
"""


# ---------------------------------------------------------------- grants


def test_an_ungranted_field_is_refused_as_if_it_did_not_exist(model: SemanticModel) -> None:
    query = {**CUSTOMERS, "fields": ["customer.c_acctbal"]}
    with pytest.raises(UnknownField) as hidden:
        sql(model, query, viewer(region="ALL"))
    with pytest.raises(UnknownField) as missing:
        sql(model, {**CUSTOMERS, "fields": ["customer.c_acctbalx"]}, viewer(region="ALL"))
    assert str(hidden.value).startswith('No such field "customer.c_acctbal".')
    assert 'c_acctbal"' not in str(missing.value).split("?")[0].split("Did you mean")[-1]
    # finance may see it
    assert "c_acctbal" in sql(model, query, viewer(region="ALL", department="finance"))


def test_suggestions_never_name_what_the_user_may_not_see(model: SemanticModel) -> None:
    with pytest.raises(UnknownField) as exc:
        sql(model, {**CUSTOMERS, "fields": ["customer.c_phon"]}, viewer(region="ALL"))
    assert "c_phone" not in str(exc.value)
    with pytest.raises(UnknownField) as granted:
        sql(model, {**CUSTOMERS, "fields": ["customer.c_phon"]},
            viewer(region="EUROPE", department="finance"))  # fmt: skip
    assert '"customer.c_phone"' in str(granted.value)


def test_and_binds_tighter_than_or(model: SemanticModel) -> None:
    phone = {**CUSTOMERS, "fields": ["customer.c_phone"]}
    with pytest.raises(UnknownField):  # finance but not europe_desk
        sql(model, phone, viewer(region="ALL", department="finance"))
    assert "c_phone" in sql(model, phone, viewer(region=["EUROPE"], department="finance"))


def test_filters_on_ungranted_fields_are_refused(model: SemanticModel) -> None:
    query = {**CUSTOMERS, "filters": {"customer.c_acctbal": {"type": "number", "kind": "LESS_THAN",
                                                             "values": [0]}}}  # fmt: skip
    with pytest.raises(UnknownField, match=r'No such field "customer\.c_acctbal"'):
        sql(model, query, viewer(region="ALL"))


def test_a_hidden_view_hides_its_fields_and_every_topic_based_on_it(model: SemanticModel) -> None:
    query = {"join_paths_from_topic_name": "lineitem",
             "fields": ["supplier.s_name", "lineitem.revenue"]}  # fmt: skip
    with pytest.raises(UnknownField, match='no view "supplier"'):
        sql(model, query, viewer())
    assert "supplier.s_name" in sql(model, query, viewer(department="finance"))


def test_a_topic_without_its_grant_is_unknown(model: SemanticModel) -> None:
    query = {"join_paths_from_topic_name": "orders", "fields": ["orders.count"]}
    with pytest.raises(UnknownTopic, match="No such topic 'orders'") as exc:
        sql(model, query, viewer())
    assert "orders" not in str(exc.value).split(".", 1)[1]  # no suggestion of it either
    assert "COUNT" in sql(model, query, viewer(department="finance"))
    assert "COUNT" in sql(model, query, viewer(admin=True))  # finance|admins


# ---------------------------------------------------------------- roles


def test_roles(model: SemanticModel) -> None:
    plain = build_model(governed_files(), name="plain", attributes=ATTRIBUTE_NAMES)
    bare = {"table": "region", "fields": ["region.r_name"]}
    with pytest.raises(PermissionDenied, match="querier role required"):
        sql(model, CUSTOMERS, viewer("VIEWER", region="ALL"))
    with pytest.raises(PermissionDenied, match="topics only"):
        sql(plain, bare, viewer("RESTRICTED_QUERIER"))
    assert "region.r_name" in sql(model, CUSTOMERS, viewer("RESTRICTED_QUERIER", region="ALL"))


# ---------------------------------------------------------------- attributes in SQL


def test_attributes_in_field_and_view_sql_bind_per_user() -> None:
    files = governed_files()
    files["region.view"] = files["region.view"].replace(
        "dimensions:\n",
        "dimensions:\n  mine:\n    sql: ${r_name} IN ({{ omni_attributes.region }})\n"
        "  scaled:\n    sql: ${r_regionkey} * {{ omni_attributes.max_size }}\n",
        1,
    )
    files["small_nation.view"] = (
        "sql: SELECT * FROM nation WHERE n_nationkey < {{ omni_attributes.max_size }}\n"
        "dimensions:\n  n_nationkey: {primary_key: true}\n  n_name: {}\n"
    )
    files["small_nation.topic"] = "base_view: small_nation\n"
    model = build_model(files, name="tpch", attributes=ATTRIBUTE_NAMES)
    query = {**CUSTOMERS, "fields": ["region.mine", "region.scaled", "customer.count"]}
    ann, bob = viewer(region=["ASIA", "EUROPE"]), viewer(region="AFRICA", max_size=7)
    assert "region.r_name IN ('ASIA', 'EUROPE')" in sql(model, query, ann)
    assert "region.r_name IN ('AFRICA')" in sql(model, query, bob)
    assert "region.r_regionkey * 7" in sql(model, query, bob)
    nations = {"join_paths_from_topic_name": "small_nation", "fields": ["small_nation.n_name"]}
    assert "WHERE n_nationkey < 7" in sql(model, nations, bob)
    assert "WHERE n_nationkey < 50" in sql(model, nations, ann)
    # the model's rendered fragments keep no user's values
    assert not any("AFRICA" in text or "< 7" in text for text in model.fragments.values())


def test_a_multi_valued_attribute_where_one_value_belongs_is_refused() -> None:
    files = governed_files()
    files["customer.topic"] = files["customer.topic"].replace(
        "always_where_sql: ${customer.c_acctbal} >= {{ omni_attributes.min_balance }}",
        "always_where_sql: ${region.r_name} = {{ omni_attributes.region }}",
    )
    model = build_model(files, name="tpch", attributes=ATTRIBUTE_NAMES)
    assert "region.r_name = 'ASIA'" in sql(model, CUSTOMERS, viewer(region="ASIA"))
    with pytest.raises(Forbidden, match="has 2 values for this user"):
        sql(model, CUSTOMERS, viewer(region=["ASIA", "EUROPE"]))


def test_unknown_attributes_are_model_errors_with_a_suggestion() -> None:
    files = governed_files()
    files["customer.topic"] = files["customer.topic"].replace(
        "user_attribute: region", "user_attribute: regoin"
    )
    with pytest.raises(ModelInvalid) as exc:
        build_model(files, name="tpch", attributes=ATTRIBUTE_NAMES)
    assert "no user attribute 'regoin'" in str(exc.value)
    assert 'Did you mean "region"?' in str(exc.value)
    build_model(files, name="tpch")  # the organization's attributes unknown: not checked


# ---------------------------------------------------------------- the model as a user sees it


def test_the_visible_model_lacks_what_the_user_may_not_see(model: SemanticModel) -> None:
    seen = visible_model(model, viewer(region="ASIA"))
    assert "orders" not in seen.topics and "supplier" not in seen.views
    assert "c_acctbal" not in seen.views["customer"].dimensions
    assert seen.views["region"].dimensions["r_name"].all_values == ("ASIA",)
    payload = topic_payload(seen, seen.topics["lineitem"])
    views = {v["name"]: v for v in payload["views"]}
    assert "supplier" not in views and "supplier_nation" in views
    names = [d["field_name"] for d in views["customer"]["dimensions"]]
    assert "c_acctbal" not in names and "c_name" in names
    assert all("supplier" not in (r["left_view_name"], r["right_view_name"])
               for r in payload["relationships"])  # fmt: skip
    # supplier_nation hangs from lineitem now that supplier is hidden between them
    assert payload["join_via_map"]["supplier_nation"] == []
    # sample queries naming a hidden field are gone; the others stay
    samples = [sq.name for sq in seen.topics["lineitem"].sample_queries]
    assert "revenue_by_supplier_nation" in samples  # supplier_nation is its own view
    everything = visible_model(model, viewer(region="ALL", department="finance", admin=True))
    assert everything.views["region"].dimensions["r_name"].all_values == (
        model.views["region"].dimensions["r_name"].all_values
    )
    assert "supplier" in everything.views and "orders" in everything.topics


def test_compiling_the_visible_model_compiles_as_its_user(model: SemanticModel) -> None:
    ann = viewer(region="ASIA")
    seen = visible_model(model, ann)
    assert compile_query(seen, CUSTOMERS).sql == sql(model, CUSTOMERS, ann)
    assert visible_model(model, viewer(region="ASIA")) is seen  # one variant per kind of user


def test_compiled_queries_are_shared_only_by_users_alike(model: SemanticModel) -> None:
    a1 = compile_query(model, CUSTOMERS, viewer=viewer(region="ASIA"))
    a2 = compile_query(model, CUSTOMERS, viewer=Viewer("other", viewer(region="ASIA").attributes,
                                                        NUMERIC))  # fmt: skip
    b = compile_query(model, CUSTOMERS, viewer=viewer(region="EUROPE"))
    assert a1 is a2
    assert a1.sql != b.sql and "'EUROPE'" in b.sql


def test_a_user_attribute_filter_binds_each_users_values(tpch_model: SemanticModel) -> None:
    """Omni's query filter bound to an attribute, on a model with no rules of its own: the
    compiled query must not be shared between users with different values."""
    query = {"join_paths_from_topic_name": "customer", "fields": ["customer.count"],
             "filters": {"region.r_name": {"type": "user_attribute",
                                           "user_attribute_name": "region"}}}  # fmt: skip
    ann = compile_query(tpch_model, query, viewer=viewer(region="ASIA")).sql
    bob = compile_query(tpch_model, query, viewer=viewer(region=["EUROPE", "AFRICA"])).sql
    assert "region.r_name = 'ASIA'" in ann
    assert "region.r_name IN ('EUROPE', 'AFRICA')" in bob
    with pytest.raises(Forbidden, match='"region" has no value'):
        compile_query(tpch_model, query, viewer=viewer())


def test_a_cut_shared_by_users_alike_holds_nothing_else_of_them(model: SemanticModel) -> None:
    """Two users alike in what the model reads share one cut of it; an attribute the model does
    not read (but a query may filter on) is not carried by it, so neither user's value can be
    served to the other."""
    ann = viewer(region="ASIA", team="red")
    seen = visible_model(model, ann)
    assert visible_model(model, viewer(region="ASIA", team="blue")) is seen
    query = {**CUSTOMERS, "filters": {"customer.c_mktsegment": {
        "type": "user_attribute", "user_attribute_name": "team"}}}  # fmt: skip
    with pytest.raises(Forbidden, match='"team" has no value'):
        compile_query(seen, query)
    assert "customer.c_mktsegment = 'red'" in compile_query(seen, query, viewer=ann).sql


def test_a_masked_dimension_shows_its_hashes_to_users_without_the_grant(
    tpch_engine: DuckDBEngine,
) -> None:
    files = governed_files()
    files["customer.view"] = files["customer.view"].replace(
        "  c_name:\n", "  c_name:\n    mask_unless_access_grants: [finance]\n", 1
    )
    model = build_model(files, name="tpch", attributes=ATTRIBUTE_NAMES)
    query = {**CUSTOMERS, "fields": ["customer.c_name", "customer.count"], "limit": 3,
             "sorts": [{"column_name": "customer.c_name"}],
             "filters": {"customer.c_name": {"type": "string", "kind": "EQUALS",
                                             "values": ["Customer#000000001"]}}}  # fmt: skip
    masked = compile_query(model, query, viewer=viewer(region="ALL"))
    plain = compile_query(model, query, viewer=viewer(region="ALL", department="finance"))
    assert "MD5(CAST(customer.c_name AS TEXT))" in masked.sql
    assert "MD5" not in plain.sql
    # the filter tests the hash too: a user cannot probe for a value they may not see
    assert tpch_engine.execute(masked.sql).num_rows == 0
    assert tpch_engine.execute(plain.sql).column(0).to_pylist() == ["Customer#000000001"]
    unfiltered = {**query, "filters": {}}
    rows = tpch_engine.execute(compile_query(model, unfiltered, viewer=viewer(region="ALL")).sql)
    assert all(len(v) == 32 and "Customer" not in v for v in rows.column(0).to_pylist())
