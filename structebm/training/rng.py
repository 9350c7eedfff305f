"""Save and restore the random-number generators that objectives own.

Samplers take randomness only from an explicit :class:`torch.Generator`; the objective
(or a chain source inside it) owns that generator. To resume a run so that it continues
exactly as an uninterrupted one would, its state goes into the checkpoint. Any
submodule with ``generator_state() -> Tensor`` and ``load_generator_state(Tensor)`` takes
part, keyed by its qualified name.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["collect_generator_states", "load_generator_states", "decorrelate_across_ranks"]


def collect_generator_states(root: nn.Module) -> dict[str, Tensor]:
    """Map each participating submodule's qualified name to its generator state."""
    return {
        name: module.generator_state()
        for name, module in root.named_modules()
        if callable(getattr(module, "generator_state", None))
    }


def load_generator_states(root: nn.Module, states: dict[str, Tensor]) -> None:
    """Restore states saved by :func:`collect_generator_states`; a missing key is an error."""
    modules = dict(root.named_modules())
    for name, state in states.items():
        if name not in modules or not callable(getattr(modules[name], "load_generator_state", None)):
            raise KeyError(f"checkpoint has a generator state for '{name}', which this model does not have")
        modules[name].load_generator_state(state)


def decorrelate_across_ranks(root: nn.Module, rank: int) -> None:
    """Give each distributed rank its own random stream (rank 0 keeps its state unchanged).

    All ranks start from the same seed (or, on resume, from rank 0's checkpointed state);
    without this, every rank would run identical chains. Rank ``r > 0`` re-seeds each
    generator from a draw of its current state mixed with ``r``.
    """
    if rank == 0:
        return
    for _, module in root.named_modules():
        if not callable(getattr(module, "generator_state", None)):
            continue
        state = module.generator_state()
        current = torch.Generator()
        if state.numel() != current.get_state().numel():
            raise RuntimeError("decorrelate_across_ranks: only CPU-format generator states are supported")
        current.set_state(state)
        base = int(torch.randint(0, 2**62, (), generator=current))
        fresh = torch.Generator().manual_seed((base + 1_000_003 * rank) % 2**63)
        module.load_generator_state(fresh.get_state())
