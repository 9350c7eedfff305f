"""The GDSS graph sets: checksums, the standard split, dense encoding, and the data module."""

import json
from pathlib import Path

import networkx as nx
import pytest
import torch

from structebm.data._files import ChecksumError, DataFileMissingError, data_root
from structebm.data.graph_datamodule import GraphDataModule
from structebm.data.graph_sets import GRAPH_SETS, load_graph_set, split_graphs


@pytest.fixture(scope="module")
def graph_data() -> Path:
    """The graph_generation folder under the library's data root; a clear failure if it is missing."""
    folder = data_root() / "graph_generation"
    if not (folder / "community_small.json").exists():
        pytest.fail(f"the GDSS graph sets are needed by these tests and are not under {folder} (set STRUCTEBM_DATA)")
    return folder


def test_split_takes_the_test_graphs_from_the_front():
    train, test = split_graphs(list(range(10)))
    assert test == [0, 1] and train == list(range(2, 10))
    train, test = split_graphs(list(range(587)))
    assert len(test) == 117 and test[-1] == 116 and train[0] == 117


@pytest.mark.parametrize("name", sorted(GRAPH_SETS))
def test_named_sets_split_sizes_and_capacity(name, graph_data):
    spec = GRAPH_SETS[name]
    train, test = load_graph_set(name)
    assert (len(test), len(train)) == (spec.num_test, spec.num_graphs - spec.num_test)
    assert max(g.number_of_nodes() for g in train + test) <= spec.max_nodes  # ego_small: 17 nodes in 18 slots
    records = json.loads((graph_data / f"{name}.json").read_text())
    first = records[0]
    assert test[0].number_of_nodes() == first["num_nodes"]
    assert sorted(map(sorted, test[0].edges())) == sorted(map(sorted, first["edges"]))
    assert train[0].number_of_edges() == len(records[spec.num_test]["edges"])


def test_checksum_and_missing_file_errors(tmp_path):
    folder = tmp_path / "graph_generation"
    with pytest.raises(DataFileMissingError, match="community_small.json"):
        load_graph_set("community_small", root=tmp_path)
    folder.mkdir()
    (folder / "community_small.json").write_text("[]")
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        load_graph_set("community_small", root=tmp_path)
    with pytest.raises(ValueError, match="unknown graph set"):
        load_graph_set("cora", root=tmp_path)


def test_datamodule_batches_match_the_training_graphs(graph_data):
    module = GraphDataModule("community_small", batch_size=16, seed=3)
    module.setup()
    assert module.max_nodes == 20 and module.num_node_types == 1 and module.num_edge_types == 1
    dense = module.train_dense
    assert dense.batch_size == 80
    assert dense.num_nodes.tolist() == [g.number_of_nodes() for g in module.train_graphs]
    assert dense.num_edges.tolist() == [g.number_of_edges() for g in module.train_graphs]
    batches = list(module.train_dataloader())
    assert len(batches) == 5 and all(b.batch_size == 16 for b in batches)
    seen = torch.cat([b.num_edges for b in batches]).sort().values
    assert torch.equal(seen, dense.num_edges.sort().values)
    prior = module.node_prior()
    counts = torch.bincount(dense.num_nodes, minlength=21).float() / 80
    assert torch.allclose(prior.count_probs, counts)
    assert 0 < module.edge_density() < 1


def test_datamodule_over_user_graphs_and_capacity_error(tmp_path):
    graphs = [nx.cycle_graph(n) for n in range(3, 13)]
    module = GraphDataModule.from_graphs(graphs, batch_size=4)
    module.setup()
    assert [g.number_of_nodes() for g in module.test_graphs] == [3, 4]
    assert module.max_nodes == 12
    small = GraphDataModule.from_graphs(graphs, batch_size=4, max_nodes=10)
    with pytest.raises(ValueError, match="train graph 6 of <graphs> has 11 nodes, more than the capacity max_nodes=10"):
        small.setup()
    labelled = [nx.path_graph(3) for _ in range(5)]
    for g in labelled:
        nx.set_edge_attributes(g, {(0, 1): 1, (1, 2): 3}, "bond")
    module = GraphDataModule.from_graphs(labelled, edge_attr="bond", batch_size=2)
    module.setup()
    assert module.num_edge_types == 3 and int(module.train_dense.edges.max()) == 3
    with pytest.raises(ValueError, match="graph 0"):
        GraphDataModule.from_graphs(labelled, edge_attr="bond", num_edge_types=2, batch_size=2).setup()
