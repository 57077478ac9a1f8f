"""ACTConfig: every field and default of LeRobot 0.4.4's ACT configuration, and its config.json form.

The fields, their order and defaults are LeRobot's (spec B.1), inherited ``PreTrainedConfig`` fields first, so
a ``config.json`` written by either library loads in the other. Feature declarations are written as in
config.json: ``{"observation.state": {"type": "STATE", "shape": [8]}}``.
"""

import dataclasses
import enum
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POLICY_TYPE = 'act'
"""The choice name ACT is registered under; the first key of config.json."""
CONFIG_FILE = 'config.json'

STATE_KEY = 'observation.state'
ENV_STATE_KEY = 'observation.environment_state'
ACTION_KEY = 'action'
ACTION_IS_PAD_KEY = 'action_is_pad'

IMAGENET_RESNET18_WEIGHTS = 'ResNet18_Weights.IMAGENET1K_V1'


class ConfigError(ValueError):
    """An ACT configuration (arguments or a config.json) is invalid; the message names the field."""


class FeatureType(enum.StrEnum):
    STATE = 'STATE'
    VISUAL = 'VISUAL'
    ENV = 'ENV'
    ACTION = 'ACTION'


class NormalizationMode(enum.StrEnum):
    MEAN_STD = 'MEAN_STD'
    MIN_MAX = 'MIN_MAX'
    QUANTILES = 'QUANTILES'
    QUANTILE10 = 'QUANTILE10'
    IDENTITY = 'IDENTITY'


@dataclass(frozen=True)
class PolicyFeature:
    """A model input or output: its role and its shape ((C, H, W) for images, (N,) for vectors)."""

    type: FeatureType
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {'type': self.type.value, 'shape': list(self.shape)}


def _enum_value(enum_type: type[enum.StrEnum], value: Any, where: str) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        allowed = ', '.join(m.value for m in enum_type)
        raise ConfigError(f'{where}: {value!r} is not one of {allowed}') from None


def parse_feature(value: PolicyFeature | Mapping[str, Any], where: str) -> PolicyFeature:
    """A feature from its config.json form ``{"type": "STATE", "shape": [8]}`` (or a PolicyFeature)."""
    if isinstance(value, PolicyFeature):
        return value
    if not isinstance(value, Mapping) or set(value) != {'type', 'shape'}:
        raise ConfigError(f'{where}: expected {{"type": ..., "shape": [...]}}, got {value!r}')
    shape = value['shape']
    if not isinstance(shape, Sequence) or not shape or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ConfigError(f'{where}.shape: expected a non-empty list of positive ints, got {shape!r}')
    return PolicyFeature(_enum_value(FeatureType, value['type'], f'{where}.type'), tuple(shape))


def _default_normalization_mapping() -> dict[str, NormalizationMode]:
    return {
        FeatureType.VISUAL: NormalizationMode.MEAN_STD,
        FeatureType.STATE: NormalizationMode.MEAN_STD,
        FeatureType.ACTION: NormalizationMode.MEAN_STD,
    }


