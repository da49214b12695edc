"""The segment reference graph: where a rule references segments, and whether that makes a cycle.

Edges are ``name -> referenced_name`` for the current version of every segment (the
``segment_references`` table). Writing segment S with references R makes a cycle exactly
when S can be reached from some r in R, S itself included.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping

from segmentd.engine.rules import Group, ListReference, Rule, SegmentReference


def reference_paths(rule: Rule, path: str) -> Iterator[tuple[str, str]]:
    """Yield ``(field path, referenced name)`` for every segment reference of ``rule``.

    The field path is the one errors name, e.g. ``segment.rule.any.rules[1].segment.name``.
    """
    if isinstance(rule, SegmentReference):
        yield f"{path}.segment.name", rule.name
    elif isinstance(rule, Group):
        for index, child in enumerate(rule.rules):
            yield from reference_paths(child, f"{path}.{rule.kind}.rules[{index}]")


def list_reference_paths(rule: Rule, path: str) -> Iterator[tuple[str, str]]:
    """Yield ``(field path, list name)`` for every ``in_list`` of ``rule``.

    The field path is the one errors name, e.g. ``segment.rule.all.rules[0].in_list.name``.
    """
    if isinstance(rule, ListReference):
        yield f"{path}.in_list.name", rule.name
    elif isinstance(rule, Group):
        for index, child in enumerate(rule.rules):
            yield from list_reference_paths(child, f"{path}.{rule.kind}.rules[{index}]")


def edges_by_name(edges: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """Group ``(name, referenced_name)`` pairs by name."""
    graph: dict[str, set[str]] = {}
    for name, referenced in edges:
        graph.setdefault(name, set()).add(referenced)
    return graph


def find_cycle(name: str, referenced: str, graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """Return the cycle ``[name, referenced, ..., name]`` a new edge would make, or None.

    ``graph`` holds the current edges; ``name``'s own are never followed (the walk stops on
    reaching ``name``), which is right since the write replaces them.
    """
    parents: dict[str, str | None] = {referenced: None}
    queue = deque([referenced])
    while queue:
        current = queue.popleft()
        if current == name:
            return [name, *_path_to(current, parents)]
        for following in graph.get(current, ()):
            if following not in parents:
                parents[following] = current
                queue.append(following)
    return None


def _path_to(node: str, parents: Mapping[str, str | None]) -> list[str]:
    path: list[str] = []
    current: str | None = node
    while current is not None:
        path.append(current)
        current = parents[current]
    return path[::-1]
