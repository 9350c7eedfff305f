"""Valence rules and the valency correction on hand-made graphs, checked against RDKit."""

from __future__ import annotations

import torch

from structebm.chem.convert import dense_to_mols, smiles_to_dense
from structebm.chem.dense import DenseMolGraph
from structebm.chem.valence import atom_valences, correct_valence, is_valence_valid, valence_excess, valence_violations
from structebm.chem.vocab import QM9_VOCABULARY, ZINC250K_VOCABULARY, AtomType


def _graph(atoms: list[int], edges: dict[tuple[int, int], int], capacity: int = 9) -> DenseMolGraph:
    atom_tensor = torch.zeros(1, capacity, dtype=torch.long)
    atom_tensor[0, : len(atoms)] = torch.tensor(atoms)
    bonds = torch.zeros(1, capacity, capacity, dtype=torch.long)
    for (i, j), order in edges.items():
        bonds[0, i, j] = bonds[0, j, i] = order
    return DenseMolGraph.from_tensors(atom_tensor, bonds)


def test_max_valences_follow_rdkit_and_charge():
    assert [AtomType(s).max_valence for s in ("C", "N", "O", "F", "Cl", "Br")] == [4, 3, 2, 1, 1, 1]
    assert AtomType("N", 1).max_valence == 4
    assert AtomType("O", -1).max_valence == 1
    assert AtomType("N", -1).max_valence == 2
    assert AtomType("C", -1).max_valence == 3
    assert AtomType("S").max_valence == 6 and AtomType("P").max_valence >= 5


def test_valid_molecules_have_no_violations():
    graph = smiles_to_dense(["CC(=O)[O-]", "C[N+](C)(C)C", "C#N", "FC(F)(F)F"], QM9_VOCABULARY)
    assert is_valence_valid(graph, QM9_VOCABULARY).all()
    assert atom_valences(graph)[1, :5].tolist() == [1, 4, 1, 1, 1]


def test_violations_are_reported_per_atom():
    c, n, o, f = 1, 2, 3, 4
    pentavalent_carbon = _graph([c, f, f, f, f, f], {(0, k): 1 for k in range(1, 6)})
    double_bonded_fluorine = _graph([c, f], {(0, 1): 2})
    batch = DenseMolGraph.concatenate([pentavalent_carbon, double_bonded_fluorine, _graph([n, o], {(0, 1): 2})])
    violations = valence_violations(batch, QM9_VOCABULARY)
    assert violations[0].nonzero().flatten().tolist() == [0]
    assert violations[1].nonzero().flatten().tolist() == [1]
    assert not violations[2].any()
    assert valence_excess(batch, QM9_VOCABULARY)[0, 0] == 1
    assert is_valence_valid(batch, QM9_VOCABULARY).tolist() == [False, False, True]


def test_valence_check_agrees_with_rdkit_sanitization():
    # every ZINC atom type in the centre of a star of carbons, with 0..7 single bonds and
    # with one double bond plus single bonds: the tensor check must agree with RDKit.
    graphs = []
    for index in range(1, len(ZINC250K_VOCABULARY) + 1):
        for degree in range(0, 8):
            for first_order in (1, 2):
                if degree == 0 and first_order == 2:
                    continue
                edges = {(0, k): 1 for k in range(1, degree + 1)}
                if degree:
                    edges[(0, 1)] = first_order
                graphs.append(_graph([index] + [1] * degree, edges, capacity=38))
    batch = DenseMolGraph.concatenate(graphs)
    ours = is_valence_valid(batch, ZINC250K_VOCABULARY).tolist()
    rdkit = [m is not None for m in dense_to_mols(batch, ZINC250K_VOCABULARY)]
    disagreements = [i for i, (a, b) in enumerate(zip(ours, rdkit)) if a != b]
    assert disagreements == []
    assert 0 < sum(ours) < len(ours)


def test_correction_makes_over_valent_graphs_valid():
    c, n, o, f = 1, 2, 3, 4
    cases = [
        _graph([c, f, f, f, f, f], {(0, k): 1 for k in range(1, 6)}),  # C with five bonds
        _graph([c, c], {(0, 1): 3}) ,  # already valid
        _graph([o, c, o], {(0, 1): 3, (1, 2): 3}),  # O#C#O: both bonds too high
        _graph([n, c, c, c, c], {(0, k): 1 for k in range(1, 5)}),  # N with four bonds -> N+
        _graph([f, c], {(0, 1): 3}),  # F#C -> F-C
    ]
    batch = DenseMolGraph.concatenate(cases)
    assert is_valence_valid(batch, QM9_VOCABULARY).tolist() == [False, True, False, False, False]
    corrected = correct_valence(batch, QM9_VOCABULARY)
    corrected.validate(len(QM9_VOCABULARY))
    assert is_valence_valid(corrected, QM9_VOCABULARY).all()
    assert all(m is not None for m in dense_to_mols(corrected, QM9_VOCABULARY))
    assert torch.equal(corrected.edges[1], batch.edges[1])  # valid graphs are untouched
    assert int(corrected.edges[0, 0].sum()) == 4  # one bond of the carbon removed
    assert corrected.edges[2, 0, 1] == 2 and corrected.edges[2, 1, 2] == 2  # O=C=O
    assert corrected.nodes[3, 0] == QM9_VOCABULARY.index("N", 1)  # quaternary ammonium
    assert int(corrected.edges[3, 0].sum()) == 4
    assert corrected.edges[4, 0, 1] == 1
    without_charges = correct_valence(batch[3], QM9_VOCABULARY, adjust_charges=False)
    assert without_charges.nodes[0, 0] == 2 and int(without_charges.edges[0, 0].sum()) == 3


def test_correction_of_random_graphs_always_ends_valid():
    generator = torch.Generator().manual_seed(0)
    b, n = 200, 9
    atoms = torch.randint(0, len(QM9_VOCABULARY) + 1, (b, n), generator=generator)
    upper = torch.randint(0, 4, (b, n, n), generator=generator).triu(1)
    bonds = upper + upper.transpose(1, 2)
    present = (atoms > 0).unsqueeze(2) & (atoms > 0).unsqueeze(1)
    graph = DenseMolGraph.from_tensors(atoms, bonds * present)
    assert not is_valence_valid(graph, QM9_VOCABULARY).all()
    corrected = correct_valence(graph, QM9_VOCABULARY)
    assert is_valence_valid(corrected, QM9_VOCABULARY).all()
    assert (corrected.edges <= graph.edges).all()
    mols = dense_to_mols(corrected, QM9_VOCABULARY)
    assert all(m is not None for m, count in zip(mols, graph.num_nodes.tolist()) if count > 0)
