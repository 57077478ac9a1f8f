"""Simulator benchmark: scripted-expert success rate and headless recording throughput; prints a table.

    python benchmarks/bench_sim.py [--seeds 50] [--episodes 2] [--width 320 --height 240] [--fps 30]

Success: the expert runs on seeds 0..N-1 (physics only, no rendering); an episode succeeds when the stacking
score is 1 at its end (as ``positronic-data-collection`` judges it). Throughput: ``record_episode`` writes full
episodes (two cameras rendered, H.264-encoded, parquet signals) into a temporary dataset, pinned to one core;
reported as sim seconds recorded per wall second (x real time) and per CPU second of the whole process (which
discounts other load on a shared machine).
"""

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from harness import format_value, machine_lines, print_table, record, time_calls, verdict

from positronic.data_collection import SETTLE_S, SUCCESS_SCORE, record_episode
from positronic.dataset import LocalDatasetWriter
from positronic.sim import StackingExpert, World


def expert_success(seeds: int, fps: int) -> tuple[int, list[int], float]:
    """(successes, failed seeds, mean episode length in sim seconds) over seeds 0..seeds-1, physics only."""
    world = World(seed=0)
    failed, lengths = [], []
    for seed in range(seeds):
        world.reset(seed)
        expert = StackingExpert.for_world(world, np.random.default_rng(seed))
        ticks = math.ceil((expert.duration_s + SETTLE_S) * fps)
        for tick in range(ticks):
            world.command(*expert.command(tick / fps))
            world.step(1 / fps)
        lengths.append(ticks / fps)
        if world.stacking_success() < SUCCESS_SCORE:
            failed.append(seed)
    world.close()
    return seeds - len(failed), failed, float(np.mean(lengths))


def recording_throughput(episodes: int, size: tuple[int, int], fps: int, root: Path) -> tuple[float, float]:
    """(sim s per wall s, sim s per process CPU s) recording ``episodes`` full episodes."""
    world = World(seed=0, camera_size=size)
    world.render()  # GL context outside the timing
    writer = LocalDatasetWriter(root)
    sim_s = 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    for seed in range(episodes):
        start_ns = world.time_ns
        with writer.new_episode() as episode:
            record_episode(world, episode, seed, fps)
        sim_s += (world.time_ns - start_ns) / 1e9
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    world.close()
    return sim_s / wall, sim_s / cpu


def render_ms(size: tuple[int, int], frames: int = 100) -> float:
    """Wall milliseconds per camera frame (two cameras per call), after one untimed render."""
    world = World(seed=0, camera_size=size)
    durations = time_calls(lambda _: world.render(), frames)
    world.close()
    return float(np.mean(durations)) / 2 * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, default=50)
    parser.add_argument('--episodes', type=int, default=2)
    parser.add_argument('--width', type=int, default=320)
    parser.add_argument('--height', type=int, default=240)
    parser.add_argument('--fps', type=int, default=30)
    args = parser.parse_args()
    size = (args.width, args.height)

    successes, failed, length_s = expert_success(args.seeds, args.fps)
    frame_ms = render_ms(size)
    with tempfile.TemporaryDirectory() as tmp:
        cores = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cores)})  # threads started from here on (GL, encoder, writer) inherit it
        try:
            pinned = recording_throughput(args.episodes, size, args.fps, Path(tmp))
        finally:
            os.sched_setaffinity(0, cores)

    print('\n'.join(machine_lines('mujoco')))
    print(f'sizes: {args.seeds} seeds; {args.episodes} episodes of ~{length_s:.1f} s; {size[0]}x{size[1]} x2 cameras')
    rate = 100 * successes / args.seeds
    recording = f'recording {size[0]}x{size[1]} x2 cameras at {args.fps} fps, one core'
    headline = [
        (f'expert success, {args.seeds} seeds', rate, '%', '>= 95%', rate >= 95),
        (f'{recording}, wall', pinned[0], 'x real time', '>= 2x', pinned[0] >= 2),
        (f'{recording}, per CPU s', pinned[1], 'x real time', '>= 2x', pinned[1] >= 2),
    ]
    for metric, value, unit, target, ok in headline:
        record('sim', metric, value, target, ok, unit=unit)
    rows = [(metric, format_value(value, unit), target, verdict(ok)) for metric, value, unit, target, ok in headline]
    rows.insert(1, ('render, ms per camera frame', f'{frame_ms:.1f} ms', '~5 ms', ''))
    if failed:
        rows.insert(1, ('failed seeds', str(failed)))
    print_table(('metric', 'value', 'target', 'ok'), rows)


if __name__ == '__main__':
    main()
