"""The chunking data module names the model settings its files decide, extra input columns included."""

from __future__ import annotations

from pathlib import Path

from structebm.data.chunking import ChunkingDataModule
from tests.recipes.test_chunking_recipe import write_conllu


def test_extra_columns_reach_the_emission_model_under_the_datas_names(tmp_path: Path):
    train, test = tmp_path / "train.conllu", tmp_path / "test.conllu"
    write_conllu(train, 40, seed=0)
    write_conllu(test, 10, seed=1)
    common = {"train_path": str(train), "test_path": str(test), "word_column": 1, "tag_column": 3}
    settings = ChunkingDataModule.model_settings(**common, extra_columns={"xpos": 4})
    # XPOS of the toy sentences: DT NN VBZ JJ . (5 values) plus <pad> and <unk>
    assert settings["energy.init_args.emission_model.init_args.extra_columns"] == {"xpos": 7}
    assert settings["energy.init_args.num_tags"] == 5  # UPOS: DET NOUN VERB ADJ PUNCT
    capped = ChunkingDataModule.model_settings(**common, extra_columns={"xpos": 4, "lemma": 2}, max_extra=64)
    assert capped["energy.init_args.emission_model.init_args.extra_columns"] == {"xpos": 64, "lemma": 64}
    data = ChunkingDataModule(**common, extra_columns={"xpos": 4})
    data.setup()
    assert data.vocabularies.sizes()["xpos"] == 7
