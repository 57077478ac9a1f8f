"""Benchmark of ACT training end to end (data loading included), ours next to LeRobot 0.4.4's in the same run.

    .venv/bin/python benchmarks/bench_train.py [--sizes 96 224 480] [--steps 3] [--warmup 1]
        [--lerobot-python /tmp/venv-lerobot/bin/python] [--lerobot-workers 4] [--workers 1] [--no-bf16]
    .venv/bin/python benchmarks/bench_train.py --throughput [--quick] [--peak-tflops 989]

For each image size: a LeRobot v3.0 dataset of two episodes (two cameras, 8-d state and action, H.264) is written
with our writer; then

- ours: ``positronic.vendors.lerobot.training.train.train`` (the real trainer: frame cache, prefetching batch stream,
  processors, forward, backward, clip, AdamW, metrics), timed per step from its metrics.jsonl;
- LeRobot: ``lerobot_train_step.py`` in the side interpreter (LeRobotDataset + DataLoader with
  ``--lerobot-workers`` worker processes, LeRobot's default being 4, processors, ACTPolicy, AdamW, clip);

both at LeRobot's default ACT config (dim_model 512, 4+1 transformer layers, VAE, chunk 100), batch 8, with the
backbone randomly initialised (no download; speed is the same). The first ``--warmup`` steps of each are left out.
Ours runs in fp32 (LeRobot's numerics; the default on CPU) and, with ``--bf16``, under bf16 autocast
(``--precision=bf16``; different numerics; fast only on a CPU with bf16 kernels, AVX512 or AMX, emulated and many
times slower elsewhere: the header says which this CPU is). Reported: samples/s end to
end at the median step time, the share of step time spent waiting for data, our one-time frame-cache build, and
our speed over LeRobot's (target >= 1.5x). On a shared machine step times vary a lot with the load: compare rows
of the same run (docs/training.md, "Speed").

``--throughput``: our trainer alone over the GPU grid of ``train_throughput.py`` (docs/training.md, "On a GPU").
"""

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from harness import (
    LEROBOT_MISSING,
    add_lerobot_python,
    cpu_model,
    gpu_name,
    lerobot_python,
    machine_lines,
    print_table,
    record,
    verdict,
)

from positronic.vendors.lerobot.codec_spec import CodecSpec
from positronic.vendors.lerobot.codecs import eepose_absolute
from positronic.vendors.lerobot.lerobot_dataset import DatasetWriter
from positronic.vendors.lerobot.training.precision import cpu_computes
from positronic.vendors.lerobot.training.train import train
from positronic.vendors.lerobot.training.train_log import read_metrics

FPS = 30
BATCH_SIZE = 8
TARGET_SPEEDUP = 1.5
LEROBOT_SCRIPT = Path(__file__).with_name('lerobot_train_step.py')


