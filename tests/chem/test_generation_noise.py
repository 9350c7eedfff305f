"""Chain starts of molecule sampling: valence-valid noise by default, uniform noise on request."""

import pytest
import torch

from structebm.chem.generation import MoleculeGeneration, sample_molecules
from structebm.chem.valence import is_valence_valid
from structebm.chem.vocab import get_vocabulary
from structebm.energies.graph import RelationalGraphEnergy

QM9 = get_vocabulary("qm9")


def _energy() -> RelationalGraphEnergy:
    torch.manual_seed(0)
    return RelationalGraphEnergy(len(QM9), 3, hidden=8, num_layers=1)


@pytest.mark.parametrize("valid_noise", [True, False])
def test_zero_step_samples_are_the_noise(valid_noise):
    generator = torch.Generator().manual_seed(0)
    graphs = sample_molecules(_energy(), QM9, 200, 0, generator, valid_noise=valid_noise)
    valid = is_valence_valid(graphs, QM9)
    if valid_noise:
        assert bool(valid.all())
    else:  # uniform bond orders 0..3 between up to 9 atoms break some valence almost surely
        assert float((~valid).float().mean()) > 0.5


def test_uniform_noise_needs_unconstrained_chains():
    with pytest.raises(ValueError, match="constrained chains must start from valence-valid noise"):
        sample_molecules(_energy(), QM9, 4, 1, torch.Generator().manual_seed(0), constrained=True, valid_noise=False)
    with pytest.raises(ValueError, match="valid_noise=False"):
        MoleculeGeneration(valid_noise=False)  # the valence_aware variant is in the default variants
    MoleculeGeneration(valid_noise=False, variants=["unconstrained"])
