"""Shared pieces of the samplers over categorical states ``x ∈ {0, …, K-1}^L``.

- :func:`frozen_sites` turns a user mask into a ``[B, L]`` bool tensor of sites that must
  not change (padding, observed positions);
- :func:`sample_categorical` draws one index per row from unnormalised log-probabilities
  with the Gumbel-max trick, using only the explicit generator:

.. math::
    \\arg\\max_k \\bigl(\\ell_k + G_k\\bigr) \\sim \\operatorname{softmax}(\\ell), \\qquad
    G_k = -\\log(-\\log U_k),\\; U_k \\sim \\mathcal U(0, 1).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

__all__ = ["frozen_sites", "sample_categorical", "float_dtype_of"]


def frozen_sites(mask: Optional[Tensor], x: Tensor, where: str) -> Tensor:
    """Normalise ``mask`` (``True`` = the site keeps its value) to a ``[B, L]`` bool tensor.

    Shapes:
        - mask: ``None``, ``[L]`` (same for every chain) or ``[B, L]``
        - x: ``[B, L]``
        - returns: ``[B, L]`` bool on ``x.device``
    """
    batch_size, length = x.shape
    if mask is None:
        return torch.zeros(batch_size, length, dtype=torch.bool, device=x.device)
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise TypeError(f"{where}: mask must be a bool tensor ([L] or [B, L], True = frozen site), got {got}")
    if mask.shape == (length,):
        return mask.to(x.device).expand(batch_size, length)
    if mask.shape == (batch_size, length):
        return mask.to(x.device)
    raise ValueError(
        f"{where}: mask has shape {tuple(mask.shape)}, expected ({length},) or ({batch_size}, {length}) "
        f"to match the state of shape {tuple(x.shape)}"
    )


def sample_categorical(logits: Tensor, generator: torch.Generator) -> Tensor:
    """One draw per row from ``softmax(logits)`` over the last dimension (Gumbel-max).

    Entries equal to ``-inf`` are never drawn; each row needs at least one finite entry.

    Shapes:
        - logits: ``[..., K]``
        - returns: ``[...]`` long
    """
    uniform = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    uniform = uniform.clamp_min(torch.finfo(logits.dtype).tiny)
    gumbel = -torch.log(-torch.log(uniform))
    return (logits + gumbel).argmax(dim=-1)


def float_dtype_of(module: nn.Module) -> torch.dtype:
    """The floating dtype of a module's parameters, or the default dtype if it has none."""
    for parameter in module.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.get_default_dtype()
