import pytest
import torch
from safetensors.torch import load_file

from positronic.vendors.lerobot.act import ACTPolicy
from positronic.vendors.lerobot.act.backbone import (
    BackboneWeightsError,
    FrozenBatchNorm2d,
    ResNetBackbone,
    TrainableBatchNorm2d,
    fetch_pretrained_state_dict,
    hub_checkpoints_dir,
    unfreeze_batchnorm,
)

from .conftest import ACT_TINY, tiny_config

RESNET18_WEIGHTS = 'ResNet18_Weights.IMAGENET1K_V1'


def test_resnet18_has_torchvisions_names_and_shapes_as_lerobot_saves_them():
    lerobot = {
        k.removeprefix('model.backbone.'): v.shape
        for k, v in load_file(ACT_TINY / 'model.safetensors').items()
        if k.startswith('model.backbone.')
    }
    ours = {k: v.shape for k, v in ResNetBackbone('resnet18').state_dict().items()}
    assert ours == lerobot and len(ours) == 100
    assert sum(1 for _ in ResNetBackbone('resnet18').parameters()) == 20  # frozen-BN tensors are buffers


@pytest.mark.parametrize(('height', 'width', 'out'), [(96, 96, (3, 3)), (100, 70, (4, 3)), (480, 640, (15, 20))])
def test_feature_map_is_layer4_at_stride_32(height, width, out):
    with torch.no_grad():
        features = ResNetBackbone('resnet18').eval()(torch.rand(1, 3, height, width))
    assert features.shape == (1, 512, *out)


def test_dilated_layer4_keeps_stride_16_for_bottleneck_resnets():
    with torch.no_grad():
        plain = ResNetBackbone('resnet50')(torch.rand(1, 3, 64, 64))
        dilated = ResNetBackbone('resnet50', dilate_layer4=True)(torch.rand(1, 3, 64, 64))
    assert plain.shape == (1, 2048, 2, 2) and dilated.shape == (1, 2048, 4, 4)
    with pytest.raises(ValueError, match='impossible for resnet18'):
        ResNetBackbone('resnet18', dilate_layer4=True)


def test_frozen_batch_norm_applies_fixed_statistics():
    bn = FrozenBatchNorm2d(2)
    bn.weight.copy_(torch.tensor([2.0, 1.0]))
    bn.bias.copy_(torch.tensor([0.5, 0.0]))
    bn.running_mean.copy_(torch.tensor([1.0, -1.0]))
    bn.running_var.copy_(torch.tensor([4.0, 1.0]))
    x = torch.randn(3, 2, 4, 4)
    expected = (x - bn.running_mean.view(1, 2, 1, 1)) * bn.weight.view(1, 2, 1, 1)
    expected = expected / torch.sqrt(bn.running_var.view(1, 2, 1, 1) + 1e-5) + bn.bias.view(1, 2, 1, 1)
    torch.testing.assert_close(bn(x), expected)
    bn.train()
    torch.testing.assert_close(bn(x), expected)


def imagenet_like_file(torch_home) -> dict[str, torch.Tensor]:
    """A file shaped like torchvision's resnet18-f37072fd.pth (fc head, BN step counters) in a hub cache."""
    torch.manual_seed(5)
    state = {k: torch.randn_like(v) for k, v in ResNetBackbone('resnet18').state_dict().items()}
    on_disk = {**state, 'fc.weight': torch.zeros(1000, 512), 'fc.bias': torch.zeros(1000)}
    on_disk['bn1.num_batches_tracked'] = torch.tensor(0)
    checkpoints = torch_home / 'hub' / 'checkpoints'
    checkpoints.mkdir(parents=True)
    torch.save(on_disk, checkpoints / 'resnet18-f37072fd.pth')
    return state


def test_trained_batch_norm_saves_lerobots_keys_and_evaluates_as_the_frozen_layer():
    torch.manual_seed(0)
    trained = ResNetBackbone('resnet18')
    assert unfreeze_batchnorm(trained) == 20
    assert sum(1 for m in trained.modules() if isinstance(m, TrainableBatchNorm2d)) == 20
    optimizer = torch.optim.AdamW(trained.parameters(), lr=1e-3)
    trained.train()
    for _ in range(3):
        trained(torch.randn(4, 3, 64, 64)).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    state = trained.state_dict()
    assert state.keys() == ResNetBackbone('resnet18').state_dict().keys()  # no num_batches_tracked
    assert state['bn1.running_mean'].abs().sum() > 0 and not torch.equal(state['bn1.weight'], torch.ones(64))

    frozen = ResNetBackbone('resnet18')
    frozen.load_state_dict(state, strict=True)
    images = torch.randn(2, 3, 64, 64)
    trained.eval()
    with torch.no_grad():
        torch.testing.assert_close(frozen(images), trained(images), rtol=1e-5, atol=1e-5)
        in_training = trained.train()(images)
    assert (in_training - frozen(images)).abs().max() > 1e-3  # training normalizes with the batch's statistics


def test_imagenet_weights_load_from_torchs_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    state = imagenet_like_file(tmp_path)
    policy = ACTPolicy(tiny_config(pretrained_backbone_weights=RESNET18_WEIGHTS))
    loaded = policy.model.backbone.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_from_pretrained_needs_no_imagenet_weights(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'empty'))
    policy = ACTPolicy(tiny_config(pretrained_backbone_weights=None))
    policy.config.pretrained_backbone_weights = RESNET18_WEIGHTS
    policy.save_pretrained(tmp_path / 'model')
    assert ACTPolicy.from_pretrained(tmp_path / 'model').config.pretrained_backbone_weights == RESNET18_WEIGHTS


def test_missing_weights_say_where_to_put_them_or_how_to_train_from_scratch(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    unreachable = 'http://127.0.0.1:9/resnet18-f37072fd.pth'
    with pytest.raises(BackboneWeightsError) as error:
        fetch_pretrained_state_dict(RESNET18_WEIGHTS, 'resnet18', url=unreachable)
    message = str(error.value)
    assert str(hub_checkpoints_dir() / 'resnet18-f37072fd.pth') in message
    assert unreachable in message and '--policy.pretrained_backbone_weights=None' in message


def test_unknown_or_mismatched_weight_names_are_refused():
    with pytest.raises(BackboneWeightsError, match=r"unknown weights 'ResNet18_Weights\.IMAGENET1K_V9'"):
        fetch_pretrained_state_dict('ResNet18_Weights.IMAGENET1K_V9', 'resnet18')
    with pytest.raises(BackboneWeightsError, match='are for resnet18, not resnet34'):
        fetch_pretrained_state_dict(RESNET18_WEIGHTS, 'resnet34')
