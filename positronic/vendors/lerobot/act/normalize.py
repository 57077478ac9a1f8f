"""Normalization outside the model: LeRobot 0.4.4's policy pre/post-processor files, written and applied.

A ``pretrained_model`` directory holds ``policy_preprocessor.json`` (rename, to-batch, device, normalizer) and
``policy_postprocessor.json`` (unnormalizer, device), each pointing at a safetensors file of flat
``"<feature>.<stat>"`` float32 tensors (spec B.5). ``save_processors`` writes them byte for byte as LeRobot
does; ``load_processors`` reads ours or LeRobot's and applies the normalizer step with LeRobot's formulas:

- MEAN_STD: (x - mean) / (std + eps); inverse x * std + mean.
- MIN_MAX (QUANTILES: q01/q99, QUANTILE10: q10/q90): 2 (x - lo) / (hi - lo) - 1, with hi - lo = 0 replaced by
  eps; inverse (x + 1) / 2 * (hi - lo) + lo.
- IDENTITY, or a feature without stats: unchanged.

Images enter as float32 in [0, 1], channel-first (B, 3, H, W).
"""

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from positronic.vendors.lerobot.act.config import (
    ACTION_KEY,
    ACTConfig,
    FeatureType,
    NormalizationMode,
    PolicyFeature,
    parse_feature,
)

PREPROCESSOR_NAME = 'policy_preprocessor'
POSTPROCESSOR_NAME = 'policy_postprocessor'
PREPROCESSOR_FILE = f'{PREPROCESSOR_NAME}.json'
POSTPROCESSOR_FILE = f'{POSTPROCESSOR_NAME}.json'
RENAME_STEP = 'rename_observations_processor'
TO_BATCH_STEP = 'to_batch_processor'
DEVICE_STEP = 'device_processor'
NORMALIZER_STEP = 'normalizer_processor'
UNNORMALIZER_STEP = 'unnormalizer_processor'
NORMALIZER_EPS = 1e-8

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_BOUNDS = {
    NormalizationMode.MIN_MAX: ('min', 'max'),
    NormalizationMode.QUANTILES: ('q01', 'q99'),
    NormalizationMode.QUANTILE10: ('q10', 'q90'),
}

Stats = Mapping[str, Mapping[str, Any]]
"""Per-feature statistics: {feature key: {stat name (mean, std, min, max, q01, ..., count): array}}."""


class ProcessorFileError(ValueError):
    """A processor JSON or its state file is missing, malformed, or asks for a step we cannot apply."""


def state_file_name(pipeline_name: str, step_index: int, registry_name: str) -> str:
    """LeRobot's state-file name: ``<sanitized pipeline name>_step_<i>_<registry name>.safetensors``."""
    return f'{re.sub(r"[^a-zA-Z0-9_]", "_", pipeline_name.lower())}_step_{step_index}_{registry_name}.safetensors'


def stats_to_tensors(stats: Stats) -> dict[str, dict[str, Tensor]]:
    """Stats as float32 CPU tensors of their own shapes (vectors (N,), scalars (1,), images (3, 1, 1)), each its
    own copy (safetensors refuses tensors sharing memory, as when two features were given the same array)."""
    return {
        key: {name: torch.tensor(np.asarray(value, dtype=np.float32)) for name, value in feature_stats.items()}
        for key, feature_stats in stats.items()
    }


def with_imagenet_stats(stats: Stats, image_keys: list[str]) -> dict[str, dict[str, Any]]:
    """A copy of ``stats`` whose camera ``mean``/``std`` are ImageNet's, shape (3, 1, 1), as LeRobot's trainer
    does by default (``dataset.use_imagenet_stats``); other stats are kept."""
    out = {key: dict(feature_stats) for key, feature_stats in stats.items()}
    for key in image_keys:
        out.setdefault(key, {})
        out[key]['mean'] = np.array(IMAGENET_MEAN, dtype=np.float32).reshape(3, 1, 1)
        out[key]['std'] = np.array(IMAGENET_STD, dtype=np.float32).reshape(3, 1, 1)
    return out


