"""The semantic model loader: a valid model loads into the right objects, and broken models are
refused whole with every issue reported at once.

The refusal tests are data-driven: each folder under ``tests/fixtures/models/invalid/`` is a
small broken model plus ``expected.yaml``::

    description: what the case is about (optional)
    xfail: "bug: ..."            # optional: a known loader bug, reported by the case
    issues:
      - file: orders.view        # exact ModelIssue.file
        path: measures.x.sql     # exact ModelIssue.yaml_path ("" for the whole file)
        message_contains: ...    # a substring of the message, or a list of them (optional)

Every expected issue must be among the reported errors, and there must be no other errors, so
each case also proves the loader reports all problems in one round. Adding a case means adding
a folder; nothing here changes.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from _pytest.mark import ParameterSet

from assay.errors import ModelInvalid, ModelIssue
from assay.semantic import loader
from assay.semantic.filters import Filter
from assay.semantic.loader import build_model, load_model, read_model_files
from assay.semantic.model import SemanticModel, model_id_for
from assay.semantic.templates import MeasureRef

MODELS = Path(__file__).resolve().parent.parent / "fixtures" / "models"
SHOP = MODELS / "shop"
INVALID = MODELS / "invalid"
TPCH = Path(loader.__file__).resolve().parent.parent / "demo" / "models" / "tpch"


# ---------------------------------------------------------------- the data-driven cases


@dataclass(frozen=True)
class ExpectedIssue:
    file: str
    path: str
    message_contains: tuple[str, ...]

    def matches(self, issue: ModelIssue) -> bool:
        return (
            issue.file == self.file
            and issue.yaml_path == self.path
            and all(part in issue.message for part in self.message_contains)
        )

    def __str__(self) -> str:
        return f"{self.file}: {self.path!r}: contains {list(self.message_contains)}"


@dataclass(frozen=True)
class Case:
    name: str
    folder: Path
    issues: tuple[ExpectedIssue, ...]
    description: str = ""
    xfail: str | None = None


_CASE_KEYS = {"description", "xfail", "issues"}
_ISSUE_KEYS = {"file", "path", "message_contains"}


def read_case(folder: Path) -> Case:
    """The case in ``folder``; a malformed ``expected.yaml`` fails loudly, never silently."""
    expected = folder / "expected.yaml"
    if not expected.is_file():
        raise AssertionError(f"{folder.name}: no expected.yaml in the case folder")
    data = yaml.safe_load(expected.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("issues"), list):
        raise AssertionError(f"{folder.name}: expected.yaml needs an 'issues' list")
    if unknown := set(data) - _CASE_KEYS:
        raise AssertionError(f"{folder.name}: unknown keys in expected.yaml: {sorted(unknown)}")
    issues: list[ExpectedIssue] = []
    for i, raw in enumerate(data["issues"]):
        if not isinstance(raw, dict) or "file" not in raw or "path" not in raw:
            raise AssertionError(f"{folder.name}: issues[{i}] needs file and path")
        if unknown := set(raw) - _ISSUE_KEYS:
            raise AssertionError(f"{folder.name}: issues[{i}]: unknown keys {sorted(unknown)}")
        contains = raw.get("message_contains", [])
        parts = [contains] if isinstance(contains, str) else list(contains)
        issues.append(ExpectedIssue(str(raw["file"]), str(raw["path"] or ""), tuple(parts)))
    if not issues:
        raise AssertionError(f"{folder.name}: a case expects at least one issue")
    return Case(
        name=folder.name,
        folder=folder,
        issues=tuple(issues),
        description=str(data.get("description") or ""),
        xfail=str(data["xfail"]) if data.get("xfail") else None,
    )


def case_folders() -> list[Path]:
    return sorted(p for p in INVALID.iterdir() if p.is_dir())


def case_params() -> list[ParameterSet]:
    params: list[ParameterSet] = []
    for folder in case_folders():
        xfail: str | None = None
        expected = folder / "expected.yaml"
        try:
            data = yaml.safe_load(expected.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            data = None  # reported by read_case when the case runs
        xfail = data.get("xfail") if isinstance(data, dict) else None
        marks = [pytest.mark.xfail(strict=True, reason=str(xfail))] if xfail else []
        params.append(pytest.param(folder, id=folder.name, marks=marks))
    return params


def refusal(load: Callable[[], SemanticModel]) -> ModelInvalid:
    with pytest.raises(ModelInvalid) as info:
        load()
    return info.value


def describe(issues: list[ModelIssue]) -> str:
    return "\n".join(f"  {i.file!r} {i.yaml_path!r}: {i.message}" for i in issues) or "  (none)"


@pytest.mark.parametrize("folder", case_params())
def test_invalid_model_is_refused_with_every_issue(folder: Path) -> None:
    case = read_case(folder)
    exc = refusal(lambda: load_model(folder))
    errors = [i for i in exc.issues if not i.is_warning]

    unmatched = list(errors)
    missing: list[ExpectedIssue] = []
    for want in case.issues:
        hit = next((got for got in unmatched if want.matches(got)), None)
        if hit is None:
            missing.append(want)
        else:
            unmatched.remove(hit)
    assert not missing, (
        f"{case.name}: expected issues not reported:\n"
        + "\n".join(f"  {m}" for m in missing)
        + f"\nreported:\n{describe(errors)}"
    )
    assert not unmatched, (
        f"{case.name}: {len(errors)} errors reported, {len(case.issues)} expected; "
        f"unexpected:\n{describe(unmatched)}"
    )
    # The exception's own text counts and lists the errors, for logs and the CLI.
    count = len(errors)
    assert f"({count} error{'s' if count != 1 else ''})" in exc.message
    for issue in errors:
        assert issue.message in exc.message


def test_there_are_enough_invalid_cases() -> None:
    folders = case_folders()
    assert len(folders) >= 15
    for folder in folders:
        read_case(folder)  # every folder is a well-formed case


def test_case_files_are_the_model_files() -> None:
    """expected.yaml is never read as part of a model (the loader only reads Omni names)."""
    for folder in case_folders():
        assert all(not name.startswith("expected") for name in read_model_files(folder))


def test_build_model_reports_the_same_issues_as_load_model() -> None:
    folder = INVALID / "several_errors_in_several_files"
    from_folder = refusal(lambda: load_model(folder))
    files = read_model_files(folder)
    from_texts = refusal(lambda: build_model(files, name=folder.name))
    assert from_texts.issues == from_folder.issues


def test_one_bad_measure_refuses_a_model_that_loads_without_it() -> None:
    """The model is refused whole, not loaded minus the broken measure; without it, it loads."""
    folder = INVALID / "one_bad_measure_refuses_model"
    files = read_model_files(folder)
    exc = refusal(lambda: build_model(files, name="half"))
    assert [i.yaml_path for i in exc.issues] == ["measures.broken.sql"]

    view = yaml.safe_load(files["orders.view"])
    del view["measures"]["broken"]
    fixed = {**files, "orders.view": yaml.safe_dump(view)}
    model = build_model(fixed, name="half")
    assert sorted(model.views["orders"].measures) == ["average", "complete_total", "count", "total"]
    assert list(model.topics) == ["orders"]


# ---------------------------------------------------------------- load_model edge cases


def test_missing_folder_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    exc = refusal(lambda: load_model(missing))
    assert exc.issues == [ModelIssue(str(missing), "", "model folder does not exist")]


def test_a_file_is_not_a_model_folder(tmp_path: Path) -> None:
    file = tmp_path / "model.yaml"
    file.write_text("name: x\n")
    exc = refusal(lambda: load_model(file))
    assert [i.message for i in exc.issues] == ["model folder does not exist"]


def test_empty_folder_is_refused(tmp_path: Path) -> None:
    exc = refusal(lambda: load_model(tmp_path))
    assert [(i.file, i.yaml_path) for i in exc.issues] == [("model", "")]
    assert "the model has no views" in exc.issues[0].message


def test_folder_with_only_a_model_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.yaml").write_text("name: lonely\n")
    (tmp_path / "README.md").write_text("not a model file\n")
    exc = refusal(lambda: load_model(tmp_path))
    assert "the model has no views" in exc.issues[0].message
    assert "'lonely'" in exc.message  # the name comes from the model file


def test_empty_files_are_allowed(tmp_path: Path) -> None:
    """An empty view file is a view with no fields; empty model and relationships files are
    defaults (Omni creates them empty)."""
    (tmp_path / "model.yaml").write_text("")
    (tmp_path / "relationships.yaml").write_text("")
    (tmp_path / "things.view.yaml").write_text("")
    model = load_model(tmp_path, name="empty_files")
    assert model.name == "empty_files"
    assert list(model.views) == ["things"]
    assert model.relationships == ()


def test_yml_suffix_and_subfolders_are_read(tmp_path: Path) -> None:
    (tmp_path / "views").mkdir()
    (tmp_path / "views" / "orders.view.yml").write_text("dimensions:\n  id: {}\n")
    (tmp_path / "orders.topic").write_text("base_view: orders\n")
    (tmp_path / "model.yml").write_text("name: suffixes\n")
    assert sorted(read_model_files(tmp_path)) == ["model", "orders.topic", "views/orders.view"]
    model = load_model(tmp_path)
    assert model.name == "suffixes"
    assert model.views["orders"].file == "views/orders.view"
    assert model.topics["orders"].file == "orders.topic"


def test_warnings_alone_do_not_refuse_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loader emits no warnings today; if it does, they must not refuse a model.

    A warning is injected into a real build to check build_model's contract.
    """
    real_build = loader._Builder.build

    def build_with_warning(self: Any) -> SemanticModel | None:
        self.issue("orders.view", "dimensions.id", "just so you know", warning=True)
        result: SemanticModel | None = real_build(self)
        return result

    monkeypatch.setattr(loader._Builder, "build", build_with_warning)
    model = load_model(SHOP)
    assert "orders" in model.views

    # With an error as well, the refusal lists the warning but counts only the error.
    files = {**read_model_files(SHOP), "bad.view": "dimensions: {A: {}}\n"}
    exc = refusal(lambda: build_model(files, name="shop"))
    assert [i.is_warning for i in exc.issues] == [True, False]
    assert "(1 error)" in exc.message
    assert "just so you know" not in exc.message


