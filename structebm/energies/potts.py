"""Potts model (pairwise Markov random field over categorical sites) and the Ising special case.

For a state ``x ∈ {0, …, K-1}^L`` with fields ``h ∈ R^{L×K}``, symmetric couplings
``J ∈ R^{L×L×K×K}`` (``J_ij[a, b] = J_ji[b, a]``, ``J_ii = 0``) and an optional
external field ``c ∈ R^{B×L×K}``:

.. math::
    E(x, c) = -\\sum_i \\bigl(h_i[x_i] + c_i[x_i]\\bigr) - \\sum_{i<j} J_{ij}[x_i, x_j].

Changing site ``i`` to ``k`` changes the energy by the local field ``φ_i(k) = h_i[k] + c_i[k]
+ Σ_j J_ij[k, x_j]``:

.. math::
    E(x_{i \\leftarrow k}) - E(x) = -\\bigl(φ_i(k) - φ_i(x_i)\\bigr).

The energy, these local changes and the one-hot energy share one product of the
flattened one-hot state with the ``[LK, LK]`` coupling matrix, ``O(B (LK)^2)`` each.

Couplings are stored unconstrained (``W``) and used as ``J = ½(W + W^⊤) ⊙ P`` where
``W^⊤_ij[a, b] = W_ji[b, a]`` and ``P`` is a fixed symmetric 0/1 pattern with zero diagonal
(all pairs by default, a lattice for Ising), so symmetry and sparsity hold at every step.
Exact inference (:meth:`PottsEnergy.log_partition`, :meth:`~PottsEnergy.marginals`,
:meth:`~PottsEnergy.argmax`, :meth:`~PottsEnergy.sample`) enumerates all states and is
only available when ``K^L ≤`` :data:`~structebm.structured.enumerate.MAX_ENUMERATION_STATES`.
"""

from __future__ import annotations

import itertools
from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

from structebm.energies.base import Energy
from structebm.structured.enumerate import (
    check_categorical_states,
    check_enumerable,
    enumerate_energies,
    one_hot_states,
    log_partition_from_energies,
    marginals_from_log_probs,
    sample_from_log_probs,
    all_states,
)

__all__ = ["PottsEnergy", "lattice_pattern", "spins_to_states", "states_to_spins"]


def lattice_pattern(shape: Union[int, Sequence[int]], periodic: bool = False) -> Tensor:
    """Nearest-neighbour adjacency of a hyper-cubic lattice, sites in row-major order.

    Shapes:
        - returns: ``[L, L]`` bool, symmetric, zero diagonal, ``L = prod(shape)``.
    """
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    if not dims or any(d < 1 for d in dims):
        raise ValueError(f"lattice_pattern: shape must be positive integers, got {shape}")
    coords = list(itertools.product(*(range(d) for d in dims)))
    index = {coord: n for n, coord in enumerate(coords)}
    pattern = torch.zeros(len(coords), len(coords), dtype=torch.bool)
    for coord in coords:
        for axis, size in enumerate(dims):
            step = list(coord)
            step[axis] += 1
            if step[axis] == size:
                if not periodic:
                    continue
                step[axis] = 0
            i, j = index[coord], index[tuple(step)]
            if i != j:
                pattern[i, j] = pattern[j, i] = True
    return pattern


def spins_to_states(spins: Tensor) -> Tensor:
    """Map Ising spins ``-1 / +1`` to Potts states ``0 / 1``."""
    if not bool(((spins == 1) | (spins == -1)).all()):
        raise ValueError("spins_to_states: spins must be -1 or +1")
    return (spins > 0).long()


def states_to_spins(x: Tensor) -> Tensor:
    """Map Potts states ``0 / 1`` to Ising spins ``-1 / +1``."""
    return 2 * x.long() - 1


