"""The simulated stacking world: a Panda-like arm, a gripper, a table, a red and a green cube, two cameras.

Poses are 7-vectors ``[x, y, z, qw, qx, qy, qz]`` (float64, metres, world = robot base frame). Their quaternion
sign is chosen in the hemisphere of the gripper-down orientation ``[0, 1, 0, 0]`` so that recorded and
commanded orientations are continuous over the workspace. Gripper values are in [0, 1], 0 open, 1 closed.
Times are int64 nanoseconds of sim time, which keeps increasing across resets.
"""

import ctypes
import os
import sys
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

if not os.environ.get('DISPLAY') and not os.environ.get('WAYLAND_DISPLAY'):
    os.environ.setdefault('MUJOCO_GL', 'egl')

import mujoco

from positronic import geom, keys
from positronic.sim import success
from positronic.sim.control import CartesianController, UnreachablePoseError

__all__ = ['CubeLayout', 'UnreachablePoseError', 'World', 'gripper_down_quat']

SCENE_FILE = 'stack_cubes.xml'
"""The scene MJCF inside ``positronic/sim/assets``."""
ARM_JOINTS = tuple(f'joint{i}' for i in range(1, 8))
EE_SITE = 'tcp'
"""End-effector site: the centre between the fingertips (hand + 0.1034 m along its z), Franka's default TCP."""
HAND_BODY = 'hand'
RED_CUBE = 'red_cube'
GREEN_CUBE = 'green_cube'
WRIST_CAMERA = 'wrist'
EXTERIOR_CAMERA = 'exterior'
FINGER_JOINTS = ('finger_left', 'finger_right')
FINGER_OPEN_M = 0.04
"""Travel of each finger; ``grip = 1 - opening / FINGER_OPEN_M``."""

HOME_Q = np.array([0.0, -0.3297, 0.0, -1.9286, 0.0, 1.5989, 0.7854])
"""Arm home posture (rad): TCP at (0.45, 0, 0.52) pointing down, fingers along world y."""
SETTLE_STEPS = 150
"""Physics steps run at reset (not counted in sim time) so the cubes rest and the gripper opens."""
CUBE_HALF_HEIGHT = 0.01
TABLE_TOP_Z = 0.30


def gripper_down_quat(yaw: float) -> np.ndarray:
    """Quaternion ``[w, x, y, z]`` of the gripper pointing down (hand z = -world z) rotated by ``yaw`` (rad)."""
    return np.array([0.0, np.cos(yaw / 2), np.sin(yaw / 2), 0.0])