def test_shop_model_has_no_warnings() -> None:
    builder = loader._Builder(read_model_files(SHOP), default_name="shop")
    assert builder.build() is not None
    assert builder.issues == []


def test_demo_tpch_model_loads() -> None:
    model = load_model(TPCH)
    assert model.name == "tpch"
    assert {"lineitem", "orders", "customer"} <= set(model.views)


# ---------------------------------------------------------------- the valid shop model


@pytest.fixture(scope="module")
def shop() -> SemanticModel:
    return load_model(SHOP)


def test_shop_loads(shop: SemanticModel) -> None:
    assert shop.name == "shop"
    assert shop.label == "Shop"
    assert shop.dialect == "duckdb"
    assert shop.default_row_limit == 500
    assert set(shop.views) == {"orders", "order_items", "customers", "products"}
    assert set(shop.topics) == {"order_items", "customers"}
    assert [(r.left, r.right, r.type, r.join_type) for r in shop.relationships] == [
        ("order_items", "orders", "many_to_one", "always_left"),
        ("orders", "customers", "many_to_one", "always_left"),
        ("order_items", "products", "many_to_one", "always_left"),
    ]
    assert set(shop.files) == {
        "model",
        "relationships",
        "orders.view",
        "order_items.view",
        "customers.view",
        "products.view",
        "order_items.topic",
        "customers.topic",
    }
    # default_filters use a relative date, so compiled queries depend on the clock.
    assert shop.clock_filters is True


