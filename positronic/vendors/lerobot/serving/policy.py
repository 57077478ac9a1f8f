"""ACT inference for one checkpoint: raw robot observation in, a chunk of wire-form robot commands out.

``ACTRunner`` = codec ∘ processors ∘ ACTPolicy, the one path used by both the protocol-v1 server and the
in-process ``LocalACTPolicy`` (``--policy=.act``):

1. ``codec.encode``: raw signals -> ``observation.state`` float32 (S,) and each camera uint8 (H, W, 3), letterboxed;
2. tensors: state (1, S) float32; cameras (1, 3, H, W) float32 in [0, 1] (uint8 / 255, channel-first), exactly
   as LeRobot's dataset hands frames to its preprocessor;
3. ``processors.normalize`` -> ``ACTPolicy.predict_action_steps`` (the first ``n_action_steps`` actions of the
   predicted chunk, as LeRobot's own queue takes them) -> ``processors.unnormalize_action``;
4. ``codec.decode_chunk``: (n_action_steps, 8) -> wire-form actions, oldest first.
"""

import gc
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from positronic.policy.base import ACTIONS_PER_QUERY
from positronic.vendors.lerobot.act import ACTPolicy, FeatureType
from positronic.vendors.lerobot.act.normalize import Processors, load_processors
from positronic.vendors.lerobot.codec import Codec
from positronic.vendors.lerobot.device import DEVICE_AUTO, resolve_device
from positronic.vendors.lerobot.serving.checkpoint_selection import ACT_TYPE, checkpoint_codec, select_checkpoint

logger = logging.getLogger(__name__)


class ACTRunner:
    """One ACT checkpoint in memory with its processors and codec; ``infer`` maps observations to action chunks.

    Not thread-safe: call ``infer`` from one thread at a time.
    """

    def __init__(
        self, policy: ACTPolicy, processors: Processors, codec: Codec, device: torch.device, pretrained_dir: Path
    ):
        self.policy = policy
        self.processors = processors
        self.codec = codec
        self.device = device
        self.pretrained_dir = pretrained_dir
        self._input_features = dict(policy.config.input_features)

    @classmethod
    def load(
        cls, pretrained_dir: str | Path, codec: Codec | None = None, device: str | torch.device = DEVICE_AUTO
    ) -> 'ACTRunner':
        """Load ``pretrained_dir`` (config.json, model.safetensors, processor files) onto ``device``.

        ``codec`` None picks the checkpoint's own (see ``checkpoint_selection.checkpoint_codec``); a codec that
        contradicts the checkpoint raises CodecMismatchError before any weights are read.
        """
        pretrained_dir = Path(pretrained_dir)
        codec = checkpoint_codec(pretrained_dir, codec)
        device = resolve_device(device)
        policy = ACTPolicy.from_pretrained(pretrained_dir, device=str(device))
        processors = load_processors(pretrained_dir)
        if policy.config.temporal_ensemble_coeff is not None:
            logger.warning(
                '%s sets temporal_ensemble_coeff; chunks are served without temporal ensembling', pretrained_dir
            )
        return cls(policy, processors, codec, device, pretrained_dir)

    @property
    def chunk_size(self) -> int:
        """Actions the model predicts per call."""
        return int(self.policy.config.chunk_size)

    @property
    def n_action_steps(self) -> int:
        """Actions returned per call (the first ``n_action_steps`` of the predicted chunk)."""
        return int(self.policy.config.n_action_steps)

    @property
    def meta(self) -> dict[str, Any]:
        """What this runner serves: checkpoint path, policy type, device, codec, image size, features, chunking."""
        config = self.policy.config
        features = {name: feature.to_dict() for name, feature in config.input_features.items()}
        features.update({name: feature.to_dict() for name, feature in config.output_features.items()})
        return {
            'type': ACT_TYPE,
            'checkpoint_path': str(self.pretrained_dir),
            'device': str(self.device),
            'codec': self.codec.name,
            'image_size': list(self.codec.observation.image_size),
            'features': features,
            'chunk_size': self.chunk_size,
            ACTIONS_PER_QUERY: self.n_action_steps,
        }

    def _batch(self, encoded: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Model inputs with a batch dimension of 1 on the device, not yet normalized."""
        batch = {}
        for name, feature in self._input_features.items():
            value = np.asarray(encoded[name])
            if feature.type is FeatureType.VISUAL:
                frame = torch.tensor(value, dtype=torch.uint8).to(self.device)
                batch[name] = (frame.permute(2, 0, 1).float() / 255.0).unsqueeze(0)
            else:
                batch[name] = torch.tensor(value, dtype=torch.float32).to(self.device).unsqueeze(0)
        return batch

    def predict(self, encoded: Mapping[str, Any]) -> np.ndarray:
        """Unnormalized actions (n_action_steps, A) float32 for codec-encoded features (as ``codec.encode`` gives)."""
        batch = self._batch(encoded)
        with torch.inference_mode():
            normalized = self.processors.normalize(batch)
            actions = self.processors.unnormalize_action(self.policy.predict_action_steps(normalized))
        return actions[0].float().cpu().numpy()

    def infer(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Wire-form actions (n_action_steps of them, oldest first) for one raw observation."""
        return self.codec.decode_chunk(self.predict(self.codec.encode(observation)))

    def warm_up(self) -> None:
        """Run the model once on a blank observation so the first real request pays no one-time costs."""
        width, height = self.codec.observation.image_size
        encoded: dict[str, Any] = {}
        for name, feature in self._input_features.items():
            if feature.type is FeatureType.VISUAL:
                encoded[name] = np.zeros((height, width, 3), dtype=np.uint8)
            else:
                encoded[name] = np.zeros(feature.shape, dtype=np.float32)
        self.predict(encoded)

    def unload(self) -> None:
        """Free the model's memory (GPU included); the runner cannot be used afterwards."""
        del self.policy, self.processors
        gc.collect()
        if self.device.type == 'cuda':
            torch.cuda.empty_cache()


class LocalACTPolicy:
    """A ``positronic.policy.base.Policy`` running an ACT checkpoint in-process (``--policy=.act``).

    Each ``select_action`` returns the same chunk the protocol-v1 server would answer for that observation.
    """

    def __init__(self, runner: ACTRunner, step: int):
        self.runner = runner
        self.step = step

    @classmethod
    def load(
        cls,
        checkpoints_dir: str | Path,
        checkpoint: str | int | None = None,
        codec: Codec | None = None,
        device: str | torch.device = DEVICE_AUTO,
    ) -> 'LocalACTPolicy':
        """Load ``checkpoint`` (a step; None: the latest) of the experiment in ``checkpoints_dir``, warmed up."""
        step, pretrained_dir = select_checkpoint(checkpoints_dir, checkpoint)
        runner = ACTRunner.load(pretrained_dir, codec, device)
        runner.warm_up()
        return cls(runner, step)

    def select_action(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The action chunk for one raw observation."""
        return self.runner.infer(observation)

    def reset(self, context: Mapping[str, Any] | None = None) -> None:
        """Nothing to reset: every call predicts a fresh chunk from its observation alone."""
        del context

    @property
    def meta(self) -> dict[str, Any]:
        """``{"type": "act", "step", "checkpoint_path", "device", "codec", ...}`` (flat)."""
        meta = {key: value for key, value in self.runner.meta.items() if key != 'features'}
        return {**meta, 'step': self.step}

    def close(self) -> None:
        """Free the model."""
        self.runner.unload()
