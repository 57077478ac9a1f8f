"""Per-episode feature statistics and their aggregation into ``meta/stats.json`` (spec A.7).

Each feature gets ``min, max, mean, std, count, q01, q10, q50, q90, q99``:

- numeric features: over the episode's frames per dimension, arrays of shape (N,); std is the population std;
  quantiles come from a 5000-bin histogram over ``[min - 1e-10, max + 1e-10]`` with linear interpolation in the
  bin that reaches the target count; ``count`` is the number of frames;
- video features: over a sample of the episode's frames (see ``image_sample_indices``), downsampled, per RGB
  channel, divided by 255, shape (3, 1, 1); ``count`` is the number of sampled frames. Unlike LeRobot 0.4.4 the
  std is computed in floating point (0.4.4 squares uint8 values, which wraps).
"""

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from positronic.vendors.lerobot.lerobot_dataset.errors import CorruptFileError, reading
from positronic.vendors.lerobot.lerobot_dataset.format import write_json_atomic

Stats = dict[str, np.ndarray]
"""Statistic name -> array: (N,) for numeric features, (3, 1, 1) for video features, (1,) for ``count``."""

QUANTILES = {'q01': 0.01, 'q10': 0.10, 'q50': 0.50, 'q90': 0.90, 'q99': 0.99}
STAT_NAMES = ('min', 'max', 'mean', 'std', 'count', *QUANTILES)
"""Order of the statistics in the episode-metadata columns."""
HISTOGRAM_BINS = 5000
HISTOGRAM_MARGIN = 1e-10
IMAGE_SCALE = 255.0
IMAGE_SAMPLE_MIN = 100
IMAGE_SAMPLE_MAX = 10_000
IMAGE_DOWNSAMPLE_FROM = 300
IMAGE_DOWNSAMPLE_TARGET = 150


def _histogram_edges(lo: float, hi: float) -> np.ndarray:
    return np.linspace(lo - HISTOGRAM_MARGIN, hi + HISTOGRAM_MARGIN, HISTOGRAM_BINS + 1)


def _quantile_from_histogram(counts: np.ndarray, edges: np.ndarray, q: float) -> float:
    """Interpolated q-quantile from bin counts: the position where the cumulative count reaches ``q * total``."""
    cumulative = np.cumsum(counts)
    target = q * cumulative[-1]
    b = int(np.searchsorted(cumulative, target, side='left'))
    if b == 0:
        return float(edges[0])
    b = min(b, len(counts) - 1)
    before = cumulative[b - 1]
    fraction = (target - before) / counts[b] if counts[b] > 0 else 0.0
    return float(edges[b] + fraction * (edges[b + 1] - edges[b]))


def _column_quantiles(column: np.ndarray) -> dict[str, float]:
    lo, hi = float(column.min()), float(column.max())
    edges = _histogram_edges(lo, hi)
    counts, _ = np.histogram(column.astype(np.float64), bins=edges)
    return {name: _quantile_from_histogram(counts, edges, q) for name, q in QUANTILES.items()}


def numeric_stats(values: np.ndarray) -> Stats:
    """Stats of one episode of a numeric feature; ``values`` is (T,) or (T, N). min/max keep the integer dtype."""
    x = values.reshape(len(values), -1)
    x64 = x.astype(np.float64)
    stats: Stats = {
        'min': x.min(axis=0),
        'max': x.max(axis=0),
        'mean': x64.mean(axis=0),
        'std': x64.std(axis=0),
        'count': np.array([len(x)], dtype=np.int64),
    }
    if np.issubdtype(x.dtype, np.integer):
        stats['min'], stats['max'] = stats['min'].astype(np.int64), stats['max'].astype(np.int64)
    else:
        stats['min'], stats['max'] = stats['min'].astype(np.float64), stats['max'].astype(np.float64)
    if len(x) < 2:
        for name in QUANTILES:
            stats[name] = stats['mean'].copy()
        return stats
    per_column = [_column_quantiles(x64[:, j]) for j in range(x.shape[1])]
    for name in QUANTILES:
        stats[name] = np.array([c[name] for c in per_column], dtype=np.float64)
    return stats


def image_sample_indices(num_frames: int) -> np.ndarray:
    """Frame indices sampled for image stats: all frames below 100, else ``max(100, min(n**0.75, 10000))`` spread."""
    if num_frames < IMAGE_SAMPLE_MIN:
        k = num_frames
    else:
        k = max(IMAGE_SAMPLE_MIN, min(int(num_frames**0.75), IMAGE_SAMPLE_MAX))
    return np.round(np.linspace(0, num_frames - 1, k)).astype(np.int64)


def image_downsample_step(height: int, width: int) -> int:
    """Stride applied to both image axes before stats: ``int(max(H, W) / 150)`` when ``max(H, W) >= 300``, else 1."""
    longest = max(height, width)
    return int(longest / IMAGE_DOWNSAMPLE_TARGET) if longest >= IMAGE_DOWNSAMPLE_FROM else 1


