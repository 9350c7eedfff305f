"""The README's quickstart runs as printed and learns what it claims to learn.

The code block under the README's ``## Quickstart`` heading is extracted and executed. It fits
an energy to a ring of radius 2 and draws 512 Langevin samples from uniform noise on
``[-4, 4]²``. Under that noise the fraction within 0.5 of the ring is the area ratio
``π (2.5² - 1.5²) / 64 ≈ 0.196``, with a standard error of ``sqrt(0.196 · 0.804 / 512) ≈
0.018`` for 512 points; the test asks for at least 0.40, more than ten standard errors above
it, so an energy that did not learn the ring (or a sampler that did not follow it) fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
UNIFORM_FRACTION = 3.141592653589793 * (2.5**2 - 1.5**2) / 64.0


def quickstart_code(text: str) -> str:
    """Return the first ``python`` code block after the ``## Quickstart`` heading of ``text``."""
    section = re.search(r"^## Quickstart\s*$(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    if section is None:
        raise AssertionError(f"{README} has no '## Quickstart' section")
    block = re.search(r"^```python\n(.*?)^```", section.group(1), flags=re.M | re.S)
    if block is None:
        raise AssertionError(f"the '## Quickstart' section of {README} has no ```python block")
    return block.group(1)


def test_quickstart_is_short() -> None:
    assert len(quickstart_code(README.read_text(encoding="utf-8")).splitlines()) <= 30


def test_quickstart_runs_and_learns_the_ring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    namespace: dict = {"__name__": "readme_quickstart"}
    try:
        exec(compile(quickstart_code(README.read_text(encoding="utf-8")), str(README), "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
    samples = namespace["samples"]
    assert samples.shape == (512, 2)
    assert torch.isfinite(samples).all()
    assert namespace["near_ring"] >= 0.40 > UNIFORM_FRACTION + 10 * 0.018
