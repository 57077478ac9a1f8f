"""Speed of the raw dataset library against its targets; prints a table with the machine and the sizes.

    python benchmarks/bench_dataset.py [--frames 300] [--size 480] [--vector-samples 100000]

Measures: appending a 7-float vector sample; appending 480x480 frames pinned to one CPU core (encode
included, finalize included); random time lookups of a vector value on signals of growing length; random
access to a frame of a 300-frame video; reading all its frames in order.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from harness import format_value, machine_lines, print_table, record, time_calls, verdict

from positronic.dataset import LocalDataset, LocalDatasetWriter
from positronic.dataset.transforms import letterbox
from positronic.dataset.video import ENCODER_OPTIONS


def scene_frames(count: int, size: int) -> list[np.ndarray]:
    """Camera-like frames: a slowly panning textured scene, two moving blocks and sensor noise."""
    rng = np.random.default_rng(0)
    margin = count + 8
    yy, xx = np.mgrid[0 : size + margin, 0 : size + margin].astype(np.float32) / size
    scene = np.stack([120 + 80 * yy, 110 + 60 * xx, 90 + 50 * (xx + yy) / 2], axis=-1)
    scene += rng.integers(0, 60, scene.shape[:2], dtype=np.int16)[:, :, None] * np.array([0.8, 0.6, 0.5])
    frames = []
    for i in range(count):
        t = i / count
        base = scene[i // 2 : i // 2 + size, i : i + size].copy()
        for k, (color, speed) in enumerate((((200, 40, 40), 0.7), ((40, 180, 60), -0.5))):
            cx = int((0.3 + 0.4 * ((t * speed + k * 0.3) % 1.0)) * size)
            cy = int((0.35 + 0.2 * k) * size)
            half = size // 12
            base[cy - half : cy + half, cx - half : cx + half] = color
        noisy = base + rng.normal(0, 4, base.shape)
        frames.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return frames


def bench_vector_append(root: Path, samples: int) -> dict[str, float]:
    writer = LocalDatasetWriter(root / 'vector_append')
    values = np.random.default_rng(1).normal(size=(samples + 1, 7))
    with writer.new_episode() as ep:
        durations = time_calls(lambda i: ep.append('robot_state.ee_pose', values[i], i * 2_000_000), samples)
    return {
        'median_us': statistics.median(durations) * 1e6,
        'p99_us': float(np.percentile(durations, 99)) * 1e6,
        'mean_us': statistics.fmean(durations) * 1e6,
    }


def bench_frame_append(root: Path, frames: list[np.ndarray]) -> float:
    """Frames per second appending ``frames`` (encode and finalize included) on one CPU core."""
    previous = os.sched_getaffinity(0) if hasattr(os, 'sched_getaffinity') else None
    if previous:
        os.sched_setaffinity(0, {min(previous)})
    try:
        writer = LocalDatasetWriter(root / 'frames')
        start = time.perf_counter()
        with writer.new_episode() as ep:
            for i, frame in enumerate(frames):
                ep.append('image.wrist', frame, i * 33_333_333)
        return len(frames) / (time.perf_counter() - start)
    finally:
        if previous:
            os.sched_setaffinity(0, previous)


def bench_time_lookup(root: Path, lengths: list[int], queries: int) -> dict[int, float]:
    """Median microseconds of ``signal.time[t]`` at random t, per signal length."""
    rng = np.random.default_rng(2)
    results = {}
    for n in lengths:
        writer = LocalDatasetWriter(root / f'lookup_{n}')
        with writer.new_episode() as ep:
            for i in range(n):
                ep.append('q', np.full(7, i, np.float32), i * 1_000)
        signal = LocalDataset(root / f'lookup_{n}')[0]['q']
        times = [int(t) for t in rng.integers(0, n * 1_000, queries + 1)]
        durations = time_calls(lambda i, signal=signal, times=times: signal.time[times[i]], queries)
        results[n] = statistics.median(durations) * 1e6
    return results


def bench_video_read(root: Path, accesses: int) -> dict[str, float]:
    episode = LocalDataset(root / 'frames')[0]
    camera = episode['image.wrist']
    count = len(camera)
    indices = [int(i) for i in np.random.default_rng(3).integers(0, count, accesses + 1)]
    durations = time_calls(lambda i: camera[indices[i]], accesses)
    random_ms = statistics.median(durations) * 1e3
    camera.close()

    rates, seeks = [], 0
    for _ in range(3):
        sequential = LocalDataset(root / 'frames')[0]['image.wrist']
        start = time.perf_counter()
        for _ in sequential:
            pass
        rates.append(count / (time.perf_counter() - start))
        seeks += sequential.seek_count
    sequential_fps = statistics.median(rates)

    grid = LocalDataset(root / 'frames')[0]['image.wrist']
    start = time.perf_counter()
    for _ in grid.time[grid.first_ts : grid.last_ts + 1 : 1e9 / 15].values:
        pass
    grid_count = len(grid.time[grid.first_ts : grid.last_ts + 1 : 1e9 / 15])
    grid_fps = grid_count / (time.perf_counter() - start)
    seeks += grid.seek_count

    frame = sequential[0][0]
    letterbox_ms = statistics.fmean(time_calls(lambda _: letterbox(frame, 224, 224), 50)) * 1e3
    return {
        'random_ms': random_ms,
        'sequential_fps': sequential_fps,
        'grid_fps': grid_fps,
        'seeks': seeks,
        'letterbox_ms': letterbox_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=300, help='frames in the video benchmarks')
    parser.add_argument('--size', type=int, default=480, help='frame height and width (pixels)')
    parser.add_argument('--vector-samples', type=int, default=100_000)
    args = parser.parse_args()

    frames = scene_frames(args.frames, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        vector = bench_vector_append(root, args.vector_samples)
        append_fps = bench_frame_append(root, frames)
        lookups = bench_time_lookup(root, [1_000, 100_000, 1_000_000], 20_000)
        video = bench_video_read(root, 60)
        video_mb = sum(f.stat().st_size for f in (root / 'frames').rglob('*.mp4')) / 2**20

    print('\n'.join(machine_lines('numpy', 'pyarrow', 'av')))
    print(
        f'sizes: {args.vector_samples} vector samples of 7 float64; video {args.frames} frames '
        f'{args.size}x{args.size} RGB ({video_mb:.1f} MiB mp4, x264 {ENCODER_OPTIONS}); lookups on float32 (7,) signals'
    )
    headline = [
        ('append 7-float vector sample, median', vector['median_us'], 'us', '< 20 us', vector['median_us'] < 20),
        (f'append {args.size}x{args.size} frame, 1 core', append_fps, 'fps', '>= 60 fps', append_fps >= 60),
        *((f'random time lookup, n={n:,}', us, 'us', '< 20 us', us < 20) for n, us in lookups.items()),
        (
            f'random frame access ({args.frames} frames), median',
            video['random_ms'],
            'ms',
            '< 30 ms',
            video['random_ms'] < 30,
        ),
        (
            'sequential read of all frames',
            video['sequential_fps'],
            'fps',
            '>= 300 fps',
            video['sequential_fps'] >= 300,
        ),
    ]
    for metric, value, unit, target, ok in headline:
        record('dataset', metric, value, target, ok, unit=unit)
    rows = [(metric, format_value(value, unit), target, verdict(ok)) for metric, value, unit, target, ok in headline]
    rows.insert(1, ('  same, p99 / mean incl. batch writes', f'{vector["p99_us"]:.1f} / {vector["mean_us"]:.1f} us'))
    rows += [
        (
            f'frames on a 15 Hz time grid (seeks in all in-order reads: {video["seeks"]})',
            f'{video["grid_fps"]:.0f} fps',
        ),
        (f'letterbox {args.size}x{args.size} -> 224x224', f'{video["letterbox_ms"]:.2f} ms'),
    ]
    print_table(('measure', 'result', 'target', 'ok'), rows)


if __name__ == '__main__':
    main()
