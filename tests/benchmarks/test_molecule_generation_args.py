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
