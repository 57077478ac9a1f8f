"""The machine a run happened on: what its numbers depend on beyond its flags (float kernels, and so trained
weights and timings, differ between CPUs and library versions)."""

import glob
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or 'unknown'


def host_facts() -> dict[str, Any]:
    """CPU model and count, platform, Python and torch versions (torch None when it is not installed)."""
    try:
        torch_version = importlib.metadata.version('torch')
    except importlib.metadata.PackageNotFoundError:
        torch_version = None
    return {
        'cpu': cpu_model(),
        'cpu_count': os.cpu_count(),
        'platform': platform.platform(),
        'python': platform.python_version(),
        'torch': torch_version,
    }


def process_is_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def interrupted_writes(parent: Path, prefix: str) -> list[Path]:
    """The entries of ``parent`` named ``<prefix>...-<pid>`` whose writing process is gone from this machine, or is
    this one (a write of it that failed earlier): what interrupted writes left, sorted by name. A write in progress
    in another live process is not among them."""
    found = []
    for entry in sorted(parent.glob(f'{glob.escape(prefix)}*')):
        pid = entry.name.rsplit('-', 1)[-1]
        if pid.isdigit() and (int(pid) == os.getpid() or not process_is_alive(int(pid))):
            found.append(entry)
    return found
