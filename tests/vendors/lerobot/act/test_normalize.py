import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from positronic.vendors.lerobot.act import ACTConfig
from positronic.vendors.lerobot.act.normalize import (
    IMAGENET_MEAN,
    POSTPROCESSOR_FILE,
    PREPROCESSOR_FILE,
    Normalizer,
    ProcessorFileError,
    load_processors,
    save_processors,
    state_file_name,
    with_imagenet_stats,
)

from .conftest import ACT_TINY, tiny_config

PRE_STATE = 'policy_preprocessor_step_3_normalizer_processor.safetensors'
POST_STATE = 'policy_postprocessor_step_0_unnormalizer_processor.safetensors'


def lerobot_stats() -> dict[str, dict[str, np.ndarray]]:
    """The dataset stats LeRobot put in act_tiny's processors (9 features x 10 stats)."""
    stats: dict[str, dict[str, np.ndarray]] = {}
    for flat, tensor in load_file(ACT_TINY / PRE_STATE).items():
        key, _, name = flat.rpartition('.')
        stats.setdefault(key, {})[name] = tensor.numpy()
    return stats


def test_state_file_names_follow_lerobot():
    assert state_file_name('policy_preprocessor', 3, 'normalizer_processor') == PRE_STATE
    assert state_file_name('My Pipe-1', 0, 'x') == 'my_pipe_1_step_0_x.safetensors'


def test_saved_processor_files_equal_lerobots_byte_for_byte(tmp_path):
    config = ACTConfig.load(ACT_TINY)
    save_processors(tmp_path, lerobot_stats(), config, device='cpu')
    for name in (PREPROCESSOR_FILE, POSTPROCESSOR_FILE, PRE_STATE, POST_STATE):
        assert (tmp_path / name).read_bytes() == (ACT_TINY / name).read_bytes(), name


def test_stats_shared_between_features_are_saved_apart(tmp_path):
    shared = {'mean': np.zeros(8, np.float32), 'std': np.ones(8, np.float32)}
    save_processors(tmp_path, {'observation.state': shared, 'action': shared}, tiny_config())
    state = load_file(tmp_path / PRE_STATE)
    assert sorted(state) == ['action.mean', 'action.std', 'observation.state.mean', 'observation.state.std']


def test_device_step_records_the_policy_device(tmp_path):
    save_processors(tmp_path, lerobot_stats(), ACTConfig.load(ACT_TINY), device='cuda')
    pre = json.loads((tmp_path / PREPROCESSOR_FILE).read_text())
    post = json.loads((tmp_path / POSTPROCESSOR_FILE).read_text())
    assert pre['steps'][2]['config'] == {'device': 'cuda', 'float_dtype': None}
    assert post['steps'][1]['config'] == {'device': 'cpu', 'float_dtype': None}


def test_lerobot_processors_normalize_as_lerobot(reference_obs, reference_actions, reference_model_only):
    processors = load_processors(ACT_TINY)
    normalized = processors.normalize(reference_obs)
    np.testing.assert_array_equal(normalized['observation.state'].numpy(), reference_actions['preprocessed_state'])
    for key, expected in (
        ('observation.images.left', reference_actions['preprocessed_image_left']),
        ('observation.images.side', reference_model_only['preprocessed_image_side']),
    ):
        np.testing.assert_array_equal(normalized[key].numpy(), expected)


def test_processor_path_gives_lerobots_actions(act_tiny, reference_obs, reference_actions):
    # The reference images were normalized with near-zero std (LeRobot 0.4.4's stats defect): inputs reach
    # ~1e3, so the actions are compared with a tolerance relative to that amplification.
    processors = load_processors(ACT_TINY)
    chunk = act_tiny.predict_action_chunk(processors.normalize(reference_obs))
    np.testing.assert_allclose(chunk.numpy(), reference_actions['predict_action_chunk_normalized'], atol=1e-4)
    np.testing.assert_allclose(
        processors.unnormalize_action(chunk).numpy(), reference_actions['predict_action_chunk_unnormalized'], atol=1e-4
    )
    act_tiny.reset()
    steps = torch.stack([act_tiny.select_action(processors.normalize(reference_obs)) for _ in range(12)])
    np.testing.assert_allclose(steps.numpy(), reference_actions['select_action_normalized'], atol=1e-4)
    np.testing.assert_allclose(
        processors.unnormalize_action(steps).numpy(), reference_actions['select_action_unnormalized'], atol=1e-4
    )