def scene(num_frames: int, size: int, seed: int) -> np.ndarray:
    """uint8 (T, size, size, 3): a smooth colour field with a bright square moving across it."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = np.empty((num_frames, size, size, 3), np.uint8)
    for t in range(num_frames):
        phase = t / 15 + seed
        field = np.stack([np.sin(6 * xx + phase), np.cos(5 * yy - phase), np.sin(4 * (xx + yy))], -1)
        frame = 110 + 60 * field
        cx, cy = 0.5 + 0.3 * np.sin(phase), 0.5 + 0.3 * np.cos(phase)
        frame[(np.abs(xx - cx) < 0.1) & (np.abs(yy - cy) < 0.1)] = (235, 215, 40)
        out[t] = frame.astype(np.uint8)
    return out


def write_dataset(root: Path, size: int, episodes: int, frames: int) -> None:
    codec = eepose_absolute.override(image_size=size).instantiate()
    record = CodecSpec.of(codec).to_record()
    with DatasetWriter.create(root, codec.features(), FPS, robot_type='sim', positronic_codec=record) as writer:
        for e in range(episodes):
            t = np.arange(frames)[:, None] / FPS
            state = np.sin(t + np.arange(8) + e).astype(np.float32)
            writer.add_episode(
                {
                    'observation.state': state,
                    'action': np.roll(state, -1, axis=0),
                    'observation.images.left': scene(frames, size, 2 * e),
                    'observation.images.side': scene(frames, size, 2 * e + 1),
                },
                'stack the cubes',
            )


def run_ours(dataset: Path, output: Path, steps: int, warmup: int, workers: int, precision: str) -> dict:
    start = time.perf_counter()
    experiment = train(
        input_path=str(dataset),
        exp_name=f'bench_w{workers}_{precision}',
        precision=precision,
        output_dir=str(output),
        num_train_steps=steps + warmup,
        save_freq=10**9,
        log_freq=1,  # read every step: per-step times (a CPU step has nothing queued to wait for)
        batch_size=BATCH_SIZE,
        num_workers=workers,
        **{'policy.pretrained_backbone_weights': None},
    )
    total_s = time.perf_counter() - start
    rows = read_metrics(experiment)[warmup:]
    return {'step_s': [r['step_s'] for r in rows], 'data_s': [r['data_s'] for r in rows], 'total_s': total_s}


def cache_build_seconds(dataset: Path, cache: Path) -> float:
    from positronic.vendors.lerobot.lerobot_dataset import DatasetReader
    from positronic.vendors.lerobot.training.frame_cache import FrameCache

    start = time.perf_counter()
    FrameCache.open_or_build(DatasetReader(dataset), cache)
    return time.perf_counter() - start


def run_lerobot(python: Path, dataset: Path, steps: int, warmup: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / 'lerobot.json'
        command = [str(python), str(LEROBOT_SCRIPT), str(dataset), str(steps + warmup), str(BATCH_SIZE), str(workers)]
        subprocess.run([*command, str(out)], check=True, capture_output=True, text=True)
        result = json.loads(out.read_text())
    return {k: v[warmup:] if isinstance(v, list) else v for k, v in result.items()}


def summary(run: dict) -> tuple[float, float]:
    """(samples/s at the median step time, data share of the total step time) over the timed steps."""
    step = float(np.median(run['step_s']))
    return BATCH_SIZE / step, float(np.sum(run['data_s']) / np.sum(run['step_s']))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[96, 224, 480])
    parser.add_argument('--steps', type=int, default=3, help='timed steps per run')
    parser.add_argument('--warmup', type=int, default=1, help='untimed first steps per run')
    parser.add_argument('--episodes', type=int, default=2)
    parser.add_argument('--frames', type=int, default=60, help='frames per episode')
    parser.add_argument('--workers', type=int, nargs='+', default=[1], help='our batch-preparing threads')
    parser.add_argument(
        '--bf16', action=argparse.BooleanOptionalAction, default=True, help='also time --precision=bf16'
    )
    parser.add_argument('--lerobot-workers', type=int, default=4, help="DataLoader processes (LeRobot's default 4)")
    add_lerobot_python(parser)
    parser.add_argument(
        '--throughput',
        action='store_true',
        help='instead: our trainer alone over the speed configurations of train_throughput.py (for a GPU)',
    )
    parser.add_argument('--quick', action='store_true', help='with --throughput: a tiny grid that runs on a CPU')
    parser.add_argument('--window', type=int, default=30, help='with --throughput: timed steps per configuration')
    parser.add_argument(
        '--peak-tflops', type=float, default=989.0, help='dense bf16 peak of the device (H100/H200 SXM: 989)'
    )
    args = parser.parse_args()
    if args.throughput:
        throughput(args)
        return
    lerobot = lerobot_python(parser, args.lerobot_python)

    print('\n'.join(machine_lines('torch')))
    print(f'bf16 kernels on this CPU: {"yes" if cpu_computes(torch.bfloat16) else "no (bf16 autocast is emulated)"}')
    print(f'batch {BATCH_SIZE}, two cameras, default ACT config; {args.steps} timed steps', flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            rows += rows_for_size(args, lerobot, Path(tmp), size)
    print_table(('size', 'who', 'samples/s', 'data share', 'vs LeRobot', 'target', 'ok'), rows)
    if lerobot is None:
        print(f'no LeRobot side environment ({LEROBOT_MISSING}): its rows are missing')


def rows_for_size(args: argparse.Namespace, lerobot: Path | None, tmp: Path, size: int) -> list[tuple[str, ...]]:
    """LeRobot's row (when its environment is there), then ours for each configuration, then the cache build."""
    dataset = tmp / f'dataset_{size}'
    write_dataset(dataset, size, args.episodes, args.frames)
    cache_s = cache_build_seconds(dataset, tmp / f'out_{size}' / 'frame_cache')
    rows, theirs = [], None
    if lerobot is not None:
        run = run_lerobot(lerobot, dataset, args.steps, args.warmup, args.lerobot_workers)
        theirs = summary(run)
        who = f'LeRobot, {args.lerobot_workers} workers'
        rows.append((f'{size} px', who, f'{theirs[0]:.2f}', f'{100 * theirs[1]:.1f}%', '1.00x'))
        print(f'LeRobot {size} px step_s {run["step_s"]} data_s {run["data_s"]}', flush=True)
        record('train', f'{size} px, {who}', theirs[0], unit='samples/s')
        record('train', f'{size} px, {who}: data share', 100 * theirs[1], unit='%')
    configs = [(w, 'fp32') for w in args.workers] + [(args.workers[0], 'bf16')] * args.bf16
    for workers, precision in configs:
        run = run_ours(dataset, tmp / f'out_{size}', args.steps, args.warmup, workers, precision)
        ours = summary(run)
        print(f'ours {size} px {precision} {workers}: step_s {run["step_s"]} data_s {run["data_s"]}', flush=True)
        who = f'ours {precision}, {workers} prefetch'
        record('train', f'{size} px, {who}', ours[0], unit='samples/s')
        record('train', f'{size} px, {who}: data share', 100 * ours[1], unit='%')
        speedup, ok = 'n/a', None
        if theirs:
            ratio = ours[0] / theirs[0]
            speedup, ok = f'{ratio:.2f}x', ratio >= TARGET_SPEEDUP
            record('train', f'{size} px, {who}: x LeRobot', ratio, f'>= {TARGET_SPEEDUP}x', ok, unit='x')
        row = (f'{size} px', who, f'{ours[0]:.2f}', f'{100 * ours[1]:.1f}%', speedup, f'>= {TARGET_SPEEDUP}x')
        rows.append((*row, verdict(ok)))
    frames = args.episodes * args.frames
    rows.append((f'{size} px', f'ours: frame cache built once in {cache_s:.1f} s ({frames} frames x 2 cameras)'))
    return rows


