"""The four generic graph-generation benchmarks of GDSS (Jo et al. 2022) and their standard split.

``community_small``, ``ego_small``, ``ENZYMES`` and ``grid`` are read from
``$STRUCTEBM_DATA/graph_generation/<name>.json`` (JSON edge lists converted from GDSS's
``data/<name>.pkl``; format in :mod:`structebm.data.graph_files`), after their SHA-256 is
checked. The split is GDSS's: with :math:`M` graphs in stored order,

.. math::
    \\text{test} = \\text{graphs}[0 : \\lfloor 0.2 M \\rfloor], \\qquad
    \\text{train} = \\text{graphs}[\\lfloor 0.2 M \\rfloor : M].

========================= ====== ===== ========== ======================
set                        test  train  capacity   graphs
========================= ====== ===== ========== ======================
community_small              20     80        20   two-community graphs
ego_small                    40    160        18   Citeseer ego networks
ENZYMES                     117    470       125   protein graphs (TU)
grid                         20     80       361   2-d grids
========================= ====== ===== ========== ======================

The graphs are unlabelled here (every node and edge value 1), as in the GDSS benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, TypeVar

import networkx as nx

from structebm.data._files import ChecksumError, DataFileMissingError, content_sha256, data_root
from structebm.data.graph_files import read_graph_json

__all__ = ["GraphSetSpec", "GRAPH_SETS", "TEST_FRACTION", "get_graph_set", "split_graphs", "load_graph_set"]

TEST_FRACTION = 0.2
"""Share of the graphs, taken from the front in stored order, that forms the test split."""

_SOURCE = "GDSS repository (harryjo97/GDSS), data/{name}.pkl, converted to JSON edge lists"


@dataclass(frozen=True)
class GraphSetSpec:
    """A named graph set: its file, checksum, capacity and expected split sizes."""

    name: str
    relative_path: str
    sha256: str
    max_nodes: int
    num_graphs: int
    num_test: int


GRAPH_SETS: dict[str, GraphSetSpec] = {
    spec.name: spec
    for spec in (
        GraphSetSpec(
            "community_small", "graph_generation/community_small.json",
            "2267a6b69d1956e4e76b0192c55ca2d2ed2d13ab387c2a7cc53cbc5f13a8701b", 20, 100, 20,
        ),
        GraphSetSpec(
            "ego_small", "graph_generation/ego_small.json",
            "80953123786154f00e33a330e964fcb75d6e21bce528fb79712fdb52a22579ec", 18, 200, 40,
        ),
        GraphSetSpec(
            "ENZYMES", "graph_generation/ENZYMES.json",
            "56d60c167562a5fd27724d2ea3c404f7170ee4f3ce47dac96c04ab3e0bdb0abf", 125, 587, 117,
        ),
        GraphSetSpec(
            "grid", "graph_generation/grid.json",
            "9c3805a169edaea199ae3b2ceb72adfd151e21a21418ee582c2a1f32af1d945f", 361, 100, 20,
        ),
    )
}

T = TypeVar("T")


def get_graph_set(name: str) -> GraphSetSpec:
    """The spec of a named set (case-insensitive)."""
    for key, spec in GRAPH_SETS.items():
        if key.lower() == str(name).lower():
            return spec
    raise ValueError(f"unknown graph set {name!r}; choose from {sorted(GRAPH_SETS)} or give a JSON edge-list path")


def split_graphs(graphs: Sequence[T], test_fraction: float = TEST_FRACTION) -> tuple[list[T], list[T]]:
    """``(train, test)``: test = the first ``int(test_fraction * len(graphs))`` graphs, train = the rest."""
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"split_graphs: test_fraction must lie in [0, 1), got {test_fraction}")
    num_test = int(test_fraction * len(graphs))
    return list(graphs[num_test:]), list(graphs[:num_test])


def _checked_path(spec: GraphSetSpec, root: Optional[Path]) -> Path:
    path = (Path(root) if root is not None else data_root()) / spec.relative_path
    if not path.exists():
        raise DataFileMissingError(
            f"data file {spec.relative_path} is missing: put {path.name} into {path.parent} (or set STRUCTEBM_DATA "
            f"to a folder holding {spec.relative_path}); it is the {_SOURCE.format(name=spec.name)}"
        )
    actual = content_sha256(path)
    if actual != spec.sha256:
        raise ChecksumError(
            f"checksum mismatch for data file {path}: expected sha256 {spec.sha256}, got {actual}; "
            f"the file is corrupt or a different version"
        )
    return path


def load_graph_set(name: str, root: Optional[Path] = None) -> tuple[list[nx.Graph], list[nx.Graph]]:
    """``(train, test)`` networkx graphs of a named set, split as GDSS does (checked sizes)."""
    spec = get_graph_set(name)
    graphs = read_graph_json(_checked_path(spec, root))
    train, test = split_graphs(graphs)
    if len(graphs) != spec.num_graphs or len(test) != spec.num_test:
        raise ValueError(f"{spec.name}: expected {spec.num_graphs} graphs ({spec.num_test} test), read {len(graphs)}")
    largest = max(graph.number_of_nodes() for graph in graphs)
    if largest > spec.max_nodes:
        raise ValueError(f"{spec.name}: a graph has {largest} nodes, more than the set's capacity {spec.max_nodes}")
    return train, test
