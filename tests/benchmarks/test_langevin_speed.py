"""Smoke test of the Langevin / PCD speed benchmark at tiny sizes (2 chain steps).

Timings are not checked (they mean nothing at this size); what is checked is that every
implementation runs the same workload: identical Langevin samples from the same seed,
PCD steps that change the parameters and keep the buffer shape, and a complete report.
"""

from __future__ import annotations

import json
import os
import math

import pytest
import torch

from benchmarks.langevin_speed import (
    IMPLEMENTATIONS,
    BenchmarkConfig,
    EnergySpec,
    build_energies,
    langevin_runners,
    main,
    pcd_runners,
    run_benchmark,
    write_benchmark_report,
)

TINY = BenchmarkConfig(
    energies=(EnergySpec("tiny", 3, (8, 8)),),
    batch_size=16,
    langevin_steps=2,
    pcd_chain_steps=2,
    buffer_capacity=64,
    warmup=1,
    repeats=2,
    min_seconds=0.0,
)
SPEC = TINY.energies[0]


def test_plain_copy_has_the_same_energy():
    energy, plain = build_energies(SPEC, seed=0)
    x = torch.randn(5, SPEC.in_dim)
    torch.testing.assert_close(plain(x), energy(x), rtol=0, atol=0)


def test_langevin_samples_agree_across_implementations():
    start = torch.randn(TINY.batch_size, SPEC.in_dim, generator=torch.Generator().manual_seed(7))
    samples = {name: run() for name, run in langevin_runners(SPEC, TINY, start).items()}
    assert set(samples) == set(IMPLEMENTATIONS)
    for name, x in samples.items():
        assert x.shape == start.shape, name
        assert not x.requires_grad, name
    # structebm and the hand-written loop do the same float operations on the same noise draws.
    torch.testing.assert_close(samples["structebm"], samples["handwritten"], rtol=0, atol=0)
    # torchebm scales the noise as sqrt(2 s^2) * (xi * sqrt(eps)); ebmkit as sigma * xi: rounding only.
    for peer in ("torchebm", "ebmkit"):
        torch.testing.assert_close(samples[peer], samples["handwritten"], rtol=0, atol=1e-5)
    # The chains moved: two steps of noise with std sigma = 0.14 per coordinate.
    assert (samples["handwritten"] - start).abs().max() > 0.1 * TINY.noise_scale


def test_pcd_steps_train_every_implementation():
    data = 0.5 * torch.randn(TINY.batch_size, SPEC.in_dim, generator=torch.Generator().manual_seed(8))
    runners = pcd_runners(SPEC, TINY, data)
    assert set(runners) == set(IMPLEMENTATIONS)
    losses = {name: [run() for _ in range(3)] for name, run in runners.items()}
    for name, values in losses.items():
        for loss in values:
            assert loss.shape == () and math.isfinite(loss.item()), name
            assert not loss.requires_grad, name
        # Parameters change between steps, so the loss differs across steps.
        assert len({round(v.item(), 7) for v in values}) > 1, name


def test_compiled_variant_matches_eager():
    config = BenchmarkConfig(**{**TINY.__dict__, "compile": True, "cases": ("langevin",)})
    start = torch.randn(TINY.batch_size, SPEC.in_dim, generator=torch.Generator().manual_seed(9))
    runners = langevin_runners(SPEC, config, start)
    torch.testing.assert_close(runners["structebm_compiled"](), runners["structebm"](), rtol=0, atol=1e-5)


def test_report_rows_and_files(tmp_path):
    rows = run_benchmark(TINY)
    assert [row["key"] for row in rows] == ["langevin/tiny", "pcd_step/tiny"]
    for row in rows:
        for name in IMPLEMENTATIONS:
            assert row[f"{name}_ms"] > 0
        assert row["structebm_vs_handwritten"] > 0 and row["structebm_vs_torchebm"] > 0
        assert isinstance(row["within_5pct_of_handwritten"], bool)
        assert isinstance(row["no_slower_than_peers"], bool)
    for peer in ("structebm", "torchebm", "ebmkit"):
        assert rows[0][f"max_abs_diff_{peer}"] < 1e-5

    out = tmp_path / "nested" / "speed.json"
    json_path, markdown = write_benchmark_report(rows, TINY, out)
    report = json.loads(json_path.read_text())
    assert [row["key"] for row in report["rows"]] == ["langevin/tiny", "pcd_step/tiny"]
    assert report["environment"]["torch_threads"] == TINY.threads
    assert report["environment"]["torch"] == torch.__version__
    assert report["environment"]["cpu_count"] == os.cpu_count()
    assert len(report["environment"]["load_average_1_5_15_min"]) == 3
    assert {"torchebm", "ebmkit", "batch_size", "pcd_chain_steps"} <= set(report["settings"])
    table = markdown.read_text()
    assert markdown == out.with_suffix(".md")
    assert "| langevin/tiny |" in table and "| pcd_step/tiny |" in table and "torchebm" in table


def test_bad_arguments_fail_clearly(tmp_path):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "x.json"), "--repeats", "0"])
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "x.txt")])
    with pytest.raises(ValueError, match="unknown case"):
        run_benchmark(BenchmarkConfig(**{**TINY.__dict__, "cases": ("gibbs",)}))


def test_paired_ratios_cancel_a_drift_of_the_machine():
    from benchmarks._common import paired_ratios

    # Round by round the machine slows down fourfold; structebm is always 10 % slower than the peer.
    peer = [10.0, 20.0, 40.0]
    samples = {"structebm": [1.1 * t for t in peer], "peer": peer}
    assert paired_ratios(samples, "structebm") == {"peer": pytest.approx(1.1)}


def test_cheap_candidates_get_more_rounds_until_min_seconds():
    import time

    from benchmarks._common import time_candidates_ms

    samples = time_candidates_ms({"a": lambda: time.sleep(0.002), "b": lambda: None}, repeats=2, warmup=0, min_seconds=0.05)
    assert len(samples["a"]) == len(samples["b"]) >= 10  # 2 rounds take ~4 ms; 50 ms need about 25
