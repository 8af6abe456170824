"""Which path a query object takes (semantic layer): the fields of a semantic query, SQL run
verbatim, or OmniSQL (SQL over ``${view.field}`` references, planned as a governed model query).

Omni's planner dispatches on ``userEditedSQL`` and its markers (omni-query-features.md 7.1); one
function decides it here, so the compiler, the job runner and the raw-SQL path agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

SqlMode = Literal["semantic", "raw", "omnisql"]
#: Omni's marker for SQL it must not parse: a line of its own
DO_NOT_PARSE = re.compile(r"^\s*--\s*DO NOT PARSE\s*$", re.MULTILINE)


def sql_mode(obj: Mapping[str, Any]) -> SqlMode:
    """``semantic`` without SQL; ``raw`` when a marker says to run it verbatim
    (``rewriteSql: false``, ``dbtMode``, ``parsed: false``, a ``-- DO NOT PARSE`` line);
    otherwise ``omnisql``, as Omni does when ``rewriteSql`` is absent or true."""
    sql = obj.get("userEditedSQL")
    if not isinstance(sql, str) or not sql.strip():
        return "semantic"
    if (
        obj.get("rewriteSql") is False
        or obj.get("dbtMode") is True
        or obj.get("parsed") is False
        or DO_NOT_PARSE.search(sql)
    ):
        return "raw"
    return "omnisql"