@dataclass
class Normalizer:
    """One (un)normalizer step: features by key, the mode per feature type, and the stats it applies."""

    features: dict[str, PolicyFeature]
    norm_map: dict[str, NormalizationMode]
    stats: dict[str, dict[str, Tensor]]
    eps: float = NORMALIZER_EPS
    _placed: dict[tuple, dict[str, dict[str, Tensor]]] = field(default_factory=dict, repr=False)

    def _stats_like(self, key: str, like: Tensor) -> dict[str, Tensor]:
        place = (like.device, like.dtype)
        if place not in self._placed:
            self._placed[place] = {
                k: {n: t.to(like.device, like.dtype) for n, t in s.items()} for k, s in self.stats.items()
            }
        return self._placed[place][key]

    def transform(self, x: Tensor, key: str, feature_type: FeatureType, inverse: bool = False) -> Tensor:
        """Normalize (or, with ``inverse``, unnormalize) the values ``x`` of feature ``key``."""
        mode = self.norm_map.get(feature_type, NormalizationMode.IDENTITY)
        if mode is NormalizationMode.IDENTITY or key not in self.stats:
            return x
        stats = self._stats_like(key, x)
        if mode is NormalizationMode.MEAN_STD:
            if 'mean' not in stats or 'std' not in stats:
                raise ProcessorFileError(f'{key}: MEAN_STD needs "mean" and "std" stats, have {sorted(stats)}')
            return x * stats['std'] + stats['mean'] if inverse else (x - stats['mean']) / (stats['std'] + self.eps)
        lo_name, hi_name = _BOUNDS[mode]
        if lo_name not in stats or hi_name not in stats:
            raise ProcessorFileError(
                f'{key}: {mode.value} needs "{lo_name}" and "{hi_name}" stats, have {sorted(stats)}'
            )
        lo = stats[lo_name]
        span = stats[hi_name] - lo
        span = torch.where(span == 0, torch.tensor(self.eps, device=x.device, dtype=x.dtype), span)
        return (x + 1) / 2 * span + lo if inverse else 2 * (x - lo) / span - 1

    def state_dict(self) -> dict[str, Tensor]:
        return {f'{key}.{name}': t.cpu().clone() for key, s in self.stats.items() for name, t in s.items()}

    def config(self) -> dict[str, Any]:
        return {
            'eps': self.eps,
            'features': {k: f.to_dict() for k, f in self.features.items()},
            'norm_map': {str(t): m.value for t, m in self.norm_map.items()},
        }

    @classmethod
    def from_step(cls, step_config: Mapping[str, Any], state: dict[str, Tensor], source: str) -> 'Normalizer':
        try:
            features = {k: parse_feature(f, f'{source}: features[{k!r}]') for k, f in step_config['features'].items()}
            norm_map = {str(FeatureType(t)): NormalizationMode(m) for t, m in step_config['norm_map'].items()}
            eps = float(step_config.get('eps', NORMALIZER_EPS))
        except (KeyError, ValueError, TypeError, AttributeError) as e:
            raise ProcessorFileError(f'{source}: malformed normalizer config ({e!r})') from None
        stats: dict[str, dict[str, Tensor]] = {}
        for flat_key, tensor in state.items():
            key, _, name = flat_key.rpartition('.')
            if not key:
                raise ProcessorFileError(f'{source}: state key {flat_key!r} is not "<feature>.<stat>"')
            stats.setdefault(key, {})[name] = tensor
        return cls(features, norm_map, stats, eps)


@dataclass
class Processors:
    """The checkpoint's normalization: ``normalize`` for model inputs (and ``action``), ``unnormalize_action``."""

    normalizer: Normalizer
    unnormalizer: Normalizer
    rename_map: dict[str, str] = field(default_factory=dict)

    def normalize(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Normalize every feature of the preprocessor present in ``batch`` (observations by their type,
        ``action`` by the ACTION mode); other keys pass through. Tensors must already be batched: the pipeline's
        rename step is applied, its to-batch and device steps are left to the caller."""
        out = {self.rename_map.get(k, k): v for k, v in batch.items()}
        for key, feature in self.normalizer.features.items():
            if feature.type is not FeatureType.ACTION and key in out:
                out[key] = self.normalizer.transform(torch.as_tensor(out[key]), key, feature.type)
        if ACTION_KEY in out:
            out[ACTION_KEY] = self.normalizer.transform(
                torch.as_tensor(out[ACTION_KEY]), ACTION_KEY, FeatureType.ACTION
            )
        return out

    def unnormalize_action(self, action: Tensor) -> Tensor:
        """Map normalized actions (..., A) back to the dataset's units."""
        return self.unnormalizer.transform(action, ACTION_KEY, FeatureType.ACTION, inverse=True)


def _write_json(path: Path, content: dict) -> None:
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(content, indent=2))
    tmp.replace(path)


