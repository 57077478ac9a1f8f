"""Keep large message buffers in the heap, so that each request does not page-fault fresh memory.

Every protocol message of camera frames is megabytes, and the WebSocket and msgpack layers allocate a few buffers
of that size per message. glibc serves such allocations with ``mmap`` and returns them to the kernel when they are
freed, so every message touches brand-new pages: the page faults cost more than the copies themselves (measured in
docs/serving.md, Speed).

``reuse_large_buffers`` raises glibc's mmap threshold to its maximum (32 MiB: allocations up to that size come
from the heap) and its trim threshold (freed heap memory up to that size stays in the process for the next
message). The process then keeps up to ``trim_threshold_bytes`` of freed memory. Elsewhere than glibc it does
nothing. ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` in the environment do the same before start.
"""

import ctypes
import ctypes.util
import platform
import threading

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter numbers (malloc.h)."""
MAX_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
"""The largest mmap threshold glibc accepts on 64-bit systems."""
DEFAULT_TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024

_lock = threading.Lock()
_applied: bool | None = None


def reuse_large_buffers(trim_threshold_bytes: int = DEFAULT_TRIM_THRESHOLD_BYTES) -> bool:
    """Set glibc's mmap and trim thresholds for this process (once; later calls return the first result).

    Returns whether the settings are in effect (False on a C library other than glibc, or if glibc refused them).
    """
    global _applied
    with _lock:
        if _applied is None:
            _applied = _set_glibc_thresholds(MAX_MMAP_THRESHOLD_BYTES, trim_threshold_bytes)
        return _applied


def _set_glibc_thresholds(mmap_threshold: int, trim_threshold: int) -> bool:
    if platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc':
        return False
    path = ctypes.util.find_library('c')
    if path is None:
        return False
    try:
        mallopt = ctypes.CDLL(path).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))
