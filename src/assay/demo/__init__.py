"""The TPC-H demo: generated data in DuckDB and the bundled ``tpch`` model."""
