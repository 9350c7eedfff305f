"""Generate the pages that follow the repository: the API reference and the recipes.

Run by the ``gen-files`` plugin on every ``mkdocs build``. It walks ``structebm/`` and writes
one reference page per public module (``::: structebm.x.y``) and one per subpackage, with a
``SUMMARY.md`` for ``literate-nav``; it copies ``recipes/*/README.md`` and ``datasets/*.md``
into the site. Nothing here names a module, so a moved or new module needs no change.
"""

from __future__ import annotations

from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "structebm"


def _is_public(parts: tuple[str, ...]) -> bool:
    return not any(part.startswith("_") for part in parts if part != "__init__")


def _in_package(path: Path) -> bool:
    """Whether every folder from ``structebm/`` down to ``path`` is a package (has ``__init__.py``)."""
    folder = path.parent
    while folder != ROOT:
        if not (folder / "__init__.py").is_file():
            return False
        folder = folder.parent
    return True


def write_reference() -> None:
    nav = mkdocs_gen_files.Nav()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(ROOT).with_suffix("")
        parts = tuple(module.parts)
        if not _is_public(parts) or not _in_package(path):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
            page = Path("reference", *parts, "index.md")
            options = "    options:\n      members: false\n"
        else:
            page = Path("reference", *parts).with_suffix(".md")
            options = ""
        nav[parts] = page.relative_to("reference").as_posix()
        with mkdocs_gen_files.open(page, "w") as handle:
            handle.write(f"::: {'.'.join(parts)}\n{options}")
        mkdocs_gen_files.set_edit_path(page, path.relative_to(ROOT))
    with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as handle:
        handle.writelines(nav.build_literate_nav())


def copy_markdown(pattern: str, target: str, name_from_parent: bool) -> None:
    for source in sorted(ROOT.glob(pattern)):
        name = source.parent.name if name_from_parent else source.stem
        page = Path(target, f"{name}.md")
        with mkdocs_gen_files.open(page, "w") as handle:
            handle.write(source.read_text(encoding="utf-8"))
        mkdocs_gen_files.set_edit_path(page, source.relative_to(ROOT))


write_reference()
copy_markdown("recipes/*/README.md", "recipes", name_from_parent=True)
copy_markdown("datasets/*.md", "datasets", name_from_parent=False)
