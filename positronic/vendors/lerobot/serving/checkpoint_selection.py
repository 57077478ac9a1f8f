"""Which checkpoint of an experiment to run, and the codec that turns robot signals into its features.

Shared by the protocol-v1 server (``positronic.vendors.lerobot.serving.server``) and the in-process ``--policy=.act``.
A checkpoint is named by its training step: ``10000`` (or its directory name ``010000``) picks
``<experiment>/checkpoints/010000/pretrained_model``.

The codec of a checkpoint follows the one rule of ``codec_spec.resolve_codec``: the one asked for (whose name and
image size must equal the record), else the one our trainer recorded beside ``config.json``
(``positronic_codec.json``, built only when it names a codec of ``codecs.REGISTRY``), else ``eepose_absolute`` at
the image size of the checkpoint's camera features (for checkpoints written by LeRobot's own trainer). Whatever is
chosen must declare exactly the checkpoint's feature keys and shapes. A recorded name is never imported: a
checkpoint of your own codec is run by naming that codec.
"""

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from positronic.vendors.lerobot.codec import Codec
from positronic.vendors.lerobot.codec_spec import CodecSpec, resolve_codec
from positronic.vendors.lerobot.training.checkpoint import (
    CODEC_FILE,
    CheckpointError,
    CheckpointNotFoundError,
    list_checkpoints,
    read_codec_record,
)

CONFIG_FILE = 'config.json'
ACT_TYPE = 'act'

_STEP = re.compile(r'[0-9]{1,18}')


def parse_step(checkpoint: str | int) -> int | None:
    """The training step named by ``checkpoint`` (``10000``, ``'10000'`` or ``'010000'``); None if it names none."""
    if isinstance(checkpoint, int) and not isinstance(checkpoint, bool):
        return checkpoint if checkpoint >= 0 else None
    if isinstance(checkpoint, str) and _STEP.fullmatch(checkpoint):
        return int(checkpoint)
    return None


def available_checkpoints(checkpoints_dir: str | Path) -> dict[int, Path]:
    """Step -> ``pretrained_model`` dir of every checkpoint of an experiment, sorted by step.

    ``checkpoints_dir`` is the experiment dir (``<output_dir>/<exp_name>``), its ``checkpoints/`` dir, or one
    step dir. Raises CheckpointNotFoundError when the directory does not exist.
    """
    path = Path(checkpoints_dir).expanduser()
    if not path.is_dir():
        raise CheckpointNotFoundError(f'checkpoints directory {path} does not exist or is not a directory')
    return list_checkpoints(path)


def select_checkpoint(checkpoints_dir: str | Path, checkpoint: str | int | None = None) -> tuple[int, Path]:
    """``(step, pretrained_model dir)`` of ``checkpoint`` (a step) in the experiment, or of its latest when None.

    Raises CheckpointNotFoundError naming the directory and the steps it has.
    """
    checkpoints = available_checkpoints(checkpoints_dir)
    if checkpoint is None:
        if not checkpoints:
            raise CheckpointNotFoundError(f'no checkpoints under {Path(checkpoints_dir).expanduser()}')
        step = max(checkpoints)
        return step, checkpoints[step]
    step = parse_step(checkpoint)
    if step is None or step not in checkpoints:
        raise CheckpointNotFoundError(
            f'no checkpoint {checkpoint!r} under {Path(checkpoints_dir).expanduser()}; '
            f'available steps: {list(checkpoints)}'
        )
    return step, checkpoints[step]


def read_policy_config(pretrained_dir: str | Path) -> dict[str, Any]:
    """The ``config.json`` of an ACT ``pretrained_model`` dir; raises CheckpointError if it is not one."""
    path = Path(pretrained_dir) / CONFIG_FILE
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise CheckpointError(f'{path} is missing: not a pretrained_model directory') from e
    except (OSError, ValueError) as e:
        raise CheckpointError(f'cannot read {path}: {e}') from e
    if not isinstance(config, dict) or config.get('type') != ACT_TYPE:
        kind = config.get('type') if isinstance(config, dict) else type(config).__name__
        raise CheckpointError(f'{path} describes a {kind!r} policy; expected "type": "{ACT_TYPE}"')
    for key in ('input_features', 'output_features'):
        if not isinstance(config.get(key), dict):
            raise CheckpointError(f'{path} lacks {key!r} (a map of feature name -> {{type, shape}})')
    return config


def policy_features(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Input then output features of an ACT ``config.json`` (``{name: {"type": ..., "shape": [...]}}``)."""
    return {**config['input_features'], **config['output_features']}


def checkpoint_codec(pretrained_dir: str | Path, codec: Codec | None = None) -> Codec:
    """The codec to run the checkpoint in ``pretrained_dir`` with (see the module docstring).

    Raises CodecMismatchError when ``codec`` contradicts the recorded codec or the checkpoint's features, or
    when the recorded codec cannot be built (UnknownCodecError: it is not registered); CheckpointError when
    ``config.json`` is unreadable.
    """
    pretrained_dir = Path(pretrained_dir)
    features = policy_features(read_policy_config(pretrained_dir))
    where = pretrained_dir / CODEC_FILE
    recorded = CodecSpec.from_record(read_codec_record(pretrained_dir), where, features)
    return resolve_codec(codec, recorded, features, where)
