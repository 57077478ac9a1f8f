"""How much a checkpoint's actions follow the robot state it is given, at moments of recorded episodes.

    python experiments/state_sensitivity.py <pretrained_model dir> <recorded episodes dir>
        [--times 3 6 10 13] [--delta_cm 2] [--episodes 50] [--failed_only]

For each episode (e.g. those `positronic-inference sim --output_dir` records) and each time (s from its start), the
recorded observation is encoded with the checkpoint's codec and a chunk predicted. Then the end-effector position in
the observation is moved by ``--delta_cm`` along x, y and z in turn, and each action's gain is how far it moved along
that axis divided by the move. A first-action gain near 1 says the model copies its state there (the next command is
where the arm already is); near 0, that the command comes from the cameras. docs/results.md compares trainings by it.
Needs a codec whose state holds the end-effector pose (``eepose_absolute``).
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from positronic import keys
from positronic.dataset.local import LocalDataset
from positronic.vendors.lerobot.serving.policy import ACTRunner

AXES = 'xyz'
OBSERVED = (keys.ROBOT_EE_POSE, keys.GRIP, keys.IMAGE_WRIST, keys.IMAGE_EXTERIOR)


def probe(runner: ACTRunner, observation: dict, delta_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Per axis x, y, z: the gain of the chunk's first and of its last action position (two arrays of 3)."""
    base = runner.predict(runner.codec.encode(observation))
    first, last = np.zeros(3), np.zeros(3)
    for axis in range(3):
        moved = dict(observation)
        pose = np.array(observation[keys.ROBOT_EE_POSE], dtype=np.float64)
        pose[axis] += delta_m
        moved[keys.ROBOT_EE_POSE] = pose
        actions = runner.predict(runner.codec.encode(moved))
        first[axis] = (actions[0, axis] - base[0, axis]) / delta_m
        last[axis] = (actions[-1, axis] - base[-1, axis]) / delta_m
    return first, last


def sensitivities(
    pretrained: Path, episodes_dir: Path, times_s: list[float], delta_m: float, episodes: int, failed_only: bool
) -> list[dict]:
    """One row per (episode, time) probed: ``episode``, ``seed`` (None when not recorded), ``t_s``, ``success``
    (None when not recorded) and the per-axis gains ``first`` and ``last``."""
    runner = ACTRunner.load(pretrained, device='cpu')
    if keys.ROBOT_EE_POSE not in {part.key for part in runner.codec.observation.state}:
        raise SystemExit(f'{pretrained}: codec {runner.codec.name} has no {keys.ROBOT_EE_POSE} in its state')
    rows = []
    for index, episode in enumerate(LocalDataset(episodes_dir)):
        if index >= episodes:
            break
        statics = episode.static
        success = statics.get('success')
        if failed_only and success:
            continue
        start, end = episode[keys.ROBOT_EE_POSE].first_ts, episode[keys.ROBOT_EE_POSE].last_ts
        for t_s in times_s:
            t_ns = start + int(t_s * 1e9)
            if t_ns > end:
                continue
            observation = {key: episode[key].time[t_ns][0] for key in OBSERVED}
            first, last = probe(runner, observation, delta_m)
            row = {'episode': index, 'seed': statics.get('seed'), 't_s': t_s, 'success': success}
            rows.append({**row, 'first': first, 'last': last})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('pretrained', type=Path, help='a checkpoint pretrained_model directory')
    parser.add_argument('episodes_dir', type=Path, help='recorded episodes (positronic-inference sim --output_dir)')
    parser.add_argument('--times', type=float, nargs='+', default=[3.0, 6.0, 10.0, 13.0])
    parser.add_argument('--delta_cm', type=float, default=2.0)
    parser.add_argument('--episodes', type=int, default=50, help='probe at most the first this many episodes')
    parser.add_argument('--failed_only', action='store_true', help='only episodes whose success static is false')
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = sensitivities(
        args.pretrained, args.episodes_dir, args.times, args.delta_cm / 100, args.episodes, args.failed_only
    )
    if not rows:
        raise SystemExit(f'{args.episodes_dir}: no episode reaches the times asked')
    print('episode | seed | t s | success | first-action gain x y z | last-action gain x y z')
    for row in rows:
        gains = ' '.join(f'{g:5.2f}' for g in row['first']), ' '.join(f'{g:5.2f}' for g in row['last'])
        print(f'{row["episode"]:7d} | {row["seed"]} | {row["t_s"]:4.1f} | {row["success"]} | {gains[0]} | {gains[1]}')
    first, last = np.array([r['first'] for r in rows]), np.array([r['last'] for r in rows])
    medians = np.round(np.median(first, axis=0), 2), np.round(np.median(last, axis=0), 2)
    print(f'median gain (x y z) over {len(rows)} probes: first action {medians[0]}, last action {medians[1]}')


if __name__ == '__main__':
    main()
