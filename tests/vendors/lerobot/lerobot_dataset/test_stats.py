from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from positronic.vendors.lerobot.lerobot_dataset.data_files import column_to_numpy
from positronic.vendors.lerobot.lerobot_dataset.stats import (
    STAT_NAMES,
    ImageStatsAccumulator,
    aggregate_stats,
    image_downsample_step,
    image_sample_indices,
    numeric_stats,
)

from .helpers import scene

LEROBOT_FIXTURE = Path(__file__).parent / 'fixtures' / 'lerobot_044_tiny'


def test_numeric_stats_are_population_stats_over_time():
    x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    stats = numeric_stats(x)
    np.testing.assert_allclose(stats['mean'], x.astype(np.float64).mean(0))
    np.testing.assert_allclose(stats['std'], x.astype(np.float64).std(0))
    np.testing.assert_array_equal(stats['min'], x.min(0))
    assert stats['count'].tolist() == [50]
    assert stats['min'].dtype == np.float64


def test_quantiles_reproduce_lerobot_histogram_values():
    # Values observed in a LeRobot 0.4.4 dataset: frame_index 0..299, and a constant column (episode_index 0).
    ramp = numeric_stats(np.arange(300, dtype=np.int64))
    np.testing.assert_allclose(
        [ramp[q][0] for q in ('q01', 'q10', 'q50', 'q90', 'q99')],
        [2.0331999999013597, 29.0029999999194, 149.02159999999967, 269.04020000007995, 296.010000000098],
        rtol=1e-12,
    )
    assert ramp['min'].dtype == np.int64 and ramp['max'].tolist() == [299]
    constant = numeric_stats(np.zeros(300, dtype=np.int64))
    np.testing.assert_allclose(constant['q01'], [4e-16], rtol=1e-6)
    np.testing.assert_allclose(constant['q99'], [3.96e-14], rtol=1e-6)


def test_numeric_stats_match_those_lerobot_wrote_for_its_own_episodes():
    data = pq.read_table(LEROBOT_FIXTURE / 'data/chunk-000/file-000.parquet')
    episodes = pq.read_table(LEROBOT_FIXTURE / 'meta/episodes/chunk-000/file-000.parquet')
    episode_index = column_to_numpy(data.column('episode_index'))
    for column in ('observation.state', 'action', 'timestamp', 'frame_index', 'index', 'task_index'):
        values = column_to_numpy(data.column(column))
        for ep in range(episodes.num_rows):
            ours = numeric_stats(values[episode_index == ep])
            for stat in STAT_NAMES:
                theirs = np.asarray(episodes.column(f'stats/{column}/{stat}')[ep].as_py())
                np.testing.assert_allclose(ours[stat], theirs, rtol=1e-6, atol=1e-6, err_msg=f'{column} {stat}')


def test_single_frame_episode_has_quantiles_equal_to_the_mean():
    stats = numeric_stats(np.array([[1.0, 2.0]]))
    assert stats['q01'].tolist() == [1.0, 2.0] and stats['std'].tolist() == [0.0, 0.0]


@pytest.mark.parametrize('n, k', [(1, 1), (99, 99), (100, 100), (300, 100), (100_000, 5623)])
def test_image_sample_counts(n, k):
    indices = image_sample_indices(n)
    assert len(indices) == k and indices[0] == 0 and indices[-1] == n - 1
    assert len(np.unique(indices)) == k


def test_image_downsampling_starts_at_300_pixels():
    assert image_downsample_step(480, 480) == 3
    assert image_downsample_step(240, 320) == 2
    assert image_downsample_step(200, 299) == 1


def test_image_stats_are_per_channel_in_unit_range_with_a_correct_std():
    frames = scene(150, seed=3)
    acc = ImageStatsAccumulator(len(frames), *frames.shape[1:3])
    for k, frame in enumerate(frames):
        acc.observe(k, frame)
    stats = acc.result()
    sampled = frames[image_sample_indices(len(frames))].reshape(-1, 3).astype(np.float64) / 255
    assert stats['mean'].shape == (3, 1, 1) and stats['count'].tolist() == [100]
    np.testing.assert_allclose(stats['mean'].ravel(), sampled.mean(0))
    np.testing.assert_allclose(stats['std'].ravel(), sampled.std(0))
    np.testing.assert_allclose(stats['min'].ravel(), sampled.min(0))
    assert (stats['std'] > 0.05).all()
    for c in range(3):
        assert abs(stats['q50'][c, 0, 0] - np.median(sampled[:, c])) < 2 / 255


def test_aggregation_equals_stats_of_the_concatenated_frames():
    rng = np.random.default_rng(1)
    parts = [rng.normal(i, 1 + i, size=(n, 2)) for i, n in enumerate((10, 40, 25))]
    agg = aggregate_stats([{'x': numeric_stats(p)} for p in parts])['x']
    whole = np.concatenate(parts)
    np.testing.assert_allclose(agg['mean'], whole.mean(0))
    np.testing.assert_allclose(agg['std'], whole.std(0))
    np.testing.assert_array_equal(agg['min'], whole.min(0))
    np.testing.assert_array_equal(agg['max'], whole.max(0))
    assert agg['count'].tolist() == [75]
    weights = np.array([10, 40, 25]) / 75
    np.testing.assert_allclose(
        agg['q50'], sum(w * numeric_stats(p)['q50'] for w, p in zip(weights, parts, strict=True))
    )
