"""Omni's ``extends``: a view or topic built on others, resolved on the parsed YAML before the
model is built, so that everything after (validation, references, compilation) sees one plain
view or topic and needs no notion of inheritance.

The rules (Omni's docs; docs/semantic-layer.md#extends):

* the extending file's own parameters override what it inherits; ``dimensions`` and
  ``measures`` merge by field name and then parameter by parameter (a field that sets only
  ``label`` keeps the inherited ``sql``); a topic's maps (``joins``, the filter maps,
  ``sample_queries``) merge by key, the extending file's entry replacing the inherited one
  whole; every other parameter (lists included) is replaced whole;
* when several are extended, earlier entries take precedence over later ones;
* a field marked ``ignore_from_extended: true`` stays in its own view and is left out of every
  view that extends it;
* ``template: true`` is not inherited: a template is only ever a starting point.

Inherited SQL is resolved in the extending view: a column or ``${field}`` in an inherited field
means the extending view's column or field, as if the field had been written there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from assay.errors import did_you_mean

#: parameters merged by key rather than replaced (fields are then merged parameter by parameter)
FIELD_MAPS = ("dimensions", "measures")
KEYED_MAPS = ("joins", "default_filters", "always_where_filters", "always_having_filters",
              "sample_queries")  # fmt: skip
#: parameters that describe the file itself and are never inherited
NOT_INHERITED = ("extends", "template", "ignored")

Report = Callable[[str, str, str], None]  # (file, yaml path, message)


def resolve_extends(
    kind: str,
    entries: Mapping[str, tuple[str, dict[str, Any]]],
    report: Report,
    *,
    broken: frozenset[str] = frozenset(),
) -> dict[str, dict[str, Any]]:
    """Every entry (``name -> (file, parsed YAML)``) with its ``extends`` resolved, keyed by
    name; one whose ``extends`` is wrong (unknown name, cycle, not a list) is reported and left
    out. ``kind`` is "view" or "topic" (for messages); ``broken`` names entries already
    reported (a YAML error), which an ``extends`` may name without a second issue."""
    resolved: dict[str, dict[str, Any]] = {}
    failed: set[str] = set()

    def resolve(name: str, chain: list[str]) -> dict[str, Any] | None:
        if name in resolved:
            return resolved[name]
        if name in failed:
            return None
        file, data = entries[name]
        parents = _parent_names(kind, file, data, report)
        if parents is None:
            failed.add(name)
            return None
        inherited: list[dict[str, Any]] = []
        for i, parent in enumerate(parents):
            if parent in chain or parent == name:
                cycle = " -> ".join([*chain[chain.index(parent):], name, parent]) \
                    if parent in chain else f"{name} -> {name}"  # fmt: skip
                report(file, f"extends[{i}]", f"{kind} extends form a cycle: {cycle}")
                failed.add(name)
                return None
            if parent not in entries:
                if parent not in broken:
                    hint = did_you_mean(parent, [n for n in entries if n != name])
                    report(file, f"extends[{i}]", f"no {kind} {parent!r} to extend.{hint}")
                failed.add(name)
                return None
            got = resolve(parent, [*chain, name])
            if got is None:  # the parent's own problem is reported already
                failed.add(name)
                return None
            inherited.append(got)
        merged: dict[str, Any] = {}
        for parent_data in reversed(inherited):  # earlier entries take precedence
            merged = _overlay(merged, _inheritable(parent_data))
        merged = _overlay(merged, {k: v for k, v in data.items() if k != "extends"})
        resolved[name] = merged
        return merged

    for name in entries:
        resolve(name, [])
    return resolved


def _parent_names(kind: str, file: str, data: dict[str, Any], report: Report) -> list[str] | None:
    """The names ``extends`` lists, or None (reported) when it is not a list of names."""
    names = data.get("extends")
    if names is None:
        return []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        report(file, "extends", f"extends must be a list of {kind} names, like [base_{kind}]")
        return None
    return names


def _inheritable(data: dict[str, Any]) -> dict[str, Any]:
    """What an extending file inherits: all but the file's own markers and the fields marked
    ``ignore_from_extended``."""
    out = {k: v for k, v in data.items() if k not in NOT_INHERITED}
    for kind in FIELD_MAPS:
        fields = out.get(kind)
        if isinstance(fields, dict):
            out[kind] = {
                name: spec
                for name, spec in fields.items()
                if not (isinstance(spec, dict) and spec.get("ignore_from_extended") is True)
            }
    return out


def _overlay(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``top`` laid over it, by the rules in the module docstring."""
    out = dict(base)
    for key, value in top.items():
        below = out.get(key)
        if key in FIELD_MAPS and isinstance(value, dict) and isinstance(below, dict):
            fields = dict(below)
            for name, spec in value.items():
                under = fields.get(name)
                if isinstance(under, dict) and isinstance(spec, dict | None):
                    fields[name] = {**under, **(spec or {})}
                else:
                    fields[name] = spec
            out[key] = fields
        elif key in KEYED_MAPS and isinstance(value, dict) and isinstance(below, dict):
            out[key] = {**below, **value}
        else:
            out[key] = value
    return out


