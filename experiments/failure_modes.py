"""Where a stacking policy fails: each evaluated episode sorted into the phase it got stuck in.

    python experiments/failure_modes.py <positronic-inference sim --output_dir> [more output dirs]

Reads the episodes an evaluation recorded (``target_grip``, ``box_distance`` and the ``success`` static) and prints
one row per folder with the count of each phase (docs/results.md uses it):

- ``never closed``: the gripper command never closed;
- ``closed, not placed``: it closed, but the green cube never came to rest within 1 cm of stacked on the red one;
- ``placed, never released``: the cube was stacked and the gripper stayed closed;
- ``placed, released, re-grasped``: stacked, opened, then closed again (on the cube it had just placed);
- ``placed, released, other``: stacked and opened once, yet the episode failed (knocked off, hand not away in time).

A release is the first opening after the first closing; the cube may come to rest on the red one just after it.
"""

import argparse
from pathlib import Path

import numpy as np

from positronic import keys
from positronic.dataset.local import LocalDataset
from positronic.sim.success import StackingTolerances

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
    tol = StackingTolerances()
    stacked = tol.red_box_half_height + tol.green_box_half_height
    if not (np.asarray(box_distance, dtype=float) < stacked + PLACED_MARGIN_M).any():
        return 'closed, not placed'
    released_at = np.flatnonzero(changes == -1) + 1
    released_at = released_at[released_at > np.argmax(closed)]
    if len(released_at) == 0:
        return 'placed, never released'
    if (np.flatnonzero(changes == 1) + 1 > released_at[0]).any():
        return 'placed, released, re-grasped'
    return 'placed, released, other'


def phases(output_dir: Path) -> dict[str, int]:
    """Count of each phase over the episodes recorded under ``output_dir`` (every phase present, zeros included)."""
    counts = dict.fromkeys(PHASES, 0)
    for episode in LocalDataset(output_dir):
        grip = np.asarray(episode[keys.TARGET_GRIP].values, dtype=float)
        distance = np.asarray(episode[keys.BOX_DISTANCE].values, dtype=float)
        counts[phase(bool(episode['success']), grip, distance)] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('output_dirs', nargs='+', type=Path, help='positronic-inference sim --output_dir folders')
    args = parser.parse_args()
    rows = [(str(d), phases(d)) for d in args.output_dirs]
    width = max(len(name) for name, _ in rows)
    print(f'{"evaluation":<{width}} | episodes | ' + ' | '.join(PHASES))
    for name, counts in rows:
        cells = ' | '.join(f'{counts[p]:>{len(p)}}' for p in PHASES)
        print(f'{name:<{width}} | {sum(counts.values()):>8} | {cells}')


if __name__ == '__main__':
    main()
