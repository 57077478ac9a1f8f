"""Serve the ACT checkpoints of one training experiment over protocol v1 (``positronic-lerobot-server``).

    positronic-lerobot-server --checkpoints_dir=~/checkpoints/lerobot/my_task_v1/ [--checkpoint=10000]
        [--codec=@positronic.vendors.lerobot.codecs.eepose_absolute] [--port=8000] [--host=0.0.0.0]
        [--device=auto] [--max_message_bytes=33554432] [--log_level=info]

``GET /api/v1/models`` lists the experiment's checkpoint steps (numerically sorted, re-read on every call, so
checkpoints written while serving appear); ``WS /api/v1/session`` serves ``--checkpoint`` (else the latest) and
``WS /api/v1/session/{step}`` any listed step (``10000`` or ``010000``). One checkpoint is in memory at a time.
The codec defaults to the one recorded in the checkpoint; a contradicting ``--codec`` is refused at start.
"""

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import configuronic as cfn

from positronic.command import UsageError, run_command
from positronic.offboard import protocol, wire
from positronic.offboard.models import ModelNotFoundError
from positronic.offboard.server import ServerSettings, serve
from positronic.policy.codec import Codec, CodecMismatchError
from positronic.vendors.lerobot.serving.checkpoint_selection import (
    CheckpointFormatError,
    CheckpointNotFoundError,
    available_checkpoints,
    checkpoint_codec,
    parse_step,
    select_checkpoint,
)
from positronic.vendors.lerobot.serving.policy import DEVICE_AUTO, ACTRunner, resolve_device

logger = logging.getLogger(__name__)

PROG = 'positronic-lerobot-server'

LOG_LEVELS = ('debug', 'info', 'warning', 'error')
"""``--log_level`` choices; they set the level of the ``positronic`` loggers (uvicorn's stay at info)."""


