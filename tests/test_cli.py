"""The command builds model and data from the recipes' YAML; a data module fills in the model
settings its files decide, and only where the model's config has them."""

from __future__ import annotations

from pathlib import Path

from structebm.cli import build_cli
from tests.recipes.test_chunking_recipe import write_conllu

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def test_tag_count_and_order_come_from_the_data(tmp_path, capsys):
    train, test = tmp_path / "train.conllu", tmp_path / "test.conllu"
    write_conllu(train, 12, seed=0)
    write_conllu(test, 4, seed=1)
    cli = build_cli([
        "--config", str(RECIPES / "chunking" / "base.yaml"),
        "--config", str(RECIPES / "chunking" / "binary_nce.yaml"),
        f"--data.init_args.train_path={train}", f"--data.init_args.test_path={test}",
        "--data.init_args.word_column=1", "--data.init_args.tag_column=3", "--data.init_args.extra_columns={pos: 4}",
    ], run=False)
    # the five tags of the files, not the recipe's 23 CoNLL-2000 tags, in the CRF, its emissions and the noise
    assert cli.model.energy.num_tags == 5
    assert cli.model.energy.emission_model.num_tags == 5
    assert cli.model.objective.noise.num_states == 5
    assert "model.energy.init_args.num_tags = 5 (from the data; the config had 23)" in capsys.readouterr().err


def test_a_model_without_those_keys_is_left_alone(tmp_path):
    cli = build_cli([
        "--config", str(RECIPES / "toy2d" / "base.yaml"),
        "--config", str(RECIPES / "toy2d" / "pcd.yaml"),
        "--data.init_args.num_train=256",
    ], run=False)
    assert cli.model.energy.__class__.__name__ == "MLPEnergy"
