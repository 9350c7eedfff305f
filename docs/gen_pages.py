"""Generate the pages that follow the repository: the API reference and the recipes.

Run by the ``gen-files`` plugin on every ``mkdocs build``. It walks ``structebm/`` and writes
one reference page per public module (``::: structebm.x.y``) and one per subpackage; it copies
``recipes/*/README.md`` and ``datasets/*.md`` into the site; and it writes the whole navigation
(``SUMMARY.md``, read by ``literate-nav``): the home page, the
design, every other page at the top of ``docs/`` as a guide, then the recipes, the results log,
the dataset cards and the reference. Nothing here names a module, a recipe or a guide, so a
moved or new one needs no change.
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


def write_reference() -> list[str]:
    """Write the reference pages; return their navigation as literate-nav lines."""
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
        nav[parts] = page.as_posix()
        with mkdocs_gen_files.open(page, "w") as handle:
            handle.write(f"::: {'.'.join(parts)}\n{options}")
        mkdocs_gen_files.set_edit_path(page, path.relative_to(ROOT))
    return [line.rstrip("\n") for line in nav.build_literate_nav()]


def copy_markdown(pattern: str, target: str, name_from_parent: bool) -> list[str]:
    """Copy the matching Markdown files into ``target``; return their navigation lines."""
    lines = []
    for source in sorted(ROOT.glob(pattern)):
        name = source.parent.name if name_from_parent else source.stem
        page = Path(target, f"{name}.md")
        with mkdocs_gen_files.open(page, "w") as handle:
            handle.write(source.read_text(encoding="utf-8"))
        mkdocs_gen_files.set_edit_path(page, source.relative_to(ROOT))
        lines.append(f"* [{title_of(source)}]({page.as_posix()})")
    return lines


def title_of(page: Path) -> str:
    """The first ``# `` heading of a Markdown page, else its file name."""
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return page.stem.replace("_", " ")


def section(title: str, lines: list[str]) -> list[str]:
    return [f"* {title}", *(f"    {line}" for line in lines)] if lines else []


def write_navigation(recipes: list[str], datasets: list[str], reference: list[str]) -> None:
    docs = ROOT / "docs"
    guides = [f"* [{title_of(page)}]({page.name})" for page in sorted(docs.glob("*.md"))
              if page.name not in ("index.md", "design.md")]
    results = [f"* [{title_of(page)}](results/{page.name})" for page in sorted((docs / "results").glob("*.md"))]
    lines = ["* [Home](index.md)", "* [Design](design.md)", *section("Guides", guides),
             *section("Recipes", recipes), *section("Results log", results), *section("Datasets", datasets),
             *section("API reference", reference)]
    with mkdocs_gen_files.open("SUMMARY.md", "w") as handle:
        handle.write("\n".join(lines) + "\n")


reference_nav = write_reference()
recipes_nav = copy_markdown("recipes/*/README.md", "recipes", name_from_parent=True)
datasets_nav = copy_markdown("datasets/*.md", "datasets", name_from_parent=False)
write_navigation(recipes_nav, datasets_nav, reference_nav)
