"""Each experiment test leaves torch's thread count as it found it: the scripts and some of these tests set it, and
a count leaked into a later test changes its floating-point sums."""

import pytest
import torch


@pytest.fixture(autouse=True)
def torch_threads_restored():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