def test_shop_views(shop: SemanticModel) -> None:
    orders = shop.views["orders"]
    assert orders.label == "Orders"
    assert orders.description == "One row per order."
    assert orders.file == "orders.view"
    assert orders.source.sql() == "orders AS orders"
    assert shop.views["products"].source.sql() == "catalog.products AS products"
    assert {v.name: v.primary_key.name if v.primary_key else None for v in shop.views.values()} == {
        "orders": "id",
        "order_items": "id",
        "customers": "id",
        "products": "id",
    }
    assert shop.views["order_items"].dimensions["sale_price"].hidden is True
    customers = shop.views["customers"]
    assert customers.dimensions["name"].label == "Customer Name"
    assert customers.dimensions["name"].synonyms == ("client", "buyer")
    assert customers.dimensions["country"].all_values == ("DE", "FR", "US")
    assert customers.dimensions["country"].label == "Country"


@pytest.mark.parametrize(
    ("key", "sql", "views_used"),
    [
        ("orders.status", "orders.status", {"orders"}),
        (
            "order_items.line_total",
            "order_items.quantity * order_items.sale_price",
            {"order_items"},
        ),
        # A dimension made of another view's dimension: resolved, and it needs that view.
        ("orders.customer_name", "customers.name", {"orders", "customers"}),
    ],
)
def test_shop_dimension_sql(shop: SemanticModel, key: str, sql: str, views_used: set[str]) -> None:
    view, _, name = key.partition(".")
    dim = shop.views[view].dimensions[name]
    assert dim.key == key
    assert dim.expr.sql() == sql
    assert dim.views_used == frozenset(views_used)


