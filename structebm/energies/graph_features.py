"""Chemistry features of (relaxed) one-hot molecular graphs: valences and fragment count.

For atom one-hots ``X [B, N, A+1]`` (channel 0 = empty slot) and bond one-hots
``B [B, N, N, 4]`` (channel 0 = no bond), with the vocabulary's largest valence
:math:`v_{\\max}(a)` of each atom type ``a`` (0 for the empty slot):

.. math::
    v_i = \\sum_j \\sum_{r=1}^{3} r\\, B_{ijr}, \\qquad
    m_i = \\sum_a X_{ia}\\, v_{\\max}(a), \\qquad
    o_i = 1 - X_{i0},

the used valence, the allowed valence and the occupancy of slot ``i``. The per-atom features
are :math:`(v_i,\\ \\mathrm{relu}(v_i - m_i),\\ \\mathrm{relu}(m_i - v_i))`: bonds used, excess
(a broken valence) and free valence (implicit hydrogens). The graph-level statistics are the
total excess :math:`\\sum_i o_i \\mathrm{relu}(v_i - m_i)` and the number of fragments beyond one,

.. math::
    \\kappa(G) - 1, \\qquad
    \\kappa(G) = \\sum_k e^{-\\lambda_k / \\tau} - \\sum_i (1 - o_i),

where :math:`\\lambda_k` are the eigenvalues of the Laplacian :math:`L = D - W` of the bond
graph :math:`W_{ij} = o_i o_j (1 - B_{ij0})` (:math:`i \\ne j`). A graph's Laplacian has one
zero eigenvalue per connected component, and every empty slot is a component of its own, so
on exact one-hots :math:`\\kappa` is the number of fragments of the molecule up to
:math:`e^{-\\lambda_2/\\tau}` per fragment, with :math:`\\lambda_2` the smallest non-zero eigenvalue
(a 9-atom chain has :math:`\\lambda_2 \\approx 0.12`, so with ``tau = 0.01`` the error is below
:math:`10^{-5}`). Every feature is differentiable in both one-hot tensors, which
Gibbs-with-gradients and Langevin on graphs need; the eigenvalue gradient
:math:`\\partial \\lambda_k / \\partial L = u_k u_k^\\top` is defined even for repeated eigenvalues.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from structebm.chem.vocab import get_vocabulary

__all__ = ["ChemistryFeatures", "NUM_ATOM_FEATURES", "NUM_GRAPH_FEATURES"]

NUM_ATOM_FEATURES = 3
NUM_GRAPH_FEATURES = 2


class ChemistryFeatures(nn.Module):
    """Valence features per atom and violation statistics per graph (see the module docstring).

    Args:
        vocabulary: name of the atom vocabulary (``"qm9"`` or ``"zinc250k"``) whose valence
            rules define :math:`v_{\\max}`.
        tau: temperature of the soft fragment count.

    Shapes:
        - atoms_one_hot ``[B, N, A+1]``, bonds_one_hot ``[B, N, N, 4]``
        - returns: atom features ``[B, N, 3]`` and graph features ``[B, 2]`` (total excess, fragments - 1)
    """

    def __init__(self, vocabulary: str, tau: float = 0.01) -> None:
        super().__init__()
        if not tau > 0:
            raise ValueError(f"ChemistryFeatures: tau must be > 0, got {tau}")
        self.vocabulary = vocabulary
        self.tau = float(tau)
        self.register_buffer("max_valence", get_vocabulary(vocabulary).max_valence_table().to(torch.get_default_dtype()))
        self.register_buffer("bond_orders", torch.arange(4, dtype=torch.get_default_dtype()))

    @property
    def num_atom_values(self) -> int:
        return self.max_valence.shape[0]

    def forward(self, atoms_one_hot: Tensor, bonds_one_hot: Tensor) -> tuple[Tensor, Tensor]:
        if atoms_one_hot.shape[-1] != self.num_atom_values:
            raise ValueError(
                f"ChemistryFeatures: the '{self.vocabulary}' vocabulary has {self.num_atom_values} atom values "
                f"(empty slot included), but atoms_one_hot has {atoms_one_hot.shape[-1]}"
            )
        dtype = atoms_one_hot.dtype
        occupancy = 1.0 - atoms_one_hot[..., 0]  # [B, N]
        used = (bonds_one_hot @ self.bond_orders.to(dtype)).sum(dim=2)  # [B, N]
        allowed = atoms_one_hot @ self.max_valence.to(dtype)  # [B, N]
        excess = torch.relu(used - allowed)
        atom_features = torch.stack([used, excess, torch.relu(allowed - used)], dim=-1) * occupancy[..., None]
        total_excess = (occupancy * excess).sum(dim=1)
        return atom_features, torch.stack([total_excess, self.fragments(occupancy, bonds_one_hot) - 1.0], dim=-1)

    def fragments(self, occupancy: Tensor, bonds_one_hot: Tensor) -> Tensor:
        """Soft number of fragments ``[B]`` of the molecule (0 for an empty graph)."""
        num_nodes = occupancy.shape[1]
        off_diagonal = 1.0 - torch.eye(num_nodes, dtype=occupancy.dtype, device=occupancy.device)
        weights = (1.0 - bonds_one_hot[..., 0]) * occupancy[:, :, None] * occupancy[:, None, :] * off_diagonal
        laplacian = torch.diag_embed(weights.sum(dim=2)) - weights
        # double precision: a zero eigenvalue computed as 1e-6 in float32 would count 1e-4 less (tau = 0.01)
        eigenvalues = torch.linalg.eigvalsh(laplacian.double())
        count = torch.exp(-eigenvalues.clamp_min(0.0) / self.tau).sum(dim=1).to(occupancy.dtype)
        return count - (1.0 - occupancy).sum(dim=1)
