"""Large message buffers come from memory the process keeps, instead of fresh pages for every message."""

import platform
import subprocess
import sys

import pytest

PROBE = """
import resource
from positronic.offboard.memory import reuse_large_buffers

def page_faults(messages=20, size=2_000_000):
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(messages):
        # a message passes through a few buffers (read, unmasked, decoded), all freed after the answer
        read = b'x' * size
        unmasked = read + b'y'
        decoded = unmasked + b'z'
        del read, unmasked, decoded
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start

page_faults()
before = page_faults()
applied = reuse_large_buffers()
page_faults()
print(before, page_faults(), applied, reuse_large_buffers())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != 'glibc', reason='the allocator settings are glibc-only')
def test_megabyte_buffers_stop_page_faulting_once_tuned():
    # A fresh interpreter: the setting is process-wide, and this test process may have applied it already.
    out = subprocess.run([sys.executable, '-c', PROBE], capture_output=True, text=True, check=True).stdout.split()
    before, after = int(out[0]), int(out[1])
    assert out[2:] == ['True', 'True']
    assert before > 20 * 400  # glibc's default: fresh pages for every message (~490 per 2 MB buffer)
    assert after < before / 10
