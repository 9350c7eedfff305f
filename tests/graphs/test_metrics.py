"""Graph-set MMDs: known answers on hand-made sets, an independent EMD, and sample statistics."""

import math

import networkx as nx
import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from structebm.graphs.metrics import (
    clustering_histogram,
    clustering_mmd,
    degree_mmd,
    gaussian_emd_gram,
    graph_mmds,
    orbit_mmd,
    orbit_profile,
    spectral_histogram,
    spectral_mmd,
)

PATH = nx.path_graph(3)
TRIANGLE = nx.complete_graph(3)


def test_identical_sets_score_zero():
    graphs = [nx.path_graph(5), nx.cycle_graph(6), nx.star_graph(4), nx.complete_graph(4)]
    for name, value in graph_mmds(graphs, list(reversed(graphs))).items():
        assert value == pytest.approx(0.0, abs=1e-12), name


def test_degree_mmd_by_hand():
    # degree pmfs [0, 2/3, 1/3] and [0, 0, 1]: W1 = |2/3 - 0| + |1 - 1| = 2/3
    assert degree_mmd([PATH], [TRIANGLE]) == pytest.approx(2 - 2 * math.exp(-((2 / 3) ** 2) / 2), rel=1e-12)


def test_clustering_mmd_by_hand():
    # every coefficient 0 (bin 0) against every coefficient 1 (bin 99): W1 = 99 / 100
    assert clustering_histogram(PATH)[0] == 3 and clustering_histogram(TRIANGLE)[99] == 3
    assert clustering_mmd([PATH], [TRIANGLE]) == pytest.approx(2 - 2 * math.exp(-(0.99**2) / (2 * 0.1**2)), rel=1e-12)


def test_orbit_mmd_by_hand():
    # mean orbit counts: path (4/3, 2/3, 1/3, 0, ...), triangle (2, 0, 0, 1, ...): squared distance 2
    np.testing.assert_allclose(orbit_profile(PATH)[:4], [4 / 3, 2 / 3, 1 / 3, 0])
    np.testing.assert_allclose(orbit_profile(TRIANGLE)[:4], [2, 0, 0, 1])
    assert orbit_mmd([PATH], [TRIANGLE]) == pytest.approx(2 - 2 * math.exp(-2 / (2 * 30.0**2)), rel=1e-9)


def test_spectral_histogram_and_mmd_by_hand():
    # path on 3 nodes: normalised-Laplacian eigenvalues 0, 1, 2 (bins 0, 100, 199 of width ~0.01)
    assert np.nonzero(spectral_histogram(PATH))[0].tolist() == [0, 100, 199]
    # triangle: 0, 1.5, 1.5 (bins 0 and 150); W1 = 50/3 + 49/3 = 33 bins, kernel ~ exp(-544)
    assert np.nonzero(spectral_histogram(TRIANGLE))[0].tolist() == [0, 150]
    assert spectral_mmd([PATH], [TRIANGLE]) == pytest.approx(2.0, abs=1e-12)


def test_gaussian_emd_matches_scipy_wasserstein():
    rng = np.random.default_rng(0)
    first = [rng.integers(0, 5, size=int(rng.integers(1, 9))).astype(float) + 0.5 for _ in range(5)]
    second = [rng.integers(0, 5, size=int(rng.integers(1, 9))).astype(float) + 0.5 for _ in range(4)]
    gram = gaussian_emd_gram(first, second, sigma=1.5, bin_width=0.5)
    for i, p in enumerate(first):
        for j, q in enumerate(second):
            w1 = wasserstein_distance(0.5 * np.arange(len(p)), 0.5 * np.arange(len(q)), p, q)
            assert gram[i, j] == pytest.approx(math.exp(-(w1**2) / (2 * 1.5**2)), rel=1e-9)


def test_mmd_separates_densities_beyond_sampling_noise():
    """Same-law sets score below different-law sets; 40 graphs per set, fixed seeds.

    The spectral kernel is left out: with σ of one bin (0.01 in eigenvalue) two random graphs'
    spectra are almost never within its reach, so its off-diagonal terms are ~0 for both pairs
    and the biased estimate is ~(1/m + 1/n) either way.
    """
    def er(p, seed):
        return [nx.gnp_random_graph(16, p, seed=seed * 1000 + i) for i in range(40)]

    metrics = ("degree", "clustering", "orbit")
    same = graph_mmds(er(0.2, 1), er(0.2, 2), metrics)
    different = graph_mmds(er(0.2, 1), er(0.4, 3), metrics)
    for name in same:
        assert 0 <= same[name] < 0.5 * different[name], (name, same[name], different[name])


def test_empty_generated_graphs_are_left_out_and_empty_reference_is_an_error():
    graphs = [nx.cycle_graph(5), nx.path_graph(4)]
    assert degree_mmd(graphs, graphs + [nx.Graph()]) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="reference graph 1 has no node"):
        degree_mmd([nx.path_graph(2), nx.Graph()], graphs)
    with pytest.raises(ValueError, match="unknown metrics"):
        graph_mmds(graphs, graphs, metrics=("degree", "nspdk"))
