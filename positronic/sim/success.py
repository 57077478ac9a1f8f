"""Success of the stacking task: Positronic's stacking score, the minimum of six soft checks.

All positions are world-frame metres. A soft check ``soft_less(x, y, eps)`` is 1 when ``x`` is comfortably
below ``y``, 0 when comfortably above, and linear within ``eps`` around ``y``.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StackingTolerances:
    """Thresholds of the stacking checks (Positronic's defaults)."""

    red_box_half_height: float = 0.01
    green_box_half_height: float = 0.01
    xy_tolerance: float = 0.025
    """Largest horizontal offset (m) of the green cube's centre from the red one's."""
    z_stack_tolerance: float = 0.015
    """Largest error (m) of the vertical gap between the cube centres from one stacked cube height."""
    red_movement_tolerance: float = 0.04
    """Largest horizontal drift (m) of the red cube since the episode started."""
    gripper_clearance: float = 0.12
    """Smallest distance (m) of the hand from either cube once done (soft band above it)."""
    velocity_threshold: float = 0.02
    """Largest angular speed (rad/s) of the green cube (``cvel[:3]`` in MuJoCo)."""
    table_height: float = 0.30


STACKING_CHECKS = ('red_stable', 'red_on_table', 'xy_aligned', 'z_stacked', 'green_stable', 'gripper_clear')
"""Names of the six checks, in Positronic's order."""


def soft_less(x: float, y: float, eps: float) -> float:
    """``clip((y - x + eps / 2) / eps, 0, 1)``: a soft ``x < y`` with a linear band of width ``eps``."""
    return float(np.clip((y - x + eps / 2) / eps, 0.0, 1.0))


@dataclass(frozen=True)
class StackingState:
    """What the stacking checks read, world frame."""

    red_pos: np.ndarray
    """Red cube centre (3,), m."""
    green_pos: np.ndarray
    """Green cube centre (3,), m."""
    red_start_xy: np.ndarray
    """Red cube centre (2,) when the episode started, m."""
    green_angular_velocity: np.ndarray
    """Green cube angular velocity (3,), rad/s."""
    hand_pos: np.ndarray
    """Origin of the gripper's hand body (3,), m."""


def stacking_checks(state: StackingState, tol: StackingTolerances = StackingTolerances()) -> dict[str, float]:
    """The six checks in [0, 1] of ``state`` under the thresholds ``tol``, keyed by :data:`STACKING_CHECKS`."""
    red_pos, green_pos, hand_pos = (
        np.asarray(p, dtype=np.float64) for p in (state.red_pos, state.green_pos, state.hand_pos)
    )
    red_rest_z = tol.table_height + tol.red_box_half_height
    stacked_gap = tol.red_box_half_height + tol.green_box_half_height
    hand_distance = min(np.linalg.norm(hand_pos - red_pos), np.linalg.norm(hand_pos - green_pos))
    return {
        'red_stable': soft_less(
            float(np.linalg.norm(red_pos[:2] - np.asarray(state.red_start_xy))),
            tol.red_movement_tolerance,
            tol.red_movement_tolerance / 2,
        ),
        'red_on_table': soft_less(abs(red_pos[2] - red_rest_z), 0.05, 0.025),
        'xy_aligned': soft_less(
            float(np.linalg.norm(green_pos[:2] - red_pos[:2])), tol.xy_tolerance, tol.xy_tolerance / 2
        ),
        'z_stacked': soft_less(
            abs((green_pos[2] - red_pos[2]) - stacked_gap), tol.z_stack_tolerance, tol.z_stack_tolerance / 2
        ),
        'green_stable': soft_less(
            float(np.linalg.norm(state.green_angular_velocity)), tol.velocity_threshold, tol.velocity_threshold / 2
        ),
        'gripper_clear': soft_less(tol.gripper_clearance, float(hand_distance), tol.gripper_clearance / 2),
    }


def stacking_score(state: StackingState, tol: StackingTolerances = StackingTolerances()) -> float:
    """Stacking success in [0, 1]: the minimum of :func:`stacking_checks`; 1 means green rests on red, hand away."""
    return min(stacking_checks(state, tol).values())


def box_distance(red_pos: np.ndarray, green_pos: np.ndarray) -> float:
    """Distance (m) between the two cube centres."""
    return float(np.linalg.norm(np.asarray(green_pos, dtype=np.float64) - np.asarray(red_pos, dtype=np.float64)))
