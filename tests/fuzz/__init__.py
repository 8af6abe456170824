"""Coverage-guided fuzz targets for the parsers people feed text to (see docs/fuzzing.md).

One module per target, each with a ``check(data: bytes) -> None`` property (raises only on a
real bug) and an atheris ``main``. ``scripts/fuzz`` runs them; ``test_corpus.py`` replays the
committed corpus and saved crashes through every ``check`` in the normal test run.
"""

from __future__ import annotations

TARGETS = ("dates", "json_filter", "yaml_filter", "query", "model", "templates")
