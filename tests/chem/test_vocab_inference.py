"""Inferred atom vocabularies (elements with formal charges, capacity) and their one-line spec."""

from __future__ import annotations

import pytest
from rdkit import Chem

from structebm.chem.convert import dense_to_smiles, smiles_to_dense
from structebm.chem.valence import ValenceConstraint
from structebm.chem.vocab import QM9_VOCABULARY, get_vocabulary
from structebm.chem.vocab_inference import infer_vocabulary, parse_vocabulary_spec, vocabulary_spec

MOLECULES = ["C[N+](C)(C)CC(=O)[O-]", "O=[N+]([O-])c1ccc(Cl)cc1", "CSC", "[NH3+]CC[S-]", "BrCCBr"]


def _mols(smiles):
    return [Chem.MolFromSmiles(s) for s in smiles]


def test_inferred_vocabulary_holds_exactly_the_charged_and_neutral_types_that_occur():
    vocabulary = infer_vocabulary(_mols(MOLECULES))
    # neutral types by atomic number, then charged ones; no neutral N occurs, so none is listed
    assert vocabulary.labels == ("C", "O", "S", "Cl", "Br", "N+", "O-", "S-")
    assert vocabulary.max_atoms == 10  # 4-chloronitrobenzene: 6 C, N, 2 O, Cl
    assert vocabulary.name == "atoms=C,O,S,Cl,Br,N+,O-,S-;max_atoms=10"
    assert [t.max_valence for t in vocabulary.atom_types[-3:]] == [4, 1, 5]  # RDKit's N+, O-, S- (see vocab.py)


def test_every_training_molecule_round_trips_through_its_inferred_vocabulary():
    vocabulary = infer_vocabulary(_mols(MOLECULES))
    graphs = smiles_to_dense(MOLECULES, vocabulary)
    assert dense_to_smiles(graphs, vocabulary) == [Chem.MolToSmiles(m) for m in _mols(MOLECULES)]


def test_spec_round_trips_and_get_vocabulary_accepts_it_wherever_a_name_goes():
    vocabulary = infer_vocabulary(_mols(MOLECULES))
    assert parse_vocabulary_spec(vocabulary.name) == vocabulary
    assert get_vocabulary(vocabulary.name) == vocabulary
    assert ValenceConstraint(vocabulary.name).vocabulary == vocabulary
    spaced = parse_vocabulary_spec("atoms= C, N++ ,O-;max_atoms=4")
    assert spaced.labels == ("C", "N++", "O-") and spaced.name == "atoms=C,N++,O-;max_atoms=4"
    assert vocabulary_spec(QM9_VOCABULARY.atom_types, 9) == "atoms=C,N,O,F,N+,O-,N-,C-;max_atoms=9"


def test_given_types_and_capacity_replace_the_inferred_ones():
    vocabulary = infer_vocabulary(_mols(["CCO"]), atom_types=["O", "C", "N+"], max_atoms=20)
    assert vocabulary.labels == ("O", "C", "N+") and vocabulary.max_atoms == 20


@pytest.mark.parametrize(
    "spec, message",
    [("atoms=Xx;max_atoms=3", "'Xx' is not an element"), ("atoms=N+-;max_atoms=3", "'N\\+-' is not an element"),
     ("atoms=C;max_atoms=x", "max_atoms must be an integer"), ("C,N", "must read"), ("atoms=;max_atoms=3", "names no atom type")],
)
def test_bad_specs_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_vocabulary_spec(spec)


def test_no_molecules_is_an_error():
    with pytest.raises(ValueError, match="no molecules"):
        infer_vocabulary([])
