"""The query object (``assay.semantic.query``): Omni's ``query`` of ``/query/run``, read and
checked (contract section 3)."""

from __future__ import annotations

from typing import Any

import pytest

from assay.errors import InvalidQuery, NotSupported, QueryError
from assay.semantic.filters import Filter
from assay.semantic.query import FieldRef, SemanticQuery, Sort, parse_field, parse_query


def q(**extra: Any) -> SemanticQuery:
    obj: dict[str, Any] = {"fields": ["orders.status"]}
    obj.update(extra)
    return parse_query(obj)


# ---------------------------------------------------------------- fields


@pytest.mark.parametrize(
    ("text", "view", "name", "grain"),
    [
        ("orders.status", "orders", "status", None),
        ("order_items.created_at[month]", "order_items", "created_at", "month"),
        ("order_items.created_at[MONTH]", "order_items", "created_at", "month"),
        ("order_items.created_at[Day_Of_Week_Num]", "order_items", "created_at",
         "day_of_week_num"),
        ("order_items.created_at[ Month ]", "order_items", "created_at", "month"),
        ("_v.f_1", "_v", "f_1", None),
        ("V2.Field", "V2", "Field", None),
        # An unknown grain is not an error here: the planner reports it as a missing field.
        ("orders.created_at[fortnight]", "orders", "created_at", "fortnight"),
        ("orders.created_at[]", "orders", "created_at", None),
    ],
)  # fmt: skip
def test_parse_field(text: str, view: str, name: str, grain: str | None) -> None:
    ref = parse_field(text)
    assert ref == FieldRef(text, view, name, grain)
    assert ref.key == f"{view}.{name}"


def test_parse_field_strips_surrounding_space() -> None:
    ref = parse_field(" orders.status ")
    assert (ref.view, ref.name, ref.grain) == ("orders", "status", None)


@pytest.mark.parametrize(
    "text",
    [
        "status",
        "orders.",
        ".status",
        "orders.items.status",
        "orders/status",
        "1orders.status",
        "orders.1status",
        "orders.sta-tus",
        "orders.status[month",
        "orders.status[month][day]",
        "orders.status [month]",
        "orders.status[mo]nth]",
        "${orders.status}",
        "",
        5,
        None,
        ["orders.status"],
    ],
)
def test_invalid_field_names(text: Any) -> None:
    with pytest.raises(InvalidQuery) as info:
        parse_field(text)
    assert repr(text) in str(info.value)
    assert "view.field or view.field[grain]" in str(info.value)


def test_fields_keep_order_and_grains() -> None:
    query = q(fields=["users.state", "orders.total", "orders.created_at[Month]"])
    assert [f.text for f in query.fields] == [
        "users.state", "orders.total", "orders.created_at[Month]",
    ]  # fmt: skip
    assert [f.grain for f in query.fields] == [None, None, "month"]


def test_duplicate_fields_are_dropped_keeping_order() -> None:
    query = q(fields=["a.x", "b.y[month]", "a.x", "c.z", "b.y[month]", "a.x"])
    assert [f.text for f in query.fields] == ["a.x", "b.y[month]", "c.z"]


def test_same_field_with_other_grains_is_kept() -> None:
    query = q(fields=["a.x[month]", "a.x[year]", "a.x"])
    assert [f.grain for f in query.fields] == ["month", "year", None]


def test_empty_fields_list_is_read() -> None:
    # Whether a query with no fields can run is the planner's call.
    assert q(fields=[]).fields == ()


@pytest.mark.parametrize("fields", [None, "orders.status", {"a": "b"}, [1], ["a.b", None]])
def test_fields_must_be_a_list_of_names(fields: Any) -> None:
    with pytest.raises(InvalidQuery, match=r"^query\.fields: expected a list of field names"):
        parse_query({"fields": fields})


def test_missing_fields_is_invalid() -> None:
    with pytest.raises(InvalidQuery, match=r"query\.fields"):
        parse_query({})