def throughput(args: argparse.Namespace) -> None:
    """``--throughput``: one row per configuration of ``train_throughput.grid``, then the time to first step."""
    import train_throughput as tt

    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    name = gpu_name() or cpu_model()
    precision = 'bf16'
    steps = 3 if args.quick else args.window
    print('\n'.join(machine_lines('torch')))
    print(f'{precision}, {steps} timed steps after {steps} untimed', flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        datasets: dict[int, Path] = {}
        for config in tt.grid(args.quick):
            if config.size not in datasets:
                datasets[config.size] = Path(tmp) / f'dataset_{config.size}'
                write_dataset(datasets[config.size], config.size, args.episodes, args.frames)
            result = tt.measure(datasets[config.size], Path(tmp) / 'runs', config, steps, precision)
            if 'error' in result:
                rows.append((f'{config.size} px', config.label, result['error']))
                continue
            flop = tt.flop_per_sample(datasets[config.size], config, device)
            peak = result['samples_per_s'] * flop / (args.peak_tflops * 1e12)
            row = (f'{result["samples_per_s"]:.1f}', f'{result["step_ms"]:.1f}', f'{100 * peak:.2f}%', name)
            rows.append((f'{config.size} px', config.label, *row))
            print(' | '.join(rows[-1]), flush=True)
            record('train', f'{config.size} px, {config.label}', result['samples_per_s'], unit='samples/s')
        first = tt.grid(args.quick)[-3 if not args.quick else -1]
        big = Path(tmp) / 'dataset_first_step'
        write_dataset(big, first.size, 50, args.frames)
        first_s = tt.time_to_first_step(big, Path(tmp) / 'first', first, precision)
    print_table(('size', 'configuration', 'samples/s', 'ms/step', 'of peak', 'device'), rows)
    print(f'time to first step, 50 episodes, {first.size} px, {first.label}: {first_s:.1f} s')


if __name__ == '__main__':
    main()
