"""Column-totals queries on the tpch model and the SQL a person would write for them, for the
semantic tests (DuckDB) and the engine tests (DuckDB, PostgreSQL, MariaDB). The hand-written
SQL is one UNION ALL of the levels, which every one of those engines runs; its columns are
the query's fields then the total indicator, each named (a driver may merge same-named
columns)."""

from __future__ import annotations

from typing import Any

INDICATOR = "$omni_column_total_indicator"
AGG = {"type": "aggregation"}
# count distinct and an average over orders joined to customers (no fan-out: one plan)
BY_SEGMENT: dict[str, Any] = {
    "join_paths_from_topic_name": "orders",
    "fields": ["customer.c_mktsegment", "orders.o_orderpriority", "orders.count",
               "orders.count_customers", "orders.avg_totalprice"],
    "column_totals": {"::total::": AGG, "customer.c_mktsegment": AGG},
    "limit": None,
}  # fmt: skip
BY_SEGMENT_SQL = """
WITH j AS (SELECT c.c_mktsegment AS s, o.o_orderpriority AS p, o.o_custkey AS ck,
                  o.o_totalprice AS t
           FROM orders o LEFT JOIN customer c ON o.o_custkey = c.c_custkey)
SELECT s, p, COUNT(*) AS n, COUNT(DISTINCT ck) AS nc, AVG(t) AS a, NULL AS k FROM j GROUP BY s, p
UNION ALL
SELECT s, NULL, COUNT(*), COUNT(DISTINCT ck), AVG(t), 'column_subtotal::customer.c_mktsegment'
FROM j GROUP BY s
UNION ALL
SELECT NULL, NULL, COUNT(*), COUNT(DISTINCT ck), AVG(t), 'column_total' FROM j
"""
# orders.count through the lineitem topic: orders repeat per line, so they are de-duplicated
FANOUT: dict[str, Any] = {
    "join_paths_from_topic_name": "lineitem",
    "fields": ["region.r_name", "nation.n_name", "lineitem.revenue", "orders.count"],
    "column_totals": {"::total::": AGG, "region.r_name": AGG},
    # (a seventh of the lines: the plan is the same, MariaDB's run of it much shorter)
    "filters": {"lineitem.l_shipmode": {"type": "string", "kind": "EQUALS", "values": ["AIR"]}},
    "limit": None,
}
FANOUT_SQL = """
WITH j AS (SELECT r.r_name AS r, n.n_name AS n, l.l_extendedprice * (1 - l.l_discount) AS v,
                  o.o_orderkey AS ok
           FROM lineitem l LEFT JOIN orders o ON l.l_orderkey = o.o_orderkey
           LEFT JOIN customer c ON o.o_custkey = c.c_custkey
           LEFT JOIN nation n ON c.c_nationkey = n.n_nationkey
           LEFT JOIN region r ON n.n_regionkey = r.r_regionkey
           WHERE l.l_shipmode = 'AIR')
SELECT r, n, SUM(v) AS v, COUNT(DISTINCT ok) AS nc, NULL AS k FROM j GROUP BY r, n
UNION ALL
SELECT r, NULL, SUM(v), COUNT(DISTINCT ok), 'column_subtotal::region.r_name' FROM j GROUP BY r
UNION ALL
SELECT NULL, NULL, SUM(v), COUNT(DISTINCT ok), 'column_total' FROM j
"""
