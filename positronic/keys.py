"""Names of the raw robot signals shared by recording, codecs, the protocol and the robot loop.

Each name is defined once here; modules import the constant instead of repeating the string.
Poses are 7-vectors ``[x, y, z, qw, qx, qy, qz]`` (metres, scalar-first unit quaternion) in the robot
base frame; gripper values are floats in [0, 1] with 0 = open and 1 = closed.
"""

ROBOT_Q = 'robot_state.q'
"""Joint positions, float32 (7,), radians."""
ROBOT_DQ = 'robot_state.dq'
"""Joint velocities, float32 (7,), rad/s."""
ROBOT_EE_POSE = 'robot_state.ee_pose'
"""Measured end-effector pose, float64 (7,)."""
COMMAND_POSE = 'robot_commands.pose'
"""Commanded end-effector pose, float64 (7,)."""
GRIP = 'grip'
"""Measured gripper opening as closure, float64 in [0, 1] (0 open, 1 closed)."""
TARGET_GRIP = 'target_grip'
"""Commanded gripper closure, float64 in [0, 1] (0 open, 1 closed)."""
IMAGE_WRIST = 'image.wrist'
"""Wrist camera frames, uint8 (H, W, 3) RGB."""
IMAGE_EXTERIOR = 'image.exterior'
"""Exterior camera frames, uint8 (H, W, 3) RGB."""
TASK = 'task'
"""Static item: the natural-language instruction of an episode."""
STACKING_SUCCESS = 'stacking_success'
"""Stacking success score in [0, 1], recorded by simulated evaluation runs."""
BOX_DISTANCE = 'box_distance'
"""Distance between the two cube centres in metres, recorded by simulated evaluation runs."""

STACK_CUBES_TASK = 'Pick up the green cube and place it on the red cube.'
"""The instruction of the built-in simulated task."""
