"""A small client for Assay's (and Omni's) query API. Imports nothing from the server."""

from assay.client.query import QueryClient, QueryFailed, QueryResult

__all__ = ["QueryClient", "QueryFailed", "QueryResult"]
