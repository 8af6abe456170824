"""The AI layer: questions become semantic queries (never SQL). So far the built-in offline
planner (``planner.plan``); jobs, endpoints and LLM planners come next (issue 4)."""