def test_normalize_covers_action_and_passes_other_keys_through():
    processors = load_processors(ACT_TINY)
    stats = lerobot_stats()['action']
    action = torch.ones(2, 10, 8)
    out = processors.normalize({'action': action, 'action_is_pad': torch.zeros(2, 10, dtype=torch.bool), 'task': 'x'})
    mean, std = torch.from_numpy(stats['mean']), torch.from_numpy(stats['std'])
    torch.testing.assert_close(out['action'], (action - mean) / (std + 1e-8))
    assert out['task'] == 'x' and out['action_is_pad'].dtype == torch.bool
    torch.testing.assert_close(processors.unnormalize_action(out['action']), action)


def normalizer(mode: str, stats: dict[str, list[float]]) -> Normalizer:
    config = tiny_config(normalization_mapping={'STATE': mode})
    tensors = {'observation.state': {k: torch.tensor(v) for k, v in stats.items()}}
    return Normalizer(dict(config.input_features), dict(config.normalization_mapping), tensors)


def test_min_max_maps_to_minus_one_one_and_uses_eps_for_a_constant_feature():
    n = normalizer('MIN_MAX', {'min': [0.0, 2.0], 'max': [4.0, 2.0]})
    x = torch.tensor([[0.0, 2.0], [4.0, 3.0]])
    y = n.transform(x, 'observation.state', n.features['observation.state'].type)
    torch.testing.assert_close(y, torch.tensor([[-1.0, -1.0], [1.0, 2 * 1.0 / 1e-8 - 1]]))
    back = n.transform(y, 'observation.state', n.features['observation.state'].type, inverse=True)
    torch.testing.assert_close(back[:, 0], x[:, 0])


@pytest.mark.parametrize(('mode', 'lo', 'hi'), [('QUANTILES', 'q01', 'q99'), ('QUANTILE10', 'q10', 'q90')])
def test_quantile_modes_use_their_bounds(mode, lo, hi):
    n = normalizer(mode, {lo: [1.0], hi: [3.0], 'min': [-100.0], 'max': [100.0]})
    y = n.transform(torch.tensor([[2.0]]), 'observation.state', n.features['observation.state'].type)
    torch.testing.assert_close(y, torch.tensor([[0.0]]))


def test_identity_and_features_without_stats_pass_through():
    x = torch.tensor([[5.0]])
    n = normalizer('IDENTITY', {'mean': [1.0], 'std': [2.0]})
    assert n.transform(x, 'observation.state', n.features['observation.state'].type) is x
    n = normalizer('MEAN_STD', {'mean': [1.0], 'std': [2.0]})
    assert n.transform(x, 'observation.environment_state', n.features['observation.state'].type) is x


def test_mean_std_without_std_names_the_feature():
    n = normalizer('MEAN_STD', {'mean': [1.0]})
    with pytest.raises(ProcessorFileError, match=r'observation.state.*"std"'):
        n.transform(torch.zeros(1, 1), 'observation.state', n.features['observation.state'].type)


def test_imagenet_stats_replace_camera_mean_and_std_only():
    stats = with_imagenet_stats(lerobot_stats(), ['observation.images.left'])
    assert stats['observation.images.left']['mean'].shape == (3, 1, 1)
    np.testing.assert_allclose(stats['observation.images.left']['mean'].ravel(), IMAGENET_MEAN)
    np.testing.assert_array_equal(
        stats['observation.images.left']['max'], lerobot_stats()['observation.images.left']['max']
    )
    np.testing.assert_array_equal(
        stats['observation.images.side']['std'], lerobot_stats()['observation.images.side']['std']
    )


def test_missing_or_unknown_processor_steps_are_named(tmp_path):
    with pytest.raises(ProcessorFileError, match=r'policy_preprocessor\.json: missing'):
        load_processors(tmp_path)
    save_processors(tmp_path, lerobot_stats(), ACTConfig.load(ACT_TINY))
    pre = json.loads((tmp_path / PREPROCESSOR_FILE).read_text())
    pre['steps'].append({'registry_name': 'image_crop_processor', 'config': {}})
    (tmp_path / PREPROCESSOR_FILE).write_text(json.dumps(pre))
    with pytest.raises(ProcessorFileError, match="step 4 'image_crop_processor'"):
        load_processors(tmp_path)
    (tmp_path / POST_STATE).unlink()
    pre['steps'].pop()
    (tmp_path / PREPROCESSOR_FILE).write_text(json.dumps(pre))
    with pytest.raises(ProcessorFileError, match=r'state file .*unnormalizer_processor\.safetensors is missing'):
        load_processors(tmp_path)
