"""Success rate against training time: one point per evaluated checkpoint, with its 95% Wilson interval."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from positronic.evaluation.plot import save_figure
from positronic.evaluation.results import wilson_interval

SUCCESS_CURVE_PNG = 'success_curve.png'


@dataclass(frozen=True)
class CurvePoint:
    """One checkpoint's evaluation: ``step``, the training time that reached it (seconds), and its outcome."""

    step: int
    train_s: float
    successes: int
    total: int

    @property
    def rate(self) -> float:
        return self.successes / self.total if self.total else 0.0

    def to_json(self) -> dict[str, Any]:
        low, high = wilson_interval(self.successes, self.total)
        return {
            'step': self.step,
            'train_s': self.train_s,
            'successes': self.successes,
            'total': self.total,
            'success_rate': self.rate,
            'success_rate_ci95': [low, high],
        }


def training_time_s(metrics: Sequence[Mapping[str, Any]], step: int) -> float:
    """Seconds of optimizer steps up to and including ``step`` (the sum of the logged ``step_s``)."""
    return float(sum(row.get('step_s', 0.0) for row in metrics if row['step'] <= step))


def write_success_curve_png(points: Sequence[CurvePoint], path: Path, title: str = '') -> None:
    """Success rate (%) against training minutes, with 95% interval bars and each point's step; atomic."""
    path = Path(path)
    points = sorted(points, key=lambda p: p.step)
    minutes = [p.train_s / 60 for p in points]
    rates = [100 * p.rate for p in points]
    intervals = [wilson_interval(p.successes, p.total) for p in points]
    below = [rate - 100 * low for rate, (low, _) in zip(rates, intervals, strict=True)]
    above = [100 * high - rate for rate, (_, high) in zip(rates, intervals, strict=True)]
    figure = Figure(figsize=(7, 4.5), layout='constrained')
    axes = figure.subplots()
    axes.errorbar(minutes, rates, yerr=[below, above], marker='o', capsize=4, color='#2a6f97')
    for p, x, y in zip(points, minutes, rates, strict=True):
        axes.annotate(
            f'step {p.step}\n{p.successes}/{p.total}', (x, y), textcoords='offset points', xytext=(6, 6), fontsize=8
        )
    axes.set_xlabel('training time (min)')
    axes.set_ylabel('success rate (%), 95% Wilson interval')
    axes.set_ylim(-2, 105)
    axes.grid(alpha=0.3)
    if title:
        axes.set_title(title)
    save_figure(figure, path)
