"""Shared helpers for the benchmarks: fair timing and JSON + Markdown reports.

Timing runs every candidate once per round, in a rotating order, after warm-up rounds, and
reports the median over rounds: on a shared machine a burst of load then hits all candidates
alike instead of one of them. Reports are one JSON file (environment + rows) and a Markdown
table with the same rows next to it (``FILE.json`` → ``FILE.md``).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import torch

__all__ = ["time_candidates_ms", "synchronized", "paired_ratios", "environment", "write_report", "markdown_table"]


def time_candidates_ms(
    candidates: Mapping[str, Callable[[], Any]], repeats: int = 20, warmup: int = 3, min_seconds: float = 0.0
) -> dict[str, list[float]]:
    """Wall times in milliseconds of each zero-argument callable, one per timed round.

    Each round calls every candidate once; the order rotates from round to round, so load
    from other processes is spread over all candidates.

    Args:
        candidates: name → callable; its return value is ignored.
        repeats: timed rounds, at least.
        warmup: untimed rounds first (allocator, caches, lazy initialisation).
        min_seconds: keep adding timed rounds until the timed rounds took this long in all,
            so that cheap candidates get more rounds (and steadier medians) than costly ones.
    """
    if repeats < 1 or warmup < 0 or min_seconds < 0:
        raise ValueError(
            f"time_candidates_ms: need repeats >= 1, warmup >= 0 and min_seconds >= 0, got {repeats}, {warmup}, {min_seconds}"
        )
    names = list(candidates)
    samples: dict[str, list[float]] = {name: [] for name in names}
    timed_seconds = 0.0
    round_index = 0
    while round_index < warmup + repeats or timed_seconds < min_seconds:
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            begin = time.perf_counter()
            candidates[name]()
            elapsed = time.perf_counter() - begin
            if round_index >= warmup:
                samples[name].append(elapsed * 1e3)
                timed_seconds += elapsed
        round_index += 1
    return samples


def synchronized(candidates: Mapping[str, Callable[[], Any]], device: str | torch.device) -> dict[str, Callable[[], Any]]:
    """The candidates, each followed by a wait for the work it queued on ``device``.

    CUDA runs kernels asynchronously, so a timer around a bare call measures only the launches;
    on a CUDA device every wrapped call ends with :func:`torch.cuda.synchronize`. Other devices
    get the candidates unchanged.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return dict(candidates)

    def waiting(candidate: Callable[[], Any]) -> Callable[[], Any]:
        def call() -> Any:
            result = candidate()
            torch.cuda.synchronize(device)
            return result

        return call

    return {name: waiting(candidate) for name, candidate in candidates.items()}


def paired_ratios(samples: Mapping[str, Sequence[float]], numerator: str) -> dict[str, float]:
    """Median over rounds of ``numerator``'s time divided by each other candidate's time in the same round.

    ``samples`` is the output of :func:`time_candidates_ms`. Both times of a ratio come from
    one round, a few seconds apart, so slow drifts of the machine's speed (other processes,
    frequency scaling) cancel in the ratio, which the ratio of two medians does not do.
    """
    mine = samples[numerator]
    return {
        name: statistics.median(a / b for a, b in zip(mine, times))
        for name, times in samples.items()
        if name != numerator
    }


def environment() -> dict[str, Any]:
    """Versions, threads and machine load, to put next to any timing."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "load_average_1_5_15_min": [round(x, 2) for x in load],
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if abs(value) < 1e-2 and value != 0:
            return f"{value:.3g}"
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"  # fractions (F1, rates): no rounding up to a target
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Optional[Sequence[str]] = None) -> str:
    """A GitHub Markdown table of ``rows`` (columns: given, else the keys of the first row)."""
    if not rows:
        return "(no rows)\n"
    columns = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(col, "")) for col in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_report(
    path: str | Path,
    rows: Sequence[Mapping[str, Any]],
    title: str,
    settings: Optional[Mapping[str, Any]] = None,
    columns: Optional[Sequence[str]] = None,
    notes: str = "",
) -> tuple[Path, Path]:
    """Write ``path`` (JSON: title, settings, environment, rows) and the same rows as Markdown.

    Returns the JSON and Markdown paths; the Markdown file is ``path`` with suffix ``.md``.
    """
    json_path = Path(path)
    if json_path.suffix != ".json":
        raise ValueError(f"write_report: the output path must end in .json, got {json_path}")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    env = environment()
    payload = {"title": title, "settings": dict(settings or {}), "environment": env, "rows": [dict(r) for r in rows]}
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    header = f"# {title}\n\n"
    details = ", ".join(f"{k}={v}" for k, v in {**(settings or {}), **env}.items())
    md_path = json_path.with_suffix(".md")
    md_path.write_text(header + markdown_table(rows, columns) + f"\n{notes}\n\n_{details}_\n")
    return json_path, md_path
