"""Benchmark of ``positronic-to-lerobot convert``, side by side with LeRobot 0.4.4's recording path.

    .venv/bin/python benchmarks/bench_to_lerobot.py [--episodes 3] [--frames 300]
        [--lerobot-python /tmp/venv-lerobot/bin/python]

Raw data: episodes of a 320x240 rendered-like scene on two cameras at 30 fps (a textured table, three shaded cubes
moving, mild sensor noise; the wrist camera pans, the exterior one is static), robot state and commands at 100 Hz,
written with the raw dataset writer. Measured, in frames/s (one frame = both cameras + state + action):

1. ``convert`` at 30 fps to 480x480 (decode the raw H.264, letterbox, encode, stats, parquet) with the default
   H.264 settings, with and without reading frames ahead in their own threads (docs/codecs.md: 1.4-1.7x);
2. LeRobot 0.4.4 (``LeRobotDataset.create`` + ``add_frame`` + ``save_episode``, AV1 default) writing the same
   projected frames, already letterboxed and in memory (so it does less work than ``convert``), in the side
   interpreter (docs/codecs.md: 5-6x; target >= 4x).
"""

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from bench_lerobot_dataset import SOURCE_H, SOURCE_W, bench_lerobot, parse_arguments, source_frames
from harness import (
    LEROBOT_MISSING,
    format_value,
    machine_lines,
    print_table,
    record,
    verdict,
)

from positronic import keys
from positronic.dataset import LocalDataset, LocalDatasetWriter
from positronic.vendors.lerobot.codecs import eepose_absolute

FPS = 30
STATE_PERIOD_NS = 10_000_000
SIZE = 480
TARGET_SPEEDUP = 4.0
DEFAULT = 'convert, H.264 default'
NO_READ_AHEAD = 'convert, H.264, --read_ahead=0 (decode in the encoding threads)'
CONVERT = [sys.executable, '-m', 'positronic.vendors.lerobot.conversion.to_lerobot', 'convert']


def write_raw(root: Path, episodes: int, frames: int) -> None:
    """``episodes`` raw episodes of ``frames`` camera frames each, with every signal the codecs read."""
    writer = LocalDatasetWriter(root)
    duration_ns = frames * 1_000_000_000 // FPS
    for e in range(episodes):
        wrist = source_frames(frames, seed=2 * e + 1, panning=True)
        exterior = source_frames(frames, seed=2 * e + 2, panning=False)
        with writer.new_episode() as ep:
            for ts in range(0, duration_ns + STATE_PERIOD_NS, STATE_PERIOD_NS):
                t = ts / 1e9
                pose = np.array([0.5 + 0.05 * np.sin(t), 0.1 * np.cos(t), 0.3, 0.0, 1.0, 0.0, 0.0])
                ep.append(keys.ROBOT_Q, (np.arange(7) * 0.1 + np.sin(t)).astype(np.float32), ts)
                ep.append(keys.ROBOT_EE_POSE, pose, ts)
                ep.append(keys.GRIP, float(t % 1.0), ts)
                ep.append(keys.COMMAND_POSE, pose + 0.01, ts)
                ep.append(keys.TARGET_GRIP, float(t % 2.0 > 1.0), ts)
            for k in range(frames):
                ts = k * 1_000_000_000 // FPS
                ep.append(keys.IMAGE_WRIST, wrist[k], ts)
                ep.append(keys.IMAGE_EXTERIOR, exterior[k], ts)
            ep.set_static(keys.TASK, 'stack the cubes')


def run_convert(raw: Path, out: Path, extra: list[str]) -> float:
    """Frames/s of ``convert`` in a fresh process, from its own report (without interpreter start-up; its frames/s,
    not its seconds, which it rounds to 0.1 s)."""
    command = [*CONVERT, f'--dataset.dataset.path={raw}', f'--output_dir={out}', f'--fps={FPS}', *extra]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    frames_s = float(re.search(r' ([0-9.]+) frames/s', result.stdout).group(1))
    shutil.rmtree(out)
    return frames_s


def run_lerobot(python: Path, raw: Path, work: Path, episodes: int) -> float | None:
    """LeRobot's frames/s recording the first raw episode's projected frames ``episodes`` times."""
    projected = eepose_absolute.instantiate().project_episode(LocalDataset(raw)[0], FPS)
    frames_file = work / 'frames.npz'
    np.savez(
        frames_file,
        left=np.asarray(projected.frames['observation.images.left']),
        side=np.asarray(projected.frames['observation.images.side']),
        state=projected.frames['observation.state'],
        action=projected.frames['action'],
    )
    result = bench_lerobot(python, frames_file, work / 'lerobot', episodes)
    return result and result['frames_per_s']


def main() -> None:
    args, python = parse_arguments(__doc__)

    with tempfile.TemporaryDirectory(prefix='bench_to_lerobot_') as tmp:
        work = Path(tmp)
        raw = work / 'raw'
        write_raw(raw, args.episodes, args.frames)
        variants = {DEFAULT: [], NO_READ_AHEAD: ['--read_ahead=0']}
        speeds = {label: run_convert(raw, work / 'out', extra) for label, extra in variants.items()}
        lerobot = run_lerobot(python, raw, work, args.episodes) if python else None

    print('\n'.join(machine_lines('av')))
    print(
        f'data: {args.episodes} episodes x {args.frames} frames, 2 cameras {SOURCE_W}x{SOURCE_H} raw H.264 -> '
        f'{SIZE}x{SIZE} letterboxed, state/commands at 100 Hz, {FPS} fps'
    )
    target = f'>= {TARGET_SPEEDUP:.0f}x'
    rows = []
    if lerobot:
        rows.append(
            ('LeRobot 0.4.4 create + add_frame + save_episode (AV1, frames in memory)', f'{lerobot:.1f}', '1.0')
        )
        record('to_lerobot', 'LeRobot 0.4.4 create + add_frame + save_episode', lerobot, unit='frames/s')
    for label, speed in speeds.items():
        record('to_lerobot', label, speed, unit='frames/s')
        if not lerobot:
            rows.append((label, f'{speed:.1f}', 'n/a', target))
            continue
        ok = speed / lerobot >= TARGET_SPEEDUP
        record('to_lerobot', f'{label}, x LeRobot', speed / lerobot, target, ok, unit='x')
        rows.append((label, f'{speed:.1f}', format_value(speed / lerobot, 'x'), target, verdict(ok)))
    print_table(('writer', 'frames/s', 'x LeRobot', 'target', 'ok'), rows)
    print(f'reading ahead: {format_value(speeds[DEFAULT] / speeds[NO_READ_AHEAD], "x")} the speed without it')
    if not lerobot:
        print(f'(LeRobot not measured: {LEROBOT_MISSING})')


if __name__ == '__main__':
    main()
