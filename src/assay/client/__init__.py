"""A small client for Assay's (and Omni's) query API. Imports nothing from the server."""

from assay.client.ai import AIClient
from assay.client.base import QueryFailed
from assay.client.query import QueryClient, QueryResult

__all__ = ["AIClient", "QueryClient", "QueryFailed", "QueryResult"]
