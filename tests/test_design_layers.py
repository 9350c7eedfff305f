"""``docs/design.md`` lists what each layer may import exactly as ``tests/layer_rules.py`` does.

The design document's table is what a reader sees; ``tests/layer_rules.py`` is what
``tests/test_layers.py`` enforces. This test fails as soon as the two differ.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.layer_rules import LAYERS, MAY_IMPORT, MAY_IMPORT_ONLY, SHARED

DESIGN = Path(__file__).resolve().parent.parent / "docs" / "design.md"
ROW = re.compile(r"^\| `(?P<layer>[a-z_]+)` \| (?P<allowed>.+?) \|$", re.M)


def design_section() -> str:
    text = DESIGN.read_text(encoding="utf-8")
    match = re.search(r"^## Layers and what each may import$(.*?)(?=^## )", text, flags=re.M | re.S)
    assert match is not None, f"{DESIGN} has no '## Layers and what each may import' section"
    return match.group(1)


def design_table() -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Layer -> (layers it may import, fully named modules it is restricted to) from the design."""
    table = {}
    for row in ROW.finditer(design_section()):
        layer, allowed = row["layer"], row["allowed"]
        names = re.findall(r"`([a-z_.]+)`", allowed)
        modules = frozenset(n for n in names if "." in n)
        layers = frozenset(n for n in names if "." not in n)
        if allowed.strip() == "every layer":
            layers = LAYERS - {layer}
        table[layer] = (layers, modules)
    return table


def test_design_lists_every_layer_once() -> None:
    rows = [row["layer"] for row in ROW.finditer(design_section())]
    assert sorted(rows) == sorted(LAYERS)


def test_design_permissions_match_the_rules() -> None:
    table = design_table()
    for layer in sorted(LAYERS):
        assert table[layer][0] == MAY_IMPORT[layer], f"docs/design.md row '{layer}' differs from tests/layer_rules.py"


def test_design_names_the_narrowed_permissions() -> None:
    table = design_table()
    for (importer, imported), modules in MAY_IMPORT_ONLY.items():
        assert imported in table[importer][0]
        assert table[importer][1] == modules, f"docs/design.md row '{importer}' must name {sorted(modules)}"


def test_design_names_the_shared_helpers() -> None:
    section = design_section()
    for helper in SHARED:
        assert f"`{helper}`" in section