def resolve_field_extends(
    views: Mapping[str, dict[str, Any]], files: Mapping[str, str], report: Report
) -> dict[str, dict[str, Any]]:
    """Every view (``name -> resolved YAML``, templates included) with each field's own
    ``extends: [view.field]`` resolved: the field inherits the named fields' parameters
    (earlier entries first), its own overriding them, as Omni's field ``extends`` does
    (reusable labels, formats and colors, often kept in a template view). Its SQL is read
    in its own view, as a field written there. ``files``: each view's file, for reports. A
    dimension extends dimensions and a measure measures; an unknown field or a cycle is
    reported and the field keeps only its own parameters."""
    done: dict[tuple[str, str, str], dict[str, Any]] = {}

    def field(view: str, kind: str, name: str, chain: list[str]) -> dict[str, Any]:
        key = (view, kind, name)
        if key in done:
            return done[key]
        spec = views[view][kind][name]
        own = spec if isinstance(spec, dict) else {}
        parents = own.get("extends")
        here = f"{view}.{name}"
        path = f"{kind}.{name}.extends"
        merged: dict[str, Any] = {}
        if parents is not None:
            if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
                report(files[view], path, "extends must be a list of fields, like [view.field]")
                parents = []
            for i, parent in reversed(list(enumerate(parents))):  # earlier entries win
                found = _parent_field(views, kind, parent)
                if isinstance(found, str):
                    report(files[view], f"{path}[{i}]", found)
                    continue
                if parent in chain or parent == here:
                    cycle = " -> ".join([*chain[chain.index(parent):], here, parent]) \
                        if parent in chain else f"{here} -> {here}"  # fmt: skip
                    report(files[view], f"{path}[{i}]", f"field extends form a cycle: {cycle}")
                    continue
                inherited = field(*found, [*chain, here])
                merged.update({k: v for k, v in inherited.items() if k != "ignore_from_extended"})
        merged.update({k: v for k, v in own.items() if k != "extends"})
        done[key] = merged
        return merged

    out: dict[str, dict[str, Any]] = {}
    for view, data in views.items():
        copy = dict(data)
        for kind in FIELD_MAPS:
            fields = data.get(kind)
            if not isinstance(fields, dict):
                continue
            copy[kind] = {
                name: field(view, kind, name, [])
                if isinstance(spec, dict) and "extends" in spec
                else spec
                for name, spec in fields.items()
            }
        out[view] = copy
    return out


def _parent_field(
    views: Mapping[str, dict[str, Any]], kind: str, ref: str
) -> tuple[str, str, str] | str:
    """Where ``ref`` (``view.field``) is, as (view, kind, name), or why it cannot be
    extended."""
    view, _, name = ref.partition(".")
    if not name:
        return f"{ref!r}: a field is extended as view.field"
    if view not in views:
        return f"no view {view!r} to extend a field of.{did_you_mean(view, views)}"
    fields = views[view].get(kind)
    if isinstance(fields, dict) and name in fields:
        return (view, kind, name)
    other = "measures" if kind == "dimensions" else "dimensions"
    others = views[view].get(other)
    if isinstance(others, dict) and name in others:
        return f"{ref!r} is one of the {other}: {kind} extend {kind} only"
    known = list(fields) if isinstance(fields, dict) else []
    return f"no field {name!r} in view {view!r} to extend.{did_you_mean(name, known)}"
