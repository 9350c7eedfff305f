"""A LightningDataModule over generic graphs: a GDSS benchmark set or a user's own graphs.

Training batches are :class:`~structebm.graphs.state.DenseGraph` batches of the training
split, in an order drawn from ``(seed, epoch)`` alone
(:class:`~structebm.data.loaders.EpochShuffleSampler`):

.. math::
    G = (\\text{nodes} \\in \\{0..K\\}^{B \\times N}, \\;
    \\text{edges} \\in \\{0..R\\}^{B \\times N \\times N}, \\; \\text{mask} = \\text{nodes} > 0).

Generated graphs are scored against :attr:`GraphDataModule.test_graphs` (networkx graphs of
the test split, :mod:`structebm.graphs.metrics`). The split is GDSS's (test = the first 20 % in
stored order, :func:`~structebm.data.graph_sets.split_graphs`) for named sets and JSON files;
:meth:`GraphDataModule.from_graphs` takes networkx graphs or a PyG data set and splits them
the same way, or takes an explicit test list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import lightning.pytorch as pl
import networkx as nx
import torch
from torch.utils.data import DataLoader

from structebm.data.graph_files import graphs_from_pyg, read_graph_json, relabel_graphs
from structebm.data.graph_sets import TEST_FRACTION, get_graph_set, load_graph_set, split_graphs
from structebm.data.loaders import EpochShuffleSampler
from structebm.graphs.convert import from_networkx
from structebm.graphs.prior import NodePrior, edge_density
from structebm.graphs.state import DenseGraph

__all__ = ["GraphDataModule"]


class _Rows(torch.utils.data.Dataset):
    """Indices ``0..M-1``; the collate function slices the dense batch."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> int:
        return index


class _SliceDense:
    """Collate: the rows of a :class:`DenseGraph` named by a list of indices."""

    def __init__(self, graphs: DenseGraph) -> None:
        self.graphs = graphs

    def __call__(self, indices: Sequence[int]) -> DenseGraph:
        return self.graphs[torch.tensor(list(indices), dtype=torch.long)]


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"GraphDataModule: {name} must be a positive int, got {value!r}")
    return value


def _largest_value(graphs: Iterable[nx.Graph], part: str) -> int:
    values = [data["value"] for graph in graphs for *_, data in (graph.nodes(data=True) if part == "node" else graph.edges(data=True))]
    return max(values, default=1)


