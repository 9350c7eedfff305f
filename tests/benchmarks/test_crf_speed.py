"""Smoke test of the CRF speed benchmark at a tiny shape: every operation is timed and reported.

Timings mean nothing at this size; what is checked is that the report holds one row per
operation with ``speedup_vs_fastest_peer`` where a peer ran, and that the log-partitions of
the three libraries agree.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torchcrf")
pytest.importorskip("torch_struct")

from benchmarks.crf_speed import OPERATIONS, main  # noqa: E402


def test_report_has_every_operation_and_the_speedups(tmp_path):
    out = tmp_path / "crf_speed.json"
    main(["--out", str(out), "--shapes", "3,5,4", "--repeats", "1", "--warmup", "0", "--threads", "1"])
    report = json.loads(out.read_text())
    rows = {row["operation"]: row for row in report["rows"]}
    assert set(rows) == set(OPERATIONS)
    for operation in ("nll_fwd_bwd", "viterbi", "sample", "topk"):
        row = rows[operation]
        assert row["structebm_ms"] > 0 and row["torch_struct_ms"] > 0
        fastest = min(t for t in (row["pytorch_crf_ms"], row["torch_struct_ms"]) if t is not None)
        assert row["speedup_vs_fastest_peer"] == pytest.approx(fastest / row["structebm_ms"])
    assert rows["sample"]["pytorch_crf_ms"] is None  # pytorch-crf cannot sample
    assert rows["viterbi"]["logZ_maxdiff_float64"] < 1e-5
    assert rows["viterbi"]["viterbi_paths_agree_pytorch_crf"]
    assert (tmp_path / "crf_speed.md").exists()


def test_bad_shapes_are_rejected(tmp_path):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "x.json"), "--shapes", "3,5"])
