"""ACTPolicy: LeRobot 0.4.4's ACT policy API (forward, predict_action_chunk, select_action, save/load).

All tensors are normalized and keyed as in LeRobot datasets; the processors of ``normalize`` map raw values in
and actions out, as LeRobot keeps normalization outside the policy. ``save_pretrained`` writes config.json and
model.safetensors that LeRobot's ``ACTPolicy.from_pretrained`` loads with every key matched (spec B.5).
"""

import os
from collections import deque
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from positronic.vendors.lerobot.act.config import ACTION_IS_PAD_KEY, ACTION_KEY, ACTConfig
from positronic.vendors.lerobot.act.model import ACT

MODEL_FILE = 'model.safetensors'
BACKBONE_PREFIX = 'model.backbone'


class CheckpointMismatchError(RuntimeError):
    """model.safetensors does not hold exactly the tensors (names and shapes) the config's model has."""


class TemporalEnsembler:
    """Weighted running mean of overlapping chunk predictions (ACT's temporal ensembling).

    With w_i = exp(-k i), the action executed at time t is sum_j w_j a^(t_j)[t - t_j] / sum_j w_j over the
    predictions made at t_j <= t, oldest first; the count per future step is capped at the chunk size.
    """

    def __init__(self, coeff: float, chunk_size: int):
        self.chunk_size = chunk_size
        self.weights = torch.exp(-coeff * torch.arange(chunk_size))
        self.cum_weights = torch.cumsum(self.weights, dim=0)
        self.reset()

    def reset(self) -> None:
        self._mean: Tensor | None = None  # (B, S - 1, A) running means of the steps still ahead
        self._count: Tensor | None = None  # (S - 1, 1) predictions averaged into each of them

    def update(self, chunk: Tensor) -> Tensor:
        """Fold a new chunk (B, S, A) into the running means; return the action (B, A) for the current step."""
        weights = self.weights.to(chunk.device)
        cum_weights = self.cum_weights.to(chunk.device)
        if self._mean is None:
            mean = chunk.clone()
            count = torch.ones(self.chunk_size, 1, dtype=torch.long, device=chunk.device)
        else:
            mean = self._mean * cum_weights[self._count - 1]
            mean += chunk[:, :-1] * weights[self._count]
            mean /= cum_weights[self._count]
            count = torch.clamp(self._count + 1, max=self.chunk_size)
            mean = torch.cat([mean, chunk[:, -1:]], dim=1)
            count = torch.cat([count, torch.ones_like(count[-1:])])
        self._mean, self._count = mean[:, 1:], count[1:]
        return mean[:, 0]


