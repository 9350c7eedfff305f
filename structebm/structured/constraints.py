"""Hard constraints on linear-chain label sequences: which tag may follow which.

A constraint is an :class:`AllowedTransitions` triple of boolean masks over ``K`` tags:
``transitions[i, j]`` says tag ``j`` may follow tag ``i``, ``start[k]`` that a sequence may
begin with ``k``, ``end[k]`` that it may end with ``k``. Applying it sets the forbidden
potentials to ``-inf``, so a forbidden labelling has probability zero:

.. math::
    \\tilde A_{ij} = \\begin{cases} A_{ij} & \\text{allowed}(i, j) \\\\ -\\infty & \\text{otherwise.} \\end{cases}

:func:`chunk_allowed_transitions` builds the masks of the two usual chunk encodings from tag
names:

- ``BIO`` (IOB2): ``I-X`` only after ``B-X`` or ``I-X``; a sequence cannot start with ``I-X``.
- ``BIOES``: ``I-X`` / ``E-X`` only after ``B-X`` or ``I-X``; ``B-Y``, ``S-Y`` and ``O`` only after
  ``O``, ``E-X`` or ``S-X``; a sequence starts outside a chunk and ends after a chunk is closed.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import torch
from torch import Tensor

__all__ = ["AllowedTransitions", "chunk_allowed_transitions", "check_allowed", "apply_allowed"]


class AllowedTransitions(NamedTuple):
    """Boolean masks of the allowed transitions, first tags and last tags.

    Shapes:
        - transitions: ``[K, K]`` bool, ``[i, j]`` true when tag ``j`` may follow tag ``i``
        - start: ``[K]`` bool, tags a sequence may begin with
        - end: ``[K]`` bool, tags a sequence may end with
    """

    transitions: Tensor
    start: Tensor
    end: Tensor


def _split_tag(tag: str, scheme: str, prefixes: str) -> tuple[str, str]:
    if tag == "O":
        return "O", ""
    prefix, sep, kind = tag.partition("-")
    if not sep or prefix not in prefixes or len(prefix) != 1 or not kind:
        raise ValueError(
            f"chunk_allowed_transitions: tag {tag!r} is not a {scheme} tag; expected 'O' or "
            f"one of {', '.join(p + '-TYPE' for p in prefixes)}"
        )
    return prefix, kind


def chunk_allowed_transitions(tags: Sequence[str], scheme: str = "BIO") -> AllowedTransitions:
    """Allowed-transition masks of a chunk encoding, from the tag names in index order.

    Args:
        tags: tag name of each index, e.g. ``["O", "B-NP", "I-NP"]``.
        scheme: ``"BIO"`` (IOB2) or ``"BIOES"``.

    Shapes:
        - returns: masks ``[K, K]``, ``[K]``, ``[K]`` with ``K = len(tags)``.
    """
    scheme = scheme.upper()
    if scheme not in ("BIO", "BIOES"):
        raise ValueError(f"chunk_allowed_transitions: scheme must be 'BIO' or 'BIOES', got {scheme!r}")
    if len(tags) == 0:
        raise ValueError("chunk_allowed_transitions: tags is empty")
    parts = [_split_tag(tag, scheme, "BI" if scheme == "BIO" else "BIES") for tag in tags]
    num_tags = len(tags)
    transitions = torch.zeros(num_tags, num_tags, dtype=torch.bool)
    start = torch.zeros(num_tags, dtype=torch.bool)
    end = torch.zeros(num_tags, dtype=torch.bool)
    for j, (prefix_j, kind_j) in enumerate(parts):
        continues_chunk = prefix_j in ("I", "E")
        start[j] = not continues_chunk
        end[j] = scheme == "BIO" or prefix_j in ("O", "E", "S")
        for i, (prefix_i, kind_i) in enumerate(parts):
            inside_i = prefix_i in ("B", "I")
            if continues_chunk:
                transitions[i, j] = inside_i and kind_i == kind_j
            elif scheme == "BIOES":
                transitions[i, j] = not inside_i
            else:
                transitions[i, j] = True
    return AllowedTransitions(transitions, start, end)


def check_allowed(allowed: AllowedTransitions, num_tags: int, where: str) -> None:
    """Check shapes and dtype of the masks and that some sequence of every length is allowed."""
    if not isinstance(allowed, tuple) or len(allowed) != 3:
        raise TypeError(f"{where}: allowed must be an AllowedTransitions(transitions, start, end)")
    expected = {"transitions": (num_tags, num_tags), "start": (num_tags,), "end": (num_tags,)}
    for name, mask in zip(AllowedTransitions._fields, allowed):
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != expected[name]:
            got = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, Tensor) else type(mask).__name__
            raise ValueError(f"{where}: allowed.{name} must be a bool tensor of shape {expected[name]}, got {got}")
    if not bool((allowed.start & allowed.end).any()) and not bool(
        (allowed.start[:, None] & allowed.transitions).any()
    ):
        raise ValueError(f"{where}: the allowed masks forbid every sequence (no allowed start tag can go on)")


def apply_allowed(
    transitions: Tensor, start: Tensor, end: Tensor, allowed: Optional[AllowedTransitions]
) -> tuple[Tensor, Tensor, Tensor]:
    """Set the forbidden transition, start and end potentials to ``-inf`` (differentiable).

    Shapes:
        - transitions: ``[K, K]``; start, end: ``[K]``; returns the same shapes.
    """
    if allowed is None:
        return transitions, start, end
    device = transitions.device
    return (
        transitions.masked_fill(~allowed.transitions.to(device), float("-inf")),
        start.masked_fill(~allowed.start.to(device), float("-inf")),
        end.masked_fill(~allowed.end.to(device), float("-inf")),
    )