def test_shop_date_dimension(shop: SemanticModel) -> None:
    created = shop.views["orders"].dimensions["created_at"]
    assert created.timeframes == ("raw", "date", "week", "month", "year")
    assert created.data_type == "TIMESTAMP"
    assert shop.views["orders"].dimensions["customer_name"].label == "Ordered By"
    assert shop.views["order_items"].dimensions["line_total"].data_type == "NUMBER"


def _kind(shop: SemanticModel, key: str) -> str:
    view, _, name = key.partition(".")
    m = shop.views[view].measures[name]
    if m.derived is not None:
        return "derived"
    if m.custom is not None:
        return "custom"
    return "aggregate"


@pytest.mark.parametrize(
    ("key", "aggregate_type", "kind", "input_sql"),
    [
        ("order_items.count", "count", "aggregate", None),
        (
            "order_items.revenue",
            "sum",
            "aggregate",
            "(order_items.quantity * order_items.sale_price)",
        ),
        ("order_items.order_count", "count_distinct", "aggregate", "order_items.order_id"),
        ("order_items.average_price", "average", "aggregate", "order_items.sale_price"),
        ("order_items.median_price", "median", "aggregate", "order_items.sale_price"),
        ("order_items.p90_price", "percentile", "aggregate", "order_items.sale_price"),
        ("order_items.product_names", "list", "aggregate", "products.name"),
        ("order_items.revenue_per_item", None, "derived", None),
        ("order_items.average_line", None, "custom", None),
        ("orders.completed_count", "count", "aggregate", None),
    ],
)
def test_shop_measure_kinds(
    shop: SemanticModel, key: str, aggregate_type: str | None, kind: str, input_sql: str | None
) -> None:
    view, _, name = key.partition(".")
    m = shop.views[view].measures[name]
    assert m.key == key
    assert m.aggregate_type == aggregate_type
    assert _kind(shop, key) == kind
    assert (m.input.sql() if m.input is not None else None) == input_sql


