"""The graph layer, the graph samplers and the graph energy load neither RDKit nor structebm.chem."""

import json
import subprocess
import sys

MODULES = [
    "structebm.graphs",
    "structebm.graphs.constraints",
    "structebm.graphs.convert",
    "structebm.graphs.enumerate",
    "structebm.graphs.space",
    "structebm.samplers.graph_moves",
    "structebm.samplers.graph_gwg",
    "structebm.samplers.graph_langevin",
    "structebm.samplers.graph_buffer",
    "structebm.samplers.graph_sampler",
    "structebm.energies.graph",
    "structebm.energies.graph_structure",
]


def test_importing_graph_code_loads_no_chemistry():
    code = (
        "import importlib, json, sys\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'rdkit' or m.startswith('structebm.chem'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_the_check_sees_chemistry_when_it_is_loaded():
    code = "import sys, structebm.chem.graph_space; print('rdkit' in sys.modules, 'structebm.chem.valence' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "True"]
