"""LeRobot 0.4.4 loads the ACT checkpoints we write and computes what we compute (needs LEROBOT_PYTHON)."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from positronic.vendors.lerobot.act import ACTPolicy
from positronic.vendors.lerobot.act import backbone as act_backbone
from positronic.vendors.lerobot.act.normalize import load_processors, save_processors

from .conftest import random_batch, tiny_config

pytestmark = pytest.mark.lerobot

SCRIPT = Path(__file__).with_name('lerobot_act.py')
SEED = 1236


def run_lerobot(lerobot_python: Path, *args) -> dict[str, np.ndarray]:
    out = Path(args[-1])
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_HOME': str(out.parent / 'hf_home')}
    result = subprocess.run(
        [str(lerobot_python), str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-4000:]
    with np.load(out) as data:
        return dict(data)


def stats_for(config) -> dict[str, dict[str, np.ndarray]]:
    """Dataset-like stats: a few more features than the policy's, as LeRobot's trainer passes them."""
    rng = np.random.default_rng(3)
    vector = {
        'mean': rng.normal(size=8).astype(np.float32),
        'std': rng.uniform(0.5, 2, size=8).astype(np.float32),
        'min': np.full(8, -3, np.float32),
        'max': np.full(8, 3, np.float32),
        'count': np.array([100], np.float32),
    }
    image = {
        'mean': np.array([0.4, 0.5, 0.6], np.float32).reshape(3, 1, 1),
        'std': np.array([0.2, 0.25, 0.3], np.float32).reshape(3, 1, 1),
    }
    return {
        'observation.state': vector,
        'action': {k: v * 0.5 if k == 'std' else v for k, v in vector.items()},
        **{key: image for key in config.image_features},
        'timestamp': {'mean': np.array([1.5], np.float32), 'std': np.array([0.8], np.float32)},
    }


def trained_checkpoint(directory: Path, **overrides):
    """A tiny policy after two optimizer steps (so no weight is at its initial value), saved with processors."""
    config = tiny_config(**overrides)
    torch.manual_seed(0)
    policy = ACTPolicy(config)
    optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=1e-3)
    policy.train()
    for step in range(2):
        loss, _ = policy.forward(random_batch(config, seed=step))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    policy.save_pretrained(directory)
    save_processors(directory, stats_for(config), config)
    return ACTPolicy.from_pretrained(directory), load_processors(directory)


@pytest.mark.parametrize(
    'overrides',
    [
        {},
        {'n_action_steps': 4, 'pre_norm': True, 'feedforward_activation': 'gelu'},
        {'n_action_steps': 1, 'temporal_ensemble_coeff': 0.05, 'chunk_size': 6},
    ],
)
def test_lerobot_loads_our_checkpoint_and_gives_our_actions_and_loss(lerobot_python, tmp_path, overrides):
    assert_lerobot_agrees(lerobot_python, tmp_path, overrides)


def test_lerobot_agrees_when_our_backbone_runs_channels_last(lerobot_python, tmp_path, monkeypatch):
    monkeypatch.setattr(act_backbone, 'CHANNELS_LAST_MIN_PIXELS', 0)  # the layout of big batches, at the tiny size
    assert_lerobot_agrees(lerobot_python, tmp_path, {})


def assert_lerobot_agrees(lerobot_python: Path, tmp_path: Path, overrides: dict) -> None:
    """LeRobot loads our checkpoint with every key matched and computes our actions (model and processors) and our
    seeded training loss."""
    policy, processors = trained_checkpoint(tmp_path / 'pretrained_model', **overrides)
    raw = random_batch(policy.config, seed=9)
    raw['observation.state'] = raw['observation.state'] * 2 + 1
    inputs = {k: raw[k] for k in ('observation.state', *policy.config.image_features)}
    np.savez(tmp_path / 'obs.npz', **{k: v.numpy() for k, v in raw.items()}, seed=np.array(SEED))
    theirs = run_lerobot(lerobot_python, 'run', tmp_path / 'pretrained_model', tmp_path / 'obs.npz', tmp_path / 'o.npz')

    assert json.loads(str(theirs['keys'])) == {'missing': [], 'unexpected': [], 'differing': []}
    np.testing.assert_allclose(policy.predict_action_chunk(inputs).numpy(), theirs['model_chunk'], atol=1e-5)
    policy.reset()
    ours = np.stack([policy.select_action(inputs).numpy() for _ in range(12)])
    np.testing.assert_allclose(ours, theirs['model_select'], atol=1e-5)

    normalized = processors.normalize(inputs)
    np.testing.assert_allclose(normalized['observation.state'].numpy(), theirs['normalized_state'], rtol=1e-6)
    chunk = processors.unnormalize_action(policy.predict_action_chunk(normalized))
    np.testing.assert_allclose(chunk.numpy(), theirs['processed_chunk'], atol=1e-5)
    policy.reset()
    ours = np.stack([processors.unnormalize_action(policy.select_action(normalized)).numpy() for _ in range(12)])
    np.testing.assert_allclose(ours, theirs['processed_select'], atol=1e-5)

    batch = processors.normalize(raw)
    np.testing.assert_allclose(batch['action'].numpy(), theirs['normalized_action'], rtol=1e-6)
    torch.manual_seed(SEED)
    loss, logs = policy.train().forward(batch)
    assert loss.item() == pytest.approx(float(theirs['loss']), rel=1e-5)
    assert logs['l1_loss'] == pytest.approx(float(theirs['l1_loss']), rel=1e-5)
    assert logs['kld_loss'] == pytest.approx(float(theirs['kld_loss']), rel=1e-5)


def test_seeded_construction_draws_lerobots_initial_weights(lerobot_python, tmp_path):
    config = tiny_config()
    config.save(tmp_path)
    theirs = run_lerobot(lerobot_python, 'init', tmp_path, 7, tmp_path / 'init.npz')
    torch.manual_seed(7)
    policy = ACTPolicy(config)
    assert [n for n, _ in policy.named_parameters()] == json.loads(str(theirs['parameter_order']))
    state = policy.state_dict()
    their_state = {k.removeprefix('state/'): v for k, v in theirs.items() if k.startswith('state/')}
    assert set(state) == set(their_state)
    for key, value in their_state.items():
        np.testing.assert_array_equal(state[key].numpy(), value, err_msg=key)
