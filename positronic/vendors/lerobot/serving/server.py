"""Serve the ACT checkpoints of one training experiment over protocol v1 (``positronic-lerobot-server``).

    positronic-lerobot-server --checkpoints_dir=~/checkpoints/lerobot/my_task_v1/ [--checkpoint=10000]
        [--codec=@positronic.vendors.lerobot.codecs.eepose_absolute] [--port=8000] [--host=0.0.0.0]
        [--device=auto] [--max_message_bytes=33554432] [--log_level=info] [--auth_token=...]
        [--max_connections=128] [--max_buffered_bytes=536870912] [--handshake_timeout_s=10]
        [--message_timeout_s=30] [--idle_timeout_s=60] [--switch_grace_s=30] [--reveal_paths=False]

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
from positronic.offboard.access import token_or_env
from positronic.offboard.models import ModelNotFoundError
from positronic.offboard.server import (
    DEFAULT_MAX_BUFFERED_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    ServerSettings,
    ServerSettingsError,
    serve,
)
from positronic.vendors.lerobot.codec import Codec, CodecMismatchError
from positronic.vendors.lerobot.serving.checkpoint_selection import (
    CheckpointError,
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


def server_settings(
    checkpoints_dir: Path, max_message_bytes: int, auth_token: str | int | None, reveal_paths: bool, **limits: Any
) -> ServerSettings:
    """The server's settings from the flags; the token defaults to ``$POSITRONIC_AUTH_TOKEN`` (empty: none).

    Unless ``reveal_paths``, clients see ``checkpoints_dir`` (in its absolute forms) as ``<checkpoints_dir>``.
    Raises ServerSettingsError naming the flag's field when a value is out of range."""
    token = token_or_env(auth_token)
    private_paths = () if reveal_paths else tuple({str(checkpoints_dir.absolute()), str(checkpoints_dir.resolve())})
    return ServerSettings(max_message_bytes=max_message_bytes, auth_token=token, private_paths=private_paths, **limits)


@cfn.config(
    checkpoint=None,
    codec=None,
    host='0.0.0.0',
    port=protocol.DEFAULT_PORT,
    device=DEVICE_AUTO,
    max_message_bytes=wire.DEFAULT_MAX_MESSAGE_BYTES,
    log_level='info',
    auth_token=None,
    max_connections=DEFAULT_MAX_CONNECTIONS,
    max_buffered_bytes=DEFAULT_MAX_BUFFERED_BYTES,
    handshake_timeout_s=ServerSettings.handshake_timeout_s,
    message_timeout_s=ServerSettings.message_timeout_s,
    idle_timeout_s=ServerSettings.idle_timeout_s,
    switch_grace_s=ServerSettings.switch_grace_s,
    reveal_paths=False,
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
    auth_token: str | None,
    max_connections: int,
    max_buffered_bytes: int,
    handshake_timeout_s: float,
    message_timeout_s: float,
    idle_timeout_s: float,
    switch_grace_s: float,
    reveal_paths: bool,
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
    auth_token: a shared token clients must send (Authorization: Bearer <token>); default: the
        POSITRONIC_AUTH_TOKEN environment variable, else none (every client is served, as before).
    max_connections: open connections at most; one more is answered 503 (default 128).
    max_buffered_bytes: bytes of partly received messages over all connections; the connection passing it
        is closed with 1013 (default 512 MiB; at least twice max_message_bytes).
    handshake_timeout_s: seconds a connection has to send its HTTP request or WebSocket upgrade (default 10).
    message_timeout_s: seconds a message has to arrive completely after its first bytes (default 30).
    idle_timeout_s: seconds a session may send nothing before it is closed (default 60).
    switch_grace_s: seconds a session waiting for another checkpoint lets new sessions join the loaded one;
        later ones queue behind it (default 30).
    reveal_paths: show clients the absolute checkpoint paths (in ready meta and errors); default: they see
        <checkpoints_dir> instead.
    """
    if log_level not in LOG_LEVELS:
        raise UsageError(f'--log_level={log_level!r}: expected one of {", ".join(LOG_LEVELS)}')
    limits = {
        'max_connections': max_connections,
        'max_buffered_bytes': max_buffered_bytes,
        'handshake_timeout_s': handshake_timeout_s,
        'message_timeout_s': message_timeout_s,
        'idle_timeout_s': idle_timeout_s,
        'switch_grace_s': switch_grace_s,
    }
    try:
        settings = server_settings(
            Path(checkpoints_dir).expanduser(), max_message_bytes, auth_token, reveal_paths, **limits
        )
    except ServerSettingsError as e:
        raise UsageError(f'--{e}') from e
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    logging.getLogger('positronic').setLevel(log_level.upper())
    step = None if checkpoint is None else parse_step(checkpoint)
    if checkpoint is not None and step is None:
        raise UsageError(f'--checkpoint={checkpoint!r} is not a training step (digits, e.g. 10000)')
    source = CheckpointSource(
        checkpoints_dir,
        step,
        codec,
        device,
        extra_meta={'host': host, 'port': port},
    )
    source.check()
    serve(source, host, port, settings)


DATA_ERRORS = (CheckpointError, CodecMismatchError)
"""A missing or unreadable experiment, or a --codec it contradicts: exit code 1 (bad flag values exit with 2)."""


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``positronic-lerobot-server``; ``argv`` replaces the command line (for tests)."""
    run_command(PROG, serve_checkpoints, argv, data_errors=DATA_ERRORS)


if __name__ == '__main__':
    main()
