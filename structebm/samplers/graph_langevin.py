"""Langevin dynamics on relaxed (dequantized) one-hot molecular graphs, as in GraphEBM.

Liu et al., "GraphEBM: Molecular Graph Generation with Energy-Based Models", 2021. A graph
is relaxed to continuous tensors: atoms :math:`X \\in \\mathbb{R}^{N \\times (A+1)}` and a
symmetric bond tensor :math:`B \\in \\mathbb{R}^{N \\times N \\times 4}` whose free variables
are the upper-triangle entries :math:`U_{ij} = B_{ij} = B_{ji}` (``i < j``; the diagonal is fixed
to "no bond"). Data are dequantized by uniform noise, :math:`X = \\text{onehot}(G) + s\\,u`,
:math:`u \\sim \\mathcal{U}[0, 1)` (:func:`dequantize`). One transition is an unadjusted
Langevin step on :math:`(X, U)`, projected onto the box ``bounds``:

.. math::
    X' = \\Pi\\bigl(X - \\epsilon \\nabla_X E + \\sigma \\xi\\bigr), \\qquad
    U'_{ij} = \\Pi\\bigl(U_{ij} - \\epsilon (\\nabla_{B_{ij}} E + \\nabla_{B_{ji}} E) + \\sigma \\xi_{ij}\\bigr),

with :math:`\\xi \\sim \\mathcal{N}(0, I)` and separate step size :math:`\\epsilon` and noise
scale :math:`\\sigma` (a tempered, short-run sampler as used to train EBMs, not an exact one).
The bond gradient is the gradient in the shared variable :math:`U_{ij}`, so symmetry holds
exactly. :func:`to_graph` rounds a relaxed graph to a :class:`DenseMolGraph` by argmax over
channels, then removes bonds to empty slots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import Tensor, nn

from structebm.chem.dense import DenseMolGraph
from structebm.chem.graph_space import NUM_BOND_VALUES, MolGraphSpace
from structebm.chem.vocab import AtomVocabulary
from structebm.energies.base import check_energy_output, require
from structebm.energies.graph import HasGraphOneHotEnergy
from structebm.samplers._categorical import float_dtype_of
from structebm.samplers._diffusion import check_bounds, check_generator
from structebm.samplers.base import ChainDivergedError, ChainState, SamplingAlgorithm, StepInfo, check_positive

__all__ = ["RelaxedMolGraph", "dequantize", "to_graph", "graph_langevin", "DEFAULT_DEQUANTIZATION"]

DEFAULT_DEQUANTIZATION = 0.9
"""GraphEBM's dequantization scale ``s``; the default box is ``[0, 1 + s]``."""

_NAME = "graph_langevin"


@dataclass(frozen=True)
class RelaxedMolGraph:
    """A batch of relaxed one-hot graphs.

    Shapes:
        - atoms: ``[B, N, A + 1]`` float (channel 0 = empty slot)
        - bonds: ``[B, N, N, 4]`` float, symmetric in the two node dimensions (channel 0 = no bond);
          samplers reset the diagonal to "no bond"
    """

    atoms: Tensor
    bonds: Tensor

    @property
    def batch_size(self) -> int:
        return self.atoms.shape[0]


def _symmetric_bonds(pairs: Tensor, num_nodes: int) -> Tensor:
    """Symmetric ``[B, N, N, 4]`` bonds from upper-triangle values ``[B, P, 4]``; diagonal = no bond."""
    rows, cols = torch.triu_indices(num_nodes, num_nodes, offset=1, device=pairs.device)
    bonds = pairs.new_zeros(pairs.shape[0], num_nodes, num_nodes, NUM_BOND_VALUES)
    bonds[:, rows, cols] = pairs
    bonds[:, cols, rows] = pairs
    diagonal = torch.arange(num_nodes, device=pairs.device)
    bonds[:, diagonal, diagonal, 0] = 1.0
    return bonds


def _upper(bonds: Tensor) -> Tensor:
    rows, cols = torch.triu_indices(bonds.shape[1], bonds.shape[1], offset=1, device=bonds.device)
    return bonds[:, rows, cols]


