"""The summary PNG of an evaluation run: success per iteration and the stacking score over time."""

import os
import tempfile
from pathlib import Path

from matplotlib.figure import Figure

from positronic.evaluation.results import RunSummary, publish

SUMMARY_PNG = 'summary.png'
"""File name of the summary plot written into ``--output_dir``."""
SUCCESS_COLOR = '#2a9d3f'
FAILURE_COLOR = '#d1495b'


def write_summary_png(summary: RunSummary, path: Path, threshold: float) -> None:
    """Two panels: max score per iteration (green = success, red = failure) and each iteration's score over
    sim time, with the success ``threshold`` dashed. Written atomically to ``path``."""
    path = Path(path)
    figure = Figure(figsize=(9, 7), layout='constrained')
    per_iteration, over_time = figure.subplots(2, 1)
    results = summary.results
    labels = [f'{r.iteration}\n(seed {r.seed})' for r in results]
    colors = [SUCCESS_COLOR if r.success else FAILURE_COLOR for r in results]
    per_iteration.bar(range(len(results)), [r.max_score for r in results], color=colors)
    per_iteration.set_xticks(range(len(results)), labels, fontsize=7 if len(results) > 12 else 9)
    per_iteration.set_ylim(0, 1.05)
    per_iteration.set_ylabel('max stacking score')
    per_iteration.set_title(summary.rate_line())
    for r in results:
        color = SUCCESS_COLOR if r.success else FAILURE_COLOR
        over_time.plot(r.score_times_s, r.scores, color=color, alpha=0.7, linewidth=1.2)
    over_time.axhline(threshold, color='grey', linestyle='--', linewidth=1)
    over_time.set_xlabel('sim time since iteration start (s)')
    over_time.set_ylabel('stacking score')
    over_time.set_ylim(-0.02, 1.05)
    save_figure(figure, path)


def save_figure(figure: Figure, path: Path) -> None:
    """Write ``figure`` as a PNG to ``path`` atomically: the file is complete or absent."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.png')
    os.close(fd)
    try:
        figure.savefig(tmp, dpi=100)
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
