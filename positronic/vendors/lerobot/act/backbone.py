"""ResNet image backbone with frozen batch norm, parameter for parameter torchvision's, returning layer4.

Parameter names and shapes are torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0``,
...) so ImageNet checkpoints (``resnet18-f37072fd.pth``) and LeRobot's ``model.backbone.*`` keys load as they
are. The classification head (avgpool, fc) is absent: the backbone returns the layer4 feature map,
(B, C, ceil(H/32), ceil(W/32)) for a (B, 3, H, W) image. Construction draws random numbers exactly as
torchvision's ``resnetXX(norm_layer=FrozenBatchNorm2d)`` does, so a seeded model starts from LeRobot's weights.
"""

import math
import urllib.error
from pathlib import Path

import torch
from torch import Tensor, nn

FROZEN_BN_EPS = 1e-5
_TORCHVISION_FC_CLASSES = 1000


CHANNELS_LAST_MIN_PIXELS = 200_000
"""Image batches of at least this many pixels (N * H * W) go through the convolutions channels-last on CPU."""


def conv_layout(images: Tensor) -> Tensor:
    """``images`` in the memory layout whose convolutions run faster: on CPU, oneDNN's channels-last kernels for
    big batches (training at 224 px and 480 px, 1.10-1.15x per step; inference at 480 px) and the default layout
    for small ones, where channels-last is slower (inference at 96-224 px). The values computed are the same up
    to float rounding (about 1e-7 relative)."""
    if (
        images.device.type == 'cpu'
        and images.shape[0] * images.shape[-2] * images.shape[-1] >= CHANNELS_LAST_MIN_PIXELS
    ):
        return images.contiguous(memory_format=torch.channels_last)
    return images


class BackboneWeightsError(RuntimeError):
    """The pretrained backbone weights named in the config could not be found or downloaded."""


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine terms, all buffers: y = (x - mean) * w / sqrt(var + eps) + b."""

    def __init__(self, num_features: int):
        super().__init__()
        self.register_buffer('weight', torch.ones(num_features))
        self.register_buffer('bias', torch.zeros(num_features))
        self.register_buffer('running_mean', torch.zeros(num_features))
        self.register_buffer('running_var', torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints of a trainable BatchNorm2d carry a step counter that frozen statistics have no use for.
        state_dict.pop(prefix + 'num_batches_tracked', None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.weight.reshape(1, -1, 1, 1) * (self.running_var.reshape(1, -1, 1, 1) + FROZEN_BN_EPS).rsqrt()
        shift = self.bias.reshape(1, -1, 1, 1) - self.running_mean.reshape(1, -1, 1, 1) * scale
        return x * scale + shift


class TrainableBatchNorm2d(nn.BatchNorm2d):
    """Batch norm that normalizes with batch statistics and learns its affine terms in training, and keeps running
    statistics for evaluation, with :class:`FrozenBatchNorm2d`'s state dict (no ``num_batches_tracked``).

    For training a backbone from scratch: a model trained with it saves exactly the keys LeRobot's ACT loads, and
    in evaluation it computes what the frozen layer computes with those values.
    """

    def __init__(self, frozen: FrozenBatchNorm2d):
        super().__init__(frozen.weight.numel(), eps=FROZEN_BN_EPS, device=frozen.weight.device)
        self.num_batches_tracked = None  # the running averages use a fixed momentum, so no counter is needed
        with torch.no_grad():
            self.weight.copy_(frozen.weight)
            self.bias.copy_(frozen.bias)
            self.running_mean.copy_(frozen.running_mean)
            self.running_var.copy_(frozen.running_var)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.pop(prefix + 'num_batches_tracked', None)
        nn.Module._load_from_state_dict(self, state_dict, prefix, *args, **kwargs)


def unfreeze_batchnorm(module: nn.Module) -> int:
    """Replace every FrozenBatchNorm2d inside ``module`` with a :class:`TrainableBatchNorm2d` holding the same
    values (before the optimizer is built, so it sees the new parameters). Returns how many were replaced."""
    replaced = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, FrozenBatchNorm2d):
                setattr(parent, name, TrainableBatchNorm2d(child))
                replaced += 1
    return replaced


def _conv3x3(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


def _conv1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (resnet18/34)."""

    expansion = 1

    def __init__(self, c_in: int, width: int, stride: int, downsample: nn.Module | None, dilation: int):
        super().__init__()
        if dilation > 1:
            raise ValueError('BasicBlock (resnet18/34) does not support dilation, as in torchvision')
        self.conv1 = _conv3x3(c_in, width, stride)
        self.bn1 = FrozenBatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(width, width)
        self.bn2 = FrozenBatchNorm2d(width)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) with a residual connection (resnet50/101/152); stride on the 3x3."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int, downsample: nn.Module | None, dilation: int):
        super().__init__()
        self.conv1 = _conv1x1(c_in, width)
        self.bn1 = FrozenBatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride, dilation)
        self.bn2 = FrozenBatchNorm2d(width)
        self.conv3 = _conv1x1(width, width * self.expansion)
        self.bn3 = FrozenBatchNorm2d(width * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


RESNETS: dict[str, tuple[type[BasicBlock | Bottleneck], tuple[int, int, int, int]]] = {
    'resnet18': (BasicBlock, (2, 2, 2, 2)),
    'resnet34': (BasicBlock, (3, 4, 6, 3)),
    'resnet50': (Bottleneck, (3, 4, 6, 3)),
    'resnet101': (Bottleneck, (3, 4, 23, 3)),
    'resnet152': (Bottleneck, (3, 8, 36, 3)),
}


class ResNetBackbone(nn.Module):
    """ResNet trunk (conv1 .. layer4) with frozen batch norm: (B, 3, H, W) -> (B, out_channels, H', W')."""

    def __init__(self, variant: str = 'resnet18', dilate_layer4: bool = False):
        super().__init__()
        if variant not in RESNETS:
            raise ValueError(f'vision_backbone: unknown ResNet variant {variant!r}; expected one of {list(RESNETS)}')
        block, depths = RESNETS[variant]
        if dilate_layer4 and block is BasicBlock:
            raise ValueError(f'replace_final_stride_with_dilation is impossible for {variant} (BasicBlock)')
        self._channels = 64
        self._dilation = 1
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = FrozenBatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, depths[0], stride=1)
        self.layer2 = self._make_layer(block, 128, depths[1], stride=2)
        self.layer3 = self._make_layer(block, 256, depths[2], stride=2)
        self.layer4 = self._make_layer(block, 512, depths[3], stride=2, dilate=dilate_layer4)
        self.out_channels = 512 * block.expansion
        self._draw_torchvision_init()

    def _make_layer(self, block: type[BasicBlock | Bottleneck], width: int, n: int, stride: int, dilate: bool = False):
        first_dilation = self._dilation
        if dilate:
            self._dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self._channels != width * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self._channels, width * block.expansion, stride), FrozenBatchNorm2d(width * block.expansion)
            )
        blocks = [block(self._channels, width, stride, downsample, first_dilation)]
        self._channels = width * block.expansion
        blocks += [block(self._channels, width, 1, None, self._dilation) for _ in range(1, n)]
        return nn.Sequential(*blocks)

    @torch.no_grad()
    def _draw_torchvision_init(self) -> None:
        # torchvision also builds a 1000-class fc layer (default Linear init) before re-initialising every conv
        # with Kaiming-normal (fan_out); drawing the same numbers keeps seeded runs identical to LeRobot's.
        fc_weight = torch.empty(_TORCHVISION_FC_CLASSES, self.out_channels)
        nn.init.kaiming_uniform_(fc_weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(self.out_channels)
        torch.empty(_TORCHVISION_FC_CLASSES).uniform_(-bound, bound)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(conv_layout(x)))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


