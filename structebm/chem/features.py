"""Chemistry features of (relaxed) one-hot molecular graphs: valences and fragment count.

A feature module for :class:`~structebm.energies.graph.RelationalGraphEnergy` (``features=``).
For atom one-hots ``X [B, N, A+1]`` (channel 0 = empty slot) and bond one-hots
``B [B, N, N, 4]`` (channel 0 = no bond), with the maximum valence :math:`v_{\\max}(a)` of
:class:`~structebm.chem.valence.ValenceConstraint` (0 for the empty slot):

.. math::
    v_i = \\sum_j \\sum_{r=1}^{3} r\\, B_{ijr}, \\qquad
    m_i = \\sum_a X_{ia}\\, v_{\\max}(a), \\qquad
    o_i = 1 - X_{i0},

the used valence, the allowed valence and the occupancy of slot ``i`` (on exact one-hots the
valence rule reads :math:`v_i \\le m_i`). The per-atom features are
:math:`(v_i,\\ \\mathrm{relu}(v_i - m_i),\\ \\mathrm{relu}(m_i - v_i))`: bonds used, excess (a
broken valence) and free valence (implicit hydrogens). The graph terms are the total excess
:math:`\\sum_i o_i \\mathrm{relu}(v_i - m_i)` and the number of fragments beyond one,
:math:`\\kappa(G) - 1` (:func:`~structebm.graphs.components.soft_component_count`). Every
feature is differentiable in both one-hot tensors, which Gibbs-with-gradients and Langevin on
graphs need. The energy adds the graph terms with learned non-negative weights.
"""

from __future__ import annotations

from typing import Union

import torch
from torch import Tensor, nn

from structebm.chem.valence import ValenceConstraint
from structebm.chem.vocab import AtomVocabulary
from structebm.graphs.components import soft_component_count

__all__ = ["ChemistryFeatures"]


class ChemistryFeatures(nn.Module):
    """Valence features per atom and violation statistics per graph (see the module docstring).

    Args:
        vocabulary: the atom vocabulary whose valence rule defines :math:`v_{\\max}`, or its
            registered name (``"qm9"``, ``"zinc250k"``).
        tau: temperature of the soft fragment count (its value).
        gradient_tau: temperature of the fragment count's gradient
            (:func:`~structebm.graphs.components.soft_component_count`).

    Shapes:
        - atoms_one_hot ``[B, N, A+1]``, bonds_one_hot ``[B, N, N, 4]``
        - returns: atom features ``[B, N, 3]`` and graph terms ``[B, 2]`` (total excess, fragments - 1)
    """

    num_node_features = 3
    num_graph_terms = 2

    def __init__(self, vocabulary: Union[str, AtomVocabulary], tau: float = 0.01, gradient_tau: float = 1.0) -> None:
        super().__init__()
        for name, value in (("tau", tau), ("gradient_tau", gradient_tau)):
            if not value > 0:
                raise ValueError(f"ChemistryFeatures: {name} must be > 0, got {value}")
        self.gradient_tau = float(gradient_tau)
        valence = ValenceConstraint(vocabulary)
        self.vocabulary = valence.vocabulary.name
        self.tau = float(tau)
        self.register_buffer("max_valence", valence.max_valence.to(torch.get_default_dtype()))
        self.register_buffer("bond_orders", torch.arange(4, dtype=torch.get_default_dtype()))

    @property
    def num_node_values(self) -> int:
        """``A + 1``: atom types and the empty slot."""
        return self.max_valence.shape[0]

    def forward(self, atoms_one_hot: Tensor, bonds_one_hot: Tensor) -> tuple[Tensor, Tensor]:
        if atoms_one_hot.shape[-1] != self.num_node_values:
            raise ValueError(
                f"ChemistryFeatures: the '{self.vocabulary}' vocabulary has {self.num_node_values} atom values "
                f"(empty slot included), but atoms_one_hot has {atoms_one_hot.shape[-1]}"
            )
        dtype = atoms_one_hot.dtype
        occupancy = 1.0 - atoms_one_hot[..., 0]  # [B, N]
        bond_order = bonds_one_hot @ self.bond_orders.to(dtype)  # [B, N, N]
        used = bond_order.sum(dim=2)  # [B, N]
        allowed = atoms_one_hot @ self.max_valence.to(dtype)  # [B, N]
        excess = torch.relu(used - allowed)
        atom_features = torch.stack([used, excess, torch.relu(allowed - used)], dim=-1) * occupancy[..., None]
        total_excess = self.total_excess(atoms_one_hot, bonds_one_hot, occupancy, bond_order, allowed, excess)
        return atom_features, torch.stack([total_excess, self.fragments(occupancy, bonds_one_hot) - 1.0], dim=-1)

    def total_excess(
        self,
        atoms_one_hot: Tensor,
        bonds_one_hot: Tensor,
        occupancy: Tensor,
        bond_order: Tensor,
        allowed: Tensor,
        excess: Tensor,
    ) -> Tensor:
        r"""Total valence excess ``[B]`` whose gradient gives every single-site change exactly.

        The value is :math:`\sum_i o_i\, \mathrm{relu}(v_i - m_i)`. Its gradient in the one-hot
        entry of value ``k`` of a site is the change of the atom's excess when that site alone
        takes value ``k``: for the bond entry ``(i, j, k)``,
        :math:`o_i\,[\mathrm{relu}(v_i - \bar b_{ij} + k - m_i) - \mathrm{relu}(v_i - m_i)]` with
        :math:`\bar b_{ij} = \sum_r r B_{ijr}`, and for the atom entry ``(i, a)``,
        :math:`[a \ne 0]\,\mathrm{relu}(v_i - v_{\max}(a)) - o_i\,\mathrm{relu}(v_i - m_i)`
        (a straight-through estimate, as for the fragment count). The relu's own gradient is 0
        at a saturated atom, so a first-order proposal would think a bond to it free and
        propose moves that the Metropolis-Hastings test then rejects; with these gradients
        the first-order change ``g_k - g_current`` of this term is exact for every single-site
        change of an exact one-hot graph (the bond site's two entries ``(i, j)`` and ``(j, i)``
        carry the two atoms' changes). ``bond_order [B, N, N]``, ``allowed [B, N]`` and
        ``excess [B, N]`` are :math:`\bar b_{ij}`, :math:`m_i` and :math:`\mathrm{relu}(v_i - m_i)`
        as :meth:`forward` computed them.
        """
        with torch.no_grad():
            held = occupancy * excess  # [B, N]
            used = bond_order.sum(dim=2)  # [B, N]
            others = (used - allowed)[:, :, None] - bond_order  # [B, N, N]: v_i - m_i - b_ij
            bond_slope = occupancy[:, :, None, None] * torch.relu(others[..., None] + self.bond_orders)
            bond_slope = bond_slope - held[:, :, None, None]
            atom_excess = torch.relu(used[:, :, None] - self.max_valence)  # [B, N, A+1]
            atom_excess[..., 0] = 0.0  # an empty slot has no excess
            atom_slope = atom_excess - held[..., None]
        surrogate = (bonds_one_hot * bond_slope).sum(dim=(1, 2, 3)) + (atoms_one_hot * atom_slope).sum(dim=(1, 2))
        return held.sum(dim=1) + surrogate - surrogate.detach()

    def fragments(self, occupancy: Tensor, bonds_one_hot: Tensor) -> Tensor:
        """Number of fragments ``[B]`` of the molecule (0 for an empty graph), with a smoothed gradient."""
        return soft_component_count(occupancy, bonds_one_hot, self.tau, self.gradient_tau)
