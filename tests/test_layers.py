"""Imports point down: every ``structebm`` import in the package obeys ``tests/layer_rules.py``.

The imports are read from the source with :mod:`ast` (also those inside functions and
``TYPE_CHECKING`` blocks, which are dependencies all the same), so the check needs no
optional package and sees imports that a plain ``import`` of the module would not run.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.layer_rules import LAYERS, MAY_IMPORT, MAY_IMPORT_ONLY, SHARED

PACKAGE = Path(__file__).resolve().parents[1] / "structebm"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    """``structebm.energies.crf`` -> ``energies``; ``structebm.cli`` -> ``cli``; ``structebm`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def structebm_imports(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of a ``structebm`` module in the file (relative ones resolved)."""
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "structebm"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] == "structebm":
                found += [(node.lineno, base)]
    return found


def violations(path: Path, source: str | None = None) -> list[str]:
    """Every import of ``path`` (or of ``source``, read as that file) that breaks the table."""
    importer = layer_of(module_name(path))
    if importer not in LAYERS:
        return []
    problems = []
    for line, module in structebm_imports(path, source):
        layer = layer_of(module)
        if layer in ("", importer) or layer in SHARED:
            continue
        where = f"{path.relative_to(PACKAGE.parent)}:{line}"
        if layer not in MAY_IMPORT[importer]:
            problems.append(f"{where}: {importer} may not import {layer} ({module})")
        elif (importer, layer) in MAY_IMPORT_ONLY and module not in MAY_IMPORT_ONLY[importer, layer]:
            allowed = ", ".join(sorted(MAY_IMPORT_ONLY[importer, layer]))
            problems.append(f"{where}: {importer} may import only {allowed} from {layer}, not {module}")
    return problems


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_layer_of_the_package_is_in_the_table():
    layers = {layer_of(module_name(path)) for path in SOURCES} - {""}
    assert layers <= LAYERS | SHARED, f"layers without rules in tests/layer_rules.py: {sorted(layers - LAYERS - SHARED)}"


def test_shared_helpers_import_no_layer():
    for name in SHARED:
        for line, module in structebm_imports(PACKAGE / f"{name}.py"):
            assert layer_of(module) in SHARED, f"structebm/{name}.py:{line} imports {module}"


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_imports_point_down(layer):
    paths = [path for path in SOURCES if layer_of(module_name(path)) == layer]
    problems = [problem for path in paths for problem in violations(path)]
    assert not problems, "\n".join(problems)


def test_the_checker_sees_violations():
    """Imports inside functions, relative imports and a concrete energy family in objectives are caught."""
    training = PACKAGE / "training" / "probe.py"
    source = "from structebm.data.mnist import load_mnist\n\ndef f():\n    from ..chem import vocab\n"
    assert [p.split(": ", 1)[1] for p in violations(training, source)] == [
        "training may not import data (structebm.data.mnist)",
        "training may not import chem (structebm.chem)",
    ]
    objectives = PACKAGE / "objectives" / "probe.py"
    source = "from structebm.energies.crf import LinearChainCRF\nfrom structebm.energies.base import require\n"
    assert [p.split(": ", 1)[1] for p in violations(objectives, source)] == [
        "objectives may import only structebm.energies.base from energies, not structebm.energies.crf"
    ]
    assert violations(PACKAGE / "graphs" / "probe.py", "from structebm.spaces import Space\nfrom . import state\n") == []


def design_table() -> dict[str, tuple[frozenset[str], dict[str, frozenset[str]]]]:
    """The table "Layers and what each may import" of ``docs/design.md``: layer -> (layers, only-modules)."""
    text = (PACKAGE.parent / "docs" / "design.md").read_text()
    section = text.split("## Layers and what each may import", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        layer, permitted = cells[0].strip("`"), cells[1]
        if permitted == "every layer":
            table[layer] = (LAYERS - {layer}, {})
            continue
        layers, only = set(), {}
        for entry in re.split(r",\s*(?![^()]*\))", permitted):  # commas outside parentheses
            names = re.findall(r"`([^`]+)`", entry)
            if not names:
                continue
            layers.add(names[0])
            if "(only" in entry:
                only[names[0]] = frozenset(names[1:])
        table[layer] = (frozenset(layers), only)
    return table


def test_the_design_document_states_the_same_rules():
    table = design_table()
    assert set(table) == LAYERS, f"docs/design.md lists {sorted(table)}; tests/layer_rules.py has {sorted(LAYERS)}"
    for layer, (layers, only) in table.items():
        assert layers == MAY_IMPORT[layer], (layer, sorted(layers), sorted(MAY_IMPORT[layer]))
        expected_only = {imported: modules for (importer, imported), modules in MAY_IMPORT_ONLY.items() if importer == layer}
        assert only == expected_only, (layer, only, expected_only)
