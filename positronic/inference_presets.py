"""Policy presets for ``--policy=...`` (relative names resolve in this module, e.g. ``--policy=.remote``)."""

import configuronic as cfn

from positronic.command import UsageError
from positronic.policy.base import Policy, PolicyLoadError
from positronic.policy.remote import RemotePolicy
from positronic.vendors.lerobot.codec import Codec, CodecMismatchError

remote = cfn.config(host='localhost', port=8000, model_id=None, resize=640, auth_token=None)(RemotePolicy)
"""A policy served over protocol v1: ``--policy=.remote --policy.host=gpu-box [--policy.port=8000]
[--policy.model_id=10000] [--policy.resize=640]``."""


@cfn.config(checkpoint=None, codec=None, device='auto')
def act(checkpoints_dir: str, checkpoint: int | str | None, codec: Codec | None, device: str) -> Policy:
    """An ACT checkpoint run in this process (for robots that carry their own GPU): ``--policy=.act
    --policy.checkpoints_dir=~/checkpoints/lerobot/my_task_v1/ [--policy.checkpoint=10000]
    [--policy.codec=@positronic.vendors.lerobot.codecs.eepose_absolute] [--policy.device=auto]``.

    Same checkpoint choice, codec and action chunks as ``positronic-lerobot-server``."""
    from positronic.vendors.lerobot.device import resolve_device  # imports torch only when this policy is chosen
    from positronic.vendors.lerobot.serving.policy import LocalACTPolicy
    from positronic.vendors.lerobot.training.checkpoint import CheckpointError

    try:
        return LocalACTPolicy.load(checkpoints_dir, checkpoint, codec, resolve_device(device, flag='--policy.device'))
    except (CheckpointError, CodecMismatchError) as error:
        raise PolicyLoadError(f'--policy.checkpoints_dir={checkpoints_dir}: {error}') from error


@cfn.config(blend=0.0)
def expert(blend: float = 0.0) -> Policy:
    """The scripted stacking expert (it reads the true cube poses, so it runs only in the simulator):
    ``positronic-inference sim --policy=.expert [--policy.blend=0.5]``. Validates the loop and the success measure
    without a model; ``blend`` is the recorder's ``--expert_blend`` (0 to 0.5; 0 stops at every waypoint)."""
    from positronic.policy.expert import ExpertPolicy  # imports the simulator only when this policy is chosen
    from positronic.sim.expert import MAX_BLEND, valid_blend

    if not valid_blend(blend):
        raise UsageError(f'--policy.blend must be a number in [0, {MAX_BLEND}], got {blend!r}')
    return ExpertPolicy(float(blend))