def test_an_invalid_field_in_fields_is_named() -> None:
    with pytest.raises(InvalidQuery, match="'status'"):
        q(fields=["orders.id", "status"])


@pytest.mark.parametrize("obj", [None, [], "query", 5])
def test_query_must_be_an_object(obj: Any) -> None:
    with pytest.raises(InvalidQuery, match="query must be a JSON object"):
        parse_query(obj)


# ---------------------------------------------------------------- limit and offset


def test_limit_absent() -> None:
    query = q()
    # The planner applies the default (topic, model, then 1000) when no limit was given.
    assert (query.limit, query.limit_given) == (None, False)


def test_limit_null_is_unlimited_and_given() -> None:
    query = q(limit=None)
    assert (query.limit, query.limit_given) == (None, True)


@pytest.mark.parametrize(("limit", "expected"), [(1, 1), (1000, 1000), (75001, 75001), ("10", 10)])
def test_limit_positive(limit: Any, expected: int) -> None:
    query = q(limit=limit)
    assert (query.limit, query.limit_given) == (expected, True)


@pytest.mark.parametrize("limit", [0, -1, "abc", True, False, 5.0, 2.5, "0", "-3", [10], {}])
def test_limit_invalid(limit: Any) -> None:
    with pytest.raises(InvalidQuery) as info:
        q(limit=limit)
    assert str(info.value) == (f"query.limit: expected a positive integer or null, got {limit!r}")


@pytest.mark.parametrize(("offset", "expected"), [(0, 0), (3, 3), (None, 0), (False, 0)])
def test_offset(offset: Any, expected: int) -> None:
    assert q(offset=offset).offset == expected


def test_offset_absent() -> None:
    assert q().offset == 0


@pytest.mark.parametrize("offset", [-1, True, 1.5, "3", [1]])
def test_offset_invalid(offset: Any) -> None:
    with pytest.raises(InvalidQuery, match=r"^query\.offset: expected a non-negative integer"):
        q(offset=offset)


# ---------------------------------------------------------------- sorts


def test_sorts() -> None:
    query = q(
        sorts=[
            {"column_name": "orders.created_at[month]", "sort_descending": True,
             "is_column_sort": False, "null_sort": "OMNI_DEFAULT"},
            {"column_name": "orders.status"},
        ]
    )  # fmt: skip
    assert query.sorts == (
        Sort("orders.created_at[month]", True, "OMNI_DEFAULT"),
        Sort("orders.status", False, "OMNI_DEFAULT"),
    )


@pytest.mark.parametrize(
    ("null_sort", "expected"),
    [
        ("FIRST", "FIRST"),
        ("LAST", "LAST"),
        ("DIALECT_DEFAULT", "DIALECT_DEFAULT"),
        ("OMNI_DEFAULT", "OMNI_DEFAULT"),
        ("first", "FIRST"),
        ("Last", "LAST"),
        (None, "OMNI_DEFAULT"),
        ("", "OMNI_DEFAULT"),
    ],
)
def test_null_sort_values(null_sort: Any, expected: str) -> None:
    query = q(sorts=[{"column_name": "orders.status", "null_sort": null_sort}])
    assert query.sorts[0].null_sort == expected


def test_null_sort_invalid() -> None:
    with pytest.raises(InvalidQuery) as info:
        q(sorts=[{"column_name": "orders.status"}, {"column_name": "a.b", "null_sort": "middle"}])
    assert str(info.value).startswith("query.sorts[1].null_sort: expected FIRST, LAST")
    assert "'MIDDLE'" in str(info.value)


@pytest.mark.parametrize("sorts", [None, []])
def test_no_sorts(sorts: Any) -> None:
    assert q(sorts=sorts).sorts == ()


@pytest.mark.parametrize("sorts", [{"column_name": "a.b"}, "a.b", 5])
def test_sorts_must_be_a_list(sorts: Any) -> None:
    with pytest.raises(InvalidQuery, match=r"^query\.sorts: expected a list"):
        q(sorts=sorts)


