"""A Griffe extension that turns the reStructuredText in structebm's docstrings into Markdown.

The docstrings follow PyTorch Geometric's style: Google sections (``Args:``, ``Returns:``)
plus reStructuredText roles and directives. Before mkdocstrings renders them, this extension
rewrites, in every docstring of the package:

- ``.. math::`` blocks into ``$$ ... $$`` and ``:math:`x``` into ``$x$`` (``pymdownx.arithmatex``);
- ``:class:``, ``:func:``, ``:meth:``, ``:attr:``, ``:mod:``, ``:exc:``, ``:data:`` roles into
  cross-references. A target inside the package that exists becomes an optional link (a link when
  its page renders it, plain code otherwise); a full ``structebm.…`` path that does not exist
  becomes a required link, so ``mkdocs build --strict`` fails and names it; anything else (a bare
  name that cannot be resolved, ``torch.Tensor``) stays code;
- a ``Shapes:`` section into a bold heading followed by its list.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any, Optional

import griffe

__all__ = ["RstToMarkdown"]

PACKAGE = "structebm"
_ROLE = re.compile(r":(?:py:)?(class|func|meth|attr|mod|exc|data|obj):`(~?)([^`<>]+?)`")
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<inline>.*)$")
_SECTION = re.compile(r"^(?P<indent>[ \t]*)Shapes:[ \t]*$")


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


def _take_block(lines: list[str], start: int, indent: int) -> tuple[list[str], int]:
    """The lines after ``start`` indented deeper than ``indent`` (blank lines included)."""
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent_of(lines[end]) > indent):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end], end


def _blocks(text: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        directive, section = _DIRECTIVE.match(lines[i]), _SECTION.match(lines[i])
        if directive is None and section is None:
            out.append(lines[i])
            i += 1
            continue
        match = directive or section
        indent = match["indent"]
        body, i = _take_block(lines, i + 1, len(indent))
        body_text = textwrap.dedent("\n".join(body)).strip("\n")
        if directive is not None:
            maths = "\n".join(part for part in (directive["inline"].strip(), body_text) if part)
            out += ["", f"{indent}$$", *(f"{indent}{line}" for line in maths.splitlines()), f"{indent}$$", ""]
        else:
            out += ["", f"{indent}**Shapes:**", "", *(f"{indent}{line}" for line in body_text.splitlines()), ""]
    return "\n".join(out)


class RstToMarkdown(griffe.Extension):
    """Rewrite the docstrings of the package once it is loaded (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name == PACKAGE:
            self._root = pkg
            self._visit(pkg)

    def _visit(self, obj: griffe.Object) -> None:
        if obj.docstring is not None:
            obj.docstring.value = self._convert(obj.docstring.value, obj)
        for member in obj.members.values():
            if not member.is_alias:
                self._visit(member)

    def _convert(self, text: str, scope: griffe.Object) -> str:
        text = _blocks(text)
        text = _MATH_ROLE.sub(lambda m: f"${m[1]}$", text)
        return _ROLE.sub(lambda m: self._reference(m[3].strip(), short=bool(m[2]), scope=scope), text)

    def _reference(self, name: str, short: bool, scope: griffe.Object) -> str:
        name = name.lstrip(".").removesuffix("()")
        shown = name.rsplit(".", 1)[-1] if short else name
        target = self._resolve(name, scope)
        if target is not None:
            return f'<autoref identifier="{target}" optional><code>{shown}</code></autoref>'
        if name.startswith(PACKAGE + "."):
            return f"[`{shown}`][{name}]"
        return f"`{shown}`"

    def _lookup(self, path: str) -> Optional[str]:
        """The canonical path of ``path`` inside the package, or ``None`` if it does not exist."""
        if path == PACKAGE:
            return path
        try:
            found = self._root[path.removeprefix(PACKAGE + ".")]
            return found.final_target.path if found.is_alias else found.path
        except Exception:  # a missing member or an alias that does not resolve
            return None

    def _resolve(self, name: str, scope: griffe.Object) -> Optional[str]:
        if name.startswith(PACKAGE + ".") or name == PACKAGE:
            return self._lookup(name)
        head, _, rest = name.partition(".")
        current: Optional[griffe.Object] = scope
        while current is not None:
            if head in current.members:
                return self._lookup(f"{current.members[head].path}{'.' + rest if rest else ''}")
            current = current.parent
        return None
