"""The research notebooks under ``notebooks/`` run top to bottom without an error.

Each notebook is executed with nbclient in a fresh ``python3`` kernel (the interpreter running the
tests), with a temporary directory as working directory and the environment of the test process,
so ``$STRUCTEBM_DATA`` reaches the data loaders. A cell that raises fails the test with that cell's
source and traceback; the notebooks check their own invariants with ``assert`` (for example, that
inpainting leaves the observed pixels unchanged), so those failures surface here too.

A notebook is skipped only when a data file it reads is missing from the data root, since the
loaders would otherwise try to download it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from nbclient.exceptions import CellExecutionError  # noqa: E402

from structebm.data._files import data_root  # noqa: E402
from structebm.data.conll import CONLL2000_FILES  # noqa: E402
from structebm.data.mnist import MNIST_FILES  # noqa: E402
from structebm.data.molecules import MOLECULE_DATASETS  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CELL_TIMEOUT_S = 240
"""Longest any one cell may run; the slowest cells (training) take 30-60 s on two busy CPU cores."""

DATA_FILES = {
    "chunking_tagger.ipynb": [f.relative_path for f in CONLL2000_FILES.values()],
    "molecule_chains.ipynb": [MOLECULE_DATASETS["qm9"].smiles_file.relative_path, MOLECULE_DATASETS["qm9"].test_index_file.relative_path],
    "image_label.ipynb": [f.relative_path for pair in MNIST_FILES.values() for f in pair],
    "gradient_bias.ipynb": [],
}
"""Files under the data root that each notebook reads."""


def test_every_notebook_is_listed():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(DATA_FILES)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DATA_FILES))
def test_notebook_runs(name, tmp_path):
    root = data_root()
    missing = [f for f in DATA_FILES[name] if not (root / f).is_file()]
    if missing:
        pytest.skip(f"{name}: data files missing under {root} (set STRUCTEBM_DATA): {missing}")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    begin = time.perf_counter()
    failure = None
    try:
        client.execute()
    except CellExecutionError as error:
        failure = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # without the terminal colours of IPython's traceback
    if failure is not None:
        pytest.fail(f"{name}: a cell raised\n{failure}", pytrace=False)
    print(f"{name}: {time.perf_counter() - begin:.1f} s")
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{name}: error outputs {errors}"
