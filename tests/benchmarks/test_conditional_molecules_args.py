"""benchmarks/conditional_molecules.py: defaults follow the issue (1,000 targets, 10 samples each),
impossible settings are rejected naming the flag, and the Markdown table shows every method."""

from __future__ import annotations

import pytest

from benchmarks.conditional_molecules import SET_METRICS, markdown, parse_args


def test_defaults_follow_the_issue():
    args = parse_args(["--out", "x.json"])
    assert args.num_targets == 1000 and args.samples_per_target == 10 and args.dataset == "qm9"
    assert args.sampling_steps // args.rejection_k >= 1


@pytest.mark.parametrize("flags, message", [
    (["--steps", "0"], "--steps must be a positive int, got 0"),
    (["--rejection-k", "8", "--sampling-steps", "4"], "--sampling-steps (4) must be at least --rejection-k (8)"),
    (["--guidance-sigma", "0"], "must be positive"),
])
def test_impossible_settings_are_rejected(flags, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--out", "x.json", *flags])
    assert message in capsys.readouterr().err


def test_markdown_lists_every_method_and_sample_set():
    methods = ("conditional", "unconditional", "rejection", "guided")
    payload = {"mae": {"qed": dict.fromkeys(methods, 0.1), "logp": dict.fromkeys(methods, 0.5)},
               "composition_mae": {"qed": {"sum_of_energies": 0.2, "joint": 0.1}, "logp": {"sum_of_energies": 1.0, "joint": 0.9}},
               **{key: {"unconditional": 0.9, "joint": 0.8} for key in SET_METRICS}}
    text = markdown(payload)
    assert "| qed | 0.1 | 0.1 | 0.1 | 0.1 |" in text and "| logp | 1 | 0.9 |" in text and "| joint | 0.8 |" in text
