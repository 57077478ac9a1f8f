"""Headline numbers of the stage benchmarks, collected for ``run_all.py``'s table.

A benchmark calls ``record`` once per headline number (the ones its issue sets a target for). When the environment
variable ``POSITRONIC_BENCH_RESULTS`` names a file, each call appends one JSON object to it, one per line:
``{"stage", "metric", "value", "unit", "target", "ok"}``; otherwise ``record`` does nothing, so a benchmark run on
its own only prints its table.
"""

import json
import os
from pathlib import Path

RESULTS_ENV = 'POSITRONIC_BENCH_RESULTS'


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
