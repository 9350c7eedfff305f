"""benchmarks/molecule_generation.py: its command line accepts the replay-buffer settings and
rejects impossible ones with a message naming the flags."""

from __future__ import annotations

import pytest

from benchmarks.molecule_generation import parse_args


def test_buffer_settings_reach_the_arguments():
    args = parse_args(["--out", "x.json", "--buffer-capacity", "2000", "--reinit-prob", "0.01"])
    assert (args.buffer_capacity, args.reinit_prob) == (2000, 0.01)


@pytest.mark.parametrize("flags", [["--buffer-capacity", "64"], ["--reinit-prob", "1.5"], ["--reinit-prob", "-0.1"]])
def test_impossible_buffer_settings_are_rejected(flags, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--out", "x.json", "--batch-size", "128", *flags])
    assert "--buffer-capacity must be at least --batch-size and --reinit-prob in [0, 1]" in capsys.readouterr().err


def test_ema_decay_can_be_switched_off_and_must_lie_in_the_open_unit_interval(capsys):
    assert parse_args(["--out", "x.json"]).ema_decay == 0.995
    assert parse_args(["--out", "x.json", "--no-ema"]).ema_decay is None
    assert parse_args(["--out", "x.json", "--ema-decay", "0.99"]).ema_decay == 0.99
    with pytest.raises(SystemExit):
        parse_args(["--out", "x.json", "--ema-decay", "1.0"])
    assert "--ema-decay must be in (0, 1), got 1.0" in capsys.readouterr().err


@pytest.mark.parametrize("temperature", ["0", "-1", "nan", "inf"])
def test_sampling_temperature_must_be_positive_and_finite(temperature, capsys):
    assert parse_args(["--out", "x.json", "--temperature", "1.2"]).temperature == 1.2
    with pytest.raises(SystemExit):
        parse_args(["--out", "x.json", "--temperature", temperature])
    assert "--train-seconds and --temperature must be positive" in capsys.readouterr().err


def test_a_step_budget_replaces_the_time_budget(capsys):
    assert parse_args(["--out", "x.json"]).train_steps is None
    assert parse_args(["--out", "x.json", "--train-steps", "2308"]).train_steps == 2308
    with pytest.raises(SystemExit):
        parse_args(["--out", "x.json", "--train-steps", "0"])
    assert "--train-steps must be a positive int, got 0" in capsys.readouterr().err
