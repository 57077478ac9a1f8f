"""What every benchmark shares: the machine line, timing with warm-up and repeats, the table, the results file.

A benchmark prints ``machine_lines(...)``, then its sizes, then ``print_table(...)``; it calls ``record`` once per
headline number (the ones a published table or an issue target rests on). When the environment variable
``POSITRONIC_BENCH_RESULTS`` names a file, each ``record`` appends one JSON object to it, one per line:
``{"stage", "metric", "value", "unit", "target", "ok"}``, which ``run_all.py`` collects into one table; otherwise
``record`` does nothing, so a benchmark run on its own only prints its table.
"""

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from positronic.host import cpu_model

RESULTS_ENV = 'POSITRONIC_BENCH_RESULTS'
LEROBOT_PYTHON_ENV = 'LEROBOT_PYTHON'
DEFAULT_LEROBOT_PYTHON = Path('/tmp/venv-lerobot/bin/python')
"""Where ``tests/setup_lerobot044.sh`` builds the LeRobot 0.4.4 side environment."""
LEROBOT_MISSING = f'pass --lerobot-python, set ${LEROBOT_PYTHON_ENV}, or build {DEFAULT_LEROBOT_PYTHON}'


def gpu_name() -> str | None:
    """The CUDA device's name when torch is already imported and sees one (a benchmark without torch never loads it)."""
    torch = sys.modules.get('torch')
    if torch is None or not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name()


def load_average() -> str:
    """The 1/5/15-minute load averages, e.g. ``'0.80 1.48 2.82'`` (a shared machine's timings move with it)."""
    return ' '.join(f'{x:.2f}' for x in os.getloadavg())


def machine_lines(*packages: str) -> list[str]:
    """The machine (CPU, cores, OS; the GPU when there is one), python with ``packages``' versions, the load."""
    gpu = gpu_name()
    versions = ''.join(f', {name} {importlib.metadata.version(name)}' for name in packages)
    torch = sys.modules.get('torch')
    threads = f' ({torch.get_num_threads()} threads)' if torch is not None and 'torch' in packages else ''
    return [
        f'machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}'
        + (f'; GPU: {gpu}' if gpu else ''),
        f'software: python {platform.python_version()}{versions}{threads}',
        'load average (1/5/15 min) at start: ' + load_average(),
    ]


def add_lerobot_python(parser: argparse.ArgumentParser) -> None:
    """The ``--lerobot-python`` option of a benchmark that compares with LeRobot 0.4.4 (see ``lerobot_python``)."""
    parser.add_argument(
        '--lerobot-python',
        type=Path,
        help=f"LeRobot 0.4.4's python (default: ${LEROBOT_PYTHON_ENV}, else {DEFAULT_LEROBOT_PYTHON} when it exists; "
        'without one, the LeRobot columns are left out)',
    )


def lerobot_python(parser: argparse.ArgumentParser, given: Path | None) -> Path | None:
    """The side environment's python: ``given``, else ``$LEROBOT_PYTHON``, else the default one when it exists;
    None when none is there. A given or named one that does not exist is a usage error naming where it came from."""
    if given is None and os.environ.get(LEROBOT_PYTHON_ENV):
        given, source = Path(os.environ[LEROBOT_PYTHON_ENV]), f'${LEROBOT_PYTHON_ENV}'
    else:
        source = '--lerobot-python'
    if given is None:
        return DEFAULT_LEROBOT_PYTHON if DEFAULT_LEROBOT_PYTHON.exists() else None
    if not given.is_file():
        parser.error(f"{source}={given}: no such file (expected LeRobot 0.4.4's python)")
    return given


def time_calls(call: Callable[[int], object], repeats: int, warmup: int = 1) -> list[float]:
    """Seconds of each of ``repeats`` calls ``call(i)``, after ``warmup`` untimed ones; ``i`` counts all calls from
    0 (warm-up first), so a call can take its own input, e.g. an increasing timestamp."""
    durations = []
    for i in range(warmup + repeats):
        start = time.perf_counter_ns()
        call(i)
        if i >= warmup:
            durations.append((time.perf_counter_ns() - start) / 1e9)
    return durations


def percentile_ms(samples_s: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of durations in seconds, in milliseconds."""
    return float(np.percentile(np.asarray(samples_s), q)) * 1e3


def table_lines(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table, columns padded to their widest cell (a row may have fewer cells than the header)."""
    cells = [list(header), *([*row, *[''] * (len(header) - len(row))] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ['| ' + ' | '.join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + ' |' for row in cells]
    lines.insert(1, '|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    return lines


def format_value(value: float, unit: str) -> str:
    """Three significant digits at most, never in exponent form: 12.3 us, 1234 fps, 0.42 ms, 2.50x, 3e-07; 0, 95%."""
    magnitude = abs(value)
    if float(value).is_integer():
        text = f'{value:.0f}'
    elif magnitude < 0.01:
        text = f'{value:.2g}'
    else:
        text = f'{value:.0f}' if magnitude >= 100 else f'{value:.1f}' if magnitude >= 10 else f'{value:.2f}'
    return f'{text}{"" if unit[:1] in ("x", "%") else " "}{unit}'.rstrip()


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print('\n'.join(table_lines(header, rows)), flush=True)


def verdict(ok: bool | None) -> str:
    """A target's cell: 'yes', 'NO', or '' (no target, or not measurable in this run)."""
    return '' if ok is None else ('yes' if ok else 'NO')


def record(
    stage: str, metric: str, value: float, target: str | None = None, ok: bool | None = None, *, unit: str = ''
) -> None:
    """Append one result: ``value`` in ``unit`` (e.g. 'us', 'fps', 'x'); ``target`` as text (e.g. '< 20 us');
    ``ok`` whether the target is met (None: no target, or not measurable in this run)."""
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    line = {
        'stage': stage,
        'metric': metric,
        'value': float(value),
        'unit': unit,
        'target': target,
        'ok': None if ok is None else bool(ok),
    }
    with Path(path).open('a') as f:
        f.write(json.dumps(line) + '\n')


def read_results(path: Path) -> list[dict]:
    """The results appended to ``path`` (none when it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
