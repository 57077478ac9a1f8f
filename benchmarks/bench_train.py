"""Benchmark of ACT training end to end (data loading included), ours next to LeRobot 0.4.4's in the same run.

    .venv/bin/python benchmarks/bench_train.py [--sizes 96 224 480] [--steps 3] [--warmup 1]
        [--lerobot-python /tmp/venv-lerobot/bin/python] [--lerobot-workers 4] [--workers 1] [--processes 2]

For each image size: a LeRobot v3.0 dataset of two episodes (two cameras, 8-d state and action, H.264) is written
with our writer; then

- ours: ``positronic.vendors.lerobot.training.train.train`` (the real trainer: frame cache, prefetching batch stream,
  processors, forward, backward, clip, AdamW, metrics), timed per step from its metrics.jsonl;
- LeRobot: ``lerobot_train_step.py`` in the side interpreter (LeRobotDataset + DataLoader with
  ``--lerobot-workers`` worker processes, LeRobot's default being 4, processors, ACTPolicy, AdamW, clip);

both at LeRobot's default ACT config (dim_model 512, 4+1 transformer layers, VAE, chunk 100), batch 8, with the
backbone randomly initialised (no download; speed is the same). The first ``--warmup`` steps of each are left out.
Ours runs in fp32 (LeRobot's numerics; the default on CPU) and, with ``--bf16``, under bf16 autocast
(``--precision=bf16``, AMX on recent Xeons; different numerics), and with ``--processes N`` also as the trainer's
command under ``torchrun`` (DistributedDataParallel over gloo, N processes of batch 8/N and an equal share of the
cores each: the same global batch and, with frozen batch norm, the same gradients). Reported: samples/s end to
end at the median step time, the share of step time spent waiting for data, our one-time frame-cache build, and
our speed over LeRobot's (target >= 1.5x). On a shared machine step times vary a lot with the load: compare rows
of the same run.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import cpu_model, load_average
from results import record

from positronic.vendors.lerobot.codec_spec import CodecSpec
from positronic.vendors.lerobot.codecs import eepose_absolute
from positronic.vendors.lerobot.lerobot_dataset import DatasetWriter
from positronic.vendors.lerobot.training.distributed import threads_per_process
from positronic.vendors.lerobot.training.train import train
from positronic.vendors.lerobot.training.train_log import read_metrics

FPS = 30
BATCH_SIZE = 8
TARGET_SPEEDUP = 1.5
LEROBOT_SCRIPT = Path(__file__).with_name('lerobot_train_step.py')
DEFAULT_LEROBOT_PYTHON = Path('/tmp/venv-lerobot/bin/python')


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


def run_ours_distributed(
    dataset: Path, output: Path, steps: int, warmup: int, workers: int, precision: str, processes: int
) -> dict:
    """The trainer's command under ``torchrun --nproc_per_node=processes`` (DistributedDataParallel on gloo), each
    process with ``BATCH_SIZE / processes`` samples (the same global batch) and an equal share of the cores."""
    exp_name = f'bench_p{processes}_w{workers}_{precision}'
    command = [
        sys.executable,
        '-m',
        'torch.distributed.run',
        '--standalone',
        f'--nproc_per_node={processes}',
        '-m',
        'positronic.vendors.lerobot.training.train',
        f'--input_path={dataset}',
        f'--exp_name={exp_name}',
        f'--output_dir={output}',
        f'--num_train_steps={steps + warmup}',
        f'--save_freq={10**9}',
        '--log_freq=1',
        f'--batch_size={BATCH_SIZE // processes}',
        f'--num_workers={workers}',
        f'--precision={precision}',
        '--policy.pretrained_backbone_weights=None',
    ]
    threads = str(threads_per_process(processes))
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True, env={**os.environ, 'OMP_NUM_THREADS': threads})
    total_s = time.perf_counter() - start
    rows = read_metrics(output / exp_name)[warmup:]
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


def machine_info() -> list[str]:
    cpu = cpu_model()
    return [
        f'machine: {cpu}, {os.cpu_count()} cores; python {platform.python_version()}, torch {torch.__version__} '
        f'({torch.get_num_threads()} threads)',
        'load average (1/5/15 min) at start: ' + load_average(),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[96, 224, 480])
    parser.add_argument('--steps', type=int, default=3, help='timed steps per run')
    parser.add_argument('--warmup', type=int, default=1, help='untimed first steps per run')
    parser.add_argument('--episodes', type=int, default=2)
    parser.add_argument('--frames', type=int, default=60, help='frames per episode')
    parser.add_argument('--workers', type=int, nargs='+', default=[1], help='our batch-preparing threads')
    parser.add_argument(
        '--processes',
        type=int,
        nargs='+',
        default=[],
        help='also time the trainer under torchrun with this many processes each (the same global batch)',
    )
    parser.add_argument(
        '--bf16', action=argparse.BooleanOptionalAction, default=True, help='also time --precision=bf16'
    )
    parser.add_argument('--lerobot-workers', type=int, default=4, help="DataLoader processes (LeRobot's default 4)")
    parser.add_argument(
        '--lerobot-python', type=Path, default=Path(os.environ.get('LEROBOT_PYTHON', DEFAULT_LEROBOT_PYTHON))
    )
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
    lerobot = args.lerobot_python if args.lerobot_python.exists() else None

    lines = [*machine_info(), f'batch {BATCH_SIZE}, two cameras, default ACT config; {args.steps} timed steps']
    header = f'{"size":>7} | {"who":<22} | {"samples/s":>9} | {"data share":>10} | {"vs LeRobot":>10} | target'
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            dataset = Path(tmp) / f'dataset_{size}'
            write_dataset(dataset, size, args.episodes, args.frames)
            cache_s = cache_build_seconds(dataset, Path(tmp) / f'out_{size}' / 'frame_cache')
            theirs = None
            if lerobot is not None:
                run = run_lerobot(lerobot, dataset, args.steps, args.warmup, args.lerobot_workers)
                theirs = summary(run)
                who = f'LeRobot, {args.lerobot_workers} workers'
                rows.append(
                    f'{size:>4} px | {who:<22} | {theirs[0]:>9.2f} | {100 * theirs[1]:>9.1f}% | {"1.00x":>10} |'
                )
                print(f'LeRobot {size} px step_s {run["step_s"]} data_s {run["data_s"]}', flush=True)
                record('train', f'{size} px, {who}', theirs[0], unit='samples/s')
                record('train', f'{size} px, {who}: data share', 100 * theirs[1], unit='%')
            precisions = ['fp32', 'bf16'] if args.bf16 else ['fp32']
            configs = [(1, w, 'fp32') for w in args.workers] + [(1, args.workers[0], 'bf16')] * args.bf16
            configs += [(n, args.workers[0], precision) for n in args.processes if n > 1 for precision in precisions]
            for processes, workers, precision in configs:
                output = Path(tmp) / f'out_{size}'
                if processes == 1:
                    run = run_ours(dataset, output, args.steps, args.warmup, workers, precision)
                else:
                    run = run_ours_distributed(dataset, output, args.steps, args.warmup, workers, precision, processes)
                ours = summary(run)
                print(
                    f'ours {size} px {precision} {processes}x{workers}: step_s {run["step_s"]} data_s {run["data_s"]}',
                    flush=True,
                )
                speedup = f'{ours[0] / theirs[0]:.2f}x' if theirs else 'n/a'
                verdict = '' if theirs is None else ('met' if ours[0] / theirs[0] >= TARGET_SPEEDUP else 'MISSED')
                who = (
                    f'ours {precision}, {workers} prefetch'
                    if processes == 1
                    else f'ours {precision}, {processes} procs'
                )
                record('train', f'{size} px, {who}', ours[0], unit='samples/s')
                record('train', f'{size} px, {who}: data share', 100 * ours[1], unit='%')
                if theirs:
                    ratio = ours[0] / theirs[0]
                    target = f'>= {TARGET_SPEEDUP}x'
                    record('train', f'{size} px, {who}: x LeRobot', ratio, target, ratio >= TARGET_SPEEDUP, unit='x')
                rows.append(
                    f'{size:>4} px | {who:<22} | {ours[0]:>9.2f} | {100 * ours[1]:>9.1f}% | '
                    f'{speedup:>10} | >= {TARGET_SPEEDUP}x {verdict}'
                )
            frames = args.episodes * args.frames
            rows.append(f'{size:>4} px | ours: frame cache built once in {cache_s:.1f} s ({frames} frames x 2 cameras)')
    if lerobot is None:
        lines.append(f'LeRobot side environment not found at {args.lerobot_python}: its rows are missing')
    print('\n'.join([*lines, header, '-' * len(header), *rows]))


def throughput(args: argparse.Namespace) -> None:
    """``--throughput``: one row per configuration of ``train_throughput.grid``, then the time to first step."""
    import train_throughput as tt

    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else cpu_model()
    precision = 'bf16'
    steps = 3 if args.quick else args.window
    header = f'{"size":>7} | {"configuration":<66} | {"samples/s":>9} | {"ms/step":>8} | {"of peak":>7} | device'
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        datasets: dict[int, Path] = {}
        for config in tt.grid(args.quick):
            if config.size not in datasets:
                datasets[config.size] = Path(tmp) / f'dataset_{config.size}'
                write_dataset(datasets[config.size], config.size, args.episodes, args.frames)
            result = tt.measure(datasets[config.size], Path(tmp) / 'runs', config, steps, precision)
            if 'error' in result:
                rows.append(f'{config.size:>4} px | {config.label:<66} | {result["error"]}')
                continue
            flop = tt.flop_per_sample(datasets[config.size], config, device)
            peak = result['samples_per_s'] * flop / (args.peak_tflops * 1e12)
            rows.append(
                f'{config.size:>4} px | {config.label:<66} | {result["samples_per_s"]:>9.1f} | '
                f'{result["step_ms"]:>8.1f} | {100 * peak:>6.2f}% | {name}'
            )
            print(rows[-1], flush=True)
            record('train', f'{config.size} px, {config.label}', result['samples_per_s'], unit='samples/s')
        first = tt.grid(args.quick)[-3 if not args.quick else -1]
        big = Path(tmp) / 'dataset_first_step'
        write_dataset(big, first.size, 50, args.frames)
        first_s = tt.time_to_first_step(big, Path(tmp) / 'first', first, precision)
        rows.append(f'{first.size:>4} px | time to first step, 50 episodes, {first.label}: {first_s:.1f} s')
    print('\n'.join([*machine_info(), f'{precision}, {steps} timed steps after {steps} untimed', header, *rows]))


if __name__ == '__main__':
    main()