@dataclass
class ACTConfig:
    """Configuration of the Action Chunking Transformer, field for field LeRobot 0.4.4's ``ACTConfig``."""

    # Inherited from LeRobot's PreTrainedConfig.
    n_obs_steps: int = 1
    """Observation steps per sample; ACT handles exactly 1."""
    input_features: dict[str, PolicyFeature] = field(default_factory=dict)
    """Model inputs by key; VISUAL inputs in this order are the cameras, in token order."""
    output_features: dict[str, PolicyFeature] = field(default_factory=dict)
    """Model outputs by key; ACT predicts ``action``."""
    device: str | None = None
    """Device the policy was trained on, as LeRobot records it (informational here)."""
    use_amp: bool = False
    """Automatic mixed precision (LeRobot trainer flag)."""
    use_peft: bool = False
    """Parameter-efficient fine-tuning (LeRobot trainer flag; unused by ACT)."""
    push_to_hub: bool = True
    """LeRobot's trainer pushes to the Hub at the end when set (it then requires ``repo_id``)."""
    repo_id: str | None = None
    private: bool | None = None
    tags: list[str] | None = None
    license: str | None = None
    pretrained_path: str | None = None
    """Directory the weights were loaded from, recorded by LeRobot on resume."""

    # ACT.
    chunk_size: int = 100
    """Actions predicted per forward pass (S)."""
    n_action_steps: int = 100
    """Actions of each chunk executed before the model runs again; at most ``chunk_size``."""
    normalization_mapping: dict[str, NormalizationMode] = field(default_factory=_default_normalization_mapping)
    """Normalization mode per feature type, applied by the processors outside the model."""
    vision_backbone: str = 'resnet18'
    """ResNet variant of the image backbone."""
    pretrained_backbone_weights: str | None = IMAGENET_RESNET18_WEIGHTS
    """torchvision weights name loaded into the backbone at construction; None = random init."""
    replace_final_stride_with_dilation: bool = False
    """Dilate layer4 instead of striding (impossible for resnet18/34, as in torchvision)."""
    pre_norm: bool = False
    """LayerNorm before each transformer sublayer instead of after."""
    dim_model: int = 512
    """Transformer width (D)."""
    n_heads: int = 8
    """Attention heads; must divide ``dim_model``."""
    dim_feedforward: int = 3200
    """Hidden width of the transformer feed-forward blocks."""
    feedforward_activation: str = 'relu'
    """Feed-forward activation: relu or gelu."""
    n_encoder_layers: int = 4
    n_decoder_layers: int = 1
    use_vae: bool = True
    """Train with the conditional-VAE objective (latent from the action chunk, KL loss)."""
    latent_dim: int = 32
    n_vae_encoder_layers: int = 4
    temporal_ensemble_coeff: float | None = None
    """k in w_i = exp(-k i) for temporal ensembling (requires n_action_steps = 1); None = action queue."""
    dropout: float = 0.1
    kl_weight: float = 10.0
    optimizer_lr: float = 1e-5
    optimizer_weight_decay: float = 1e-4
    optimizer_lr_backbone: float = 1e-5

    def __post_init__(self) -> None:
        self.input_features = self._parse_features(self.input_features, 'input_features')
        self.output_features = self._parse_features(self.output_features, 'output_features')
        if not isinstance(self.normalization_mapping, Mapping):
            raise ConfigError(f'normalization_mapping: expected a dict, got {self.normalization_mapping!r}')
        self.normalization_mapping = {
            str(_enum_value(FeatureType, k, 'normalization_mapping key')): _enum_value(
                NormalizationMode, v, f'normalization_mapping[{k!r}]'
            )
            for k, v in self.normalization_mapping.items()
        }
        self._validate()

    @staticmethod
    def _parse_features(features: Mapping[str, Any], where: str) -> dict[str, PolicyFeature]:
        if not isinstance(features, Mapping):
            raise ConfigError(f'{where}: expected a dict of features, got {features!r}')
        return {key: parse_feature(value, f'{where}[{key!r}]') for key, value in features.items()}

    def _validate(self) -> None:
        positive = ('chunk_size', 'n_action_steps', 'dim_model', 'n_heads', 'dim_feedforward', 'latent_dim')
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f'{name}: expected a positive int, got {value!r}')
        for name in ('n_encoder_layers', 'n_decoder_layers', 'n_vae_encoder_layers'):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f'{name}: expected an int >= 0, got {value!r}')
        if self.n_obs_steps != 1:
            raise ConfigError(f'n_obs_steps: ACT handles exactly 1 observation step, got {self.n_obs_steps!r}')
        if not self.vision_backbone.startswith('resnet'):
            raise ConfigError(
                f'vision_backbone: must be a ResNet variant (resnet18, ...), got {self.vision_backbone!r}'
            )
        if self.n_action_steps > self.chunk_size:
            raise ConfigError(
                f'n_action_steps ({self.n_action_steps}) must be <= chunk_size ({self.chunk_size}): '
                'the policy executes at most one chunk of actions per model call'
            )
        if self.temporal_ensemble_coeff is not None and self.n_action_steps != 1:
            raise ConfigError(
                f'n_action_steps must be 1 with temporal ensembling (temporal_ensemble_coeff='
                f'{self.temporal_ensemble_coeff}), got {self.n_action_steps}: the model runs at every step'
            )
        if self.dim_model % self.n_heads:
            raise ConfigError(f'dim_model ({self.dim_model}) must be divisible by n_heads ({self.n_heads})')
        if self.dim_model % 4:
            raise ConfigError(
                f"dim_model ({self.dim_model}) must be a multiple of 4: the image tokens' 2D position embedding "
                'gives half the channels to rows and half to columns, each in sine/cosine pairs'
            )
        if self.feedforward_activation not in ('relu', 'gelu'):
            raise ConfigError(
                f'feedforward_activation: expected relu or gelu, got {self.feedforward_activation!r} '
                '(glu halves the feed-forward width, which linear2 cannot take)'
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f'dropout: expected a probability in [0, 1), got {self.dropout!r}')

    def validate_features(self) -> None:
        """Raise ConfigError unless the inputs hold a camera or an environment state, and ``action`` is an output."""
        if not self.image_features and self.env_state_feature is None:
            raise ConfigError(
                'input_features: ACT needs at least one VISUAL input (a camera) or an ENV input '
                f'({ENV_STATE_KEY}); got {sorted(self.input_features)}'
            )
        if self.action_feature is None:
            raise ConfigError(
                f'output_features: ACT needs {ACTION_KEY!r} of type ACTION, got {sorted(self.output_features)}'
            )

    @property
    def image_features(self) -> dict[str, PolicyFeature]:
        """VISUAL inputs in declaration order: the cameras, in the order their tokens enter the encoder."""
        return {k: f for k, f in self.input_features.items() if f.type is FeatureType.VISUAL}

    @property
    def robot_state_feature(self) -> PolicyFeature | None:
        feature = self.input_features.get(STATE_KEY)
        return feature if feature is not None and feature.type is FeatureType.STATE else None

    @property
    def env_state_feature(self) -> PolicyFeature | None:
        return next((f for f in self.input_features.values() if f.type is FeatureType.ENV), None)

    @property
    def env_state_key(self) -> str | None:
        return next((k for k, f in self.input_features.items() if f.type is FeatureType.ENV), None)

    @property
    def action_feature(self) -> PolicyFeature | None:
        feature = self.output_features.get(ACTION_KEY)
        return feature if feature is not None and feature.type is FeatureType.ACTION else None

    @property
    def observation_delta_indices(self) -> None:
        return None

    @property
    def action_delta_indices(self) -> list[int]:
        """Frame offsets of the action chunk a training sample needs: 0 .. chunk_size - 1."""
        return list(range(self.chunk_size))

    @property
    def reward_delta_indices(self) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        """The config.json content: ``"type": "act"`` first, then every field in declaration order."""
        out: dict[str, Any] = {'type': POLICY_TYPE}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ('input_features', 'output_features'):
                value = {k: feature.to_dict() for k, feature in value.items()}
            elif f.name == 'normalization_mapping':
                value = {str(k): v.value for k, v in value.items()}
            elif isinstance(value, tuple | list):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = 'config') -> 'ACTConfig':
        """Build from a config.json dict; unknown keys and a ``type`` other than "act" are rejected."""
        if not isinstance(data, Mapping):
            raise ConfigError(f'{source}: expected a JSON object, got {type(data).__name__}')
        data = dict(data)
        policy_type = data.pop('type', POLICY_TYPE)
        if policy_type != POLICY_TYPE:
            raise ConfigError(f'{source}: "type" is {policy_type!r}, expected {POLICY_TYPE!r}')
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f'{source}: unknown ACTConfig field(s) {unknown}; known fields: {sorted(known)}')
        try:
            return cls(**data)
        except ConfigError as e:
            raise ConfigError(f'{source}: {e}') from None

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``<directory>/config.json`` as LeRobot does (indent 4, no trailing newline); returns its path."""
        path = Path(directory) / CONFIG_FILE
        tmp = path.with_name(path.name + '.tmp')
        tmp.write_text(json.dumps(self.to_dict(), indent=4))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> 'ACTConfig':
        """Read ``<directory>/config.json`` (or the file itself when given a file path)."""
        path = Path(directory)
        if path.is_dir():
            path = path / CONFIG_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f'{path}: no ACT config.json there') from None
        except json.JSONDecodeError as e:
            raise ConfigError(f'{path}: not valid JSON ({e})') from None
        return cls.from_dict(data, source=str(path))