_DOWNLOADS = 'https://download.pytorch.org/models'
PRETRAINED_WEIGHTS: dict[str, tuple[str, str]] = {
    'ResNet18_Weights.IMAGENET1K_V1': ('resnet18', f'{_DOWNLOADS}/resnet18-f37072fd.pth'),
    'ResNet18_Weights.DEFAULT': ('resnet18', f'{_DOWNLOADS}/resnet18-f37072fd.pth'),
    'ResNet34_Weights.IMAGENET1K_V1': ('resnet34', f'{_DOWNLOADS}/resnet34-b627a593.pth'),
    'ResNet34_Weights.DEFAULT': ('resnet34', f'{_DOWNLOADS}/resnet34-b627a593.pth'),
    'ResNet50_Weights.IMAGENET1K_V1': ('resnet50', f'{_DOWNLOADS}/resnet50-0676ba61.pth'),
    'ResNet50_Weights.IMAGENET1K_V2': ('resnet50', f'{_DOWNLOADS}/resnet50-11ad3fa6.pth'),
    'ResNet50_Weights.DEFAULT': ('resnet50', f'{_DOWNLOADS}/resnet50-11ad3fa6.pth'),
}
"""torchvision weight names LeRobot configs use -> (variant, download URL; the file name is the cache name)."""


def hub_checkpoints_dir() -> Path:
    """torch's hub cache of downloaded weights: ``$TORCH_HOME/hub/checkpoints`` (~/.cache/torch/... by default)."""
    return Path(torch.hub.get_dir()) / 'checkpoints'


def fetch_pretrained_state_dict(weights: str, variant: str, url: str | None = None) -> dict[str, Tensor]:
    """The torchvision state dict of ``weights``: from the hub cache if there, else downloaded into it.

    Raises BackboneWeightsError, saying where to put the file or how to train from scratch, when the name is
    unknown, does not match ``variant``, or neither the cache nor the download provides the file.
    """
    if weights not in PRETRAINED_WEIGHTS:
        raise BackboneWeightsError(
            f'pretrained_backbone_weights: unknown weights {weights!r}; expected one of {list(PRETRAINED_WEIGHTS)} '
            'or None (--policy.pretrained_backbone_weights=None trains the backbone from scratch)'
        )
    weights_variant, default_url = PRETRAINED_WEIGHTS[weights]
    if weights_variant != variant:
        raise BackboneWeightsError(f'pretrained_backbone_weights {weights!r} are for {weights_variant}, not {variant}')
    url = url or default_url
    cache_file = hub_checkpoints_dir() / Path(url).name
    try:
        return torch.hub.load_state_dict_from_url(url, map_location='cpu', progress=True, check_hash=True)
    except (urllib.error.URLError, OSError, RuntimeError) as e:
        raise BackboneWeightsError(
            f"pretrained_backbone_weights={weights!r}: {cache_file} is not in torch's hub cache and downloading "
            f'{url} failed ({e}). Put the weights file there (copy {Path(url).name}, or set TORCH_HOME to a '
            'directory whose hub/checkpoints/ holds it), or train the backbone from scratch with '
            '--policy.pretrained_backbone_weights=None'
        ) from e


def load_pretrained_weights(backbone: ResNetBackbone, weights: str, variant: str, url: str | None = None) -> None:
    """Load torchvision ImageNet weights into ``backbone`` (the classification head ``fc.*`` is dropped)."""
    state = {k: v for k, v in fetch_pretrained_state_dict(weights, variant, url).items() if not k.startswith('fc.')}
    result = backbone.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise BackboneWeightsError(
            f'{weights}: the weights file does not match {variant}: missing {result.missing_keys}, '
            f'unexpected {result.unexpected_keys}'
        )
