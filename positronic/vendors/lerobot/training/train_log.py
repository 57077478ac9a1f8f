"""What a training run reports: a progress bar, a log line every ``log_freq`` steps, ``metrics.jsonl``, a loss-curve
PNG beside the checkpoints, and WandB when ``WANDB_API_KEY`` is set.

    <output_dir>/<exp_name>/metrics.jsonl     one JSON object per step: step, loss, l1_loss, kld_loss, grad_norm,
                                              lr, samples_per_s, data_s, step_s
    <output_dir>/<exp_name>/loss_curve.png    loss, l1 and kld against step (redrawn at every checkpoint)
"""

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from positronic.vendors.lerobot.training.distributed import ProcessGroup

METRICS_FILE = 'metrics.jsonl'
LOSS_CURVE_FILE = 'loss_curve.png'
WANDB_KEY_ENV = 'WANDB_API_KEY'
WANDB_PROJECT = 'positronic'
WANDB_ID_FILE = 'wandb_run_id'


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the run stops before it saves such weights."""


class WandbMissingError(RuntimeError):
    """WANDB_API_KEY is set but the wandb package is not installed."""


def read_metrics(experiment_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``metrics.jsonl`` (empty when the run has logged nothing yet)."""
    path = Path(experiment_dir) / METRICS_FILE
    if not path.is_file():
        return []
    with open(path, encoding='utf-8') as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_loss_curve(rows: list[Mapping[str, Any]], path: Path) -> None:
    """Loss, l1 and kld (log scale) against step into a PNG at ``path`` (written atomically)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    steps = np.array([r['step'] for r in rows])
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for name in ('loss', 'l1_loss', 'kld_loss'):
        values = np.array([r.get(name, np.nan) for r in rows], dtype=float)
        if np.isfinite(values).any():
            ax.plot(steps, values, label=name, linewidth=1)
    ax.set_xlabel('step')
    ax.set_yscale('log')
    ax.grid(True, which='both', alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f'.{path.name}.tmp.png')
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def wandb_module():
    """The wandb module when WANDB_API_KEY is set, else None; WandbMissingError when the key is set without wandb."""
    if not os.environ.get(WANDB_KEY_ENV):
        return None
    try:
        import wandb
    except ImportError:
        raise WandbMissingError(
            f'{WANDB_KEY_ENV} is set but wandb is not installed: `pip install "positronic-act[wandb]"` '
            f'(or unset {WANDB_KEY_ENV} to train without WandB)'
        ) from None
    return wandb


def start_wandb(wandb, experiment_dir: Path, exp_name: str, config: Mapping[str, Any], resume: bool):
    """A wandb run named ``exp_name``, continued across resumes through the id kept in the experiment dir."""
    id_file = Path(experiment_dir) / WANDB_ID_FILE
    run_id = id_file.read_text().strip() if resume and id_file.is_file() else wandb.util.generate_id()
    id_file.write_text(run_id)
    return wandb.init(project=WANDB_PROJECT, name=exp_name, id=run_id, resume='allow', config=dict(config))


class StepWindow:
    """The metrics of the steps since the last :meth:`read`, kept on the training device: adding a step reads
    nothing back (no host sync); :meth:`read` transfers the window once, averaged over processes, and times it.

    Args:
        names: what each step's metric tensor holds, in order; the first is the loss.
        group: the process group (every process must read at the same steps).
        samples_per_step: the global batch.
    """

    def __init__(self, names: Sequence[str], group: ProcessGroup, samples_per_step: int):
        self.names = list(names)
        self._group = group
        self._samples_per_step = samples_per_step
        self._steps: list[int] = []
        self._values: list[torch.Tensor] = []
        self._data_s: list[float] = []
        self._extra: list[Mapping[str, float]] = []
        self.restart()

    def __len__(self) -> int:
        return len(self._steps)

    def restart(self) -> None:
        """Start timing anew (after work that is not training, such as saving a checkpoint)."""
        self._since = time.perf_counter()

    def add(self, step: int, values: torch.Tensor, data_s: float, extra: Mapping[str, float] | None = None) -> None:
        """One step's metrics (``len(names)`` values, on the device), the host time spent waiting for its batch and
        host values of the step to log beside them (such as its learning rate)."""
        self._steps.append(step)
        self._values.append(values)
        self._data_s.append(data_s)
        self._extra.append(dict(extra or {}))

    def read(self) -> list[dict[str, float]]:
        """Rows ``{step, <names>, **extra, samples_per_s, data_s, step_s}`` of the window's steps, ``step_s`` and
        ``samples_per_s`` from the window's wall time; NonFiniteLossError names the first step whose loss is not
        finite. The window is emptied."""
        if not self._steps:
            return []
        values = self._group.mean_tensor(torch.stack(self._values).float()).tolist()
        step_s = (time.perf_counter() - self._since) / len(self._steps)
        rows = [
            {'step': step, **dict(zip(self.names, row, strict=True)), **extra}
            | {'samples_per_s': self._samples_per_step / step_s, 'data_s': min(data_s, step_s), 'step_s': step_s}
            for step, row, data_s, extra in zip(self._steps, values, self._data_s, self._extra, strict=True)
        ]
        self._steps, self._values, self._data_s, self._extra = [], [], [], []
        self.restart()
        for row in rows:
            if not math.isfinite(row[self.names[0]]):
                raise NonFiniteLossError(
                    f'training loss is {row[self.names[0]]} at step {row["step"]}: stopped without saving these '
                    'weights; check the dataset for non-finite values (positronic-to-lerobot verify), or lower '
                    '--policy.optimizer_lr'
                )
        return rows


class TrainingLog:
    """Progress of the main process; every method is a no-op on other ranks (``enabled=False``)."""

    def __init__(
        self,
        experiment_dir: Path,
        start_step: int,
        total_steps: int,
        log_freq: int,
        *,
        enabled: bool = True,
        wandb_run=None,
    ):
        self.experiment_dir = Path(experiment_dir)
        self.log_freq = log_freq
        self.enabled = enabled
        self._wandb = wandb_run
        self._window: list[dict[str, float]] = []
        self._bar = None
        if not enabled:
            return
        self._truncate_metrics_after(start_step)
        self._metrics = open(self.experiment_dir / METRICS_FILE, 'a', encoding='utf-8')  # noqa: SIM115
        self._bar = tqdm(total=total_steps, initial=start_step, desc='train', unit='step', dynamic_ncols=True)

    def _truncate_metrics_after(self, step: int) -> None:
        """Drop rows past ``step`` (logged after the checkpoint a resumed run restarts from)."""
        rows = [r for r in read_metrics(self.experiment_dir) if r['step'] <= step]
        path = self.experiment_dir / METRICS_FILE
        tmp = path.with_name(f'.{path.name}.tmp')
        tmp.write_text(''.join(json.dumps(r) + '\n' for r in rows), encoding='utf-8')
        os.replace(tmp, path)

    def advance(self) -> None:
        """One more optimizer step done (the bar moves; its metrics come later, with :meth:`record`)."""
        if self.enabled:
            self._bar.update(1)

    def record(self, rows: Sequence[Mapping[str, float]]) -> None:
        """Record steps' metrics (rows with ``step``, already averaged over processes), in order."""
        if not self.enabled:
            return
        for metrics in rows:
            row = {k: (int(v) if k == 'step' else float(v)) for k, v in metrics.items()}
            self._metrics.write(json.dumps(row) + '\n')
            self._window.append(row)
            if self._wandb is not None:
                self._wandb.log({k: v for k, v in row.items() if k != 'step'}, step=row['step'])
            if row['step'] % self.log_freq == 0:
                self._bar.write(self._summary(row['step']))
                self._window.clear()
        if rows:
            last = rows[-1]
            shown = {'loss': last['loss'], 'l1': last['l1_loss']} | (
                {'kld': last['kld_loss']} if 'kld_loss' in last else {}
            )
            shown = {k: f'{v:.4f}' for k, v in shown.items()} | {'samples/s': f'{last["samples_per_s"]:.1f}'}
            self._bar.set_postfix(shown)
            self._metrics.flush()

    def _summary(self, step: int) -> str:
        mean = {k: float(np.mean([r.get(k, np.nan) for r in self._window])) for k in self._window[-1]}
        data_share = sum(r['data_s'] for r in self._window) / max(sum(r['step_s'] for r in self._window), 1e-9)
        kld = f' kld {mean["kld_loss"]:.4f}' if 'kld_loss' in mean else ''
        return (
            f'step {step}: loss {mean["loss"]:.4f} l1 {mean["l1_loss"]:.4f}{kld} grad_norm {mean["grad_norm"]:.3f} '
            f'lr {mean["lr"]:.2e} {mean["samples_per_s"]:.1f} samples/s, data {100 * data_share:.0f}% of step time'
        )

    def checkpoint(self, step_dir: Path) -> None:
        """Note a saved checkpoint and redraw the loss curve."""
        if not self.enabled:
            return
        self._metrics.flush()
        self._bar.write(f'saved checkpoint {step_dir}')
        rows = read_metrics(self.experiment_dir)
        if rows:
            plot_loss_curve(rows, self.experiment_dir / LOSS_CURVE_FILE)

    def close(self) -> None:
        if not self.enabled:
            return
        self._metrics.close()
        self._bar.close()
        if self._wandb is not None:
            self._wandb.finish()
