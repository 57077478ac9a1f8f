import json

import pytest

from positronic.vendors.lerobot.act import ACTConfig, ConfigError, FeatureType, NormalizationMode, PolicyFeature

from .conftest import ACT_TINY

LEROBOT_DEFAULTS = {
    'type': 'act',
    'n_obs_steps': 1,
    'input_features': {},
    'output_features': {},
    'device': None,
    'use_amp': False,
    'use_peft': False,
    'push_to_hub': True,
    'repo_id': None,
    'private': None,
    'tags': None,
    'license': None,
    'pretrained_path': None,
    'chunk_size': 100,
    'n_action_steps': 100,
    'normalization_mapping': {'VISUAL': 'MEAN_STD', 'STATE': 'MEAN_STD', 'ACTION': 'MEAN_STD'},
    'vision_backbone': 'resnet18',
    'pretrained_backbone_weights': 'ResNet18_Weights.IMAGENET1K_V1',
    'replace_final_stride_with_dilation': False,
    'pre_norm': False,
    'dim_model': 512,
    'n_heads': 8,
    'dim_feedforward': 3200,
    'feedforward_activation': 'relu',
    'n_encoder_layers': 4,
    'n_decoder_layers': 1,
    'use_vae': True,
    'latent_dim': 32,
    'n_vae_encoder_layers': 4,
    'temporal_ensemble_coeff': None,
    'dropout': 0.1,
    'kl_weight': 10.0,
    'optimizer_lr': 1e-5,
    'optimizer_weight_decay': 1e-4,
    'optimizer_lr_backbone': 1e-5,
}
"""LeRobot 0.4.4's ACTConfig as config.json writes it: every field, in order, with its default (spec B.1)."""


def test_defaults_and_field_order_are_lerobots():
    out = ACTConfig().to_dict()
    assert list(out) == list(LEROBOT_DEFAULTS)
    assert out == LEROBOT_DEFAULTS


def test_lerobot_config_json_round_trips_exactly():
    data = json.loads((ACT_TINY / 'config.json').read_text())
    config = ACTConfig.from_dict(data)
    assert config.to_dict() == data
    assert config.input_features['observation.images.left'] == PolicyFeature(FeatureType.VISUAL, (3, 96, 96))
    assert config.normalization_mapping['STATE'] is NormalizationMode.MEAN_STD


def test_features_are_classified_by_role_and_cameras_keep_their_order():
    config = ACTConfig.load(ACT_TINY)
    assert list(config.image_features) == ['observation.images.left', 'observation.images.side']
    assert config.robot_state_feature.shape == (8,)
    assert config.env_state_feature is None
    assert config.action_feature == PolicyFeature(FeatureType.ACTION, (8,))
    assert config.action_delta_indices == list(range(10)) and config.observation_delta_indices is None


def test_save_writes_indent_four_without_trailing_newline(tmp_path):
    ACTConfig.load(ACT_TINY).save(tmp_path)
    assert (tmp_path / 'config.json').read_bytes() == (ACT_TINY / 'config.json').read_bytes()


def test_missing_keys_take_defaults():
    assert ACTConfig.from_dict({'type': 'act', 'chunk_size': 20, 'n_action_steps': 5}).dim_model == 512


def test_unknown_keys_are_rejected_with_their_names():
    with pytest.raises(ConfigError, match=r"config.json: unknown ACTConfig field\(s\) \['resize_shape'\]"):
        ACTConfig.from_dict({'type': 'act', 'resize_shape': [96, 96]}, source='config.json')


def test_other_policy_types_are_rejected():
    with pytest.raises(ConfigError, match="\"type\" is 'diffusion', expected 'act'"):
        ACTConfig.from_dict({'type': 'diffusion'})


@pytest.mark.parametrize(
    ('fields', 'message'),
    [
        ({'n_action_steps': 101}, r'n_action_steps \(101\) must be <= chunk_size \(100\)'),
        ({'temporal_ensemble_coeff': 0.01}, 'n_action_steps must be 1 with temporal ensembling'),
        ({'n_obs_steps': 2}, 'exactly 1 observation step'),
        ({'vision_backbone': 'vit_b_16'}, 'must be a ResNet variant'),
        ({'dim_model': 100, 'n_heads': 8}, r'dim_model \(100\) must be divisible by n_heads \(8\)'),
        ({'dim_model': 30, 'n_heads': 1}, r'dim_model \(30\) must be a multiple of 4'),
        ({'feedforward_activation': 'glu'}, 'glu halves the feed-forward width'),
        ({'chunk_size': 0}, 'chunk_size: expected a positive int'),
        ({'dropout': 1.0}, 'dropout: expected a probability'),
        ({'normalization_mapping': {'STATE': 'ZSCORE'}}, r"normalization_mapping\['STATE'\]: 'ZSCORE' is not one of"),
        ({'input_features': {'observation.state': {'type': 'JOINTS', 'shape': [8]}}}, "type: 'JOINTS' is not one"),
        ({'input_features': {'observation.state': {'type': 'STATE', 'shape': []}}}, 'shape: expected a non-empty'),
        ({'output_features': {'action': [8]}}, r"output_features\['action'\]: expected"),
    ],
)
def test_bad_values_are_named(fields, message):
    with pytest.raises(ConfigError, match=message):
        ACTConfig(**fields)


def test_config_needs_a_camera_or_env_state_and_an_action():
    config = ACTConfig(
        input_features={'observation.environment_state': {'type': 'ENV', 'shape': [4]}},
        output_features={'action': {'type': 'ACTION', 'shape': [2]}},
    )
    config.validate_features()
    assert config.env_state_key == 'observation.environment_state'
    with pytest.raises(ConfigError, match="needs 'action' of type ACTION"):
        ACTConfig(input_features=config.input_features).validate_features()
