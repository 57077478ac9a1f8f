"""Benchmark of our ACT model against LeRobot 0.4.4's on identical weights and batches (model only, no data).

    .venv/bin/python benchmarks/bench_act.py [--sizes 96 224 480] [--repeats 2]
        [--lerobot-python /tmp/venv-lerobot/bin/python]

For each image size: a default-config ACT (dim 512, chunk 100, two cameras, state and action dim 8; backbone
without pretrained weights, which changes nothing in speed) is built once, saved, and loaded by both sides.
Measured on the same normalized batch of 8: a training step (forward, backward, gradient clip 10, AdamW step) and
the first step's loss after ``torch.manual_seed(0)`` (must be equal); ``select_action`` on one sample: the call
that runs the model and the next one that pops the queue. LeRobot runs in the side interpreter
(``benchmarks/lerobot_act_step.py``). Fastest of ``--repeats`` runs after one untimed run: on a shared machine the
fastest run is the least disturbed one.
"""

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from results import record

from positronic.vendors.lerobot.act import ACTConfig, ACTPolicy

BATCH_SIZE = 8
CAMERAS = ('observation.images.left', 'observation.images.side')
LEROBOT_SCRIPT = Path(__file__).with_name('lerobot_act_step.py')
DEFAULT_LEROBOT_PYTHON = '/tmp/venv-lerobot/bin/python'
TARGET_SPEEDUP = 1.5
"""The trainer's end-to-end target; the model's share of it."""


def default_config(size: int) -> ACTConfig:
    return ACTConfig(
        input_features={
            'observation.state': {'type': 'STATE', 'shape': [8]},
            **{cam: {'type': 'VISUAL', 'shape': [3, size, size]} for cam in CAMERAS},
        },
        output_features={'action': {'type': 'ACTION', 'shape': [8]}},
        pretrained_backbone_weights=None,
        device='cpu',
    )


def make_batch(config: ACTConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    batch = {'observation.state': torch.randn(BATCH_SIZE, 8, generator=g)}
    for key, feature in config.image_features.items():
        batch[key] = torch.randn(BATCH_SIZE, *feature.shape, generator=g)
    batch['action'] = torch.randn(BATCH_SIZE, config.chunk_size, 8, generator=g)
    batch['action_is_pad'] = torch.zeros(BATCH_SIZE, config.chunk_size, dtype=torch.bool)
    batch['action_is_pad'][0, -20:] = True
    return batch


def time_ours(pretrained_dir: Path, batch: dict[str, torch.Tensor], repeats: int) -> dict:
    """The measurements of ``lerobot_act_step.py``, on our ACTPolicy."""
    policy = ACTPolicy.from_pretrained(pretrained_dir)
    optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=1e-5, weight_decay=1e-4)
    policy.train()
    train_s, loss_value = [], None
    for i in range(repeats + 1):
        start = time.perf_counter()
        if i == 0:
            torch.manual_seed(0)
        loss, _ = policy.forward(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 10.0)
        optimizer.step()
        optimizer.zero_grad()
        if i == 0:
            loss_value = loss.item()
        else:
            train_s.append(time.perf_counter() - start)

    single = {k: v[:1] for k, v in batch.items() if not k.startswith('action')}
    select_model_s, select_cached_s = [], []
    for _ in range(repeats + 1):
        policy.reset()
        start = time.perf_counter()
        policy.select_action(single)
        middle = time.perf_counter()
        policy.select_action(single)
        select_model_s.append(middle - start)
        select_cached_s.append(time.perf_counter() - middle)
    return {
        'train_s': train_s,
        'loss': loss_value,
        'select_model_s': select_model_s[1:],
        'select_cached_s': select_cached_s[1:],
    }


