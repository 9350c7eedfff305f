"""Every ``structebm.…`` path named in the READMEs and the hand-written docs exists.

Modules move; a README that still names the old path would send a reader nowhere. The API
reference follows the package by itself (``docs/gen_pages.py``), so only prose is checked here.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted(
    {ROOT / "README.md", ROOT / "notebooks" / "README.md", *ROOT.glob("recipes/*/README.md"),
     *ROOT.glob("datasets/*.md"), *(p for p in ROOT.glob("docs/*.md"))}
)
PATH = re.compile(r"\bstructebm(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def resolve(dotted: str) -> object:
    """Import the longest importable module prefix of ``dotted`` and walk the rest by attribute."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError as error:
            if error.name is None or not dotted.startswith(error.name):
                raise
            continue
        for name in parts[split:]:
            target = getattr(target, name)
        return target
    raise ModuleNotFoundError(dotted)


def named_paths() -> list[tuple[str, str]]:
    return sorted({(str(doc.relative_to(ROOT)), m) for doc in DOCUMENTS if doc.is_file()
                   for m in PATH.findall(doc.read_text(encoding="utf-8"))})


def test_documents_name_some_paths() -> None:
    assert len(named_paths()) > 10


@pytest.mark.parametrize(("document", "dotted"), named_paths())
def test_named_path_exists(document: str, dotted: str) -> None:
    try:
        resolve(dotted)
    except (ImportError, AttributeError) as error:
        pytest.fail(f"{document} names {dotted}, which does not exist ({error})")
