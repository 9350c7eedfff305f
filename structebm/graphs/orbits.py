"""Node orbit counts of the graphlets on 2, 3 and 4 nodes (the 15 orbits that ORCA counts).

A *graphlet* is a connected induced subgraph; an *orbit* is a class of its nodes under its
automorphisms. For a node :math:`v`, :math:`o_k(v)` counts the induced subgraphs on 2-4 nodes
in which :math:`v` sits in orbit :math:`k` (Pržulj 2007; Hočevar & Demšar 2014, numbering
of ORCA):

====== ===================== ==================================================
graphlet  (nodes, edges)     orbits
====== ===================== ==================================================
G0     edge (2, 1)           0: either end (so :math:`o_0` is the degree)
G1     path (3, 2)           1: an end, 2: the middle
G2     triangle (3, 3)       3
G3     path (4, 3)           4: an end, 5: an inner node
G4     star (4, 3)           6: a leaf, 7: the centre
G5     4-cycle (4, 4)        8
G6     paw (4, 4)            9: the pendant node, 10: a triangle node of degree 2,
                             11: the node of degree 3
G7     diamond (4, 5)        12: a node of degree 2, 13: a node of degree 3
G8     4-clique (4, 6)       14
====== ===================== ==================================================

Within one graphlet the orbit of a node is fixed by the graphlet's edge count and the
node's degree inside it, which is how :func:`node_orbit_counts` classifies.

The connected 4-node sets are enumerated by extending every connected 3-node set with one
neighbour (each connected 4-set contains a connected 3-set: drop a leaf of a spanning tree),
so the cost grows with the number of connected sets, not with :math:`\\binom{n}{4}`.
"""

from __future__ import annotations

from itertools import combinations

import networkx as nx
import numpy as np

__all__ = ["NUM_ORBITS", "node_orbit_counts"]

NUM_ORBITS = 15
"""Orbits of the graphlets on 2 to 4 nodes."""

_PAW_ORBIT = {1: 9, 2: 10, 3: 11}


def _four_node_orbits(degrees: list[int], num_edges: int) -> list[int]:
    """Orbit of each node of one connected induced 4-node subgraph, from its inner degrees."""
    top = max(degrees)
    if num_edges == 3:  # star (a node of degree 3) or path
        return [(7 if d == 3 else 6) if top == 3 else (5 if d == 2 else 4) for d in degrees]
    if num_edges == 4:  # cycle (all degrees 2) or paw (degrees 1, 2, 2, 3)
        return [8 if top == 2 else _PAW_ORBIT[d] for d in degrees]
    if num_edges == 5:  # diamond
        return [13 if d == 3 else 12 for d in degrees]
    return [14] * 4


def node_orbit_counts(graph: nx.Graph) -> np.ndarray:
    """Per-node counts of the 15 orbits of graphlets on 2 to 4 nodes.

    Args:
        graph: an undirected simple graph (self-loops are an error); nodes in ``graph.nodes()``
            order give the rows.

    Returns:
        ``int64`` array; row ``i`` is the orbit profile of the ``i``-th node.

    Shapes:
        - returns ``[num_nodes, 15]``
    """
    if graph.is_directed() or graph.is_multigraph():
        raise ValueError("node_orbit_counts needs an undirected simple graph (networkx.Graph)")
    loops = list(nx.selfloop_edges(graph))
    if loops:
        raise ValueError(f"node_orbit_counts: the graph has a self-loop at node {loops[0][0]!r}")
    index = {node: i for i, node in enumerate(graph.nodes())}
    neighbours = [set() for _ in index]
    for u, v in graph.edges():
        neighbours[index[u]].add(index[v])
        neighbours[index[v]].add(index[u])
    counts = np.zeros((len(index), NUM_ORBITS), dtype=np.int64)
    counts[:, 0] = [len(adjacent) for adjacent in neighbours]

    triples: list[tuple[int, int, int]] = []
    for centre, adjacent in enumerate(neighbours):
        for a, b in combinations(sorted(adjacent), 2):
            if b in neighbours[a]:
                if centre < a:  # a triangle is met from each corner; keep it once
                    counts[[centre, a, b], 3] += 1
                    triples.append((centre, a, b))
            else:
                counts[[a, b], 1] += 1
                counts[centre, 2] += 1
                triples.append((a, centre, b))

    quadruples: set[frozenset[int]] = set()
    for triple in triples:
        for node in triple:
            for extra in neighbours[node]:
                if extra not in triple:
                    quadruples.add(frozenset((*triple, extra)))
    for quadruple in quadruples:
        nodes = list(quadruple)
        degrees = [len(neighbours[node] & quadruple) for node in nodes]
        for node, orbit in zip(nodes, _four_node_orbits(degrees, sum(degrees) // 2)):
            counts[node, orbit] += 1
    return counts