class ImageStatsAccumulator:
    """Per-channel value counts of sampled uint8 RGB frames of one episode, turned into (3, 1, 1) stats in [0, 1].

    Feed every frame with its index through ``observe``; only the sampled ones are counted. Counting the 256
    possible values per channel makes the min, max, mean, std and histogram quantiles exact and cheap.
    """

    def __init__(self, num_frames: int, height: int, width: int):
        self._sampled = set(image_sample_indices(num_frames).tolist())
        self._step = image_downsample_step(height, width)
        self._counts = np.zeros((3, 256), dtype=np.int64)
        self._num_sampled = 0

    def observe(self, frame_index: int, frame: np.ndarray) -> None:
        """Count one (H, W, 3) uint8 frame if its index is sampled."""
        if frame_index not in self._sampled:
            return
        small = frame[:: self._step, :: self._step]
        for c in range(3):
            self._counts[c] += np.bincount(small[..., c].ravel(), minlength=256)
        self._num_sampled += 1

    def result(self) -> Stats:
        """The episode's stats, each (3, 1, 1) float64 in [0, 1] except ``count`` (1,) int64."""
        values = np.arange(256, dtype=np.float64)
        out: dict[str, list[float]] = {name: [] for name in ('min', 'max', 'mean', 'std', *QUANTILES)}
        for counts in self._counts:
            present = np.nonzero(counts)[0]
            lo, hi = float(present[0]), float(present[-1])
            total = counts.sum()
            mean = float((counts * values).sum() / total)
            var = float((counts * (values - mean) ** 2).sum() / total)
            edges = _histogram_edges(lo, hi)
            bins = np.clip(np.searchsorted(edges, values[present], side='right') - 1, 0, HISTOGRAM_BINS - 1)
            binned = np.bincount(bins, weights=counts[present], minlength=HISTOGRAM_BINS)
            out['min'].append(lo)
            out['max'].append(hi)
            out['mean'].append(mean)
            out['std'].append(np.sqrt(var))
            for name, q in QUANTILES.items():
                out[name].append(_quantile_from_histogram(binned, edges, q))
        stats: Stats = {name: np.array(v).reshape(3, 1, 1) / IMAGE_SCALE for name, v in out.items()}
        stats['count'] = np.array([self._num_sampled], dtype=np.int64)
        return stats


def aggregate_stats(per_episode: Iterable[Mapping[str, Stats]]) -> dict[str, Stats]:
    """Combine stats of several episodes (or of already aggregated datasets) feature by feature.

    min/max element-wise; mean, quantiles count-weighted; variance by the parallel formula
    ``sum c_i (std_i^2 + (mean_i - mean)^2) / sum c_i``; count summed.
    """
    grouped: dict[str, list[Stats]] = {}
    for episode in per_episode:
        for feature, stats in episode.items():
            grouped.setdefault(feature, []).append(stats)
    result: dict[str, Stats] = {}
    for feature, items in grouped.items():
        counts = np.array([int(s['count'][0]) for s in items], dtype=np.float64)
        shape = (-1,) + (1,) * (np.asarray(items[0]['mean']).ndim)
        w = (counts / counts.sum()).reshape(shape)
        means = np.stack([np.asarray(s['mean'], dtype=np.float64) for s in items])
        stds = np.stack([np.asarray(s['std'], dtype=np.float64) for s in items])
        mean = (w * means).sum(axis=0)
        var = (w * (stds**2 + (means - mean) ** 2)).sum(axis=0)
        agg: Stats = {
            'min': np.min(np.stack([s['min'] for s in items]), axis=0),
            'max': np.max(np.stack([s['max'] for s in items]), axis=0),
            'mean': mean,
            'std': np.sqrt(np.maximum(var, 0.0)),
            'count': np.array([int(counts.sum())], dtype=np.int64),
        }
        for name in QUANTILES:
            if all(name in s for s in items):
                agg[name] = (w * np.stack([np.asarray(s[name], dtype=np.float64) for s in items])).sum(axis=0)
        result[feature] = agg
    return result


def stats_to_json(stats: Mapping[str, Stats]) -> dict[str, dict[str, Any]]:
    """Nested lists as stats.json stores them (ints stay ints)."""
    return {feature: {name: np.asarray(v).tolist() for name, v in s.items()} for feature, s in stats.items()}


def stats_from_json(content: Mapping[str, Mapping[str, Any]]) -> dict[str, Stats]:
    """Arrays from stats.json content."""
    return {feature: {name: np.asarray(v) for name, v in s.items()} for feature, s in content.items()}


def write_stats(path: Path, stats: Mapping[str, Stats]) -> None:
    write_json_atomic(path, stats_to_json(stats))


def read_stats(path: Path) -> dict[str, Stats] | None:
    """stats.json as arrays, or None when the file does not exist (it is optional)."""
    if not path.exists():
        return None
    with reading(path, STATS_JSON_SHAPE), open(path, encoding='utf-8') as f:
        content = json.load(f)
    try:
        return stats_from_json(content)
    except (AttributeError, TypeError, ValueError) as e:
        raise CorruptFileError(f'{path}: expected {STATS_JSON_SHAPE}, got {_shape_of(content)} ({e})') from e


STATS_JSON_SHAPE = 'a JSON object {feature: {stat: number or list of numbers}}'


def _shape_of(content: Any) -> str:
    if isinstance(content, Mapping):
        return f'an object whose {next(iter(content), "")!r} holds {type(next(iter(content.values()), None)).__name__}'
    return type(content).__name__