class CheckpointModel:
    """A ``LoadedModel``: one checkpoint's ``ACTRunner`` and the ``ready`` meta naming its step."""

    def __init__(self, runner: ACTRunner, step: int, extra_meta: Mapping[str, Any]):
        self.runner = runner
        self._meta = {**runner.meta, 'step': step, **extra_meta}

    @property
    def meta(self) -> dict[str, Any]:
        return self._meta

    def warm_up(self) -> None:
        self.runner.warm_up()

    def infer(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self.runner.infer(observation)

    def unload(self) -> None:
        self.runner.unload()


class CheckpointSource:
    """A ``ModelSource`` over the checkpoints of one experiment; model ids are training steps.

    ``checkpoint`` (a step) is the default model; None: the latest checkpoint at the time a session asks.
    ``codec`` None: each checkpoint's recorded codec. ``extra_meta`` is added to every ``ready`` meta.
    """

    def __init__(
        self,
        checkpoints_dir: str | Path,
        checkpoint: int | None = None,
        codec: Codec | None = None,
        device: str = DEVICE_AUTO,
        extra_meta: Mapping[str, Any] | None = None,
    ):
        self.checkpoints_dir = Path(checkpoints_dir).expanduser()
        self.checkpoint = checkpoint
        self.codec = codec
        self.device = device
        self.extra_meta = dict(extra_meta or {})

    def check(self) -> None:
        """Fail now, with a clear error, on what would refuse every session: a missing directory, an unknown
        device, a ``checkpoint`` that does not exist, or a codec that contradicts the default checkpoint."""
        resolve_device(self.device)
        checkpoints = available_checkpoints(self.checkpoints_dir)
        if self.checkpoint is None and not checkpoints:
            logger.warning(
                'no checkpoints under %s yet; sessions are refused until one is written', self.checkpoints_dir
            )
            return
        step, pretrained_dir = select_checkpoint(self.checkpoints_dir, self.checkpoint)
        codec = checkpoint_codec(pretrained_dir, self.codec)
        logger.info('default checkpoint: step %d at %s, codec %s', step, pretrained_dir, codec.name)

    def model_ids(self) -> list[str]:
        return [str(step) for step in available_checkpoints(self.checkpoints_dir)]

    def resolve(self, model_id: str | None) -> str:
        try:
            checkpoints = available_checkpoints(self.checkpoints_dir)
        except CheckpointNotFoundError as e:
            raise ModelNotFoundError(str(e), protocol.REASON_NO_MODELS) from e
        if model_id is None:
            if self.checkpoint is not None:
                if self.checkpoint not in checkpoints:
                    raise ModelNotFoundError(
                        f'configured checkpoint {self.checkpoint} is not under {self.checkpoints_dir}; '
                        f'available steps: {list(checkpoints)}',
                        protocol.REASON_CONFIGURED_MODEL_NOT_FOUND,
                    )
                return str(self.checkpoint)
            if not checkpoints:
                raise ModelNotFoundError(f'no checkpoints under {self.checkpoints_dir}', protocol.REASON_NO_MODELS)
            return str(max(checkpoints))
        step = parse_step(model_id)
        if step is None or step not in checkpoints:
            raise ModelNotFoundError(
                f'no checkpoint {model_id!r} under {self.checkpoints_dir}; available steps: {list(checkpoints)}'
            )
        return str(step)

    def load(self, model_id: str) -> CheckpointModel:
        step, pretrained_dir = select_checkpoint(self.checkpoints_dir, model_id)
        runner = ACTRunner.load(pretrained_dir, self.codec, self.device)
        return CheckpointModel(runner, step, self.extra_meta)


@cfn.config(
    checkpoint=None,
    codec=None,
    host='0.0.0.0',
    port=protocol.DEFAULT_PORT,
    device=DEVICE_AUTO,
    max_message_bytes=wire.DEFAULT_MAX_MESSAGE_BYTES,
    log_level='info',
)
def serve_checkpoints(
    checkpoints_dir: str,
    checkpoint: int | str | None,
    codec: Codec | None,
    host: str,
    port: int,
    device: str,
    max_message_bytes: int,
    log_level: str,
) -> None:
    """Serve the ACT checkpoints of one experiment over protocol v1 (HTTP + WebSocket on one port).

    checkpoints_dir: the experiment dir (<output_dir>/<exp_name>), its checkpoints/ dir, or one step dir.
    checkpoint: the step served to sessions that name none, 10000 or 010000 (default: the latest checkpoint).
    codec: e.g. @positronic.vendors.lerobot.codecs.eepose_absolute (default: the codec recorded in the
        checkpoint; eepose_absolute at the checkpoint's image size when none is recorded). A recorded codec of
        your own is not imported from the file: name it here (--codec=@my_robot.codecs.joints_wrist).
    host, port: where to listen (0.0.0.0: every interface; 127.0.0.1: this machine only).
    device: auto (cuda, else mps, else cpu), cpu, cuda, cuda:<index> or mps.
    max_message_bytes: the largest observation answered (default 32 MiB: four 1080p frames).
    log_level: debug, info, warning or error; debug adds a line per request with the milliseconds spent
        unpacking it, in the policy (codec included) and packing the answer.
    """
    if log_level not in LOG_LEVELS:
        raise UsageError(f'--log_level={log_level!r}: expected one of {", ".join(LOG_LEVELS)}')
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    logging.getLogger('positronic').setLevel(log_level.upper())
    if checkpoint is not None and parse_step(checkpoint) is None:
        raise UsageError(f'--checkpoint={checkpoint!r} is not a training step (digits, e.g. 10000)')
    source = CheckpointSource(
        checkpoints_dir,
        None if checkpoint is None else parse_step(checkpoint),
        codec,
        device,
        extra_meta={'host': host, 'port': port},
    )
    source.check()
    serve(source, host, port, ServerSettings(max_message_bytes=max_message_bytes))


DATA_ERRORS = (CheckpointNotFoundError, CheckpointFormatError, CodecMismatchError)
"""A missing or unreadable experiment, or a --codec it contradicts: exit code 1 (bad flag values exit with 2)."""


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``positronic-lerobot-server``; ``argv`` replaces the command line (for tests)."""
    run_command(PROG, serve_checkpoints, argv, data_errors=DATA_ERRORS)


if __name__ == '__main__':
    main()
