"""Results of an evaluation run: one ``IterationResult`` per iteration, the summary table and JSON."""

import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

Z_95 = 1.959963984540054
"""Standard normal quantile for a two-sided 95% interval."""
SUMMARY_JSON = 'summary.json'
"""File name of the run summary written into ``--output_dir``."""


@dataclass
class IterationResult:
    """The outcome of one iteration (one episode) of an evaluation run. Times are sim seconds."""

    iteration: int
    seed: int
    success: bool
    max_score: float
    time_to_success_s: float | None
    policy_calls: int
    latencies_s: list[float] = field(default_factory=list)
    """Wall time of each policy call, seconds."""
    duration_s: float = 0.0
    failure: str | None = None
    """Why the iteration failed early (rejected action, policy error), None when it ran to its end."""
    score_times_s: list[float] = field(default_factory=list)
    """Sim seconds since the iteration started, one per control tick."""
    scores: list[float] = field(default_factory=list)
    """Stacking score at each control tick, in [0, 1]."""
    episode_path: str | None = None
    """The recorded episode directory, when recording."""

    def latency_ms(self, percentile: float) -> float | None:
        """A percentile (0-100) of the policy-call latencies in milliseconds; None without calls."""
        if not self.latencies_s:
            return None
        return float(np.percentile(np.asarray(self.latencies_s) * 1e3, percentile))

    def to_json(self) -> dict[str, Any]:
        """The result as JSON-ready values (the score trace is left out)."""
        return {
            'iteration': self.iteration,
            'seed': self.seed,
            'success': self.success,
            'max_score': self.max_score,
            'time_to_success_s': self.time_to_success_s,
            'policy_calls': self.policy_calls,
            'latency_p50_ms': self.latency_ms(50),
            'latency_p99_ms': self.latency_ms(99),
            'duration_s': self.duration_s,
            'failure': self.failure,
            'episode_path': self.episode_path,
        }


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion: ``(low, high)`` in [0, 1]; ``(0, 1)`` for no trials."""
    if not 0 <= successes <= trials:
        raise ValueError(f'successes must be in [0, trials], got {successes} of {trials}')
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    z2_n = z * z / trials
    center = (p + z2_n / 2) / (1 + z2_n)
    half = z / (1 + z2_n) * math.sqrt(p * (1 - p) / trials + z2_n / (4 * trials))
    return max(0.0, center - half), min(1.0, center + half)


@dataclass(frozen=True)
class RunSummary:
    """All iterations of a run and what they add up to."""

    results: Sequence[IterationResult]
    interrupted: bool = False

    @property
    def successes(self) -> int:
        return sum(r.success for r in self.results)

    @property
    def success_rate(self) -> float | None:
        """Fraction of iterations that succeeded; None when no iteration finished."""
        return self.successes / len(self.results) if self.results else None

    @property
    def interval_95(self) -> tuple[float, float]:
        """95% Wilson interval of the success rate."""
        return wilson_interval(self.successes, len(self.results))

    def table(self) -> str:
        """The per-iteration table and the success-rate line, as printed at the end of a run."""
        header = ('iter', 'seed', 'success', 'max score', 'to success s', 'calls', 'p50 ms', 'p99 ms', 'failure')
        rows = [header]
        for r in self.results:
            rows.append(
                (
                    str(r.iteration),
                    str(r.seed),
                    'yes' if r.success else 'no',
                    f'{r.max_score:.3f}',
                    _fmt(r.time_to_success_s, '.2f'),
                    str(r.policy_calls),
                    _fmt(r.latency_ms(50), '.1f'),
                    _fmt(r.latency_ms(99), '.1f'),
                    r.failure or '',
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
        lines = ['  '.join([*(c.rjust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]]) for row in rows]
        return '\n'.join([*(line.rstrip() for line in lines), self.rate_line()])

    def rate_line(self) -> str:
        """``success rate: 19/20 = 95.0% (95% Wilson CI 76.4%-99.1%)``, noting an interrupted run."""
        n = len(self.results)
        if n == 0:
            line = 'success rate: no finished iterations'
        else:
            low, high = self.interval_95
            line = f'success rate: {self.successes}/{n} = {100 * self.successes / n:.1f}% '
            line += f'(95% Wilson CI {100 * low:.1f}%-{100 * high:.1f}%)'
        return line + (' [interrupted]' if self.interrupted else '')

    def to_json(self, run_info: dict[str, Any] | None = None) -> dict[str, Any]:
        """The summary as JSON-ready values; ``run_info`` (policy meta, options) is stored under ``run``."""
        low, high = self.interval_95
        return {
            'run': run_info or {},
            'iterations': [r.to_json() for r in self.results],
            'successes': self.successes,
            'total': len(self.results),
            'success_rate': self.success_rate,
            'success_rate_ci95': [low, high],
            'interrupted': self.interrupted,
        }


def _fmt(value: float | None, spec: str) -> str:
    return '-' if value is None else format(value, spec)


def _read_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


_FILE_MODE = 0o666 & ~_read_umask()
"""The mode a plain ``open`` gives new files. The umask is read once, at import: reading it means setting it, which
would race with other threads creating files if done per write."""


def publish(tmp: str | Path, path: Path) -> None:
    """Move the finished temporary file ``tmp`` onto ``path`` with the permissions a plain ``open`` would give it
    (``mkstemp`` creates files readable by their owner only)."""
    os.chmod(tmp, _FILE_MODE)
    os.replace(tmp, path)


def write_json_atomic(data: Any, path: Path) -> None:
    """Write ``data`` as indented JSON to ``path`` through a temporary file in the same directory."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(data, f, indent=2)
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
