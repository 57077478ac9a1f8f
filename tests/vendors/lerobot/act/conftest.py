from pathlib import Path

import numpy as np
import pytest
import torch

from positronic.vendors.lerobot.act import ACTConfig, ACTPolicy

FIXTURES = Path(__file__).with_name('fixtures')
ACT_TINY = FIXTURES / 'act_tiny'
"""ACTPolicy.save_pretrained + processors written by LeRobot 0.4.4 (see fixtures/make_reference.py)."""
CAMERAS = ('observation.images.left', 'observation.images.side')


def tiny_config(**overrides) -> ACTConfig:
    """A small ACT (two 3x64x64 cameras, state 8, action 8) that builds and runs fast."""
    fields = {
        'input_features': {
            'observation.state': {'type': 'STATE', 'shape': [8]},
            **{cam: {'type': 'VISUAL', 'shape': [3, 64, 64]} for cam in CAMERAS},
        },
        'output_features': {'action': {'type': 'ACTION', 'shape': [8]}},
        'chunk_size': 10,
        'n_action_steps': 10,
        'dim_model': 32,
        'n_heads': 2,
        'dim_feedforward': 64,
        'latent_dim': 4,
        'n_encoder_layers': 2,
        'n_vae_encoder_layers': 2,
        'pretrained_backbone_weights': None,
    }
    return ACTConfig(**{**fields, **overrides})


def random_batch(config: ACTConfig, batch_size: int = 2, seed: int = 0, with_action: bool = True) -> dict:
    """Normalized-looking inputs for ``config``: state and actions ~ N(0, 1), images ~ U(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    batch = {'observation.state': torch.randn(batch_size, config.robot_state_feature.shape[0], generator=g)}
    for key, feature in config.image_features.items():
        batch[key] = torch.rand(batch_size, *feature.shape, generator=g)
    if with_action:
        batch['action'] = torch.randn(batch_size, config.chunk_size, config.action_feature.shape[0], generator=g)
        batch['action_is_pad'] = torch.zeros(batch_size, config.chunk_size, dtype=torch.bool)
        batch['action_is_pad'][0, -3:] = True
    return batch


@pytest.fixture(scope='session')
def reference_obs() -> dict[str, torch.Tensor]:
    with np.load(FIXTURES / 'reference_obs.npz') as data:
        return {k: torch.from_numpy(v) for k, v in data.items()}


@pytest.fixture(scope='session')
def reference_model_only() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / 'reference_actions_model_only.npz') as data:
        return dict(data)


@pytest.fixture(scope='session')
def reference_actions() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / 'reference_actions.npz') as data:
        return dict(data)


@pytest.fixture
def act_tiny() -> ACTPolicy:
    return ACTPolicy.from_pretrained(ACT_TINY)