class GraphDataModule(pl.LightningDataModule):
    """Training graphs (dense batches) and test graphs (networkx) of one graph set.

    Args:
        dataset: a named set (``community_small``, ``ego_small``, ``ENZYMES``, ``grid``) or the
            path of a JSON edge-list file (:mod:`structebm.data.graph_files`).
        batch_size: graphs per training batch.
        max_nodes: the capacity ``N``; default: the named set's (20, 18, 125, 361) or the largest
            graph of the file. A graph over it is an error naming it.
        num_node_types, num_edge_types: the alphabets ``K`` and ``R``; default: the largest label.
        labels: read ``node_labels`` / ``edge_labels`` of a JSON file (default: all values 1).
        test_fraction: share of a JSON file's graphs, from the front, held out for testing.
        seed: seed of the training order (a new permutation every epoch).
        data_root: directory holding the data files (default ``$STRUCTEBM_DATA``).
        num_workers: DataLoader worker processes.

    Shapes:
        - training batches: ``DenseGraph`` with nodes ``[B, N]``, edges ``[B, N, N]``
    """

    def __init__(
        self,
        dataset: str = "community_small",
        batch_size: int = 32,
        max_nodes: Optional[int] = None,
        num_node_types: Optional[int] = None,
        num_edge_types: Optional[int] = None,
        labels: bool = False,
        test_fraction: float = TEST_FRACTION,
        seed: int = 0,
        data_root: Optional[str] = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.dataset_name = str(dataset)
        self.batch_size = _positive(batch_size, "batch_size")
        for name, value in (("max_nodes", max_nodes), ("num_node_types", num_node_types), ("num_edge_types", num_edge_types)):
            if value is not None:
                _positive(value, name)
        if num_workers < 0:
            raise ValueError(f"GraphDataModule: num_workers must be non-negative, got {num_workers}")
        self._max_nodes = max_nodes
        self._num_node_types = num_node_types
        self._num_edge_types = num_edge_types
        self.labels = labels
        self.test_fraction = test_fraction
        self.seed = seed
        self.data_root = None if data_root is None else Path(data_root)
        self.num_workers = num_workers
        self._given: Optional[tuple[list[nx.Graph], list[nx.Graph]]] = None
        self.train_graphs: Optional[list[nx.Graph]] = None
        self.test_graphs: Optional[list[nx.Graph]] = None
        self.train_dense: Optional[DenseGraph] = None

    @classmethod
    def from_graphs(
        cls,
        graphs: Any,
        test_graphs: Optional[Any] = None,
        node_attr: Optional[str] = None,
        edge_attr: Optional[str] = None,
        **options: Any,
    ) -> "GraphDataModule":
        """A data module over a user's graphs: a list of networkx graphs or a PyG data set.

        Without ``test_graphs`` the first ``test_fraction`` of ``graphs`` is the test split.
        ``node_attr`` / ``edge_attr`` name the networkx label attributes; for a PyG data set any
        non-``None`` value reads the labels from ``x`` / ``edge_attr``. ``options`` go to the
        constructor (``batch_size``, ``max_nodes``, ...).
        """

        def convert(items: Any) -> list[nx.Graph]:
            items = list(items)
            if items and all(isinstance(item, nx.Graph) for item in items):
                return relabel_graphs(items, node_attr, edge_attr)
            return graphs_from_pyg(items, node_labels=node_attr is not None, edge_labels=edge_attr is not None)

        module = cls(dataset="<graphs>", **options)
        train = convert(graphs)
        if test_graphs is None:
            train, test = split_graphs(train, module.test_fraction)
        else:
            test = convert(test_graphs)
        module._given = (train, test)
        return module

    def _read(self) -> tuple[list[nx.Graph], list[nx.Graph]]:
        if self._given is not None:
            return self._given
        if self.dataset_name.lower().endswith(".json"):
            graphs = read_graph_json(self.dataset_name)
            if not self.labels:
                graphs = relabel_graphs(graphs)
            return split_graphs(graphs, self.test_fraction)
        return load_graph_set(self.dataset_name, self.data_root)

    def setup(self, stage: Optional[str] = None) -> None:
        """Read and split the graphs, check them against the capacity and encode the training split."""
        if self.train_dense is not None:
            return
        train, test = self._read()
        if not train:
            raise ValueError(f"GraphDataModule: the training split of {self.dataset_name} is empty")
        if self._max_nodes is None:
            named = not self.dataset_name.lower().endswith(".json") and self._given is None
            self._max_nodes = get_graph_set(self.dataset_name).max_nodes if named else \
                max(graph.number_of_nodes() for graph in train + test)
        for split, graphs in (("train", train), ("test", test)):
            for i, graph in enumerate(graphs):
                if graph.number_of_nodes() > self._max_nodes:
                    raise ValueError(
                        f"GraphDataModule: {split} graph {i} of {self.dataset_name} has {graph.number_of_nodes()} nodes, "
                        f"more than the capacity max_nodes={self._max_nodes}"
                    )
        if self._num_node_types is None:
            self._num_node_types = _largest_value(train + test, "node")
        if self._num_edge_types is None:
            self._num_edge_types = _largest_value(train + test, "edge")
        alphabets = (self._num_node_types, self._num_edge_types)
        from_networkx(test, self._max_nodes, "value", "value", *alphabets)  # checks the test graphs too
        self.train_dense = from_networkx(train, self._max_nodes, "value", "value", *alphabets)
        self.train_graphs, self.test_graphs = train, test

    def _require_setup(self, what: str) -> None:
        if self.train_dense is None:
            raise RuntimeError(f"GraphDataModule: call setup() before asking for {what}")

    @property
    def max_nodes(self) -> int:
        """The capacity ``N``."""
        self._require_setup("max_nodes")
        return self._max_nodes

    @property
    def num_node_types(self) -> int:
        """The node alphabet ``K``."""
        self._require_setup("num_node_types")
        return self._num_node_types

    @property
    def num_edge_types(self) -> int:
        """The edge alphabet ``R``."""
        self._require_setup("num_edge_types")
        return self._num_edge_types

    def node_prior(self) -> NodePrior:
        """Node counts and type frequencies of the training graphs (:class:`NodePrior`)."""
        self._require_setup("node_prior()")
        return NodePrior.fit(self.train_dense.nodes, self._num_node_types)

    def edge_density(self) -> float:
        """Edge density of the training graphs (:func:`~structebm.graphs.prior.edge_density`)."""
        self._require_setup("edge_density()")
        return edge_density(self.train_dense)

    def train_dataloader(self) -> DataLoader:
        self._require_setup("train_dataloader()")
        count = self.train_dense.batch_size
        return DataLoader(
            _Rows(count),
            batch_size=self.batch_size,
            sampler=EpochShuffleSampler(count, seed=self.seed),
            collate_fn=_SliceDense(self.train_dense),
            num_workers=self.num_workers,
            drop_last=count >= self.batch_size,
        )

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Move a :class:`DenseGraph` batch with its own ``to``; anything else the default way."""
        if isinstance(batch, DenseGraph):
            return batch.to(device)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)