def _write_state(path: Path, state: dict[str, Tensor]) -> None:
    tmp = path.with_name(path.name + '.tmp')
    save_file(state, tmp)
    tmp.replace(path)


def save_processors(directory: str | os.PathLike, stats: Stats, config: ACTConfig, device: str = 'cpu') -> None:
    """Write policy_preprocessor.json, policy_postprocessor.json and their normalizer safetensors (spec B.5).

    ``stats`` go in whole (every feature given, not only the policy's), as LeRobot's trainer writes them;
    ``device`` is the policy device recorded in the preprocessor's device step.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = stats_to_tensors(stats)
    norm_map = dict(config.normalization_mapping)
    normalizer = Normalizer({**config.input_features, **config.output_features}, norm_map, tensors)
    unnormalizer = Normalizer(dict(config.output_features), norm_map, tensors)

    pre_state = state_file_name(PREPROCESSOR_NAME, 3, NORMALIZER_STEP)
    post_state = state_file_name(POSTPROCESSOR_NAME, 0, UNNORMALIZER_STEP)
    _write_state(directory / pre_state, normalizer.state_dict())
    _write_state(directory / post_state, unnormalizer.state_dict())
    _write_json(
        directory / PREPROCESSOR_FILE,
        {
            'name': PREPROCESSOR_NAME,
            'steps': [
                {'registry_name': RENAME_STEP, 'config': {'rename_map': {}}},
                {'registry_name': TO_BATCH_STEP, 'config': {}},
                {'registry_name': DEVICE_STEP, 'config': {'device': device, 'float_dtype': None}},
                {'registry_name': NORMALIZER_STEP, 'config': normalizer.config(), 'state_file': pre_state},
            ],
        },
    )
    _write_json(
        directory / POSTPROCESSOR_FILE,
        {
            'name': POSTPROCESSOR_NAME,
            'steps': [
                {'registry_name': UNNORMALIZER_STEP, 'config': unnormalizer.config(), 'state_file': post_state},
                {'registry_name': DEVICE_STEP, 'config': {'device': 'cpu', 'float_dtype': None}},
            ],
        },
    )


def _read_pipeline(directory: Path, file_name: str, normalizer_step: str) -> tuple[Normalizer, dict[str, str]]:
    path = directory / file_name
    try:
        pipeline = json.loads(path.read_text())
        steps = pipeline['steps']
    except FileNotFoundError:
        raise ProcessorFileError(f'{path}: missing (a pretrained_model directory has both processor files)') from None
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ProcessorFileError(f'{path}: not a LeRobot processor pipeline ({e!r})') from None
    known = {RENAME_STEP, TO_BATCH_STEP, DEVICE_STEP, normalizer_step}
    normalizer, rename_map = None, {}
    for i, step in enumerate(steps):
        name = step.get('registry_name', step.get('class'))
        if name not in known:
            raise ProcessorFileError(f'{path}: step {i} {name!r} is not one we can apply; expected {sorted(known)}')
        if name == RENAME_STEP:
            rename_map = dict(step.get('config', {}).get('rename_map', {}))
        elif name == normalizer_step:
            state_path = directory / step.get('state_file', '')
            if 'state_file' not in step or not state_path.is_file():
                raise ProcessorFileError(f'{path}: step {i} ({name}) state file {state_path} is missing')
            normalizer = Normalizer.from_step(step.get('config', {}), load_file(state_path), str(path))
    if normalizer is None:
        raise ProcessorFileError(f'{path}: no {normalizer_step} step')
    return normalizer, rename_map


def load_processors(directory: str | os.PathLike) -> Processors:
    """Read the processors of a ``pretrained_model`` directory written by us or by LeRobot 0.4.4."""
    directory = Path(directory)
    normalizer, rename_map = _read_pipeline(directory, PREPROCESSOR_FILE, NORMALIZER_STEP)
    unnormalizer, _ = _read_pipeline(directory, POSTPROCESSOR_FILE, UNNORMALIZER_STEP)
    return Processors(normalizer, unnormalizer, rename_map)
