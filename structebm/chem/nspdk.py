"""Neighbourhood Subgraph Pairwise Distance Kernel (Costa & De Grave, 2010) and its MMD.

GDSS (Jo et al., 2022) scores generated molecules by the MMD between NSPDK feature vectors of
generated and test graphs, using EDeN's ``vectorize(graphs, complexity=4, discrete=True)``
on networkx graphs whose nodes carry the atom symbol and edges the integer bond order as
``label``. This module computes the same features without hashing them into a bounded space:

1. *Edge expansion*: every edge becomes a node carrying the edge label, joined to both ends.
2. *Rooted neighbourhoods*: for an atom ``v`` and radius ``r``, the neighbourhood signature is
   the sequence over expanded distances ``t = 0..2r`` of the sorted multiset of
   ``(label, degree)`` of the nodes at distance ``t`` from ``v``; it exists only if some node
   lies at distance ``2r``.
3. *Features*: for every ordered pair of atoms ``(v, u)`` at distance ``d`` and every radius
   ``r`` (``0 <= r, d <= complexity``), one count for the unordered pair of signatures
   ``{N_r(v), N_r(u)}`` and one for the context feature ``N_r(u)`` alone, both keyed by ``(r, d)``.
4. *Normalization*: each ``(r, d)`` block is scaled to unit norm, then the whole vector.

The kernel is the dot product :math:`k(G, H) = \\langle \\phi(G), \\phi(H) \\rangle` and

.. math::
    \\mathrm{MMD}^2 = \\overline{k(X, X)} + \\overline{k(Y, Y)} - 2\\,\\overline{k(X, Y)}

with means over all pairs, diagonals included (the GDSS estimator). EDeN hashes features
into ``2^16`` buckets and Python string hashes are salted per process, so EDeN's numbers move
slightly between runs; this exact version has no collisions.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Dict, Hashable, List, Sequence, Tuple

import networkx as nx
import numpy as np
from scipy import sparse

__all__ = ["NSPDKReference", "nspdk_features", "nspdk_kernel", "nspdk_mmd"]


class _Interner:
    """Maps hashable keys to consecutive integers, shared by all graphs of one computation."""

    def __init__(self) -> None:
        self.ids: Dict[Hashable, int] = {}

    def __call__(self, key: Hashable) -> int:
        return self.ids.setdefault(key, len(self.ids))


def _expanded_adjacency(graph: nx.Graph, node_key: str, edge_key: str) -> Tuple[List[Hashable], List[List[int]], int]:
    """Labels and adjacency of the edge-expanded graph; atoms come first."""
    nodes = list(graph.nodes())
    position = {node: i for i, node in enumerate(nodes)}
    labels: List[Hashable] = []
    for node in nodes:
        data = graph.nodes[node]
        if node_key not in data:
            raise ValueError(f"nspdk: node {node!r} has no {node_key!r} attribute")
        labels.append(("node", data[node_key]))
    adjacency: List[List[int]] = [[] for _ in nodes]
    for u, v, data in graph.edges(data=True):
        if u == v:
            continue
        if edge_key not in data:
            raise ValueError(f"nspdk: edge {(u, v)!r} has no {edge_key!r} attribute")
        edge_node = len(labels)
        labels.append(("edge", data[edge_key]))
        adjacency.append([position[u], position[v]])
        adjacency[position[u]].append(edge_node)
        adjacency[position[v]].append(edge_node)
    return labels, adjacency, len(nodes)


def _bfs_levels(adjacency: List[List[int]], root: int, max_depth: int) -> List[List[int]]:
    levels = [[root]]
    seen = {root}
    while len(levels) <= max_depth:
        frontier = [w for u in levels[-1] for w in adjacency[u] if w not in seen]
        frontier = list(dict.fromkeys(frontier))
        if not frontier:
            break
        seen.update(frontier)
        levels.append(frontier)
    return levels


def _graph_features(
    graph: nx.Graph, complexity: int, intern: _Interner, node_key: str, edge_key: str
) -> Dict[Tuple[int, int, int], float]:
    labels, adjacency, num_atoms = _expanded_adjacency(graph, node_key, edge_key)
    max_depth = 2 * complexity
    levels_of = [_bfs_levels(adjacency, v, max_depth) for v in range(num_atoms)]
    signatures: List[List[int]] = []
    for levels in levels_of:
        prefix: Tuple = ()
        ids = []
        for level in levels:
            prefix = prefix + (tuple(sorted((labels[w], len(adjacency[w])) for w in level)),)
            ids.append(intern(prefix))
        signatures.append(ids)
    blocks: Dict[Tuple[int, int], Dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for v, levels in enumerate(levels_of):
        for distance in range(complexity + 1):
            if 2 * distance >= len(levels):
                break
            for u in levels[2 * distance]:
                for radius in range(complexity + 1):
                    t = 2 * radius
                    if t >= len(signatures[v]) or t >= len(signatures[u]):
                        continue
                    first, second = sorted((signatures[v][t], signatures[u][t]))
                    block = blocks[(radius, distance)]
                    block[intern(("pair", radius, distance, first, second))] += 1.0
                    block[intern(("context", radius, distance, signatures[u][t]))] += 1.0
    features: Dict[int, float] = {}
    for block in blocks.values():
        norm = np.sqrt(sum(c * c for c in block.values()))
        for key, count in block.items():
            features[key] = count / norm
    total = np.sqrt(sum(c * c for c in features.values()))
    return {key: value / total for key, value in features.items()} if total > 0 else features


def nspdk_features(
    graphs: Sequence[nx.Graph], complexity: int = 4, node_key: str = "label", edge_key: str = "label"
) -> sparse.csr_matrix:
    """Unit-norm NSPDK feature vectors of ``graphs`` as a sparse ``[len(graphs), F]`` matrix.

    All graphs of one call share the feature index, so compare sets by passing them together
    (as :func:`nspdk_kernel` does).
    """
    return _feature_matrix(graphs, complexity, _Interner(), node_key, edge_key, "nspdk_features")


def _feature_matrix(
    graphs: Sequence[nx.Graph], complexity: int, intern: _Interner, node_key: str, edge_key: str, caller: str
) -> sparse.csr_matrix:
    """Feature rows of ``graphs`` indexed by ``intern`` (which grows with every new feature)."""
    if complexity < 0:
        raise ValueError(f"{caller}: complexity must be >= 0, got {complexity}")
    rows, cols, values = [], [], []
    for row, graph in enumerate(graphs):
        if graph.number_of_nodes() == 0:
            raise ValueError(f"{caller}: graph {row} is empty")
        for key, value in _graph_features(graph, complexity, intern, node_key, edge_key).items():
            rows.append(row)
            cols.append(key)
            values.append(value)
    return sparse.csr_matrix((values, (rows, cols)), shape=(len(graphs), max(len(intern.ids), 1)))


def _mean_row(features: sparse.csr_matrix) -> np.ndarray:
    return np.asarray(features.mean(axis=0)).ravel()


def nspdk_kernel(graphs_x: Sequence[nx.Graph], graphs_y: Sequence[nx.Graph], complexity: int = 4) -> np.ndarray:
    """``[len(graphs_x), len(graphs_y)]`` matrix of NSPDK kernel values (each in [0, 1])."""
    features = nspdk_features(list(graphs_x) + list(graphs_y), complexity)
    x, y = features[: len(graphs_x)], features[len(graphs_x) :]
    return np.asarray((x @ y.T).todense())


def nspdk_mmd(graphs_x: Sequence[nx.Graph], graphs_y: Sequence[nx.Graph], complexity: int = 4) -> float:
    """Squared MMD between two sets of labelled graphs under the NSPDK kernel (0 for equal sets)."""
    if len(graphs_x) == 0 or len(graphs_y) == 0:
        raise ValueError(f"nspdk_mmd: both sets must be non-empty, got {len(graphs_x)} and {len(graphs_y)}")
    return NSPDKReference(graphs_y, complexity).mmd(graphs_x)


class NSPDKReference:
    """A reference set (e.g. the test molecules) for the NSPDK MMD² of many other sets against it.

    The reference's mean feature vector :math:`\\bar\\phi_Y` is computed once; :meth:`mmd` then
    featurises only the other set, with the same feature index, and returns
    :math:`\\bar\\phi_X \\cdot \\bar\\phi_X + \\bar\\phi_Y \\cdot \\bar\\phi_Y - 2\\,\\bar\\phi_X \\cdot \\bar\\phi_Y`,
    which is :func:`nspdk_mmd` ``(graphs, reference)`` up to rounding.
    """

    def __init__(self, graphs: Sequence[nx.Graph], complexity: int = 4) -> None:
        if len(graphs) == 0:
            raise ValueError("NSPDKReference: the reference set is empty")
        self.complexity = complexity
        self._intern = _Interner()
        self._mean = _mean_row(_feature_matrix(graphs, complexity, self._intern, "label", "label", "NSPDKReference"))
        self._mean_square = float(self._mean @ self._mean)

    def mmd(self, graphs: Sequence[nx.Graph]) -> float:
        """Squared NSPDK MMD between ``graphs`` and the reference set."""
        if len(graphs) == 0:
            raise ValueError("NSPDKReference.mmd: the set to compare is empty")
        mean_x = _mean_row(_feature_matrix(graphs, self.complexity, self._intern, "label", "label", "NSPDKReference.mmd"))
        shared = mean_x[: self._mean.size] @ self._mean[: mean_x.size]
        return float(mean_x @ mean_x + self._mean_square - 2.0 * shared)
