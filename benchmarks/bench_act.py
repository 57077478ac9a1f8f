"""Benchmark of our ACT model against LeRobot 0.4.4's on identical weights and batches (model only, no data).

    .venv/bin/python benchmarks/bench_act.py [--sizes 96 224 480] [--repeats 3]
        [--lerobot-python /tmp/venv-lerobot/bin/python]

For each image size: a default-config ACT (dim 512, chunk 100, two cameras, state and action dim 8; backbone
without pretrained weights, which changes nothing in speed) is built once, saved, and loaded by both sides.
Measured on the same normalized batch of 8: a training step (forward, backward, gradient clip 10, AdamW step) and
the first step's loss after ``torch.manual_seed(0)`` (must be equal); ``select_action`` on one sample: the call
that runs the model and the next one that pops the queue. LeRobot runs in the side interpreter as a worker
(``benchmarks/lerobot_act_step.py``) that takes turns with ours, run for run, so both see the same machine load.
Reported: the fastest of ``--repeats`` runs after one untimed run (on a shared machine the least disturbed one).
"""

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from harness import LEROBOT_MISSING, add_lerobot_python, lerobot_python, machine_lines, print_table, record

from positronic.vendors.lerobot.act import ACTConfig, ACTPolicy

BATCH_SIZE = 8
CAMERAS = ('observation.images.left', 'observation.images.side')
LEROBOT_SCRIPT = Path(__file__).with_name('lerobot_act_step.py')
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


class OurWorker:
    """Our ACTPolicy answering the commands of ``lerobot_act_step.py`` (loss, train, select) in-process."""

    def __init__(self, pretrained_dir: Path, batch: dict[str, torch.Tensor]):
        self.policy = ACTPolicy.from_pretrained(pretrained_dir)
        self.batch = batch
        self.single = {k: v[:1] for k, v in batch.items() if not k.startswith('action')}
        self.optimizer = torch.optim.AdamW(self.policy.get_optim_params(), lr=1e-5, weight_decay=1e-4)

    def _train_step(self) -> float:
        self.policy.train()
        loss, _ = self.policy.forward(self.batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), 10.0)
        self.optimizer.step()
        self.optimizer.zero_grad()
        return loss.item()

    def ask(self, command: str) -> dict:
        if command == 'loss':
            torch.manual_seed(0)
            return {'loss': self._train_step()}
        if command == 'train':
            start = time.perf_counter()
            self._train_step()
            return {'s': time.perf_counter() - start}
        self.policy.reset()
        start = time.perf_counter()
        self.policy.select_action(self.single)
        middle = time.perf_counter()
        self.policy.select_action(self.single)
        return {'model_s': middle - start, 'cached_s': time.perf_counter() - middle}

    def close(self) -> None:
        pass


class LeRobotWorker:
    """LeRobot 0.4.4's ACTPolicy in the side interpreter, driven through ``lerobot_act_step.py``'s stdin."""

    def __init__(self, python: Path, pretrained_dir: Path, batch_file: Path):
        env = {**os.environ, 'HF_HUB_OFFLINE': '1'}
        command = [str(python), str(LEROBOT_SCRIPT), str(pretrained_dir), str(batch_file)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
        )
        while (line := self.process.stdout.readline()) and line.strip() != 'ready':
            pass
        if not line:
            raise RuntimeError(f'{LEROBOT_SCRIPT.name} exited before it was ready (run it by hand to see why)')

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + '\n')
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def measure(workers: dict, repeats: int) -> dict[str, dict[str, list[float]]]:
    """Each measurement run by every worker in turn (paired under the same machine load); the first is untimed."""
    results = {name: {'train_s': [], 'select_model_s': [], 'select_cached_s': []} for name in workers}
    for name, worker in workers.items():
        results[name]['loss'] = worker.ask('loss')['loss']
    for i in range(repeats + 1):
        for name, worker in workers.items():
            train, select = worker.ask('train'), worker.ask('select')
            if i:
                results[name]['train_s'].append(train['s'])
                results[name]['select_model_s'].append(select['model_s'])
                results[name]['select_cached_s'].append(select['cached_s'])
    return results


def rows_for(size: int, ours: dict, theirs: dict | None) -> list[tuple[str, ...]]:
    """Table rows of one image size (fastest runs; speed-up > 1 where ours is faster), recording each number."""
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
            rows.append((f'{size} px', name, f'{mine:.2f}', 'n/a', 'n/a', unit))
            continue
        other = convert(float(np.min(theirs[key])))
        ratio = mine / other if unit == 'samples/s' else other / mine
        rows.append((f'{size} px', name, f'{mine:.2f}', f'{other:.2f}', f'{ratio:.2f}x', unit))
        record('act', f'{size} px, {name}, LeRobot', other, unit=unit)
        record('act', f'{size} px, {name}, x LeRobot', ratio, unit='x')
    their_loss = f'{theirs["loss"]:.6f}' if theirs else 'n/a'
    rows.append((f'{size} px', 'first-step loss (seed 0)', f'{ours["loss"]:.6f}', their_loss))
    if theirs is not None:
        difference = abs(ours['loss'] - theirs['loss'])
        record('act', f'{size} px, first-step loss, ours minus LeRobot (abs)', difference, '< 1e-6', difference < 1e-6)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[96, 224, 480])
    parser.add_argument('--repeats', type=int, default=3, help='timed runs per measurement (after one untimed)')
    add_lerobot_python(parser)
    args = parser.parse_args()
    lerobot = lerobot_python(parser, args.lerobot_python)

    print('\n'.join(machine_lines('torch')))
    print(f'default ACT config, two cameras; fastest of {args.repeats} runs (the least disturbed)', flush=True)
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
            workers = {'ours': OurWorker(model_dir, batch)}
            if lerobot:
                workers['lerobot'] = LeRobotWorker(lerobot, model_dir, batch_file)
            results = measure(workers, args.repeats)
            for worker in workers.values():
                worker.close()
            ours, theirs = results['ours'], results.get('lerobot')
            rows += rows_for(size, ours, theirs)
    print_table(('size', 'metric', 'ours', 'LeRobot', 'speed-up', 'unit'), rows)
    if lerobot is None:
        print(f'no LeRobot side environment ({LEROBOT_MISSING}): its columns are missing')
    print(f'target: the trainer aims at >= {TARGET_SPEEDUP}x LeRobot end to end (benchmarks/bench_train.py)')


if __name__ == '__main__':
    main()
