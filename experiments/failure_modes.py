"""Where a stacking policy fails: each evaluated episode sorted into the phase it got stuck in.

    python experiments/failure_modes.py <positronic-inference sim --output_dir> [more output dirs]

Reads the episodes an evaluation recorded (``target_grip``, ``grip``, ``box_distance``, the ``success`` static) and
prints one row per folder with the count of each phase (docs/results.md uses it):

- ``never closed``: the gripper command never closed;
- ``closed, not placed``: it closed, but the green cube never came to rest within 1 cm of stacked on the red one;
  the column ``of which held`` counts those whose fingers rested on the cube (measured ``grip`` in the holding
  band and short of the command for half a second: a grasp that carried or dropped it), the rest closed beside it
  or on air; ``held, closest cm`` is the median over those held episodes of how near the green cube came to
  stacked (the least centre distance beyond the two half heights): a near miss says placement precision, a large one
  a lost cube;
- ``placed, never released``: the cube was stacked and the gripper stayed closed;
- ``placed, released, re-grasped``: stacked, opened, then closed again (on the cube it had just placed);
- ``placed, released, other``: stacked and opened once, yet the episode failed (knocked off, hand not away in time).

The column ``close height cm`` is the median, over the episodes whose gripper closed, of the TCP's height above the
resting green cube's centre when the command first closed (the expert closes at -0.2 to +0.3 cm); ``closed high``
counts the closes above :data:`HIGH_CLOSE_CM`, where the fingertip pads, which end 0.5 cm below the TCP, have less
than 3 mm of the cube's side left to hold (the folder must have recorded ``robot_state.ee_pose``; else NaN and 0).

A release is the first opening after the first closing; the cube may come to rest on the red one just after it.
The column ``grasp retried`` counts the episodes, successes included, whose gripper closed, opened and closed again
before the cube was first placed (a policy trained with ``--grasp_miss_rate`` does this after a missed grasp).
"""

import argparse
from pathlib import Path

import numpy as np

from positronic import keys
from positronic.dataset.local import LocalDataset
from positronic.sim.success import StackingTolerances
from positronic.sim.world import CUBE_HALF_HEIGHT, TABLE_TOP_Z

PHASES = (
    'success',
    'never closed',
    'closed, not placed',
    'placed, never released',
    'placed, released, re-grasped',
    'placed, released, other',
)
CLOSED = 0.5
"""A target grip above this is a closed gripper command."""
HOLDING_GRIP = (0.25, 0.75)
"""Measured closure of fingers resting on a 2 cm cube (0.50 in the expert's grasps, less for a cube held askew);
fingers closed on nothing reach 1."""
HOLDING_S = 0.5
"""How long the measured closure must stay in :data:`HOLDING_GRIP` to count as holding (closing passes it faster)."""
STOPPED_SHORT = 0.15
"""How far below the commanded closure the measured one must stay to count as stopped by the cube."""
HELD = 'of which held'
RETRIED = 'grasp retried'
"""Episodes (successes included) whose gripper closed, opened and closed again before the cube was ever placed."""
CLOSEST = 'held, closest cm'
CLOSE_HEIGHT = 'close height cm'
HIGH = 'closed high'
HIGH_CLOSE_CM = 1.2
"""A first close with the TCP higher than this above the cube's centre leaves the pads under 3 mm of the cube."""
RESTING_CUBE_Z = TABLE_TOP_Z + CUBE_HALF_HEIGHT
"""Height (m) of the centre of a cube resting on the table, where every layout starts it."""
PLACED_MARGIN_M = 0.01
"""How much further apart than stacked (the two half heights) the cube centres may be and still count as placed."""


def phase(success: bool, target_grip: np.ndarray, box_distance: np.ndarray) -> str:
    """The phase of :data:`PHASES` an episode ended in, from its per-tick gripper command and cube distance."""
    if success:
        return 'success'
    closed = np.asarray(target_grip, dtype=float) > CLOSED
    changes = np.diff(closed.astype(int))
    if not closed.any():
        return 'never closed'
    if not (np.asarray(box_distance, dtype=float) < stacked_distance() + PLACED_MARGIN_M).any():
        return 'closed, not placed'
    released_at = np.flatnonzero(changes == -1) + 1
    released_at = released_at[released_at > np.argmax(closed)]
    if len(released_at) == 0:
        return 'placed, never released'
    if (np.flatnonzero(changes == 1) + 1 > released_at[0]).any():
        return 'placed, released, re-grasped'
    return 'placed, released, other'


def retried_grasp(target_grip: np.ndarray, box_distance: np.ndarray) -> bool:
    """Whether the gripper command closed, opened and closed again before the green cube first came within placed
    distance of stacked (the whole episode when it never did)."""
    placed = np.asarray(box_distance, dtype=float) < stacked_distance() + PLACED_MARGIN_M
    end = int(np.argmax(placed)) if placed.any() else len(placed)
    closed = np.asarray(target_grip, dtype=float)[:end] > CLOSED
    return bool(np.count_nonzero(np.diff(closed.astype(int)) == 1) + int(closed[:1].any()) >= 2)