def dequantize(
    graph: DenseMolGraph, vocabulary: AtomVocabulary, generator: torch.Generator, scale: float = DEFAULT_DEQUANTIZATION
) -> RelaxedMolGraph:
    """One-hot encode ``graph`` and add ``scale · U[0, 1)`` noise (symmetric on bonds, none on the diagonal)."""
    space = MolGraphSpace(vocabulary)
    space.validate(graph, "dequantize")
    scale = float(scale)
    if not scale >= 0.0:
        raise ValueError(f"dequantize: scale must be >= 0, got {scale}")
    atoms, bonds = space.one_hot(graph)
    device = atoms.device
    atoms = atoms + scale * torch.rand(atoms.shape, generator=generator, device=device, dtype=atoms.dtype)
    pairs = _upper(bonds)
    pairs = pairs + scale * torch.rand(pairs.shape, generator=generator, device=device, dtype=pairs.dtype)
    return RelaxedMolGraph(atoms, _symmetric_bonds(pairs, graph.max_atoms))


def to_graph(relaxed: RelaxedMolGraph) -> DenseMolGraph:
    """Round to a :class:`DenseMolGraph`: argmax atom and bond channels, drop bonds to empty slots."""
    atoms = relaxed.atoms.argmax(dim=-1)
    orders = _upper(relaxed.bonds).argmax(dim=-1)
    num_nodes = atoms.shape[1]
    rows, cols = torch.triu_indices(num_nodes, num_nodes, offset=1, device=atoms.device)
    bonds = atoms.new_zeros(atoms.shape[0], num_nodes, num_nodes)
    occupied = atoms > 0
    orders = orders * (occupied[:, rows] & occupied[:, cols])
    bonds[:, rows, cols] = orders
    bonds[:, cols, rows] = orders
    return DenseMolGraph(atoms, bonds, occupied)


def _check_relaxed(x: RelaxedMolGraph, space: MolGraphSpace, bounds: Optional[tuple[float, float]], where: str) -> None:
    n, values = space.max_atoms, space.num_atom_values
    atoms, bonds = x.atoms, x.bonds
    if not all(isinstance(t, Tensor) and t.is_floating_point() for t in (atoms, bonds)):
        raise TypeError(f"{where}: a RelaxedMolGraph needs floating-point atoms and bonds tensors")
    if atoms.dim() != 3 or atoms.shape[1:] != (n, values) or bonds.shape != (atoms.shape[0], n, n, NUM_BOND_VALUES):
        raise ValueError(
            f"{where}: expected atoms [B, {n}, {values}] and bonds [B, {n}, {n}, {NUM_BOND_VALUES}], "
            f"got {tuple(atoms.shape)} and {tuple(bonds.shape)}"
        )
    finite = torch.isfinite(atoms.flatten(1)).all(dim=1) & torch.isfinite(bonds.flatten(1)).all(dim=1)
    if not finite.all():
        raise ValueError(f"{where}: NaN or infinite values in graph(s) {(~finite).nonzero().flatten()[:8].tolist()}")
    asymmetric = (bonds != bonds.transpose(1, 2)).flatten(1).any(dim=1)
    if asymmetric.any():
        raise ValueError(f"{where}: bonds must be symmetric (graph(s) {asymmetric.nonzero().flatten()[:8].tolist()})")
    if bounds is not None:
        outside = torch.cat([atoms.flatten(1), _upper(bonds).flatten(1)], dim=1)
        outside = ((outside < bounds[0]) | (outside > bounds[1])).any(dim=1)
        if outside.any():
            bad = outside.nonzero().flatten()[:8].tolist()
            raise ValueError(f"{where}: values outside bounds {bounds} in graph(s) {bad}")


