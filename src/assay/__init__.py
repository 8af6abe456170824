"""Assay: a self-hosted analytics API, wire-compatible with Omni's REST API."""

__version__ = "0.1.0"
