"""Temporal ensembling (ACT's original inference): query every tick, execute a weighted mean of all predictions.

Every chunk predicted so far that covers the current tick contributes its action for that tick, weighted
``exp(-coeff * i)`` with ``i = 0`` the oldest of them (ACT's convention): a larger ``coeff`` trusts the earlier
plans more and smooths harder; ``coeff = 0`` is a plain mean; a negative ``coeff`` trusts the newest prediction
(the latest observation) most. Positions and grips are averaged
linearly, orientations as the normalized weighted sum of quaternions in the first one's hemisphere (exact enough
for the few degrees that overlapping predictions differ by).
"""

from collections import deque
from collections.abc import Sequence

import numpy as np

from positronic.policy.action import CartesianAction


class TemporalEnsemble:
    """Overlapping chunk predictions, one slot per future tick; ``add`` each query's chunk, ``pop`` each tick."""

    def __init__(self, coeff: float):
        if not np.isfinite(coeff):
            raise ValueError(f'temporal ensemble coefficient must be a finite number, got {coeff!r}')
        self.coeff = float(coeff)
        self._slots: deque[list[CartesianAction]] = deque()

    def add(self, chunk: Sequence[CartesianAction]) -> None:
        """Register a chunk whose first action is for the next ``pop``."""
        while len(self._slots) < len(chunk):
            self._slots.append([])
        for slot, action in zip(self._slots, chunk, strict=False):
            slot.append(action)

    def pop(self) -> CartesianAction:
        """The ensembled action for this tick (IndexError when no chunk covers it)."""
        predictions = self._slots.popleft()  # oldest prediction first
        if not predictions:
            raise IndexError('no prediction covers this tick')
        exponents = -self.coeff * np.arange(len(predictions))
        weights = np.exp(exponents - exponents.max())  # shifted: a negative coeff must not overflow
        weights /= weights.sum()
        poses = np.array([p.pose for p in predictions])
        quats = poses[:, 3:] * np.where(poses[:, 3:] @ poses[0, 3:] < 0, -1.0, 1.0)[:, None]
        quat = weights @ quats
        position = weights @ poses[:, :3]
        grip = float(weights @ np.array([p.grip for p in predictions]))
        return CartesianAction(np.concatenate([position, quat / np.linalg.norm(quat)]), grip)
