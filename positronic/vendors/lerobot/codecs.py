"""The LeRobot codecs: which raw signals become ACT's state, cameras and action.

- ``eepose_absolute``: ``observation.state`` (float32, 8) = ``robot_state.ee_pose`` (7) ‖ ``grip``;
- ``joints_absolute``: ``observation.state`` (float32, 8) = ``robot_state.q`` (7) ‖ ``grip``;
- both: ``observation.images.left`` ← ``image.wrist`` and ``observation.images.side`` ← ``image.exterior``
  (uint8, letterboxed), ``task`` passed through, ``action`` (float32, 8) = ``robot_commands.pose`` (7) ‖
  ``target_grip``, absolute. Quaternions are ``[qw, qx, qy, qz]`` with the sign chosen near a downward gripper.

Use one on the command line as ``--codec=@positronic.vendors.lerobot.codecs.eepose_absolute`` (or
``--dataset.codec=...`` for conversion) and change the image size with ``--codec.image_size=96`` (square) or
``--codec.image_size=[128,96]`` (width, height). Default 480x480.
"""

from collections.abc import Sequence

import configuronic as cfn

from positronic import keys
from positronic.policy.codec import (
    GRIP_NAME,
    JOINT_NAMES,
    POSE_NAMES,
    Codec,
    ObservationEncoder,
    StatePart,
    image_size_pair,
)

DEFAULT_IMAGE_SIZE = 480
CAMERAS = {'observation.images.left': keys.IMAGE_WRIST, 'observation.images.side': keys.IMAGE_EXTERIOR}
GRIP_PART = StatePart(keys.GRIP, (GRIP_NAME,))


def _codec(name: str, state: tuple[StatePart, ...], image_size: int | Sequence[int]) -> Codec:
    observation = ObservationEncoder(state=state, cameras=dict(CAMERAS), image_size=image_size_pair(image_size))
    return Codec(path=f'{__name__}.{name}', observation=observation)


@cfn.config(image_size=DEFAULT_IMAGE_SIZE)
def eepose_absolute(image_size: int | Sequence[int]) -> Codec:
    """End-effector pose + grip + two cameras -> absolute end-effector pose + grip."""
    return _codec('eepose_absolute', (StatePart(keys.ROBOT_EE_POSE, POSE_NAMES, is_pose=True), GRIP_PART), image_size)


@cfn.config(image_size=DEFAULT_IMAGE_SIZE)
def joints_absolute(image_size: int | Sequence[int]) -> Codec:
    """Joint positions + grip + two cameras -> absolute end-effector pose + grip."""
    return _codec('joints_absolute', (StatePart(keys.ROBOT_Q, JOINT_NAMES), GRIP_PART), image_size)
