import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from positronic.vendors.lerobot.act import ACTConfig, ACTPolicy, CheckpointMismatchError
from positronic.vendors.lerobot.act.policy import MODEL_FILE, TemporalEnsembler

from .conftest import ACT_TINY, random_batch, tiny_config

ATOL = 1e-5


def test_from_pretrained_loads_every_lerobot_key_in_eval_mode(act_tiny):
    file_state = load_file(ACT_TINY / MODEL_FILE)
    ours = act_tiny.state_dict()
    assert set(ours) == set(file_state) and len(ours) == 234
    for key, tensor in file_state.items():
        assert torch.equal(ours[key], tensor), key
    assert not act_tiny.training


def test_predict_action_chunk_matches_lerobot(act_tiny, reference_obs, reference_model_only):
    chunk = act_tiny.predict_action_chunk(reference_obs)
    assert chunk.shape == (2, 10, 8)
    np.testing.assert_allclose(chunk.numpy(), reference_model_only['predict_action_chunk'], atol=ATOL)


def test_twelve_select_action_steps_match_lerobot(act_tiny, reference_obs, reference_model_only):
    act_tiny.reset()
    actions = np.stack([act_tiny.select_action(reference_obs).numpy() for _ in range(12)])
    np.testing.assert_allclose(actions, reference_model_only['select_action'], atol=ATOL)


def test_seeded_training_loss_matches_lerobot(act_tiny, reference_actions, reference_model_only):
    # LeRobot's batch went through its preprocessor: state and images normalized with the checkpoint's stats.
    batch = {
        'observation.state': torch.from_numpy(reference_actions['preprocessed_state']),
        'observation.images.left': torch.from_numpy(reference_actions['preprocessed_image_left']),
        'observation.images.side': torch.from_numpy(reference_model_only['preprocessed_image_side']),
        'action': torch.from_numpy(reference_actions['train_action_target']),
        'action_is_pad': torch.from_numpy(reference_actions['train_action_is_pad']),
    }
    torch.manual_seed(1236)
    act_tiny.train()
    loss, logs = act_tiny.forward(batch)
    assert loss.item() == pytest.approx(float(reference_actions['train_loss']), rel=1e-6)
    assert logs['l1_loss'] == pytest.approx(float(reference_actions['train_l1']), rel=1e-6)
    assert logs['kld_loss'] == pytest.approx(float(reference_actions['train_kld']), rel=1e-6)


def test_loss_ignores_padded_actions_but_divides_by_every_element():
    config = tiny_config(use_vae=False, dropout=0.0)
    torch.manual_seed(0)
    policy = ACTPolicy(config).train()
    batch = random_batch(config)
    batch['action_is_pad'][:] = False
    batch['action_is_pad'][1, 4:] = True
    loss, logs = policy.forward(batch)
    with torch.no_grad():
        predicted = policy.predict_action_chunk(batch)
    error = (predicted - batch['action']).abs()
    error[1, 4:] = 0
    assert loss.item() == pytest.approx(error.sum().item() / error.numel(), rel=1e-5)
    assert set(logs) == {'l1_loss'}


def test_forward_in_eval_mode_with_vae_says_to_train():
    policy = ACTPolicy(tiny_config()).eval()
    with pytest.raises(RuntimeError, match=r'policy\.train'):
        policy.forward(random_batch(policy.config))


def test_backward_reaches_every_parameter():
    torch.manual_seed(0)
    policy = ACTPolicy(tiny_config()).train()
    loss, _ = policy.forward(random_batch(policy.config))
    loss.backward()
    assert all(p.grad is not None for p in policy.parameters())
    # The decoder queries start at zero, so at initialization (zero attention biases) its first self-attention
    # outputs zeros: those weights get a zero gradient until the biases move, in LeRobot as here.
    inert = {'self_attn.in_proj_weight', 'self_attn.out_proj.weight', 'norm1.weight'}
    zero_grad = {n for n, p in policy.named_parameters() if p.grad.abs().sum() == 0}
    assert zero_grad == {f'model.decoder.layers.0.{name}' for name in inert}


def test_select_action_runs_the_model_once_per_n_action_steps():
    config = tiny_config(n_action_steps=4)
    policy = ACTPolicy(config)
    calls = []
    policy.model.register_forward_hook(lambda *args: calls.append(1))
    batch = random_batch(config, with_action=False)
    chunk = policy.predict_action_chunk(batch)
    calls.clear()
    actions = [policy.select_action(batch) for _ in range(9)]
    assert len(calls) == 3
    torch.testing.assert_close(torch.stack(actions[:4], 1), chunk[:, :4])
    policy.reset()
    torch.testing.assert_close(policy.select_action(batch), chunk[:, 0])
    assert len(calls) == 4


def test_predict_action_steps_hands_out_the_n_action_steps_that_select_action_queues():
    config = tiny_config(n_action_steps=4)
    policy = ACTPolicy(config)
    batch = random_batch(config, with_action=False)
    steps = policy.predict_action_steps(batch)
    assert steps.shape == (batch['observation.state'].shape[0], 4, 8)
    torch.testing.assert_close(steps, policy.predict_action_chunk(batch)[:, :4])
    torch.testing.assert_close(torch.stack([policy.select_action(batch) for _ in range(4)], 1), steps)


