import math

import pytest
import torch
from safetensors.torch import load_file

from positronic.vendors.lerobot.act import ACTConfig, ACTPolicy
from positronic.vendors.lerobot.act import backbone as act_backbone
from positronic.vendors.lerobot.act.model import ACT, sinusoidal_table_1d, sinusoidal_table_2d

from .conftest import ACT_TINY, CAMERAS, random_batch, tiny_config


def test_vae_position_table_equals_lerobots_buffer():
    buffer = load_file(ACT_TINY / 'model.safetensors')['model.vae_encoder_pos_enc']
    assert torch.equal(sinusoidal_table_1d(12, 64).unsqueeze(0), buffer)  # cls + state + 10 actions


def test_2d_positions_put_rows_first_then_columns():
    h, w, d = 3, 4, 16
    table = sinusoidal_table_2d(h, w, d).reshape(h, w, d).double()
    half = d // 2
    for i in range(h):
        for j in range(w):
            for c in range(half):
                freq = 10000 ** (2 * (c // 2) / half)
                trig = math.sin if c % 2 == 0 else math.cos
                assert table[i, j, c].item() == pytest.approx(trig((i + 1) / (h + 1e-6) * 2 * math.pi / freq), abs=1e-6)
                col = trig((j + 1) / (w + 1e-6) * 2 * math.pi / freq)
                assert table[i, j, half + c].item() == pytest.approx(col, abs=1e-6)


def test_encoder_sees_latent_state_then_each_cameras_tokens():
    config = tiny_config()
    model = ACT(config).eval()
    seen = {}
    model.encoder.register_forward_hook(lambda module, args, out: seen.update(tokens=args[0], pos=args[1]))
    batch = random_batch(config, with_action=False)
    with torch.no_grad():
        model(batch, [batch[c] for c in CAMERAS])
    assert seen['tokens'].shape == (2 + 2 * 2 * 2, 2, 32)  # 64x64 images -> 2x2 tokens per camera
    table = sinusoidal_table_2d(2, 2, 32).unsqueeze(1)
    torch.testing.assert_close(
        seen['pos'], torch.cat([model.encoder_1d_feature_pos_embed.weight.unsqueeze(1)] + 2 * [table])
    )


def test_camera_order_is_the_config_order():
    config = tiny_config()
    policy = ACTPolicy(config)
    batch = random_batch(config, with_action=False)
    swapped_config = tiny_config(input_features={k: config.input_features[k] for k in reversed(config.input_features)})
    swapped = ACTPolicy(swapped_config)
    swapped.load_state_dict(policy.state_dict())
    exchanged = {**batch, CAMERAS[0]: batch[CAMERAS[1]], CAMERAS[1]: batch[CAMERAS[0]]}
    torch.testing.assert_close(swapped.predict_action_chunk(exchanged), policy.predict_action_chunk(batch))
    # Every camera's tokens get the same positional table, so the encoder sees the cameras as a set: exchanging the
    # two images moves the prediction by rounding only (~1e-7), while changing one image moves it (~0.1).
    torch.testing.assert_close(policy.predict_action_chunk(exchanged), policy.predict_action_chunk(batch))
    changed = {**batch, CAMERAS[0]: torch.rand_like(batch[CAMERAS[0]])}
    assert (policy.predict_action_chunk(changed) - policy.predict_action_chunk(batch)).abs().max() > 1e-3


def test_inference_uses_a_zero_latent_and_ignores_actions():
    config = tiny_config()
    policy = ACTPolicy(config)
    batch = random_batch(config)
    without = {k: v for k, v in batch.items() if not k.startswith('action')}
    torch.testing.assert_close(policy.predict_action_chunk(batch), policy.predict_action_chunk(without))


def test_training_samples_the_latent_from_the_vae_encoder():
    config = tiny_config(dropout=0.0)
    model = ACT(config).train()
    batch = random_batch(config)
    images = [batch[c] for c in CAMERAS]
    torch.manual_seed(0)
    first, (mu, log_sigma_x2) = model(batch, images)
    torch.manual_seed(1)
    second, _ = model(batch, images)
    assert mu.shape == log_sigma_x2.shape == (2, config.latent_dim)
    assert not torch.allclose(first, second)
    padded = {**batch, 'action': batch['action'].clone()}
    padded['action'][0, -3:] = 100.0  # padded steps are masked out of the VAE encoder's attention
    torch.manual_seed(0)
    _, (mu_padded, _) = model(padded, images)
    torch.testing.assert_close(mu_padded[0], mu[0])


def test_env_state_only_policy_has_no_backbone_and_runs():
    config = ACTConfig(
        input_features={'observation.environment_state': {'type': 'ENV', 'shape': [5]}},
        output_features={'action': {'type': 'ACTION', 'shape': [3]}},
        chunk_size=4,
        n_action_steps=4,
        dim_model=16,
        n_heads=2,
        dim_feedforward=32,
        latent_dim=4,
    )
    policy = ACTPolicy(config)
    assert not any(k.startswith('model.backbone') for k in policy.state_dict())
    assert policy.model.vae_encoder_pos_enc.shape == (1, 1 + 4, 16)  # no state token
    batch = {
        'observation.environment_state': torch.randn(2, 5),
        'action': torch.randn(2, 4, 3),
        'action_is_pad': torch.zeros(2, 4, dtype=torch.bool),
    }
    loss, logs = policy.train().forward(batch)
    assert loss.isfinite() and set(logs) == {'l1_loss', 'kld_loss'}
    assert policy.predict_action_chunk(batch).shape == (2, 4, 3)


def test_without_vae_there_are_no_vae_weights_and_no_kl():
    policy = ACTPolicy(tiny_config(use_vae=False))
    assert not any(k.startswith('model.vae_') for k in policy.state_dict())
    _, logs = policy.train().forward(random_batch(policy.config))
    assert set(logs) == {'l1_loss'}


@pytest.mark.parametrize('pre_norm', [False, True])
@pytest.mark.parametrize('training', [False, True])
def test_first_token_path_equals_the_full_layer_with_the_same_dropout_draws(pre_norm, training):
    config = tiny_config(pre_norm=pre_norm, dropout=0.3)
    encoder = ACT(config).vae_encoder.train(training)
    x, pos = torch.randn(7, 3, 32), torch.randn(7, 1, 32)
    pad = torch.zeros(3, 7, dtype=torch.bool)
    pad[1, 4:] = True
    torch.manual_seed(11)
    full = encoder(x, pos, pad)[0]
    after_full = torch.rand(1)
    torch.manual_seed(11)
    first = encoder.forward_first_token(x, pos, pad)
    torch.testing.assert_close(first, full, atol=1e-6, rtol=1e-5)
    assert torch.equal(torch.rand(1), after_full)  # the same number of random draws


def test_big_image_batches_run_the_backbone_channels_last_with_the_same_features(monkeypatch):
    model = ACT(tiny_config()).eval()
    images = [torch.randn(2, 3, 64, 64) for _ in CAMERAS]  # 4 x 64 x 64 = 16384 pixels
    layouts = []
    model.backbone.conv1.register_forward_hook(lambda module, args, out: layouts.append(args[0].is_contiguous()))
    with torch.no_grad():
        default = model.camera_features(images)
        monkeypatch.setattr(act_backbone, 'CHANNELS_LAST_MIN_PIXELS', 4 * 64 * 64)
        channels_last = model.camera_features(images)
    assert layouts == [True, False]
    assert channels_last[0].is_contiguous(memory_format=torch.channels_last)
    for ours, reference in zip(channels_last, default, strict=True):
        torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)


def test_cameras_of_different_sizes_each_get_their_tokens():
    features = dict(tiny_config().input_features)
    features[CAMERAS[1]] = {'type': 'VISUAL', 'shape': [3, 96, 64]}
    config = tiny_config(input_features=features)
    model = ACT(config).eval()
    seen = {}
    model.encoder.register_forward_hook(lambda module, args, out: seen.update(tokens=args[0]))
    batch = random_batch(config, with_action=False)
    with torch.no_grad():
        actions, _ = model(batch, [batch[c] for c in CAMERAS])
        alone = model.camera_features([batch[CAMERAS[1]]])[0]
    assert seen['tokens'].shape[0] == 2 + 2 * 2 + 3 * 2 and actions.shape == (2, 10, 8)
    torch.testing.assert_close(seen['tokens'][6:], alone.flatten(2).permute(2, 0, 1))