def time_lerobot(python: Path, pretrained_dir: Path, batch_file: Path, repeats: int) -> dict:
    out = batch_file.with_name('lerobot.json')
    env = {**os.environ, 'HF_HUB_OFFLINE': '1'}
    command = [str(python), str(LEROBOT_SCRIPT), str(pretrained_dir), str(batch_file), str(repeats), str(out)]
    subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.read_text())


def machine_info() -> list[str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return [
        f'machine: {cpu}, {os.cpu_count()} cores; python {platform.python_version()}, torch {torch.__version__} '
        f'({torch.get_num_threads()} threads)',
        'load average (1/5/15 min) at start: ' + ' '.join(f'{x:.2f}' for x in os.getloadavg()),
    ]


def rows_for(size: int, ours: dict, theirs: dict | None) -> list[str]:
    rows = []
    metrics = (
        ('train step, batch 8', 'train_s', 'samples/s', lambda s: BATCH_SIZE / s),
        ('select_action, model call', 'select_model_s', 'ms', lambda s: 1000 * s),
        ('select_action, cached', 'select_cached_s', 'ms', lambda s: 1000 * s),
    )
    for name, key, unit, convert in metrics:
        mine = convert(float(np.min(ours[key])))
        record('act', f'{size} px, {name}, ours', mine, unit=unit)
        if theirs is None:
            rows.append(f'{size:>4} px | {name:<26} | {mine:>9.2f} | {"n/a":>9} | {"n/a":>7} | {unit}')
            continue
        other = convert(float(np.min(theirs[key])))
        ratio = mine / other if unit == 'samples/s' else other / mine
        rows.append(f'{size:>4} px | {name:<26} | {mine:>9.2f} | {other:>9.2f} | {ratio:>6.2f}x | {unit}')
        record('act', f'{size} px, {name}, LeRobot', other, unit=unit)
        record('act', f'{size} px, {name}, x LeRobot', ratio, unit='x')
    loss_line = f'{ours["loss"]:.6f}' + ('' if theirs is None else f' vs LeRobot {theirs["loss"]:.6f}')
    rows.append(f'{size:>4} px | first-step loss (seed 0): {loss_line}')
    if theirs is not None:
        difference = abs(ours['loss'] - theirs['loss'])
        record('act', f'{size} px, first-step loss, ours minus LeRobot (abs)', difference, '< 1e-6', difference < 1e-6)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[96, 224, 480])
    parser.add_argument('--repeats', type=int, default=3, help='timed runs per measurement (after one untimed)')
    parser.add_argument(
        '--lerobot-python', type=Path, default=Path(os.environ.get('LEROBOT_PYTHON', DEFAULT_LEROBOT_PYTHON))
    )
    args = parser.parse_args()
    lerobot = args.lerobot_python if args.lerobot_python.exists() else None

    lines = [*machine_info(), f'default ACT config, two cameras; fastest of {args.repeats} runs (the least disturbed)']
    header = f'{"size":>7} | {"metric":<26} | {"ours":>9} | {"LeRobot":>9} | {"speedup":>7} | unit'
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            config = default_config(size)
            torch.manual_seed(0)
            model_dir = Path(tmp) / f'act_{size}'
            ACTPolicy(config).save_pretrained(model_dir)
            batch = make_batch(config)
            batch_file = Path(tmp) / f'batch_{size}.npz'
            np.savez(batch_file, **{k: v.numpy() for k, v in batch.items()})
            theirs = time_lerobot(lerobot, model_dir, batch_file, args.repeats) if lerobot else None
            ours = time_ours(model_dir, batch, args.repeats)
            rows += rows_for(size, ours, theirs)
            print('\n'.join(rows[-4:]), flush=True)
    if lerobot is None:
        lines.append(f'LeRobot side environment not found at {args.lerobot_python}: its columns are missing')
    lines.append(f'target: the trainer aims at >= {TARGET_SPEEDUP}x LeRobot end to end (benchmarks/bench_train.py)')
    print('\n'.join([*lines, header, '-' * len(header), *rows]))


if __name__ == '__main__':
    main()
