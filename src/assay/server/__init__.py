"""The HTTP API (FastAPI on uvicorn): Omni's REST API over Assay's jobs and semantic layer."""