def test_shop_measure_details(shop: SemanticModel) -> None:
    items = shop.views["order_items"].measures
    assert items["p90_price"].percentile == 90
    assert items["product_names"].data_type == "STRING"
    assert items["product_names"].views_used == frozenset({"order_items", "products"})
    assert items["revenue"].format == "usdcurrency_2"
    assert items["revenue"].label == "Revenue"

    custom = items["average_line"].custom
    assert custom is not None
    assert custom.sql() == "SUM((order_items.quantity * order_items.sale_price)) / COUNT(*)"

    derived = items["revenue_per_item"].derived
    assert derived is not None
    refs = [(str(r.args["view"]), str(r.args["name"])) for r in derived.find_all(MeasureRef)]
    assert refs == [("order_items", "revenue"), ("order_items", "count")]
    assert items["revenue_per_item"].views_used == frozenset({"order_items"})


def test_shop_measure_filters(shop: SemanticModel) -> None:
    m = shop.views["order_items"].measures["completed_bulk_revenue"]
    assert m.aggregate_type == "sum"
    # A filter on the measure's own view and one on a joined view's field.
    assert [(f.field, f.target.sql()) for f in m.filters] == [
        ("order_items.quantity", "order_items.quantity"),
        ("orders.status", "orders.status"),
    ]
    assert [f.filter for f in m.filters] == [
        Filter("number", "GREATER_THAN", (1,)),
        Filter("string", "EQUALS", ("complete",)),
    ]
    assert m.views_used == frozenset({"order_items", "orders"})

    own = shop.views["orders"].measures["completed_count"]
    assert [(f.field, f.filter) for f in own.filters] == [
        ("orders.status", Filter("string", "EQUALS", ("complete",)))
    ]


def test_measure_ref_key(shop: SemanticModel) -> None:
    derived = shop.views["order_items"].measures["revenue_per_item"].derived
    assert derived is not None
    keys = [r.measure_key for r in derived.find_all(MeasureRef)]
    assert keys == ["order_items.revenue", "order_items.count"]


def test_shop_topic_joins(shop: SemanticModel) -> None:
    topic = shop.topics["order_items"]
    assert topic.base_view == "order_items"
    assert topic.label == "Sales"
    assert topic.file == "order_items.topic"
    assert topic.views == ["order_items", "orders", "customers", "products"]
    steps = [
        (s.parent, s.view, s.relationship.left, s.relationship.right, s.relationship.type)
        for s in topic.joins.values()
    ]
    assert steps == [
        ("order_items", "orders", "order_items", "orders", "many_to_one"),
        ("orders", "customers", "orders", "customers", "many_to_one"),
        ("order_items", "products", "order_items", "products", "many_to_one"),
    ]
    assert [s.view for s in topic.path_to("customers")] == ["orders", "customers"]
    assert topic.path_to("order_items") == []
    assert topic.joins["orders"].relationship.on.sql() == "order_items.order_id = orders.id"


def test_topic_joining_from_the_one_side_reverses_the_relationship(shop: SemanticModel) -> None:
    """Relationships are declared from the many side; walking one in reverse flips it."""
    topic = shop.topics["customers"]
    assert topic.label == "Customers"  # defaulted from the name
    orders = topic.joins["orders"].relationship
    assert (orders.left, orders.right, orders.type) == ("customers", "orders", "one_to_many")
    assert orders.multiplies_left
    assert not orders.multiplies_right
    assert orders.on.sql() == "orders.customer_id = customers.id"
    assert orders.sql == "${orders.customer_id} = ${customers.id}"
    items = topic.joins["order_items"]
    assert items.parent == "orders"
    assert (items.relationship.left, items.relationship.type) == ("orders", "one_to_many")
    # The model's own relationship stays as declared.
    declared = next(r for r in shop.relationships if r.right == "customers")
    assert (declared.left, declared.type) == ("orders", "many_to_one")