class PottsEnergy(Energy):
    """Pairwise Potts energy with learnable fields and symmetric couplings.

    Args:
        length: number of sites ``L``.
        num_states: states per site ``K`` (at least 2).
        coupling_pattern: optional fixed ``[L, L]`` bool pattern of the pairs that interact;
            must be symmetric with a false diagonal. Default: every pair.
        init_std: standard deviation of the random initial fields and couplings (0 → zeros).
        generator: random source for that initialisation.

    Shapes:
        - x: ``[B, L]`` long in ``[0, K)``; c (optional external field): ``[B, L, K]``
        - forward: ``[B]``; local_energy_deltas: ``[B, L, K]``; one_hot_energy: ``[B, L, K] → [B]``
        - log_partition: ``[]`` (``[B]`` with c); marginals: ``[L, K]`` (``[B, L, K]``);
          argmax: ``[L]`` (``[B, L]``); sample: ``[n, L]`` (``[n, B, L]``)
    """

    def __init__(
        self,
        length: int,
        num_states: int,
        coupling_pattern: Optional[Tensor] = None,
        init_std: float = 0.0,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        super().__init__()
        if length < 1 or num_states < 2:
            raise ValueError(f"PottsEnergy: need length >= 1 and num_states >= 2, got L={length}, K={num_states}")
        if init_std < 0:
            raise ValueError(f"PottsEnergy: init_std must be non-negative, got {init_std}")
        self.length, self.num_states = length, num_states
        if coupling_pattern is None:
            coupling_pattern = ~torch.eye(length, dtype=torch.bool)
        self._check_pattern(coupling_pattern)
        self.register_buffer("coupling_pattern", coupling_pattern.clone())
        self.fields = nn.Parameter(init_std * torch.randn(length, num_states, generator=generator))
        self.coupling_weights = nn.Parameter(
            init_std * torch.randn(length, length, num_states, num_states, generator=generator)
        )

    @classmethod
    def ising(
        cls, shape: Union[int, Sequence[int]], coupling: float = 1.0, field: float = 0.0, periodic: bool = False
    ) -> "PottsEnergy":
        """Ising model ``E(s) = -J Σ_{<ij>} s_i s_j - h Σ_i s_i`` on a lattice, ``s = 2x - 1``.

        State ``0`` is spin ``-1`` and state ``1`` is spin ``+1`` (see :func:`spins_to_states`).
        The result is an ordinary, trainable :class:`PottsEnergy` with ``K = 2``.
        """
        pattern = lattice_pattern(shape, periodic)
        model = cls(pattern.shape[0], 2, coupling_pattern=pattern)
        spin = torch.tensor([-1.0, 1.0])
        with torch.no_grad():
            model.fields.copy_(field * spin.expand(model.length, 2))
            model.coupling_weights.copy_(coupling * torch.outer(spin, spin).expand(model.length, model.length, 2, 2))
        return model

    @staticmethod
    def _check_pattern(pattern: Tensor) -> None:
        if pattern.dtype != torch.bool or pattern.dim() != 2 or pattern.shape[0] != pattern.shape[1]:
            raise ValueError(
                f"PottsEnergy: coupling_pattern must be a square bool tensor [L, L], got "
                f"{pattern.dtype} {tuple(pattern.shape)}"
            )
        if pattern.diagonal().any():
            site = int(pattern.diagonal().nonzero()[0])
            raise ValueError(f"PottsEnergy: coupling_pattern has a self-coupling at site {site}; the diagonal must be False")
        if not torch.equal(pattern, pattern.T):
            i, j = (pattern != pattern.T).nonzero()[0].tolist()
            raise ValueError(f"PottsEnergy: coupling_pattern is not symmetric at ({i}, {j})")

    @property
    def couplings(self) -> Tensor:
        """The symmetric, masked couplings ``J`` ``[L, L, K, K]`` actually used."""
        weights = self.coupling_weights
        symmetric = 0.5 * (weights + weights.permute(1, 0, 3, 2))
        return symmetric * self.coupling_pattern[:, :, None, None].to(weights.dtype)

    def _check_condition(self, c: Optional[Tensor], batch_size: Optional[int], where: str) -> None:
        if c is None:
            return
        expected = (batch_size if batch_size is not None else "B", self.length, self.num_states)
        if not isinstance(c, Tensor) or not c.is_floating_point() or c.dim() != 3 or c.shape[1:] != expected[1:]:
            got = tuple(c.shape) if isinstance(c, Tensor) else type(c).__name__
            raise ValueError(f"{where}: the external field c must be a float tensor of shape {expected}, got {got}")
        if batch_size is not None and c.shape[0] != batch_size:
            raise ValueError(f"{where}: c has batch size {c.shape[0]} but x has {batch_size}")
        if not torch.isfinite(c).all():
            b, i, k = (~torch.isfinite(c)).nonzero()[0].tolist()
            raise ValueError(f"{where}: c is not finite at (batch {b}, site {i}, state {k})")

    @property
    def coupling_matrix(self) -> Tensor:
        """``J`` as a symmetric ``[L*K, L*K]`` matrix, entry ``(i*K + a, j*K + b) = J_ij[a, b]``."""
        size = self.length * self.num_states
        return self.couplings.permute(0, 2, 1, 3).reshape(size, size)

    def _field_and_pair_field(self, x_one_hot: Tensor, c: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        """Site fields ``h + c`` and pair fields ``Σ_j J_ij[a, x_j]`` (one matrix product), both ``[B, L, K]``."""
        fields = self.fields if c is None else self.fields + c
        pair_field = (x_one_hot.flatten(1) @ self.coupling_matrix).view_as(x_one_hot)
        return fields, pair_field

    def _energy_of_one_hot(self, x_one_hot: Tensor, c: Optional[Tensor]) -> Tensor:
        fields, pair_field = self._field_and_pair_field(x_one_hot, c)
        return -(x_one_hot * (fields + 0.5 * pair_field)).sum(dim=(1, 2))

    def forward(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        check_categorical_states(x, self.num_states, self.length, where="PottsEnergy.forward")
        self._check_condition(c, x.shape[0], "PottsEnergy.forward")
        return self._energy_of_one_hot(one_hot_states(x, self.num_states, self.fields.dtype), c)

    def local_energy_deltas(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        """``E(x with x_i := k) - E(x)`` for every site and state, in closed form. Shape ``[B, L, K]``."""
        check_categorical_states(x, self.num_states, self.length, where="PottsEnergy.local_energy_deltas")
        self._check_condition(c, x.shape[0], "PottsEnergy.local_energy_deltas")
        fields, pair_field = self._field_and_pair_field(one_hot_states(x, self.num_states, self.fields.dtype), c)
        local_field = fields + pair_field
        return -(local_field - local_field.gather(2, x.long()[:, :, None]))

    def site_colours(self, length: int) -> Tensor:
        """A greedy colouring ``[L]`` of the coupling pattern: no two coupled sites share a colour
        (:class:`~structebm.energies.base.HasSiteColouring`). A lattice gets the two colours of a
        checkerboard; all-pairs couplings get ``L`` colours, one site each."""
        if length != self.length:
            raise ValueError(f"PottsEnergy.site_colours: the model has {self.length} sites, got length {length!r}")
        neighbours = [row.nonzero().flatten().tolist() for row in self.coupling_pattern.cpu()]
        colours: list[int] = []
        for site in range(length):
            taken = {colours[j] for j in neighbours[site] if j < site}
            colours.append(next(colour for colour in range(length) if colour not in taken))
        return torch.tensor(colours, device=self.coupling_pattern.device)

    def one_hot_energy(self, x_one_hot: Tensor, c: Optional[Tensor] = None) -> Tensor:
        """Energy of (relaxed) one-hot states, differentiable in ``x_one_hot`` ``[B, L, K] → [B]``.

        .. math::
            E(X) = -\\sum_{i,a} X_{ia}(h_i[a] + c_i[a]) - \\tfrac12 \\sum_{i,j,a,b} X_{ia} J_{ij}[a,b] X_{jb}.
        """
        expected = (self.length, self.num_states)
        if not isinstance(x_one_hot, Tensor) or not x_one_hot.is_floating_point() or x_one_hot.dim() != 3 or (
            x_one_hot.shape[1:] != expected
        ):
            got = tuple(x_one_hot.shape) if isinstance(x_one_hot, Tensor) else type(x_one_hot).__name__
            raise ValueError(
                f"PottsEnergy.one_hot_energy: expected a float tensor [B, {self.length}, {self.num_states}], got {got}"
            )
        self._check_condition(c, x_one_hot.shape[0], "PottsEnergy.one_hot_energy")
        return self._energy_of_one_hot(x_one_hot, c)

    def _enumerated_energies(self, c: Optional[Tensor], where: str) -> Tensor:
        """Energies of all ``K^L`` states, ``[K^L]`` (``[B, K^L]`` with c)."""
        check_enumerable(self.length, self.num_states, where)
        self._check_condition(c, None, where)
        sites = torch.arange(self.length, device=self.fields.device)

        def energy_of_states(states: Tensor) -> Tensor:
            base = self._energy_of_one_hot(one_hot_states(states, self.num_states, self.fields.dtype), None)
            if c is None:
                return base
            return base[None, :] - c[:, sites, states].sum(dim=-1)

        return enumerate_energies(energy_of_states, self.length, self.num_states, self.fields.device)

    def log_partition(self, c: Optional[Tensor] = None) -> Tensor:
        """Exact ``log Z`` by enumeration (differentiable); ``[]``, or ``[B]`` with c."""
        return log_partition_from_energies(self._enumerated_energies(c, "PottsEnergy.log_partition"))

    def marginals(self, c: Optional[Tensor] = None) -> Tensor:
        """Exact single-site marginals ``p(x_i = k)`` by enumeration; ``[L, K]``, or ``[B, L, K]`` with c."""
        energies = self._enumerated_energies(c, "PottsEnergy.marginals")
        log_probs = -energies - log_partition_from_energies(energies)[..., None]
        return marginals_from_log_probs(log_probs, self.length, self.num_states)

    def argmax(self, c: Optional[Tensor] = None) -> Tensor:
        """Exact lowest-energy state by enumeration; ``[L]``, or ``[B, L]`` with c."""
        with torch.no_grad():
            energies = self._enumerated_energies(c, "PottsEnergy.argmax")
        return all_states(self.length, self.num_states, energies.device)[energies.argmin(dim=-1)]

    def sample(self, c: Optional[Tensor], n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """Exact draws by enumeration; ``[n, L]``, or ``[n, B, L]`` with c (sample dimension first)."""
        with torch.no_grad():
            energies = self._enumerated_energies(c, "PottsEnergy.sample")
            log_probs = -energies - log_partition_from_energies(energies)[..., None]
        return sample_from_log_probs(log_probs, self.length, self.num_states, n, generator)

    def extra_repr(self) -> str:
        pairs = int(self.coupling_pattern.sum()) // 2
        return f"length={self.length}, num_states={self.num_states}, coupled_pairs={pairs}"