@dataclass(frozen=True)
class CubeLayout:
    """Where reset places the cubes: uniform in a reachable rectangle of the table, apart, with random yaw."""

    x_range: tuple[float, float] = (0.35, 0.63)
    y_range: tuple[float, float] = (-0.22, 0.22)
    min_distance_m: float = 0.10
    """Smallest distance between the cube centres, so the open gripper fits beside either cube."""
    max_yaw_rad: float = np.pi / 6

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``{'red': pose7, 'green': pose7}`` resting on the table."""
        while True:
            xy = rng.uniform([self.x_range[0], self.y_range[0]], [self.x_range[1], self.y_range[1]], size=(2, 2))
            if np.linalg.norm(xy[0] - xy[1]) >= self.min_distance_m:
                break
        yaws = rng.uniform(-self.max_yaw_rad, self.max_yaw_rad, size=2)
        z = TABLE_TOP_Z + CUBE_HALF_HEIGHT
        return {
            name: np.concatenate([xy[i], [z], [np.cos(yaws[i] / 2), 0.0, 0.0, np.sin(yaws[i] / 2)]])
            for i, name in enumerate(('red', 'green'))
        }


class World:
    """The stacking scene with a Cartesian-controlled arm; deterministic under the reset seed.

    Args:
        seed: seed of the first cube placement (see :meth:`reset`).
        camera_size: ``(width, height)`` of rendered frames, pixels.
        show_gui: open an interactive viewer window when a display exists (otherwise say so and run headless);
            with the window open the simulation runs no faster than real time.
    """

    def __init__(self, seed: int = 0, camera_size: tuple[int, int] = (320, 240), show_gui: bool = False):
        width, height = (int(v) for v in camera_size)
        if width <= 0 or height <= 0:
            raise ValueError(f'camera_size must be two positive integers (width, height), got {camera_size!r}')
        self.camera_size = (width, height)
        xml = resources.files('positronic.sim').joinpath('assets', SCENE_FILE)
        with resources.as_file(xml) as path:
            self.model = mujoco.MjModel.from_xml_path(str(path))
        self.model.vis.global_.offwidth = max(width, self.model.vis.global_.offwidth)
        self.model.vis.global_.offheight = max(height, self.model.vis.global_.offheight)
        self.data = mujoco.MjData(self.model)
        self.controller = CartesianController(self.model, EE_SITE, list(ARM_JOINTS), HOME_Q)
        self.layout = CubeLayout()

        m = self.model
        self._arm_qadr = np.array([m.joint(j).qposadr[0] for j in ARM_JOINTS])
        self._arm_dofadr = np.array([m.joint(j).dofadr[0] for j in ARM_JOINTS])
        self._finger_qadr = np.array([m.joint(j).qposadr[0] for j in FINGER_JOINTS])
        self._arm_act = np.array([m.actuator(j).id for j in ARM_JOINTS])
        self._grip_act = m.actuator('gripper').id
        self._ee_site = m.site(EE_SITE).id
        self._hand = m.body(HAND_BODY).id
        self._cube_body = {'red': m.body(RED_CUBE).id, 'green': m.body(GREEN_CUBE).id}
        self._cube_qadr = {name: m.joint(body).qposadr[0] for name, body in (('red', RED_CUBE), ('green', GREEN_CUBE))}
        self._step_ns = round(m.opt.timestep * 1e9)

        self._steps = 0
        self._goal_ns = 0
        self._q_target = HOME_Q.copy()
        self._grip_target = 0.0
        self._red_start_xy = np.zeros(2)
        self._renderer: mujoco.Renderer | None = None
        self._viewer = self._open_viewer() if show_gui else None
        self._viewer_origin: tuple[float, int] | None = None
        self.reset(seed)

    def reset(self, seed: int) -> None:
        """New random cube placement from ``seed``, arm at home with the gripper open, settled.

        Sim time keeps increasing across resets (timestamps stay monotonic).
        """
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[self._arm_qadr] = HOME_Q
        d.qpos[self._finger_qadr] = FINGER_OPEN_M
        for name, pose in self.layout.sample(np.random.default_rng(seed)).items():
            adr = self._cube_qadr[name]
            d.qpos[adr : adr + 7] = pose
        self._q_target = HOME_Q.copy()
        self._grip_target = 0.0
        self._apply_ctrl()
        for _ in range(SETTLE_STEPS):
            mujoco.mj_step(m, d)
        d.time = self._steps * m.opt.timestep
        self._goal_ns = self.time_ns  # same step phase after every reset, so rollouts repeat exactly
        mujoco.mj_forward(m, d)
        self._red_start_xy = d.xpos[self._cube_body['red']][:2].copy()
        self._sync_viewer()

    @property
    def time_ns(self) -> int:
        """Current sim time, int nanoseconds."""
        return self._steps * self._step_ns

    def command(self, pose: np.ndarray, grip: float) -> None:
        """Set the end-effector target pose7 (solved to joint targets) and the gripper target in [0, 1].

        Raises UnreachablePoseError for a malformed, non-finite or unreachable pose; the robot then keeps its
        previous target. ``grip`` is clipped to [0, 1]; a non-finite grip raises ValueError.
        """
        grip = float(grip)
        if not np.isfinite(grip):
            raise ValueError(f'grip must be a finite number in [0, 1], got {grip}')
        self._q_target = self.controller.solve(np.asarray(pose, dtype=np.float64), self._q_target)
        self._grip_target = float(np.clip(grip, 0.0, 1.0))
        self._apply_ctrl()

    def step(self, duration_s: float) -> None:
        """Advance physics by ``duration_s`` seconds, in whole 2 ms physics steps (at least one).

        Rounding is carried over, so ``step(1 / 30)`` thirty times advances exactly one second.
        """
        if not np.isfinite(duration_s) or duration_s <= 0:
            raise ValueError(f'duration_s must be a positive number of seconds, got {duration_s}')
        self._goal_ns = max(self._goal_ns, self.time_ns - self._step_ns // 2) + round(duration_s * 1e9)
        n = max(1, round((self._goal_ns - self.time_ns) / self._step_ns))
        mujoco.mj_step(self.model, self.data, nstep=n)
        self._steps += n
        self._sync_viewer()

    def robot_state(self) -> dict[str, Any]:
        """``{ROBOT_Q: float32 (7,) rad, ROBOT_DQ: float32 (7,) rad/s, ROBOT_EE_POSE: float64 (7,), GRIP: float}``."""
        d = self.data
        return {
            keys.ROBOT_Q: d.qpos[self._arm_qadr].astype(np.float32),
            keys.ROBOT_DQ: d.qvel[self._arm_dofadr].astype(np.float32),
            keys.ROBOT_EE_POSE: self.ee_pose(),
            keys.GRIP: self.grip(),
        }

    def render(self) -> dict[str, np.ndarray]:
        """``{IMAGE_WRIST: uint8 (H, W, 3), IMAGE_EXTERIOR: uint8 (H, W, 3)}`` RGB frames of the current state."""
        if self._renderer is None:
            width, height = self.camera_size
            try:
                self._renderer = mujoco.Renderer(self.model, height=height, width=width)
            except mujoco.FatalError as e:
                raise RuntimeError(
                    f'cannot create an OpenGL context for rendering ({e}); without a display set MUJOCO_GL=egl '
                    f'before mujoco is first imported (positronic.sim does this when it is imported first)'
                ) from e
            flags = self._renderer.scene.flags
            for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
                flags[flag] = 0
            flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = 0
        frames = {}
        try:
            for key, camera in ((keys.IMAGE_WRIST, WRIST_CAMERA), (keys.IMAGE_EXTERIOR, EXTERIOR_CAMERA)):
                self._renderer.update_scene(self.data, camera=camera)
                frames[key] = self._renderer.render()
        except ctypes.ArgumentError as error:
            # A Ctrl+C that lands while ctypes converts an EGL call's argument comes wrapped in an ArgumentError.
            if 'KeyboardInterrupt' in str(error):
                raise KeyboardInterrupt from error
            raise
        return frames

    def observation(self) -> dict[str, Any]:
        """:meth:`robot_state` merged with :meth:`render`."""
        return self.robot_state() | self.render()

    def stacking_success(self) -> float:
        """Positronic's stacking score in [0, 1] (spec §4.4): min of six soft checks."""
        d = self.data
        state = success.StackingState(
            red_pos=d.xpos[self._cube_body['red']],
            green_pos=d.xpos[self._cube_body['green']],
            red_start_xy=self._red_start_xy,
            green_angular_velocity=d.cvel[self._cube_body['green']][:3],
            hand_pos=d.xpos[self._hand],
        )
        return success.stacking_score(state)

    def box_distance(self) -> float:
        """Distance (m) between the red and green cube centres."""
        d = self.data
        return success.box_distance(d.xpos[self._cube_body['red']], d.xpos[self._cube_body['green']])

    def cube_poses(self) -> dict[str, np.ndarray]:
        """``{'red': pose7, 'green': pose7}`` of the cube centres (cube quaternions with w >= 0)."""
        poses = {}
        for name, body in self._cube_body.items():
            quat = self.data.xquat[body].copy()
            poses[name] = np.concatenate([self.data.xpos[body], quat if quat[0] >= 0 else -quat])
        return poses

    def ee_pose(self) -> np.ndarray:
        """End-effector (TCP site) pose7, float64."""
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[self._ee_site])
        return np.concatenate([self.data.site_xpos[self._ee_site], geom.canonical_quaternions(quat)])

    def grip(self) -> float:
        """Measured gripper closure in [0, 1] (0 open, 1 fingers touching)."""
        opening = float(np.mean(self.data.qpos[self._finger_qadr]))
        return float(np.clip(1.0 - opening / FINGER_OPEN_M, 0.0, 1.0))

    @property
    def viewer_is_open(self) -> bool:
        """Whether the interactive viewer window (``show_gui``) is open."""
        return self._viewer is not None and self._viewer.is_running()

    def close(self) -> None:
        """Release the renderer and the viewer window."""
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> 'World':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _apply_ctrl(self) -> None:
        self.data.ctrl[self._arm_act] = self._q_target
        self.data.ctrl[self._grip_act] = FINGER_OPEN_M * (1.0 - self._grip_target)

    def _open_viewer(self):
        if not (os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')):
            print('show_gui: no display found (DISPLAY is unset); running headless', file=sys.stderr)
            return None
        import mujoco.viewer

        return mujoco.viewer.launch_passive(self.model, self.data, show_left_ui=False, show_right_ui=False)

    def _sync_viewer(self) -> None:
        """Show the new state in the viewer, pacing the simulation to the wall clock so a person can follow."""
        if not self.viewer_is_open:
            return
        self._viewer.sync()
        if self._viewer_origin is None:
            self._viewer_origin = (time.perf_counter(), self.time_ns)
        wall_start, sim_start = self._viewer_origin
        ahead_s = (self.time_ns - sim_start) / 1e9 - (time.perf_counter() - wall_start)
        if ahead_s > 0:
            time.sleep(ahead_s)
