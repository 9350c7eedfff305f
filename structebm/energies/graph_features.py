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

The gradient of :math:`\\kappa` is taken at a smoother temperature ``gradient_tau`` (a
straight-through estimate: the value is the sharp count, its gradient that of
:math:`\\sum_k e^{-\\lambda_k / \\tau_g}`). At ``tau`` itself the first-order change of joining
two single atoms would be :math:`-2/\\tau = -200` fragments instead of :math:`-1`; a
gradient-informed proposal (Gibbs-with-gradients) then puts all its mass on such moves and
practically never proposes the reverse ones, so chains stop mixing between fragment counts.
With :math:`\\tau_g = 1` the same estimate is :math:`-2` (and smaller for larger fragments).
The Metropolis-Hastings test only uses values, so exactness is unaffected.
"""

from __future__ import annotations

from typing import Union

import torch
from torch import Tensor, nn

from structebm.chem.vocab import AtomVocabulary, get_vocabulary

__all__ = ["ChemistryFeatures", "NUM_ATOM_FEATURES", "NUM_GRAPH_FEATURES"]

NUM_ATOM_FEATURES = 3
NUM_GRAPH_FEATURES = 2


class ChemistryFeatures(nn.Module):
    """Valence features per atom and violation statistics per graph (see the module docstring).

    Args:
        vocabulary: the atom vocabulary whose valence rules define :math:`v_{\\max}`, or its
            registered name (``"qm9"``, ``"zinc250k"``).
        tau: temperature of the soft fragment count (its value).
        gradient_tau: temperature of the fragment count's gradient (see the module docstring).

    Shapes:
        - atoms_one_hot ``[B, N, A+1]``, bonds_one_hot ``[B, N, N, 4]``
        - returns: atom features ``[B, N, 3]`` and graph features ``[B, 2]`` (total excess, fragments - 1)
    """

    def __init__(self, vocabulary: Union[str, AtomVocabulary], tau: float = 0.01, gradient_tau: float = 1.0) -> None:
        super().__init__()
        for name, value in (("tau", tau), ("gradient_tau", gradient_tau)):
            if not value > 0:
                raise ValueError(f"ChemistryFeatures: {name} must be > 0, got {value}")
        self.gradient_tau = float(gradient_tau)
        atom_vocabulary = get_vocabulary(vocabulary) if isinstance(vocabulary, str) else vocabulary
        self.vocabulary = atom_vocabulary.name
        self.tau = float(tau)
        self.register_buffer("max_valence", atom_vocabulary.max_valence_table().to(torch.get_default_dtype()))
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
        num_nodes = occupancy.shape[1]
        off_diagonal = 1.0 - torch.eye(num_nodes, dtype=occupancy.dtype, device=occupancy.device)
        weights = (1.0 - bonds_one_hot[..., 0]) * occupancy[:, :, None] * occupancy[:, None, :] * off_diagonal
        laplacian = torch.diag_embed(weights.sum(dim=2)) - weights
        # double precision: a zero eigenvalue computed as 1e-6 in float32 would count 1e-4 less (tau = 0.01)
        eigenvalues = torch.linalg.eigvalsh(laplacian.double())
        eigenvalues = eigenvalues.clamp_min(0.0)
        sharp = torch.exp(-eigenvalues / self.tau).sum(dim=1)
        smooth = torch.exp(-eigenvalues / self.gradient_tau).sum(dim=1)
        count = (smooth + (sharp - smooth).detach()).to(occupancy.dtype)  # value: sharp; gradient: smooth
        return count - (1.0 - occupancy).sum(dim=1)
