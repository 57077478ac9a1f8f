"""What every benchmark prints about the machine it ran on: the CPU model and the load average."""

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or 'unknown'


def load_average() -> str:
    """The 1/5/15-minute load averages, e.g. ``'0.80 1.48 2.82'`` (a shared machine's timings move with it)."""
    return ' '.join(f'{x:.2f}' for x in os.getloadavg())
