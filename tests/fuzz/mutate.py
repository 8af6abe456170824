"""Structure-aware mutation of JSON/YAML values, for libFuzzer's custom mutator hooks.

Byte-level mutation of a JSON filter mostly yields invalid JSON, which the parsers never see;
mutating the decoded tree (swap a value for a grammar word, graft a subtree from another seed,
drop or add a key) keeps most inputs well-formed so the fuzzer spends its time inside Assay.
Strings inside the tree are still mutated byte-wise, through ``mutate_bytes`` (atheris's own
libFuzzer mutator, dictionary included), so no coverage is given up. Imports no atheris: the
harness passes its mutator in.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

MutateBytes = Callable[[bytes, int], bytes]
Path = tuple[Any, ...]

# Numbers that tend to break arithmetic: bounds, overflow, digit-count and float edges.
INTERESTING_NUMBERS: tuple[Any, ...] = (
    0, 1, -1, 2, 7, 12, 13, 24, 31, 32, 53, 60, 366, 9999, 10000, -10000, 2**31, 2**63,
    10**30, -(10**30), 0.5, -0.0, 1e308, float("inf"), float("nan"),
)  # fmt: skip
MAX_DEPTH = 512  # nodes deeper than this are not picked (the parsers' recursion is the target)


@dataclass
class TreeMutator:
    """Mutates one decoded value; ``pool`` holds subtrees harvested from the seeds."""

    tokens: Sequence[str]
    pool: list[Any] = field(default_factory=list)

    def harvest(self, value: Any) -> None:
        """Remember every subtree of ``value`` as graft material."""
        for _, node in walk(value):
            if len(self.pool) < 5000:
                self.pool.append(copy.deepcopy(node))

    def mutate(self, value: Any, rng: random.Random, mutate_bytes: MutateBytes) -> Any:
        nodes = list(walk(value))
        path, node = rng.choice(nodes)
        if path and rng.random() < 0.05:
            # Recursive growth: a node becomes a copy of an ancestor of its own kind (a filter
            # object of the composite around it), so nesting deepens fast and stays valid.
            by_path = dict(nodes)
            ancestors = [by_path[path[:i]] for i in range(len(path))]
            alike = [a for a in ancestors if type(a) is type(node)] or ancestors
            return replace_at(value, path, copy.deepcopy(rng.choice(alike)))
        new = self._mutate_node(node, rng, mutate_bytes)
        return replace_at(value, path, new)

    def fresh(self, rng: random.Random) -> Any:
        """A new leaf or a grafted subtree."""
        roll = rng.random()
        if self.pool and roll < 0.35:
            return copy.deepcopy(rng.choice(self.pool))
        if roll < 0.7 and self.tokens:
            return rng.choice(self.tokens)
        if roll < 0.85:
            return rng.choice(INTERESTING_NUMBERS)
        return rng.choice([None, True, False, "", [], {}])

    def _mutate_node(self, node: Any, rng: random.Random, mutate_bytes: MutateBytes) -> Any:
        roll = rng.random()
        if roll < 0.15:
            return self.fresh(rng)
        if roll < 0.2:
            return [node] if rng.random() < 0.5 else {self._token(rng): node}
        if isinstance(node, dict):
            return self._mutate_dict(dict(node), rng)
        if isinstance(node, list):
            return self._mutate_list(list(node), rng)
        if isinstance(node, str):
            return self._mutate_str(node, rng, mutate_bytes)
        if isinstance(node, bool) or node is None:
            return rng.choice([True, False, None, "true", "false", 0, 1])
        if isinstance(node, int | float):
            return self._mutate_number(node, rng)
        return self.fresh(rng)  # dates and other YAML scalars

    def _token(self, rng: random.Random) -> str:
        return rng.choice(self.tokens) if self.tokens else "x"

    def _mutate_dict(self, node: dict[Any, Any], rng: random.Random) -> Any:
        keys = list(node)
        op = rng.randrange(5)
        if op == 0 or not keys:
            node[self._token(rng)] = self.fresh(rng)
        elif op == 1:
            del node[rng.choice(keys)]
        elif op == 2:
            key = rng.choice(keys)
            node[self._token(rng)] = node.pop(key)
        elif op == 3:
            node[rng.choice(keys)] = self.fresh(rng)
        else:
            node[self._token(rng)] = copy.deepcopy(node[rng.choice(keys)])
        return node

    def _mutate_list(self, node: list[Any], rng: random.Random) -> Any:
        op = rng.randrange(5)
        if op == 0 or not node:
            node.insert(rng.randint(0, len(node)), self.fresh(rng))
        elif op == 1:
            del node[rng.randrange(len(node))]
        elif op == 2:
            node.append(copy.deepcopy(rng.choice(node)))
        elif op == 3:
            rng.shuffle(node)
        else:
            return [] if rng.random() < 0.5 else node[0]
        return node

    def _mutate_str(self, node: str, rng: random.Random, mutate_bytes: MutateBytes) -> Any:
        op = rng.randrange(6)
        if op == 0:
            raw = node.encode("utf-8", "surrogatepass")
            return mutate_bytes(raw, len(raw) + 16).decode("utf-8", "replace")
        if op == 1:
            return self._token(rng)
        if op == 2:
            at = rng.randint(0, len(node))
            return node[:at] + self._token(rng) + node[at:]
        if op == 3:
            return (
                f"{node} {self._token(rng)}" if rng.random() < 0.5 else f"{self._token(rng)} {node}"
            )
        if op == 4:
            return node.upper() if rng.random() < 0.5 else node.lower()
        return str(rng.choice(INTERESTING_NUMBERS))

    def _mutate_number(self, node: float, rng: random.Random) -> Any:
        op = rng.randrange(4)
        if op == 0:
            return rng.choice(INTERESTING_NUMBERS)
        if op == 1:
            return node + rng.choice((-1, 1))
        if op == 2:
            return str(node)
        return -node


def walk(value: Any) -> Iterator[tuple[Path, Any]]:
    """Every ``(path, node)`` of a JSON-like tree down to ``MAX_DEPTH``, the root first
    (iterative: the trees are meant to get deep)."""
    stack: list[tuple[Path, Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        yield path, node
        if len(path) >= MAX_DEPTH:
            continue
        if isinstance(node, dict):
            stack.extend(((*path, key), sub) for key, sub in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend(((*path, i), sub) for i, sub in reversed(list(enumerate(node))))


def replace_at(root: Any, path: Path, new: Any) -> Any:
    """``root`` with the node at ``path`` replaced (mutates ``root`` in place below the top)."""
    if not path:
        return new
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = new
    return root


def graft(into: Any, donor: Any, rng: random.Random) -> Any:
    """Crossover: a random subtree of ``donor`` put at a random place in ``into``."""
    _, piece = rng.choice(list(walk(donor)))
    path, _ = rng.choice(list(walk(into)))
    return replace_at(into, path, copy.deepcopy(piece))
