"""Omni's names for views, topics and models: how relationships, topics and queries refer to
them.

Omni derives a view's name from its file and lets no parameter set another. Its git sync keeps
each schema's views in a folder of that schema and names a view ``<schema>__<table>`` when the
schema is not the connection's default (``omni_dbt_marts/fct_events.view`` is
``omni_dbt_marts__fct_events``) and ``<table>`` when it is (``estore_marts/fct_events.view`` is
``fct_events``): the folder alone cannot tell which. Omni writes the name at the top of every
view file (``# Reference this view as omni_dbt_marts__fct_events``), so that comment names the
view; a file without it (one written by hand) is named after the file, folders left out.
"""

from __future__ import annotations

import re

#: a topic is named after its file too, and Omni keeps the file's capitals (``Customers.topic``
#: is the topic ``Customers`` in ``join_paths_from_topic_name``)
TOPIC_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: a model's name is free text in Omni (``BigQuery``, ``estore (demo)``); it is shown, and its
#: id derives from it, but no SQL or path is made of it
MODEL_NAME = re.compile(r"^\S(?:[^\x00-\x1f\x7f]{0,198}\S)?$")
_DECLARED = re.compile(r"#\s*Reference this view as\s+(\S+)\s*$", re.IGNORECASE)


def file_stem(file: str) -> str:
    """``omni_dbt_marts/fct_events.view`` -> ``fct_events``: the table a view reads when it
    names none (Omni: "defaults to the view file name")."""
    return file.rsplit("/", 1)[-1].removesuffix(".view")


def declared_name(text: str) -> str | None:
    """The name in the file's leading ``# Reference this view as <name>`` comment, if any;
    only the comment lines before the first YAML line are read (a comment further down could
    be anyone's note)."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            return None
        match = _DECLARED.match(stripped)
        if match:
            return match.group(1)
    return None


def view_name(file: str, text: str) -> tuple[str, str | None]:
    """``(name, problem)``: the view's name, and why the file's comment was not believed.

    The comment is believed when it agrees with the file's name (it is that name, or that name
    behind a schema prefix); a comment naming something else is a mistake to report, not a
    second name to guess between.
    """
    stem = file_stem(file)
    declared = declared_name(text)
    if declared is None or declared == stem or declared.endswith(f"__{stem}"):
        return declared or stem, None
    return stem, (
        f"the file says 'Reference this view as {declared}', but it is named {stem!r}: "
        f"rename the file or correct the comment"
    )