def test_temporal_ensemble_equals_weighted_mean_of_overlapping_chunks():
    k, s = 0.5, 4
    ensembler = TemporalEnsembler(k, s)
    chunks = [torch.randn(2, s, 3, generator=torch.Generator().manual_seed(t)) for t in range(7)]
    for t, chunk in enumerate(chunks):
        executed = ensembler.update(chunk)
        # Predictions made at t_j = t - j cover step t; the oldest gets weight exp(0).
        made = [tj for tj in range(t + 1) if t - tj < s]
        weights = torch.tensor([np.exp(-k * i) for i in range(len(made))], dtype=torch.float32)
        expected = sum(w * chunks[tj][:, t - tj] for w, tj in zip(weights, made, strict=True)) / weights.sum()
        torch.testing.assert_close(executed, expected, atol=1e-6, rtol=1e-5)


def test_select_action_with_temporal_ensembling_queries_the_model_every_step():
    config = tiny_config(n_action_steps=1, temporal_ensemble_coeff=0.01)
    policy = ACTPolicy(config)
    batch = random_batch(config, with_action=False)
    chunk = policy.predict_action_chunk(batch)
    first = policy.select_action(batch)
    second = policy.select_action(batch)
    torch.testing.assert_close(first, chunk[:, 0])
    w = torch.exp(-0.01 * torch.arange(2.0))
    torch.testing.assert_close(second, (w[0] * chunk[:, 1] + w[1] * chunk[:, 0]) / w.sum())


def test_optim_param_groups_put_backbone_convs_apart(act_tiny):
    groups = act_tiny.get_optim_params()
    assert [len(g['params']) for g in groups] == [133, 20]
    assert groups[1]['lr'] == act_tiny.config.optimizer_lr_backbone and 'lr' not in groups[0]
    backbone = {id(p) for p in act_tiny.model.backbone.parameters()}
    assert {id(p) for p in groups[1]['params']} == backbone


def test_save_pretrained_round_trips_and_rewrites_lerobot_files_byte_for_byte(act_tiny, tmp_path, reference_obs):
    act_tiny.save_pretrained(tmp_path)
    assert (tmp_path / 'config.json').read_bytes() == (ACT_TINY / 'config.json').read_bytes()
    assert (tmp_path / MODEL_FILE).read_bytes() == (ACT_TINY / MODEL_FILE).read_bytes()
    loaded = ACTPolicy.from_pretrained(tmp_path)
    torch.testing.assert_close(loaded.predict_action_chunk(reference_obs), act_tiny.predict_action_chunk(reference_obs))


def test_saved_untrained_policy_round_trips(tmp_path):
    config = tiny_config(chunk_size=6, n_action_steps=3)
    policy = ACTPolicy(config)
    policy.save_pretrained(tmp_path / 'model')
    loaded = ACTPolicy.from_pretrained(tmp_path / 'model')
    assert loaded.config == config
    batch = random_batch(config, with_action=False)
    torch.testing.assert_close(loaded.predict_action_chunk(batch), policy.predict_action_chunk(batch))


def test_from_pretrained_names_missing_unexpected_and_misshaped_tensors(tmp_path):
    shutil_copy_config(tmp_path)
    state = load_file(ACT_TINY / MODEL_FILE)
    state.pop('model.action_head.bias')
    state['model.normalize_inputs.buffer_observation_state.mean'] = torch.zeros(8)
    state['model.decoder_pos_embed.weight'] = torch.zeros(12, 64)
    save_file(state, tmp_path / MODEL_FILE)
    with pytest.raises(CheckpointMismatchError) as error:
        ACTPolicy.from_pretrained(tmp_path)
    message = str(error.value)
    assert 'model.action_head.bias' in message and 'normalize_inputs' in message
    assert 'model.decoder_pos_embed.weight: file (12, 64), model (10, 64)' in message


def test_from_pretrained_without_weights_names_the_file(tmp_path):
    shutil_copy_config(tmp_path)
    with pytest.raises(FileNotFoundError, match=MODEL_FILE):
        ACTPolicy.from_pretrained(tmp_path)


def shutil_copy_config(directory) -> None:
    (directory / 'config.json').write_bytes((ACT_TINY / 'config.json').read_bytes())


def test_policy_without_cameras_or_env_state_is_refused():
    config = ACTConfig(
        input_features={'observation.state': {'type': 'STATE', 'shape': [8]}},
        output_features={'action': {'type': 'ACTION', 'shape': [8]}},
        pretrained_backbone_weights=None,
    )
    with pytest.raises(ValueError, match='at least one VISUAL input'):
        ACTPolicy(config)


def test_batch_without_a_camera_is_refused_by_name():
    policy = ACTPolicy(tiny_config())
    batch = random_batch(policy.config, with_action=False)
    del batch['observation.images.side']
    with pytest.raises(KeyError, match=r'observation\.images\.side'):
        policy.predict_action_chunk(batch)


def test_config_json_keeps_lerobot_field_order(tmp_path):
    ACTPolicy(tiny_config()).save_pretrained(tmp_path)
    ours = list(json.loads((tmp_path / 'config.json').read_text()))
    assert ours == list(json.loads((ACT_TINY / 'config.json').read_text()))
