"""molecule_statistics on molecules whose statistics are known by hand."""

import pytest
from rdkit import Chem

from structebm.chem.statistics import molecule_statistics
from structebm.chem.vocab import get_vocabulary


def test_statistics_of_hand_made_molecules():
    # ethanol: 3 atoms, 2 single bonds, no ring; benzene: 6 aromatic C in one 6-ring;
    # cyclopropanone: C3 ring + C=O; nitromethane has N+ and O- (in QM9's vocabulary); HCl's Cl is not
    mols = [Chem.MolFromSmiles(s) for s in ("CCO", "c1ccccc1", "O=C1CC1", "C[N+](=O)[O-]", "CCl")]
    stats = molecule_statistics(mols, get_vocabulary("qm9"))
    assert stats["num_molecules"] == 5
    assert stats["atoms_per_molecule"] == pytest.approx((3 + 6 + 4 + 4 + 2) / 5)
    # atoms: C 2+6+3+1+1 = 13, O 1+1+1 = 3, N+ 1, O- 1, other (Cl) 1 -> 19
    assert stats["atom_types"] == pytest.approx({"C": 13 / 19, "O": 3 / 19, "N+": 1 / 19, "O-": 1 / 19, "other": 1 / 19})
    # bonds: CCO 2 single; benzene 6 aromatic; cyclopropanone 3 single + 1 double; nitromethane 2 single + 1 double; CCl 1 single
    assert stats["bond_types"] == pytest.approx({"AROMATIC": 6 / 16, "DOUBLE": 2 / 16, "SINGLE": 8 / 16})
    assert stats["rings_per_molecule"] == pytest.approx(2 / 5)
    assert stats["ring_sizes"] == pytest.approx({"3": 0.5, "6": 0.5})
    assert stats["aromatic_molecules"] == pytest.approx(1 / 5)


def test_statistics_reject_empty_and_non_molecules():
    with pytest.raises(ValueError, match="no molecules"):
        molecule_statistics([], get_vocabulary("qm9"))
    with pytest.raises(ValueError, match="item 1 is NoneType"):
        molecule_statistics([Chem.MolFromSmiles("C"), None], get_vocabulary("qm9"))
