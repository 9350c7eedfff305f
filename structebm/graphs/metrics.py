"""Graph-set MMDs of the generic graph-generation benchmarks: degree, clustering, orbit, spectral.

Each graph :math:`G` is mapped to a descriptor :math:`\\phi(G)`, and two sets of graphs
:math:`X = (x_i)_{i=1}^m`, :math:`Y = (y_j)_{j=1}^n` are compared by the squared maximum mean
discrepancy in the (biased, V-statistic) form of the GraphRNN / GDSS evaluation:

.. math::
    \\mathrm{MMD}^2(X, Y) = \\frac{1}{m^2} \\sum_{i, i'} k(x_i, x_{i'})
        + \\frac{1}{n^2} \\sum_{j, j'} k(y_j, y_{j'}) - \\frac{2}{mn} \\sum_{i, j} k(x_i, y_j).

It is 0 for identical sets and positive otherwise (for a characteristic kernel).

Descriptors and kernels (the settings of GDSS, Jo et al. 2022, ``load_eval_settings``):

============ =================================================== ===================== ========
metric       descriptor :math:`\\phi(G)`                          kernel                 σ
============ =================================================== ===================== ========
degree       histogram of node degrees 0, 1, ..., normalised      Gaussian EMD, unit     1
             to a pmf                                             ground distance per
                                                                  degree
clustering   histogram of the local clustering coefficients,      Gaussian EMD, ground   0.1
             100 bins on [0, 1], normalised to a pmf              distance 1/100 per bin
orbit        mean per-node count of the 15 orbits of graphlets    Gaussian on the
             on 2-4 nodes (:mod:`structebm.graphs.orbits`)        Euclidean distance     30
spectral     histogram of the normalised-Laplacian eigenvalues,   Gaussian EMD, unit     1
             200 bins on [-1e-5, 2], normalised to a pmf          ground distance per
                                                                  bin
============ =================================================== ===================== ========

with the Gaussian EMD kernel :math:`k(p, q) = \\exp(-W_1(p, q)^2 / (2\\sigma^2))`. On a line
with bins at unit spacing, the earth mover's distance between two pmfs is the :math:`L_1`
distance of their cumulative sums, :math:`W_1(p, q) = \\sum_b |P_b - Q_b|` (shorter histograms
are padded with zeros), so no transport solver is needed. The Gaussian kernel is
:math:`k(a, b) = \\exp(-\\lVert a - b \\rVert^2 / (2\\sigma^2))`.

As in the GDSS evaluation, empty graphs (no node) of the second set are left out; an empty
graph in the reference set is an error.
"""

from __future__ import annotations

from typing import Callable, Sequence

import networkx as nx
import numpy as np

from structebm.graphs.orbits import node_orbit_counts

__all__ = [
    "GRAPH_MMD_KEYS",
    "degree_histogram",
    "clustering_histogram",
    "orbit_profile",
    "spectral_histogram",
    "gaussian_emd_gram",
    "gaussian_gram",
    "mmd_from_gram",
    "degree_mmd",
    "clustering_mmd",
    "orbit_mmd",
    "spectral_mmd",
    "graph_mmds",
]

GRAPH_MMD_KEYS = ("degree", "clustering", "orbit", "spectral")
"""Metrics computed by :func:`graph_mmds`."""

CLUSTERING_BINS = 100
SPECTRAL_BINS = 200


def degree_histogram(graph: nx.Graph) -> np.ndarray:
    """Number of nodes of degree 0, 1, ..., max degree.

    Shapes:
        - returns ``[max_degree + 1]``
    """
    return np.asarray(nx.degree_histogram(graph), dtype=np.float64)


def clustering_histogram(graph: nx.Graph, bins: int = CLUSTERING_BINS) -> np.ndarray:
    """Histogram of the nodes' local clustering coefficients, ``bins`` equal bins on [0, 1].

    Shapes:
        - returns ``[bins]``
    """
    coefficients = list(nx.clustering(graph).values())
    return np.histogram(coefficients, bins=bins, range=(0.0, 1.0))[0].astype(np.float64)


def orbit_profile(graph: nx.Graph) -> np.ndarray:
    """Orbit counts summed over the nodes and divided by the number of nodes.

    Shapes:
        - returns ``[15]``
    """
    return node_orbit_counts(graph).sum(axis=0) / graph.number_of_nodes()


def spectral_histogram(graph: nx.Graph, bins: int = SPECTRAL_BINS) -> np.ndarray:
    """Histogram of the eigenvalues of :math:`I - D^{-1/2} A D^{-1/2}` (0 rows for isolated
    nodes, as networkx builds it), ``bins`` equal bins on [-1e-5, 2].

    Shapes:
        - returns ``[bins]``
    """
    laplacian = nx.normalized_laplacian_matrix(graph, nodelist=list(graph.nodes())).toarray()
    eigenvalues = np.linalg.eigvalsh(laplacian)
    return np.histogram(eigenvalues, bins=bins, range=(-1e-5, 2.0))[0].astype(np.float64)


