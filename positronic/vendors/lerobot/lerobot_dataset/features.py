"""LeRobot feature declarations: validation, defaults, and their Arrow / HuggingFace column types.

A declaration maps a feature name to a LeRobot feature dict, e.g.
``{"dtype": "float32", "shape": [8], "names": ["x", ...]}`` for a vector or
``{"dtype": "video", "shape": [480, 480, 3], "names": ["height", "width", "channels"]}`` for a camera.
Supported: numeric scalars and vectors (float32, float64, int32, int64; shape ``[1]`` or ``[N]``) stored in the data
parquet, and ``video`` features (uint8 RGB frames, shape ``[H, W, 3]``, H and W even) stored as mp4.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from positronic.vendors.lerobot.lerobot_dataset.errors import FeatureSpecError
from positronic.vendors.lerobot.lerobot_dataset.format import DEFAULT_FEATURES

VIDEO_DTYPE = 'video'
NUMERIC_DTYPES = ('float32', 'float64', 'int32', 'int64')
VIDEO_NAMES = ['height', 'width', 'channels']
HF_METADATA_KEY = b'huggingface'


@dataclass(frozen=True)
class Feature:
    """One LeRobot feature: ``dtype`` (a numpy dtype name or ``"video"``), ``shape`` and per-dimension ``names``.

    ``info`` holds the video stream description (``video.codec``, ``video.height``, ...) of video features once
    known; it is None for numeric features and for video features before their first episode is encoded.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    names: Any = None
    info: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def is_video(self) -> bool:
        return self.dtype == VIDEO_DTYPE

    @property
    def is_integer(self) -> bool:
        return self.dtype in ('int32', 'int64')

    def to_json(self) -> dict[str, Any]:
        """The feature dict as info.json stores it (``info`` only for video features)."""
        out: dict[str, Any] = {'dtype': self.dtype, 'shape': list(self.shape), 'names': self.names}
        if self.is_video and self.info is not None:
            out['info'] = dict(self.info)
        return out

    def declaration(self) -> dict[str, Any]:
        """The comparable part of the feature (dtype, shape, names), without the video ``info``."""
        return {'dtype': self.dtype, 'shape': list(self.shape), 'names': self.names}


def parse_feature(name: str, spec: Mapping[str, Any]) -> Feature:
    """Validate one user feature declaration; raises FeatureSpecError naming the feature and what was expected."""
    if not isinstance(name, str) or not name or '/' in name:
        raise FeatureSpecError(f'feature name {name!r}: expected a non-empty string without "/"')
    if not isinstance(spec, Mapping) or 'dtype' not in spec or 'shape' not in spec:
        raise FeatureSpecError(f'feature {name!r}: expected a dict with "dtype" and "shape", got {spec!r}')
    dtype = spec['dtype']
    try:
        shape = tuple(int(d) for d in spec['shape'])
    except (TypeError, ValueError):
        raise FeatureSpecError(f'feature {name!r}: shape must be a list of ints, got {spec["shape"]!r}') from None
    if not shape or any(d <= 0 for d in shape):
        raise FeatureSpecError(f'feature {name!r}: shape must be non-empty with positive sizes, got {list(shape)}')
    names = spec.get('names')
    if dtype == VIDEO_DTYPE:
        if len(shape) != 3 or shape[2] != 3:
            raise FeatureSpecError(f'video feature {name!r}: expected shape [height, width, 3], got {list(shape)}')
        if shape[0] % 2 or shape[1] % 2:
            raise FeatureSpecError(
                f'video feature {name!r}: height and width must be even for yuv420p video, got {list(shape)}'
            )
        names = VIDEO_NAMES if names is None else names
        if list(names) != VIDEO_NAMES:
            raise FeatureSpecError(f'video feature {name!r}: names must be {VIDEO_NAMES}, got {names!r}')
        return Feature(name, dtype, shape, list(names), spec.get('info'))
    if dtype not in NUMERIC_DTYPES:
        raise FeatureSpecError(
            f'feature {name!r}: dtype {dtype!r} is not supported; expected one of {[*NUMERIC_DTYPES, VIDEO_DTYPE]}'
        )
    if len(shape) != 1:
        raise FeatureSpecError(f'feature {name!r}: numeric features must have shape [N], got {list(shape)}')
    if isinstance(names, list | tuple) and len(names) != shape[0]:
        raise FeatureSpecError(f'feature {name!r}: {len(names)} names for shape {list(shape)}')
    return Feature(name, dtype, shape, list(names) if isinstance(names, tuple) else names)


def parse_user_features(declared: Mapping[str, Mapping[str, Any]]) -> dict[str, Feature]:
    """Validate the user features of a new dataset (the default per-frame columns are reserved)."""
    if not isinstance(declared, Mapping) or not declared:
        raise FeatureSpecError(f'features: expected a non-empty mapping of name -> feature dict, got {declared!r}')
    reserved = sorted(set(declared) & set(DEFAULT_FEATURES))
    if reserved:
        raise FeatureSpecError(f'features {reserved} are added automatically; remove them from the declaration')
    return {name: parse_feature(name, spec) for name, spec in declared.items()}


def with_defaults(user: Mapping[str, Feature]) -> dict[str, Feature]:
    """All features in info.json order: user features first, then the five default per-frame columns."""
    defaults = {name: Feature(name, spec['dtype'], tuple(spec['shape'])) for name, spec in DEFAULT_FEATURES.items()}
    return {**user, **defaults}


def features_from_info(features_json: Mapping[str, Mapping[str, Any]]) -> dict[str, Feature]:
    """Features of an existing dataset as info.json declares them (any dtype LeRobot writes, not only ours)."""
    return {
        name: Feature(name, spec['dtype'], tuple(spec['shape']), spec.get('names'), spec.get('info'))
        for name, spec in features_json.items()
    }


def arrow_type(feature: Feature) -> pa.DataType:
    """Data-parquet column type: a scalar for shape [1], ``fixed_size_list<element>[N]`` for shape [N]."""
    scalar = pa.from_numpy_dtype(np.dtype(feature.dtype))
    if feature.shape == (1,):
        return scalar
    return pa.list_(pa.field('element', scalar), feature.shape[0])


def _hf_feature(feature: Feature) -> dict[str, Any]:
    value = {'dtype': feature.dtype, '_type': 'Value'}
    if feature.shape == (1,):
        return value
    return {'feature': value, 'length': feature.shape[0], '_type': 'List'}


def data_schema(features: Mapping[str, Feature]) -> pa.Schema:
    """Schema of the data parquet: every non-video feature in order, with the ``huggingface`` schema metadata."""
    columns = [f for f in features.values() if not f.is_video]
    hf = {'info': {'features': {f.name: _hf_feature(f) for f in columns}}}
    return pa.schema(
        [pa.field(f.name, arrow_type(f)) for f in columns], metadata={HF_METADATA_KEY: json.dumps(hf).encode()}
    )
