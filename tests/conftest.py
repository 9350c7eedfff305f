"""Test-wide settings: one intra-op thread (the tests use small tensors, where threads cost more than they give)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
