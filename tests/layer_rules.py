"""Which layer of ``structebm`` may import which: the one table that ``tests/test_layers.py`` checks.

A *layer* is a sub-package of ``structebm`` (``structebm/energies/`` ...) or a top-level module
(``structebm/cli.py``). :data:`SHARED` are the small shared helpers at the top of the package,
which every layer may import and which import no layer themselves. :data:`MAY_IMPORT` lists,
for every layer, the other layers it may import (a layer may always import itself);
:data:`MAY_IMPORT_ONLY` narrows a permission to named modules of a layer. Imports point down:

- ``graphs``, ``structured`` and ``evaluation`` import no other layer;
- ``energies`` and ``samplers`` never import ``chem``, ``data``, ``objectives`` or ``training``;
- ``objectives`` know the energy contract (``energies.base``: the capability Protocols),
  never a concrete energy family;
- ``chem`` builds on ``graphs`` and never imports ``training``;
- ``data`` never imports ``training``; ``training`` imports no ``chem`` and no ``data``;
- ``cli`` is the top: only it may import everything.
"""

from __future__ import annotations

__all__ = ["SHARED", "LAYERS", "MAY_IMPORT", "MAY_IMPORT_ONLY"]

SHARED: frozenset[str] = frozenset({"finite", "spaces", "conditions"})
"""Top-level helper modules any layer may import (``structebm/finite.py`` ...)."""

MAY_IMPORT: dict[str, frozenset[str]] = {
    "graphs": frozenset(),
    "structured": frozenset(),
    "evaluation": frozenset(),
    "energies": frozenset({"graphs", "structured", "samplers", "evaluation"}),
    "samplers": frozenset({"graphs", "structured", "energies", "evaluation"}),
    "objectives": frozenset({"graphs", "structured", "energies", "samplers", "evaluation"}),
    "chem": frozenset({"graphs", "structured", "energies", "samplers", "objectives", "evaluation", "data"}),
    "data": frozenset({"graphs", "structured", "energies", "samplers", "objectives", "chem", "evaluation"}),
    "training": frozenset({"graphs", "structured", "energies", "samplers", "objectives", "evaluation"}),
    "cli": frozenset({"graphs", "structured", "energies", "samplers", "objectives", "chem", "evaluation", "data", "training"}),
}
"""Layer -> the other layers it may import (besides :data:`SHARED` and itself)."""

MAY_IMPORT_ONLY: dict[tuple[str, str], frozenset[str]] = {
    ("objectives", "energies"): frozenset({"structebm.energies.base"}),
}
"""(importer, imported layer) -> the only modules of that layer the importer may name."""

LAYERS: frozenset[str] = frozenset(MAY_IMPORT)
