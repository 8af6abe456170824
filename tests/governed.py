"""A governed copy of the tpch demo model: access grants, row-level access filters,
always-applied SQL, a join's ``where_sql`` and user attributes in SQL, for the governance tests
of every layer (semantic, engines, API, replicas).

The rules, in words:
- grants: ``finance`` (department finance), ``europe_desk`` (region EUROPE), ``admins``
  (omni_is_org_admin true);
- customer topic: rows of the user's ``region`` only (``ALL`` sees every region), accounts
  with a balance of at least ``min_balance``, and groups of more than ``min_customers``
  customers;
- lineitem topic: customers whose market segment is LIKE the user's ``segment_pattern``s;
- orders topic: only for ``finance`` or ``admins``;
- customer.c_acctbal needs ``finance``; customer.c_phone needs ``europe_desk`` and
  ``finance``; the supplier view (so its fields) needs ``finance``;
- the lineitem -> part join keeps parts up to the user's ``max_size``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from assay.demo.tpch import tpch_model_dir
from assay.semantic.loader import build_model, read_model_files
from assay.semantic.model import SemanticModel

#: the attribute definitions the model reads, as POST /api/v1/user-attributes takes them
ATTRIBUTES: list[dict[str, Any]] = [
    {"name": "region", "label": "Region", "multiple_values": True},
    {"name": "department", "label": "Department"},
    {"name": "segment_pattern", "label": "Segment pattern", "multiple_values": True,
     "default_value": ["%"]},
    {"name": "min_balance", "label": "Minimum balance", "type": "Number", "default_value": -1000},
    {"name": "min_customers", "label": "Minimum customers", "type": "Number",
     "default_value": 0},
    {"name": "max_size", "label": "Maximum part size", "type": "Number", "default_value": 50},
]  # fmt: skip
ATTRIBUTE_NAMES = [a["name"] for a in ATTRIBUTES]

MODEL_RULES = """
access_grants:
  finance:
    user_attribute: department
    allowed_values: [finance]
  europe_desk:
    user_attribute: region
    allowed_values: [EUROPE]
  admins:
    user_attribute: omni_is_org_admin
    allowed_values: ["true"]
"""
CUSTOMER_TOPIC_RULES = """
access_filters:
  - field: region.r_name
    user_attribute: region
    values_for_unfiltered: [ALL]
always_where_sql: ${customer.c_acctbal} >= {{ omni_attributes.min_balance }}
always_having_sql: ${customer.count} > {{ omni_attributes.min_customers }}
"""
LINEITEM_TOPIC_RULES = """
access_filters:
  - field: customer.c_mktsegment
    user_attribute: segment_pattern
    enable_sql_like_wildcards: true
"""
ORDERS_TOPIC_RULES = """
required_access_grants: [finance|admins]
"""
PART_JOIN_WHERE = "  where_sql: ${part.p_size} <= {{ omni_attributes.max_size }}\n"


def governed_files(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tpch model's files (or ``base``) with the rules above added."""
    files = dict(base if base is not None else read_model_files(tpch_model_dir()))
    files["model"] += MODEL_RULES
    files["customer.topic"] += CUSTOMER_TOPIC_RULES
    files["lineitem.topic"] += LINEITEM_TOPIC_RULES
    files["orders.topic"] += ORDERS_TOPIC_RULES
    customer = files["customer.view"]
    customer = _after(customer, "  c_acctbal:\n", "    required_access_grants: [finance]\n")
    files["customer.view"] = _after(
        customer, "  c_phone:\n", "    required_access_grants: [europe_desk&finance]\n"
    )
    files["supplier.view"] = "required_access_grants: [finance]\n" + files["supplier.view"]
    rel = "- join_from_view: lineitem\n  join_to_view: part\n"
    files["relationships"] = _after(files["relationships"], rel, PART_JOIN_WHERE)
    return files


def governed_model() -> SemanticModel:
    return build_model(governed_files(), name="tpch", attributes=ATTRIBUTE_NAMES)


def write_governed(folder: Path) -> None:
    """Rewrite the tpch model in ``folder`` (a copy of the demo model) with the rules."""
    for name, text in governed_files(read_model_files(folder)).items():
        (folder / f"{name}.yaml").write_text(text)


def _after(text: str, anchor: str, addition: str) -> str:
    assert anchor in text, f"the tpch model changed: {anchor!r} not found"
    return text.replace(anchor, anchor + addition, 1)
