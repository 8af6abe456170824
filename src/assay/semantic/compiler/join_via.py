"""``join_via_map``: the path a query joins a view by, chosen by the caller.

``{"part": ["partsupp"]}`` joins ``part`` through ``partsupp`` (base -> partsupp -> part);
``[]`` joins it straight to the base view. A topic's join tree has one path to each view, so
through a topic the map may only repeat that path (anything else would be a join the topic's
modeler did not offer). Without a topic, the model's relationships are followed: every step
of the path must be a relationship, and the views the path passes through are re-parented in
the query's join tree (views joined below them follow). A path that cannot be joined is
refused by name, never replaced by the default one.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from assay.errors import InvalidQuery, UnknownTopic, did_you_mean
from assay.semantic.access import Visibility
from assay.semantic.compiler.resolve import Scope
from assay.semantic.model import JoinStep, Relationship, SemanticModel

Path = tuple[tuple[str, tuple[str, ...]], ...]


def reroute(model: SemanticModel, scope: Scope, via: Path, vis: Visibility | None = None) -> Scope:
    """``scope`` with its join tree following ``via`` (``query.join_via_map``)."""
    if not via:
        return scope
    seen = [v for v in scope.views if vis is None or vis.view(model.views[v])]
    parents: dict[str, JoinStep] = {}
    for view, path in via:
        for name in (view, *path):
            _check_known(model, scope, name, seen, vis)
        chain = [scope.base_view, *path, view]
        if view == scope.base_view:
            if path:
                raise InvalidQuery(
                    f"query.join_via_map[{view!r}]: {view!r} is the base view; it is not "
                    "joined through anything"
                )
            continue
        if len(set(chain)) < len(chain):
            raise InvalidQuery(
                f"query.join_via_map[{view!r}]: the path {' -> '.join(chain)} passes a view twice"
            )
        if scope.topic is not None:
            _check_topic_path(scope, view, list(path))
            continue
        for left, right in pairwise(chain):
            step = JoinStep(left, right, _relationship(model, left, right, view))
            earlier = parents.get(right)
            if earlier is not None and earlier.parent != left:
                raise InvalidQuery(
                    f"query.join_via_map: {right!r} is joined from {earlier.parent!r} by one "
                    f"path and from {left!r} by another; give each view one path"
                )
            parents[right] = step
    if not parents:
        return scope
    joins = {**scope.joins, **parents}
    return Scope(scope.base_view, _tree_order(scope.base_view, joins), scope.topic)


def _check_known(
    model: SemanticModel, scope: Scope, name: str, seen: list[str], vis: Visibility | None
) -> None:
    view = model.views.get(name)
    if view is None or (vis is not None and not vis.view(view)):
        raise UnknownTopic(f"query.join_via_map: no view {name!r}." + did_you_mean(name, seen))
    if name not in scope.views:
        where = f"topic {scope.topic.name!r}" if scope.topic else f"view {scope.base_view!r}"
        raise InvalidQuery(
            f"query.join_via_map: view {name!r} is not joined from {where}."
            + did_you_mean(name, seen)
        )


def _check_topic_path(scope: Scope, view: str, path: list[str]) -> None:
    """A topic joins each view by one path: the map must name that one."""
    own = [step.view for step in scope.path_to(view)][:-1]
    if own != path:
        assert scope.topic is not None
        route = " -> ".join([scope.base_view, *own, view])
        asked = " -> ".join([scope.base_view, *path, view])
        raise InvalidQuery(
            f"query.join_via_map[{view!r}]: topic {scope.topic.name!r} joins {view!r} only as "
            f"{route}, not {asked}; send {own!r} or remove it"
        )


def _relationship(model: SemanticModel, left: str, right: str, view: str) -> Relationship:
    """The model's relationship from ``left`` to ``right``, oriented that way (the first one
    declared, as the default join tree takes)."""
    for rel in model.relationships:
        for oriented in (rel, rel.reversed()):
            if oriented.left == left and oriented.right == right:
                return oriented
    raise InvalidQuery(
        f"query.join_via_map[{view!r}]: the model has no relationship between {left!r} and "
        f"{right!r}, so {view!r} cannot be joined that way"
    )


def _tree_order(base: str, joins: dict[str, JoinStep]) -> dict[str, JoinStep]:
    """The steps with every parent before its children (what building the FROM expects)."""
    children: dict[str, list[str]] = {}
    for view, step in joins.items():
        children.setdefault(step.parent, []).append(view)
    out: dict[str, JoinStep] = {}
    todo: Sequence[str] = [base]
    while todo:
        nxt: list[str] = []
        for parent in todo:
            for view in children.get(parent, []):
                out[view] = joins[view]
                nxt.append(view)
        todo = nxt
    return out