def graph_langevin(
    energy: nn.Module,
    vocabulary: AtomVocabulary,
    step_size: float,
    noise_scale: float,
    bounds: Optional[tuple[float, float]] = (0.0, 1.0 + DEFAULT_DEQUANTIZATION),
) -> SamplingAlgorithm:
    """Build the GraphEBM-style Langevin sampler on relaxed graphs (see the module docstring).

    Args:
        energy: an energy with ``one_hot_energy(atoms_one_hot, bonds_one_hot, c) -> [B]``.
        vocabulary: the atom vocabulary; ``N = vocabulary.max_atoms`` slots.
        step_size: :math:`\\epsilon`.
        noise_scale: :math:`\\sigma` (``0`` gives gradient descent).
        bounds: ``(low, high)`` box every relaxed value is clamped into, or ``None``.

    Returns:
        ``SamplingAlgorithm(init, step)``. ``init`` takes a :class:`DenseMolGraph` (exact one-hot
        start) or a :class:`RelaxedMolGraph` (e.g. from :func:`dequantize`); ``state.x`` is a
        :class:`RelaxedMolGraph` (round it with :func:`to_graph`). ``state.grad`` is the gradient
        in the free variables, ``[B, N(A+1) + 4P]`` (atoms, then bond pairs ``i < j``).
        ``StepInfo`` has ``energy``, ``grad_norm``, ``acceptance_rate`` (ones) and
        ``extra["valence_valid"]`` (1.0 where ``to_graph`` of the new state is valence-valid).

    Shapes:
        - state.x.atoms ``[B, N, A + 1]``, state.x.bonds ``[B, N, N, 4]``; info fields ``[B]``
    """
    require(energy, HasGraphOneHotEnergy, _NAME)
    step_size = check_positive(step_size, "step_size", _NAME)
    if isinstance(noise_scale, bool) or not isinstance(noise_scale, (int, float)) or not 0.0 <= noise_scale < float("inf"):
        raise ValueError(f"{_NAME}: noise_scale must be a finite number >= 0, got {noise_scale!r}")
    bounds = check_bounds(bounds, _NAME)
    space = MolGraphSpace(vocabulary)
    dtype = float_dtype_of(energy)
    atom_size = space.max_atoms * space.num_atom_values

    def energy_and_grad(x: RelaxedMolGraph, c: Optional[Tensor], where: str) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            atoms = x.atoms.detach().requires_grad_(True)
            bonds = x.bonds.detach().requires_grad_(True)
            values = energy.one_hot_energy(atoms, bonds, c)
            if not isinstance(values, Tensor) or values.shape != (x.batch_size,):
                check_energy_output(values, x.batch_size, where)
            atom_grad, bond_grad = torch.autograd.grad(values.sum(), (atoms, bonds))
        grad = torch.cat([atom_grad.flatten(1), (_upper(bond_grad) + _upper(bond_grad.transpose(1, 2))).flatten(1)], dim=1)
        bad = ~(torch.isfinite(values) & torch.isfinite(grad).all(dim=1))
        if bad.any():
            raise ChainDivergedError(
                f"{where}: energy or gradient not finite for chain(s) {bad.nonzero().flatten()[:8].tolist()}; "
                "lower the step size or regularise the energy magnitude"
            )
        return values.detach(), grad

    def init(x: Union[DenseMolGraph, RelaxedMolGraph], c: Optional[Tensor] = None) -> ChainState:
        where = f"{_NAME}.init"
        if isinstance(x, DenseMolGraph):
            space.validate(x, where)
            x = RelaxedMolGraph(*space.one_hot(x, dtype))
        elif isinstance(x, RelaxedMolGraph):
            _check_relaxed(x, space, bounds, where)
            pairs = _upper(x.bonds.detach().to(dtype))
            x = RelaxedMolGraph(x.atoms.detach().to(dtype).clone(), _symmetric_bonds(pairs, space.max_atoms))
        else:
            raise TypeError(f"{where}: expected a DenseMolGraph or RelaxedMolGraph, got {type(x).__name__}")
        values, grad = energy_and_grad(x, c, where)
        return ChainState(x=x, c=c, energy=values, grad=grad, step=0)

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, StepInfo]:
        where = f"{_NAME}.step {state.step + 1}"
        x = state.x
        check_generator(generator, x.atoms, where)
        free = torch.cat([x.atoms.flatten(1), _upper(x.bonds).flatten(1)], dim=1)
        noise = torch.randn(free.shape, generator=generator, device=free.device, dtype=free.dtype)
        free = free - step_size * state.grad + float(noise_scale) * noise
        if bounds is not None:
            free = free.clamp(bounds[0], bounds[1])
        atoms = free[:, :atom_size].reshape(x.atoms.shape)
        pairs = free[:, atom_size:].reshape(x.batch_size, space.num_pairs, NUM_BOND_VALUES)
        new_x = RelaxedMolGraph(atoms, _symmetric_bonds(pairs, space.max_atoms))
        values, grad = energy_and_grad(new_x, state.c, where)
        new_state = ChainState(x=new_x, c=state.c, energy=values, grad=grad, step=state.step + 1)
        info = StepInfo(
            energy=values,
            grad_norm=grad.norm(dim=1),
            acceptance_rate=torch.ones_like(values),
            extra={"valence_valid": space.valence_valid(to_graph(new_x)).to(values.dtype)},
        )
        return new_state, info

    return SamplingAlgorithm(init, step)