def _stack_pmfs(histograms: Sequence[np.ndarray], length: int) -> np.ndarray:
    rows = np.zeros((len(histograms), length))
    for i, histogram in enumerate(histograms):
        total = histogram.sum()
        if total <= 0:
            raise ValueError(f"histogram {i} is empty: no graph node to describe")
        rows[i, : len(histogram)] = histogram / total
    return rows


def gaussian_emd_gram(
    first: Sequence[np.ndarray], second: Sequence[np.ndarray], sigma: float, bin_width: float = 1.0
) -> np.ndarray:
    """Gram matrix :math:`\\exp(-W_1(p_i, q_j)^2 / (2\\sigma^2))` of two lists of histograms.

    Each histogram is normalised to a pmf and zero-padded to the longest one; bins are
    ``bin_width`` apart.

    Shapes:
        - first: ``m`` arrays, second: ``n`` arrays (any lengths); returns ``[m, n]``
    """
    length = max(len(h) for h in (*first, *second))
    p = np.cumsum(_stack_pmfs(first, length), axis=1)
    q = np.cumsum(_stack_pmfs(second, length), axis=1)
    distance = np.abs(p[:, None, :] - q[None, :, :]).sum(axis=2) * bin_width
    return np.exp(-(distance**2) / (2 * sigma**2))


def gaussian_gram(first: np.ndarray, second: np.ndarray, sigma: float) -> np.ndarray:
    """Gram matrix :math:`\\exp(-\\lVert a_i - b_j \\rVert^2 / (2\\sigma^2))`.

    Shapes:
        - first: ``[m, d]``, second: ``[n, d]``; returns ``[m, n]``
    """
    squared = ((first[:, None, :] - second[None, :, :]) ** 2).sum(axis=2)
    return np.exp(-squared / (2 * sigma**2))


def mmd_from_gram(gram: Callable[[Sequence, Sequence], np.ndarray], first: Sequence, second: Sequence) -> float:
    """Biased squared MMD of two descriptor lists under the Gram function ``gram``."""
    if len(first) == 0 or len(second) == 0:
        raise ValueError(f"MMD needs two non-empty sets, got {len(first)} and {len(second)} descriptors")
    return float(gram(first, first).mean() + gram(second, second).mean() - 2 * gram(first, second).mean())


def _descriptors(graphs: Sequence[nx.Graph], describe: Callable[[nx.Graph], np.ndarray], which: str) -> list[np.ndarray]:
    out = []
    for i, graph in enumerate(graphs):
        if graph.number_of_nodes() == 0:
            if which == "reference":
                raise ValueError(f"reference graph {i} has no node")
            continue
        out.append(describe(graph))
    return out


def _set_mmd(reference, generated, describe, gram) -> float:
    return mmd_from_gram(
        gram, _descriptors(reference, describe, "reference"), _descriptors(generated, describe, "generated")
    )


def degree_mmd(reference: Sequence[nx.Graph], generated: Sequence[nx.Graph]) -> float:
    """Degree MMD (Gaussian EMD, σ = 1)."""
    return _set_mmd(reference, generated, degree_histogram, lambda a, b: gaussian_emd_gram(a, b, sigma=1.0))


def clustering_mmd(reference: Sequence[nx.Graph], generated: Sequence[nx.Graph]) -> float:
    """Clustering-coefficient MMD (100 bins, Gaussian EMD with bins 1/100 apart, σ = 0.1)."""
    return _set_mmd(
        reference, generated, clustering_histogram,
        lambda a, b: gaussian_emd_gram(a, b, sigma=0.1, bin_width=1.0 / CLUSTERING_BINS),
    )


def orbit_mmd(reference: Sequence[nx.Graph], generated: Sequence[nx.Graph]) -> float:
    """4-node orbit MMD (Gaussian kernel on mean orbit counts, σ = 30)."""
    return _set_mmd(
        reference, generated, orbit_profile, lambda a, b: gaussian_gram(np.stack(a), np.stack(b), sigma=30.0)
    )


def spectral_mmd(reference: Sequence[nx.Graph], generated: Sequence[nx.Graph]) -> float:
    """Normalised-Laplacian spectrum MMD (200 bins, Gaussian EMD with unit bin spacing, σ = 1)."""
    return _set_mmd(reference, generated, spectral_histogram, lambda a, b: gaussian_emd_gram(a, b, sigma=1.0))


_METRICS = {"degree": degree_mmd, "clustering": clustering_mmd, "orbit": orbit_mmd, "spectral": spectral_mmd}


def graph_mmds(
    reference: Sequence[nx.Graph], generated: Sequence[nx.Graph], metrics: Sequence[str] = GRAPH_MMD_KEYS
) -> dict[str, float]:
    """``{"<metric>_mmd": value}`` for each of ``metrics`` (keys of :data:`GRAPH_MMD_KEYS`)."""
    unknown = [name for name in metrics if name not in _METRICS]
    if unknown:
        raise ValueError(f"graph_mmds: unknown metrics {unknown}; choose from {list(GRAPH_MMD_KEYS)}")
    return {f"{name}_mmd": _METRICS[name](reference, generated) for name in metrics}