@pytest.mark.parametrize(
    "item", ["orders.status", {"sort_descending": True}, {"column_name": 5}, None, ["a.b"]]
)
def test_sort_items_must_name_a_column(item: Any) -> None:
    with pytest.raises(InvalidQuery, match=r"^query\.sorts\[1\]: expected \{column_name"):
        q(sorts=[{"column_name": "orders.status"}, item])


def test_sort_descending_is_truthiness() -> None:
    assert q(sorts=[{"column_name": "a.b", "sort_descending": 1}]).sorts[0].descending is True
    assert q(sorts=[{"column_name": "a.b", "sort_descending": None}]).sorts[0].descending is False


# ---------------------------------------------------------------- filters


def test_filters() -> None:
    query = q(
        filters={
            "orders.status": {"type": "string", "kind": "EQUALS", "values": ["complete"]},
            "orders.created_at[month_num]": {"type": "number", "values": ["3"]},
            "orders.created_at": {"type": "date", "kind": "TIME_FOR_UNIT_DURATION",
                                  "left_side": "last month"},
        }
    )  # fmt: skip
    assert [(ref.text, ref.grain) for ref, _ in query.filters] == [
        ("orders.status", None),
        ("orders.created_at[month_num]", "month_num"),
        ("orders.created_at", None),
    ]
    assert query.filters[0][1] == Filter("string", "EQUALS", ("complete",))
    assert query.filters[1][1] == Filter("number", "EQUALS", ("3",))
    assert query.filters[2][1].left_side == "last month"


@pytest.mark.parametrize("filters", [None, {}])
def test_no_filters(filters: Any) -> None:
    assert q(filters=filters).filters == ()


def test_ignored_filters_are_dropped() -> None:
    query = q(
        filters={
            "orders.flag": {"type": "boolean", "is_negative": None},
            "orders.status": {"type": "composite", "filters": []},
            "orders.other": {"type": "composite", "filters": [{"type": "boolean"}]},
            "orders.id": {"type": "null", "is_negative": True},
        }
    )
    assert [(ref.text, f) for ref, f in query.filters] == [
        ("orders.id", Filter("null", is_negative=True))
    ]


@pytest.mark.parametrize("filters", [[], ["a.b"], "a.b", 5])
def test_filters_must_be_an_object(filters: Any) -> None:
    with pytest.raises(InvalidQuery, match=r"^query\.filters: expected an object"):
        q(filters=filters)


def test_filter_on_an_invalid_field_name() -> None:
    with pytest.raises(InvalidQuery, match="Invalid field name 'status'"):
        q(filters={"status": {"type": "null"}})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("complete", "a filter must be a typed object"),
        ({"type": "strng", "values": ["a"]}, 'Did you mean "string"?'),
        ({"type": "number", "values": ["x"]}, "'x' is not a number"),
        ({"type": "query", "query": {}}, "not supported yet"),
    ],
)
def test_bad_filters_are_invalid_queries_naming_the_field(value: Any, message: str) -> None:
    with pytest.raises(InvalidQuery) as info:
        q(filters={"orders.status": value})
    assert str(info.value).startswith("query.filters['orders.status']: ")
    assert message in str(info.value)


# ---------------------------------------------------------------- unsupported and unknown keys

UNSUPPORTED: list[tuple[str, Any, str]] = [
    ("staticQueryReferences", {"q1": {}}, "static query references"),
    ("period_over_period_computations", [{}], "period-over-period computations"),
]


@pytest.mark.parametrize(("key", "value", "what"), UNSUPPORTED)
def test_unsupported_features_are_refused_by_name(key: str, value: Any, what: str) -> None:
    with pytest.raises(NotSupported) as info:
        q(**{key: value})
    assert str(info.value) == f"query.{key}: {what} are not supported yet; remove {key!r}"
    assert info.value.code == "not_supported"
    assert info.value.status == 400
    assert isinstance(info.value, QueryError)


