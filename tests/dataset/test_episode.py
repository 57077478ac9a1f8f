"""Reading episodes: keys, statics, metadata, time range and episode-wide time access."""

import json

import numpy as np
import pytest

from positronic.dataset import DiskEpisode, EpisodeView, LocalDataset, episode_label
from positronic.dataset.errors import MissingFrameIndexError, NotAnEpisodeError, TimeOutOfRangeError, UnknownKeyError
from positronic.dataset.signal import Signal

from .conftest import assert_frame, tree_state


def test_keys_list_signals_then_static_items(episode):
    assert list(episode.keys()) == ['cam', 'grip', 'q', 'task']
    assert sorted(episode.signals) == ['cam', 'grip', 'q']
    assert dict(episode.static) == {'task': 'task 0'}
    assert len(episode) == 4 and 'q' in episode and 'nope' not in episode


def test_getitem_gives_signals_and_static_values(episode):
    assert isinstance(episode['q'], Signal)
    assert episode['task'] == 'task 0'
    np.testing.assert_array_equal(episode['q'][3][0], np.arange(7, dtype=np.float32) + 3)


def test_unknown_key_raises_key_error_listing_what_exists(episode):
    with pytest.raises(UnknownKeyError) as info:
        episode['robot_state.q']
    assert isinstance(info.value, KeyError)
    assert str(info.value) == (
        "episode has no signal or static item 'robot_state.q'; signals: ['cam', 'grip', 'q'], static: ['task']"
    )


def test_start_and_last_ts_are_the_latest_first_and_last_records(episode):
    # q: 1000..1190, grip: 1005..1195, cam: 1000..1180
    assert episode.start_ts == 1005
    assert episode.last_ts == 1195


def test_time_at_gives_statics_and_each_signal_value_at_or_before(episode):
    row = episode.time[1017]
    assert set(row) == {'task', 'q', 'grip', 'cam'}
    assert row['task'] == 'task 0'
    np.testing.assert_array_equal(row['q'], np.arange(7, dtype=np.float32) + 1)
    assert row['grip'] == pytest.approx(0.05)
    assert_frame(row['cam'], 0, 20)


def test_time_before_some_signal_starts_raises_key_error(episode):
    with pytest.raises(TimeOutOfRangeError, match="signal 'grip'"):
        episode.time[1001]


def test_time_window_without_step_raises_key_error(episode):
    with pytest.raises(KeyError, match='need a step'):
        episode.time[1005:1100]


def test_time_grid_samples_every_signal(episode):
    rows = episode.time[1005:1100:30]
    np.testing.assert_array_equal(rows['q'][:, 0], [0, 3, 6, 9])
    np.testing.assert_allclose(rows['grip'], [0.0, 0.15, 0.3, 0.45])
    assert len(rows['cam']) == 4
    for frame, index in zip(rows['cam'], [0, 1, 3, 4], strict=True):
        assert_frame(frame, index, 20)
    assert rows['task'] == 'task 0'


def test_time_grid_defaults_to_start_and_last_plus_one(episode):
    rows = episode.time[::50]
    np.testing.assert_array_equal(rows['q'][:, 0], [0, 5, 10, 15])
    assert len(rows['grip']) == len(range(1005, 1196, 50))


def test_time_array_samples_every_signal_at_given_times(episode):
    rows = episode.time[[1195, 1010]]
    np.testing.assert_array_equal(rows['q'][:, 0], [19, 1])
    np.testing.assert_allclose(rows['grip'], [0.95, 0.0])


def test_meta_has_writer_info_and_current_path_and_size(episode):
    meta = episode.meta
    assert list(meta)[:4] == ['schema_version', 'created_ts_ns', 'writer', 'path']
    assert meta['schema_version'] == 1
    assert meta['path'] == str(episode.path.resolve())
    files = [p for p in episode.path.iterdir() if p.is_file()]
    assert meta['size_mb'] == pytest.approx(sum(p.stat().st_size for p in files) / 2**20)


def test_meta_path_follows_a_moved_dataset(small_dataset, tmp_path):
    moved = small_dataset.rename(tmp_path / 'moved')
    episode = LocalDataset(moved)[1]
    assert episode.meta['path'] == str((moved / '000000000000' / '000000000001').resolve())
    assert json.loads((episode.path / 'meta.json').read_text())['path'] != episode.meta['path']


def test_opening_reads_no_signal_file(small_dataset):
    episode_path = small_dataset / '000000000000' / '000000000000'
    (episode_path / 'q.parquet').write_bytes(b'garbage')
    episode = DiskEpisode(episode_path)
    assert 'q' in episode.signals
    assert episode['grip'].time[1005] == (0.0, 1005)
    with pytest.raises(ValueError, match="signal 'q': cannot read"):
        _ = episode['q'].timestamps


def test_unfinished_directory_is_not_an_episode(small_dataset):
    episode_path = small_dataset / '000000000000' / '000000000000'
    (episode_path / '.unfinished').write_text('unfinished')
    with pytest.raises(NotAnEpisodeError, match='unfinished episode'):
        DiskEpisode(episode_path)
    with pytest.raises(NotAnEpisodeError, match='no such directory'):
        DiskEpisode(episode_path / 'missing')


def test_video_without_frame_index_is_refused_on_open(small_dataset):
    episode_path = small_dataset / '000000000000' / '000000000000'
    (episode_path / 'cam.frames.parquet').unlink()
    with pytest.raises(MissingFrameIndexError, match=r"signal 'cam': video .*cam\.mp4 has no frame index"):
        DiskEpisode(episode_path)


def test_frame_index_is_never_read_as_a_signal(episode):
    assert 'cam.frames' not in episode


def test_reading_everything_leaves_the_files_untouched(small_dataset):
    before = tree_state(small_dataset)
    for episode in LocalDataset(small_dataset):
        for name in episode.signals:
            list(episode[name])
        episode.meta, episode.static, episode.time[::7]
        episode.close()
    assert tree_state(small_dataset) == before


def test_episode_view_composes_given_signals_and_statics(episode):
    view = EpisodeView({'grip': episode['grip']}, {'task': 'x'})
    assert list(view) == ['grip', 'task']
    assert view.time[1010] == {'task': 'x', 'grip': 0.0}
    assert view.start_ts == 1005 and view.meta == {}


def test_episode_without_signals_has_no_time_range():
    with pytest.raises(ValueError, match='no signal records'):
        _ = EpisodeView({}, {'task': 'x'}).start_ts


def test_episode_label_names_a_disk_episode_by_its_directory_and_a_view_as_in_memory(episode):
    assert episode_label(episode) == str(episode.path)
    assert episode_label(EpisodeView({}, {'task': 'x'})) == '<in memory>'
