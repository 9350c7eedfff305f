"""Generated graphs beside reference graphs, drawn with networkx into one PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import networkx as nx

__all__ = ["graph_comparison_png"]


def graph_comparison_png(
    generated: Sequence[nx.Graph],
    reference: Sequence[nx.Graph],
    path: Union[str, Path],
    per_row: int = 4,
    rows: int = 2,
    seed: int = 0,
) -> Path:
    """Write a PNG: ``rows`` rows of generated graphs on the left, as many reference graphs on the right.

    Each graph is drawn with a spring layout (``seed`` fixes it), nodes as dots; a panel's
    title gives its node and edge counts.

    Args:
        generated, reference: graphs to show; the first ``per_row * rows`` of each are drawn.
        path: output file (parent folders are created).
        per_row, rows: grid of each half.
        seed: seed of the layouts.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if per_row < 1 or rows < 1:
        raise ValueError(f"graph_comparison_png: per_row and rows must be >= 1, got {per_row} and {rows}")
    if not generated or not reference:
        raise ValueError("graph_comparison_png: needs at least one generated and one reference graph")
    count = per_row * rows
    figure, axes = plt.subplots(rows, 2 * per_row, figsize=(2.2 * 2 * per_row, 2.4 * rows), squeeze=False)
    for half, (title, graphs) in enumerate((("generated", generated), ("test", reference))):
        for k in range(count):
            axis = axes[k // per_row][half * per_row + k % per_row]
            axis.set_axis_off()
            if k >= len(graphs):
                continue
            graph = graphs[k]
            layout = nx.spring_layout(graph, seed=seed) if graph.number_of_nodes() else {}
            nx.draw_networkx(graph, layout, ax=axis, node_size=12, with_labels=False, width=0.6,
                             node_color="tab:red" if half == 0 else "tab:blue")
            axis.set_title(f"{title}: {graph.number_of_nodes()} n, {graph.number_of_edges()} e", fontsize=8)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path