@pytest.mark.parametrize(("key", "value", "what"), UNSUPPORTED)
def test_empty_unsupported_features_are_fine(key: str, value: Any, what: str) -> None:
    empty: Any = [] if isinstance(value, list) else {} if isinstance(value, dict) else ""
    assert q(**{key: empty}).fields == (FieldRef("orders.status", "orders", "status", None),)
    assert q(**{key: None}).fields


def test_unknown_and_default_keys_are_ignored() -> None:
    query = q(
        column_limit=50, default_group_by=True, join_via_map={}, rewriteSql=False,
        dbtMode=False, sqlSortsEnabled=False, custom_summary_types={}, transposed_measures=[],
        dimensionIndex=3, manualSort=False, version=9, no_such_key={"x": 1},
    )  # fmt: skip
    assert query == SemanticQuery(fields=(FieldRef("orders.status", "orders", "status", None),))


# ---------------------------------------------------------------- model, table, topic


def test_model_table_and_topic() -> None:
    query = q(
        modelId="6b5c4d5e-0000-4000-8000-000000000001",
        table="order_items",
        join_paths_from_topic_name="order_items_topic",
    )
    assert query.model_id == "6b5c4d5e-0000-4000-8000-000000000001"
    assert query.table == "order_items"
    assert query.topic == "order_items_topic"


@pytest.mark.parametrize(("model_id", "expected"), [(None, None), ("", None), (123, "123")])
def test_model_id_forms(model_id: Any, expected: str | None) -> None:
    assert q(modelId=model_id).model_id == expected


def test_model_id_absent_and_snake_case_is_not_read() -> None:
    assert q().model_id is None
    assert q(model_id="abc").model_id is None  # the wire key is camelCase


@pytest.mark.parametrize("key", ["table", "join_paths_from_topic_name"])
def test_empty_table_or_topic_is_none(key: str) -> None:
    query = q(**{key: ""})
    assert (query.table, query.topic) == (None, None)


@pytest.mark.parametrize("key", ["table", "join_paths_from_topic_name"])
@pytest.mark.parametrize("value", [5, ["orders"], {"name": "orders"}, True])
def test_table_or_topic_must_be_names(key: str, value: Any) -> None:
    with pytest.raises(InvalidQuery, match=rf"^query\.{key}: expected a name"):
        q(**{key: value})


def test_full_contract_example() -> None:
    query = parse_query(
        {
            "modelId": "m-1",
            "table": "order_items",
            "join_paths_from_topic_name": "order_items",
            "fields": [
                "users.state", "order_items.total_sale_price", "order_items.created_at[month]",
            ],
            "filters": {"users.state": {"type": "string", "kind": "EQUALS",
                                        "values": ["CA", "NY"]}},
            "sorts": [{"column_name": "order_items.created_at[month]", "sort_descending": True,
                       "is_column_sort": False, "null_sort": "OMNI_DEFAULT"}],
            "limit": 1000, "offset": 0, "pivots": [], "calculations": [], "fill_fields": [],
            "column_totals": {}, "row_totals": {}, "column_limit": 50, "default_group_by": True,
            "join_via_map": {}, "userEditedSQL": "", "rewriteSql": False, "dbtMode": False,
            "sqlSortsEnabled": False, "controls": [], "custom_summary_types": {},
            "staticQueryReferences": {}, "transposed_measures": [], "dimensionIndex": 3,
            "manualSort": False, "version": 9,
        }
    )  # fmt: skip
    assert query.model_id == "m-1"
    assert [f.text for f in query.fields] == [
        "users.state", "order_items.total_sale_price", "order_items.created_at[month]",
    ]  # fmt: skip
    assert query.filters[0][1] == Filter("string", "EQUALS", ("CA", "NY"))
    assert query.sorts == (Sort("order_items.created_at[month]", True, "OMNI_DEFAULT"),)
    assert (query.limit, query.limit_given, query.offset) == (1000, True, 0)
