"""Small pure graph helpers for the coordination detector: dense groups and campaign merging.

Why a module of its own: the detector's judgement (which keys form a campaign) reduces to
two graph questions that are easy to test without a store: "which keys are densely linked
today?" and "which daily groups are the same campaign?". Keeping them pure and tiny lets
the tests pin the exact behaviour (a chain of pairwise links is not a group; a key hanging
on by a single link is dropped).
"""

from __future__ import annotations

from collections.abc import Iterable


def dense_groups(edges: Iterable[tuple[str, str]], min_size: int,
                 min_degree: int = 2) -> list[frozenset[str]]:
    """Connected groups of at least ``min_size`` nodes where every member has ``min_degree`` links.

    Method: repeatedly drop nodes with fewer than ``min_degree`` links (the k-core), then
    take connected components. Why the core and not plain components: a single accidental
    link between two unrelated keys would otherwise chain groups together, and a pair plus
    a straggler is not a campaign. Groups come back sorted by their smallest member so the
    result is deterministic.
    """
    adjacency: dict[str, set[str]] = {}
    for a, b in edges:
        if a == b:
            continue
        adjacency.setdefault(a, set()).add(b)
        adjacency.setdefault(b, set()).add(a)
    queue = [node for node, near in adjacency.items() if len(near) < min_degree]
    while queue:
        node = queue.pop()
        near = adjacency.pop(node, None)
        if near is None:
            continue
        for other in near:
            links = adjacency.get(other)
            if links is not None:
                links.discard(node)
                if len(links) < min_degree:
                    queue.append(other)
    groups: list[frozenset[str]] = []
    unseen = set(adjacency)
    while unseen:
        start = min(unseen)
        component = {start}
        stack = [start]
        while stack:
            for other in adjacency[stack.pop()]:
                if other not in component:
                    component.add(other)
                    stack.append(other)
        unseen -= component
        if len(component) >= min_size:
            groups.append(frozenset(component))
    return sorted(groups, key=min)


def merge_overlapping(groups: Iterable[frozenset[str]]) -> list[list[int]]:
    """Indexes of ``groups`` merged wherever two groups share a member (union-find).

    Why: a campaign that runs for several days forms one group per day; its members
    should get one alert naming every key, not one alert per day. Returns lists of input
    indexes in ascending order, ordered by their first index.
    """
    parent: list[int] = []
    owner: dict[str, int] = {}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for index, group in enumerate(groups):
        parent.append(index)
        for member in sorted(group):
            if member in owner:
                a, b = find(owner[member]), find(index)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[member] = index
    merged: dict[int, list[int]] = {}
    for index in range(len(parent)):
        merged.setdefault(find(index), []).append(index)
    return [merged[root] for root in sorted(merged)]