class ACTPolicy(nn.Module):
    """ACT behind LeRobot's policy methods; batches are dicts of normalized tensors keyed by feature name."""

    name = 'act'

    def __init__(self, config: ACTConfig, *, load_backbone_weights: bool = True):
        """Build the model; backbone weights per ``config.pretrained_backbone_weights`` unless told not to
        (``from_pretrained`` overwrites them, so it skips the fetch)."""
        super().__init__()
        config.validate_features()
        self.config = config
        self.model = ACT(config, load_backbone_weights=load_backbone_weights)
        self.temporal_ensembler = (
            TemporalEnsembler(config.temporal_ensemble_coeff, config.chunk_size)
            if config.temporal_ensemble_coeff is not None
            else None
        )
        self.reset()

    def _images(self, batch: dict[str, Tensor]) -> list[Tensor]:
        missing = [k for k in self.config.image_features if k not in batch]
        if missing:
            raise KeyError(f'batch lacks camera(s) {missing}; it has {sorted(batch)}')
        return [batch[k] for k in self.config.image_features]

    def reset(self) -> None:
        """Forget queued actions (or the ensembler's running means); call at the start of every episode."""
        if self.temporal_ensembler is not None:
            self.temporal_ensembler.reset()
        else:
            self._action_queue: deque[Tensor] = deque(maxlen=self.config.n_action_steps)

    def get_optim_params(self) -> list[dict]:
        """AdamW parameter groups as LeRobot's ACT: the rest at the base lr, the backbone at optimizer_lr_backbone."""
        named = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        return [
            {'params': [p for n, p in named if not n.startswith(BACKBONE_PREFIX)]},
            {'params': [p for n, p in named if n.startswith(BACKBONE_PREFIX)], 'lr': self.config.optimizer_lr_backbone},
        ]

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Training loss: L1 over every (padded-out) action element + kl_weight * KL; logs l1_loss, kld_loss.

        The L1 mean divides by B * S * A, padded elements included, as LeRobot 0.4.4 does.
        """
        terms = self.loss_terms(batch)
        return terms['loss'], {k: v.item() for k, v in terms.items() if k != 'loss'}

    def loss_terms(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """What :meth:`forward` computes as 0-d tensors, without reading them on the host: ``loss``,
        ``l1_loss`` and, with the VAE, ``kld_loss``."""
        actions, (mu, log_sigma_x2) = self.model(batch, self._images(batch))
        l1 = (F.l1_loss(batch[ACTION_KEY], actions, reduction='none') * ~batch[ACTION_IS_PAD_KEY].unsqueeze(-1)).mean()
        if not self.config.use_vae:
            return {'loss': l1, 'l1_loss': l1}
        if mu is None:
            raise RuntimeError('ACTPolicy.forward computes the VAE loss: call policy.train() and pass "action"')
        kld = (-0.5 * (1 + log_sigma_x2 - mu.pow(2) - log_sigma_x2.exp())).sum(-1).mean()
        return {'loss': l1 + kld * self.config.kl_weight, 'l1_loss': l1, 'kld_loss': kld}

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict[str, Tensor]) -> Tensor:
        """A chunk of normalized actions (B, chunk_size, A) with the latent at zero (eval mode)."""
        self.eval()
        return self.model(batch, self._images(batch))[0]

    @torch.no_grad()
    def predict_action_steps(self, batch: dict[str, Tensor]) -> Tensor:
        """The first ``n_action_steps`` actions (B, n_action_steps, A) of a predicted chunk, normalized: what one
        model call hands out (the queue of :meth:`select_action`; the answer of the server and of ``.act``)."""
        return self.predict_action_chunk(batch)[:, : self.config.n_action_steps]

    @torch.no_grad()
    def select_action(self, batch: dict[str, Tensor]) -> Tensor:
        """The normalized action (B, A) for the current step: from the queue of n_action_steps actions (refilled
        by one model call when empty), or temporally ensembled over a fresh chunk every step."""
        self.eval()
        if self.temporal_ensembler is not None:
            return self.temporal_ensembler.update(self.predict_action_chunk(batch))
        if not self._action_queue:
            self._action_queue.extend(self.predict_action_steps(batch).transpose(0, 1))
        return self._action_queue.popleft()

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write config.json and model.safetensors (LeRobot's key names, float tensors, no metadata)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.save(directory)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        tmp = directory / (MODEL_FILE + '.tmp')
        save_file(state, tmp)
        tmp.replace(directory / MODEL_FILE)

    @classmethod
    def from_pretrained(
        cls, directory: str | os.PathLike, device: str | torch.device = 'cpu', config: ACTConfig | None = None
    ) -> 'ACTPolicy':
        """Load a ``pretrained_model`` directory (ours or LeRobot's) in eval mode on ``device``.

        Every tensor of the model must be in model.safetensors with the right shape, and nothing else:
        CheckpointMismatchError lists what differs. The ImageNet backbone weights are not fetched.
        """
        directory = Path(directory)
        config = config or ACTConfig.load(directory)
        policy = cls(config, load_backbone_weights=False)
        path = directory / MODEL_FILE
        if not path.is_file():
            raise FileNotFoundError(f'{path}: no model weights there (expected {MODEL_FILE} beside config.json)')
        policy.load_checkpoint_state(load_file(path), str(path))
        return policy.to(device).eval()

    def load_checkpoint_state(self, state: dict[str, Tensor], source: str) -> None:
        """Copy ``state`` into the policy after checking its key set and every shape against the model."""
        expected = self.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong_shape = [
            f'{k}: file {tuple(state[k].shape)}, model {tuple(v.shape)}'
            for k, v in expected.items()
            if k in state and state[k].shape != v.shape
        ]
        if missing or unexpected or wrong_shape:
            raise CheckpointMismatchError(
                f'{source} does not match the model of its config: missing {missing}, unexpected {unexpected}, '
                f'shape mismatches {wrong_shape} (a pre-0.4 LeRobot checkpoint keeps normalization stats in the '
                'model; migrate it with LeRobot first)'
            )
        self.load_state_dict(state, strict=True)
