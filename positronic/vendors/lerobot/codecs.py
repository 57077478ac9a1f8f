"""The LeRobot codecs: which raw signals become ACT's state, cameras and action.

- ``eepose_absolute``: ``observation.state`` (float32, 8) = ``robot_state.ee_pose`` (7) ‖ ``grip``;
- ``joints_absolute``: ``observation.state`` (float32, 8) = ``robot_state.q`` (7) ‖ ``grip``;
- both: ``observation.images.left`` ← ``image.wrist`` and ``observation.images.side`` ← ``image.exterior``
  (uint8, letterboxed), ``task`` passed through, ``action`` (float32, 8) = ``robot_commands.pose`` (7) ‖
  ``target_grip``, absolute. Quaternions are ``[qw, qx, qy, qz]`` with the sign chosen near a downward gripper.

Use one on the command line as ``--codec=@positronic.vendors.lerobot.codecs.eepose_absolute`` (or
``--dataset.codec=...`` for conversion) and change the image size with ``--codec.image_size=96`` (square) or
``--codec.image_size=[128,96]`` (width, height). Default 480x480.

Datasets, checkpoints and training runs record their codec's registered name (``eepose_absolute``) with its image
size (see :mod:`positronic.vendors.lerobot.codec_spec`). A name read from such a file is built only through
:data:`REGISTRY`, never imported: a codec of your own is used by naming it on the command line
(``--codec=@my_robot.codecs.joints_wrist``), and the recorded name must then equal it.
"""

from collections.abc import Sequence
from pathlib import Path

import configuronic as cfn

from positronic import keys
from positronic.vendors.lerobot.codec import (
    GRIP_PART,
    JOINT_NAMES,
    POSE_NAMES,
    Codec,
    CodecMismatchError,
    ObservationEncoder,
    StatePart,
    UnknownCodecError,
    image_size_pair,
)

DEFAULT_IMAGE_SIZE = 480
CAMERAS = {'observation.images.left': keys.IMAGE_WRIST, 'observation.images.side': keys.IMAGE_EXTERIOR}


def _codec(name: str, state: tuple[StatePart, ...], image_size: int | Sequence[int]) -> Codec:
    observation = ObservationEncoder(state=state, cameras=dict(CAMERAS), image_size=image_size_pair(image_size))
    return Codec(name=name, observation=observation)


@cfn.config(image_size=DEFAULT_IMAGE_SIZE)
def eepose_absolute(image_size: int | Sequence[int]) -> Codec:
    """End-effector pose + grip + two cameras -> absolute end-effector pose + grip."""
    return _codec('eepose_absolute', (StatePart(keys.ROBOT_EE_POSE, POSE_NAMES, is_pose=True), GRIP_PART), image_size)


@cfn.config(image_size=DEFAULT_IMAGE_SIZE)
def joints_absolute(image_size: int | Sequence[int]) -> Codec:
    """Joint positions + grip + two cameras -> absolute end-effector pose + grip."""
    return _codec('joints_absolute', (StatePart(keys.ROBOT_Q, JOINT_NAMES), GRIP_PART), image_size)


REGISTRY: dict[str, cfn.Config] = {'eepose_absolute': eepose_absolute, 'joints_absolute': joints_absolute}
"""Registered codec name -> its config: the codecs a name read from a file (a dataset's ``meta/positronic.json``, a
checkpoint's ``positronic_codec.json``, an experiment's ``run.json``) can build. The names are stable: renaming or
moving a config does not change them."""
LEGACY_NAMES: dict[str, str] = {f'{__name__}.{name}': name for name in REGISTRY}
"""The configs' import paths, which datasets and checkpoints written before the registered names recorded ->
the registered name they stand for."""
DEFAULT_CODEC = 'eepose_absolute'
"""The codec of a dataset or checkpoint that records none (one written by LeRobot)."""


def registered_name(name: str) -> str:
    """The registered name ``name`` stands for: itself, or the name of a legacy import path (see
    :data:`LEGACY_NAMES`); any other name (a codec of your own) is returned unchanged."""
    return LEGACY_NAMES.get(name, name)


def registered_codec(name: str, image_size: Sequence[int] | int | None, source: str | Path) -> Codec:
    """The registered codec ``name`` (or its legacy import path) at ``image_size`` (None: its default), as recorded
    in the file ``source``.

    Raises UnknownCodecError naming ``source`` and the registered names when ``name`` is not registered (nothing is
    imported), CodecMismatchError when ``image_size`` is not a valid size.
    """
    config = REGISTRY.get(registered_name(name)) if isinstance(name, str) else None
    if config is None:
        raise UnknownCodecError(
            f'{source} records codec {name!r}, which is not a registered codec (registered: {", ".join(REGISTRY)}); '
            'codecs named in files are never imported: if it is your own, name it on the command line '
            '(--codec=@<module>.<config>, or --policy.codec=... for --policy=.act)'
        )
    if image_size is None:
        return config.instantiate()
    try:
        size = image_size_pair(image_size)
    except ValueError as e:
        raise CodecMismatchError(f'{source}: {e}') from e
    return config.override(image_size=list(size)).instantiate()
