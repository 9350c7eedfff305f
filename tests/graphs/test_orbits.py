"""Orbit counts: hand-counted small graphs, and an independent count by graph matching."""

from itertools import combinations

import networkx as nx
import numpy as np
import pytest
from networkx.algorithms.isomorphism import GraphMatcher

from structebm.graphs.orbits import NUM_ORBITS, node_orbit_counts


def profile(rows: dict[int, list[int]], num_nodes: int) -> np.ndarray:
    """Expected counts from ``{orbit: per-node counts}``; orbits not named are 0."""
    expected = np.zeros((num_nodes, NUM_ORBITS), dtype=np.int64)
    for orbit, values in rows.items():
        expected[:, orbit] = values
    return expected


def paw() -> nx.Graph:
    return nx.Graph([(0, 1), (0, 2), (1, 2), (2, 3)])  # triangle 0 1 2, pendant 3 on 2


def diamond() -> nx.Graph:
    return nx.Graph([(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)])  # K4 less the edge 0-3


HAND_COUNTED = {
    "path": (nx.path_graph(4), {0: [1, 2, 2, 1], 1: [1, 1, 1, 1], 2: [0, 1, 1, 0], 4: [1, 0, 0, 1], 5: [0, 1, 1, 0]}),
    "star": (nx.star_graph(3), {0: [3, 1, 1, 1], 1: [0, 2, 2, 2], 2: [3, 0, 0, 0], 6: [0, 1, 1, 1], 7: [1, 0, 0, 0]}),
    "cycle": (nx.cycle_graph(4), {0: [2] * 4, 1: [2] * 4, 2: [1] * 4, 8: [1] * 4}),
    "clique": (nx.complete_graph(4), {0: [3] * 4, 3: [3] * 4, 14: [1] * 4}),
    "paw": (paw(), {0: [2, 2, 3, 1], 1: [1, 1, 0, 2], 2: [0, 0, 2, 0], 3: [1, 1, 1, 0], 9: [0, 0, 0, 1], 10: [1, 1, 0, 0], 11: [0, 0, 1, 0]}),
    "diamond": (diamond(), {0: [2, 3, 3, 2], 1: [2, 0, 0, 2], 2: [0, 1, 1, 0], 3: [1, 2, 2, 1], 12: [1, 0, 0, 1], 13: [0, 1, 1, 0]}),
    "triangle": (nx.complete_graph(3), {0: [2] * 3, 3: [1] * 3}),
}


@pytest.mark.parametrize("name", sorted(HAND_COUNTED))
def test_hand_counted_graphs(name):
    graph, rows = HAND_COUNTED[name]
    np.testing.assert_array_equal(node_orbit_counts(graph), profile(rows, graph.number_of_nodes()))


def test_isolated_nodes_and_labels_in_node_order():
    graph = nx.Graph()
    graph.add_nodes_from(["z", "a", "m"])
    graph.add_edge("a", "m")
    counts = node_orbit_counts(graph)
    np.testing.assert_array_equal(counts[:, 0], [0, 1, 1])
    assert counts[:, 1:].sum() == 0


# Graphlet templates with the orbit of each template node (ORCA numbering).
TEMPLATES = [
    (nx.path_graph(2), [0, 0]),
    (nx.path_graph(3), [1, 2, 1]),
    (nx.complete_graph(3), [3, 3, 3]),
    (nx.path_graph(4), [4, 5, 5, 4]),
    (nx.star_graph(3), [7, 6, 6, 6]),
    (nx.cycle_graph(4), [8, 8, 8, 8]),
    (paw(), [10, 10, 11, 9]),
    (diamond(), [12, 13, 13, 12]),
    (nx.complete_graph(4), [14, 14, 14, 14]),
]


def matched_orbit_counts(graph: nx.Graph) -> np.ndarray:
    """Brute force: every node subset of size 2-4, matched to its template by isomorphism."""
    nodes = list(graph.nodes())
    counts = np.zeros((len(nodes), NUM_ORBITS), dtype=np.int64)
    for size in (2, 3, 4):
        for subset in combinations(range(len(nodes)), size):
            sub = graph.subgraph([nodes[i] for i in subset])
            if not nx.is_connected(sub):
                continue
            for template, orbits in TEMPLATES:
                if template.number_of_nodes() != size:
                    continue
                matcher = GraphMatcher(sub, template)
                if matcher.is_isomorphic():
                    for node, image in matcher.mapping.items():
                        counts[nodes.index(node), orbits[image]] += 1
                    break
    return counts


@pytest.mark.parametrize("seed", range(6))
def test_random_graphs_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    graph = nx.gnp_random_graph(int(rng.integers(5, 10)), float(rng.uniform(0.2, 0.8)), seed=seed)
    np.testing.assert_array_equal(node_orbit_counts(graph), matched_orbit_counts(graph))


def test_rejects_self_loops_and_directed_graphs():
    looped = nx.path_graph(3)
    looped.add_edge(1, 1)
    with pytest.raises(ValueError, match="self-loop at node 1"):
        node_orbit_counts(looped)
    with pytest.raises(ValueError, match="undirected"):
        node_orbit_counts(nx.DiGraph([(0, 1)]))
