"""Writing an episode: routing, finalize and abort, static items and name rules."""

import json

import numpy as np
import pytest

from positronic.dataset import DiskEpisode
from positronic.dataset.episode_writer import EpisodeWriter
from positronic.dataset.errors import (
    ClosedWriterError,
    InvalidNameError,
    NameConflictError,
    SignalValueError,
    StaticValueError,
)

from .conftest import frame_image


@pytest.fixture
def path(tmp_path):
    return tmp_path / 'episode'


def test_directory_is_marked_unfinished_while_writing(path):
    with EpisodeWriter(path) as ep:
        ep.append('grip', 0.5, 10)
        assert (path / '.unfinished').read_text() == 'unfinished'
        assert not (path / 'static.json').exists() and not (path / 'meta.json').exists()
    assert not (path / '.unfinished').exists()


def test_first_value_routes_images_to_video_and_the_rest_to_parquet(path):
    with EpisodeWriter(path) as ep:
        ep.append('image.wrist', frame_image(0), 10)
        ep.append('robot_state.q', np.zeros(7, np.float32), 10)
        ep.append('grip', 0.5, 10)
        ep.append('rgba', np.zeros(4, np.uint8), 10)
    assert sorted(p.name for p in path.iterdir()) == [
        'grip.parquet',
        'image.wrist.frames.parquet',
        'image.wrist.mp4',
        'meta.json',
        'rgba.parquet',
        'robot_state.q.parquet',
        'static.json',
    ]


def test_finalize_writes_static_and_meta_json(path):
    with EpisodeWriter(path) as ep:
        ep.append('grip', 0.5, 10)
        ep.set_static('task', 'stack')
        ep.set_static('cfg', {'sizes': (1, 2), 'on': True, 'scale': 0.5})
        created = ep.created_ts_ns
    assert (path / 'static.json').read_text() == json.dumps(
        {'task': 'stack', 'cfg': {'sizes': [1, 2], 'on': True, 'scale': 0.5}}, indent=2
    )
    meta = json.loads((path / 'meta.json').read_text())
    assert list(meta) == ['schema_version', 'created_ts_ns', 'writer', 'path']
    assert meta['schema_version'] == 1 and meta['created_ts_ns'] == created
    assert list(meta['writer'])[:3] == ['python', 'platform', 'version']
    assert list(meta['writer'])[-1] == 'name'
    assert meta['writer']['name'] == 'positronic.dataset.episode_writer.EpisodeWriter'
    assert meta['path'] == str(path.resolve())


def test_episode_without_statics_writes_an_empty_object(path):
    with EpisodeWriter(path) as ep:
        ep.append('x', 1, 1)
    assert json.loads((path / 'static.json').read_text()) == {}
    assert DiskEpisode(path)['x'][0] == (1, 1)


def test_exception_inside_with_block_removes_everything(path):
    with pytest.raises(RuntimeError, match='boom'), EpisodeWriter(path) as ep:
        ep.append('image', frame_image(0), 10)
        ep.append('grip', 0.5, 10)
        raise RuntimeError('boom')
    assert not path.exists()


def test_abort_removes_everything_and_closes_the_writer(path):
    ep = EpisodeWriter(path)
    ep.append('image', frame_image(0), 10)
    ep.abort()
    assert not path.exists()
    with pytest.raises(ClosedWriterError, match='already finalized or aborted'):
        ep.append('image', frame_image(1), 20)
    with pytest.raises(ClosedWriterError):
        ep.append('new', 1.0, 20)
    with pytest.raises(ClosedWriterError):
        ep.set_static('task', 'x')
    ep.abort()
    ep.__exit__(None, None, None)
    assert not path.exists()


def test_finalized_episode_cannot_be_aborted_or_extended(path):
    with EpisodeWriter(path) as ep:
        ep.append('x', 1.0, 1)
    with pytest.raises(ClosedWriterError, match='can no longer be aborted'):
        ep.abort()
    with pytest.raises(ClosedWriterError):
        ep.append('x', 2.0, 2)
    assert DiskEpisode(path)['x'].values.tolist() == [1.0]


def test_writer_refuses_an_existing_directory(path):
    path.mkdir()
    with pytest.raises(FileExistsError):
        EpisodeWriter(path)


def test_name_used_as_signal_cannot_become_static_and_vice_versa(path):
    ep = EpisodeWriter(path)
    ep.append('grip', 0.5, 1)
    with pytest.raises(NameConflictError, match="'grip' is already a signal of this episode"):
        ep.set_static('grip', 1.0)
    ep.set_static('task', 'a')
    with pytest.raises(NameConflictError, match="'task' is already a static item of this episode"):
        ep.append('task', 1.0, 1)
    with pytest.raises(NameConflictError, match="static item 'task' is already set"):
        ep.set_static('task', 'b')
    ep.abort()


@pytest.mark.parametrize(
    ('value', 'message'),
    [
        (None, "static item 'k': k is None; null is not allowed"),
        ({'a': [1, None]}, r"static item 'k': k\['a'\]\[1\] is None"),
        (np.zeros(3), r'k is a numpy.ndarray; expected str, int, float, bool, list, tuple or dict'),
        (np.int64(3), 'k is a numpy.int64'),
        ({1: 'a'}, 'has key 1; dict keys must be str'),
        ({'a', 'b'}, 'k is a builtins.set'),
        (float('nan'), 'only finite floats'),
        ([b'bytes'], r'k\[0\] is a builtins.bytes'),
    ],
)
def test_non_json_static_values_are_refused(path, value, message):
    ep = EpisodeWriter(path)
    with pytest.raises(StaticValueError, match=message):
        ep.set_static('k', value)
    ep.abort()


def test_static_value_is_snapshotted_when_set(path):
    items = [1, 2]
    with EpisodeWriter(path) as ep:
        ep.set_static('items', items)
        items.append(3)
        ep.append('x', 1, 1)
    assert DiskEpisode(path)['items'] == [1, 2]


@pytest.mark.parametrize('name', ['', 'a/b', '..', '.hidden', 'a\\b', 'cam.frames', 7])
def test_signal_names_that_cannot_be_file_names_are_refused(path, name):
    ep = EpisodeWriter(path)
    with pytest.raises(InvalidNameError):
        ep.append(name, 1.0, 1)
    ep.abort()


def test_refused_first_value_leaves_no_signal_behind(path):
    with EpisodeWriter(path) as ep:
        with pytest.raises(SignalValueError, match="signal 'depth'"):
            ep.append('depth', np.zeros((4, 4), np.float32), 1)
        with pytest.raises(SignalValueError, match="signal 'odd'"):
            ep.append('odd', np.zeros((3, 4, 3), np.uint8), 1)
        ep.set_static('depth', 'not recorded')
    assert sorted(p.name for p in path.iterdir()) == ['meta.json', 'static.json']


def test_signals_are_independent_in_time(path):
    with EpisodeWriter(path) as ep:
        ep.append('a', 1.0, 100)
        ep.append('b', 2.0, 50)
        ep.append('a', 3.0, 101)
    episode = DiskEpisode(path)
    assert episode['a'].timestamps.tolist() == [100, 101]
    assert episode['b'].timestamps.tolist() == [50]