def test_shop_topic_curation_and_filters(shop: SemanticModel) -> None:
    topic = shop.topics["order_items"]
    assert topic.field_patterns == (
        "order_items.*",
        "orders.*",
        "customers.name",
        "-customers.country",
        "products.*",
    )
    assert shop.topics["customers"].field_patterns is None
    assert topic.default_filters == (
        (
            "orders.created_at",
            Filter(
                "date",
                "TIME_FOR_INTERVAL_DURATION",
                left_side="12 months ago",
                right_side="12 months",
            ),
        ),
    )
    assert topic.always_where_filters == (
        ("orders.status", Filter("string", "EQUALS", ("cancelled",), is_negative=True)),
    )
    assert topic.always_having_filters == ()


def test_shop_sample_query_in_api_shape(shop: SemanticModel) -> None:
    (sample,) = shop.topics["order_items"].sample_queries
    assert sample.name == "revenue_by_month"
    assert sample.label == "Revenue By Month"
    assert sample.prompt == "Which month had the most revenue?"
    assert dict(sample.query) == {
        "table": "order_items",
        "join_paths_from_topic_name": "order_items",
        "fields": ["orders.created_at[month]", "order_items.revenue"],
        "sorts": [{"column_name": "order_items.revenue", "sort_descending": True}],
        "limit": 1,
        "filters": {},
    }


def test_sample_query_defaults_to_its_topic() -> None:
    files = read_model_files(SHOP)
    topic = yaml.safe_load(files["customers.topic"])
    topic["sample_queries"] = {
        "top": {"query": {"fields": ["customers.name"], "sorts": [{"field": "customers.name"}]}}
    }
    model = build_model({**files, "customers.topic": yaml.safe_dump(topic)}, name="shop")
    (sample,) = model.topics["customers"].sample_queries
    assert sample.query["table"] == "customers"
    assert sample.query["join_paths_from_topic_name"] == "customers"
    assert sample.query["sorts"] == [{"column_name": "customers.name", "sort_descending": False}]


# ---------------------------------------------------------------- identity and version


def test_model_id_is_a_stable_uuid(shop: SemanticModel, tmp_path: Path) -> None:
    parsed = uuid.UUID(shop.id)
    assert parsed.version == 5
    assert shop.id == model_id_for("shop")
    assert load_model(SHOP).id == shop.id
    # The id follows the model's name, not its folder or its contents.
    copy = tmp_path / "elsewhere"
    shutil.copytree(SHOP, copy)
    (copy / "customers.view.yaml").write_text(
        (copy / "customers.view.yaml").read_text() + "\n# changed\n"
    )
    assert load_model(copy).id == shop.id
    assert model_id_for("shop2") != shop.id


def test_model_name_comes_from_the_model_file_or_the_folder(tmp_path: Path) -> None:
    copy = tmp_path / "my_folder"
    shutil.copytree(SHOP, copy)
    assert load_model(copy).name == "shop"
    (copy / "model.yaml").write_text("label: No name here\n")
    model = load_model(copy)
    assert model.name == "my_folder"
    assert model.id == model_id_for("my_folder")
    assert load_model(copy, name="chosen").name == "chosen"


def test_version_is_stable_and_changes_with_any_file(shop: SemanticModel, tmp_path: Path) -> None:
    assert len(shop.version) == 16
    assert load_model(SHOP).version == shop.version
    assert build_model(read_model_files(SHOP), name="whatever").version == shop.version

    copy = tmp_path / "shop"
    shutil.copytree(SHOP, copy)
    assert load_model(copy).version == shop.version
    # A comment is still a change to the files the model was built from.
    view = copy / "products.view.yaml"
    view.write_text(view.read_text() + "# a comment\n")
    changed = load_model(copy).version
    assert changed != shop.version
    # So is a new file.
    (copy / "extra.view.yaml").write_text("dimensions:\n  id: {}\n")
    assert load_model(copy).version not in (shop.version, changed)