def held_cube(grip: np.ndarray, target_grip: np.ndarray, timestamps_ns: np.ndarray) -> bool:
    """Whether the fingers rested on the cube: for :data:`HOLDING_S` in a row, the measured closure ``grip`` stayed
    inside :data:`HOLDING_GRIP` and at least :data:`STOPPED_SHORT` below the closed command ``target_grip`` (both
    sampled at ``timestamps_ns``). The fingers are position-controlled, so a command of 0.8 closes them to 0.8 on
    air: only a closure held short of its command says something stops them."""
    low, high = HOLDING_GRIP
    grip, target = np.asarray(grip, dtype=float), np.asarray(target_grip, dtype=float)
    inside = (grip > low) & (grip < high) & (target > CLOSED) & (grip < target - STOPPED_SHORT)
    seconds = np.asarray(timestamps_ns, dtype=np.int64) / 1e9
    start = None
    for t, holding in zip(seconds, inside, strict=True):
        if not holding:
            start = None
        elif start is None:
            start = t
        elif t - start >= HOLDING_S:
            return True
    return False


def close_height_cm(target_grip: np.ndarray, command_ns: np.ndarray, tcp_z: np.ndarray, tcp_ns: np.ndarray) -> float:
    """Height (cm) of the TCP above a resting cube's centre at the first tick the gripper command closed (the TCP
    height recorded at or before it); NaN when it never closed."""
    closed = np.asarray(target_grip, dtype=float) > CLOSED
    if not closed.any():
        return float('nan')
    at = np.asarray(command_ns, dtype=np.int64)[np.argmax(closed)]
    index = max(int(np.searchsorted(np.asarray(tcp_ns, dtype=np.int64), at, side='right')) - 1, 0)
    return 100 * (float(tcp_z[index]) - RESTING_CUBE_Z)


def stacked_distance() -> float:
    """Centre distance (m) of the green cube resting on the red one."""
    tol = StackingTolerances()
    return tol.red_box_half_height + tol.green_box_half_height


def phases(output_dir: Path) -> dict[str, float]:
    """Count of each phase over the episodes recorded under ``output_dir`` (every phase present, zeros included),
    then :data:`HELD`: the ``closed, not placed`` episodes whose gripper held the cube at some point,
    :data:`RETRIED`: the episodes that closed on the cube a second time before placing it, and
    :data:`CLOSEST`: the median over those of the least centre distance beyond stacked, in cm (NaN when none),
    :data:`CLOSE_HEIGHT`: the median TCP height above the cube at the first close, in cm, and :data:`HIGH`: how
    many closed higher than :data:`HIGH_CLOSE_CM` (NaN and 0 without recorded end-effector poses)."""
    counts: dict[str, float] = dict.fromkeys((*PHASES, HELD, RETRIED), 0)
    misses, heights = [], []
    for episode in LocalDataset(output_dir):
        commands = episode[keys.TARGET_GRIP]
        target_grip = np.asarray(commands.values, dtype=float)
        distance = np.asarray(episode[keys.BOX_DISTANCE].values, dtype=float)
        where = phase(bool(episode['success']), target_grip, distance)
        counts[where] += 1
        counts[RETRIED] += retried_grasp(target_grip, distance)
        if keys.ROBOT_EE_POSE in episode:
            tcp = episode[keys.ROBOT_EE_POSE]
            tcp_z = np.asarray(tcp.values, dtype=float)[:, 2]
            heights.append(close_height_cm(target_grip, commands.timestamps, tcp_z, tcp.timestamps))
        if where == 'closed, not placed':
            grip = episode[keys.GRIP]
            at = np.searchsorted(np.asarray(commands.timestamps), np.asarray(grip.timestamps), side='right') - 1
            command = np.where(at >= 0, target_grip[np.clip(at, 0, None)], 0.0)
            if held_cube(np.asarray(grip.values, dtype=float), command, grip.timestamps):
                counts[HELD] += 1
                misses.append(100 * (distance.min() - stacked_distance()))
    counts[CLOSEST] = float(np.median(misses)) if misses else float('nan')
    heights = [h for h in heights if not np.isnan(h)]
    counts[CLOSE_HEIGHT] = float(np.median(heights)) if heights else float('nan')
    counts[HIGH] = sum(h > HIGH_CLOSE_CM for h in heights)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('output_dirs', nargs='+', type=Path, help='positronic-inference sim --output_dir folders')
    args = parser.parse_args()
    rows = [(str(d), phases(d)) for d in args.output_dirs]
    width = max(len(name) for name, _ in rows)
    columns = (*PHASES, HELD, RETRIED)
    print(f'{"evaluation":<{width}} | episodes | ' + ' | '.join((*columns, CLOSEST, CLOSE_HEIGHT, HIGH)))
    for name, counts in rows:
        cells = ' | '.join(f'{counts[p]:>{len(p)}}' for p in columns)
        total = sum(counts[p] for p in PHASES)
        heights = f'{counts[CLOSE_HEIGHT]:>{len(CLOSE_HEIGHT)}.1f} | {counts[HIGH]:>{len(HIGH)}}'
        print(f'{name:<{width}} | {total:>8} | {cells} | {counts[CLOSEST]:>{len(CLOSEST)}.1f} | {heights}')


if __name__ == '__main__':
    main()
