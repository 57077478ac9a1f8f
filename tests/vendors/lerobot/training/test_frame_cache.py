import errno
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from positronic.command import DataError
from positronic.vendors.lerobot.lerobot_dataset import DatasetReader, VideoEncoding
from positronic.vendors.lerobot.training import frame_cache
from positronic.vendors.lerobot.training.frame_cache import (
    MANIFEST_FILE,
    FrameCache,
    FrameCacheSpaceError,
    machine_tag,
)

from ..tiny_dataset import LENGTHS, write_tiny_dataset


@pytest.fixture(scope='module')
def reader(tmp_path_factory) -> DatasetReader:
    return DatasetReader(write_tiny_dataset(tmp_path_factory.mktemp('cache') / 'dataset'))


def test_cache_holds_every_decoded_frame_channel_first(reader, tmp_path):
    cache = FrameCache.open_or_build(reader, tmp_path)
    assert set(cache.frames) == {'observation.images.left', 'observation.images.side'}
    for key, frames in cache.frames.items():
        assert frames.shape == (sum(LENGTHS), 3, 32, 32) and frames.dtype == np.uint8
        for ep in reader.episodes:
            decoded = reader.decode_episode(key, ep.episode_index)
            np.testing.assert_array_equal(frames[ep.from_index : ep.to_index], decoded.transpose(0, 3, 1, 2))


@pytest.mark.skipif(not hasattr(os, 'posix_fallocate'), reason='no posix_fallocate on this platform')
def test_the_disk_space_of_a_cache_is_allocated_before_decoding(reader, tmp_path, monkeypatch):
    allocated = {}

    def decode_after_checking_allocation(reader, key, episode, frames):
        for path in tmp_path.glob('.tmp-*/*.u8'):
            allocated.setdefault(path.name, path.stat().st_blocks * 512 >= path.stat().st_size > 0)
        return real_decode(reader, key, episode, frames)

    real_decode = frame_cache._decode_into
    monkeypatch.setattr(frame_cache, '_decode_into', decode_after_checking_allocation)
    FrameCache.open_or_build(reader, tmp_path)
    assert allocated == {'observation.images.left.u8': True, 'observation.images.side.u8': True}


def test_a_full_disk_is_a_data_error_before_decoding_and_leaves_nothing(reader, tmp_path, monkeypatch):
    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(os, 'posix_fallocate', no_space, raising=False)
    with pytest.raises(
        FrameCacheSpaceError,
        match=r'frame cache .*: no space left on its disk for .*\.u8 \(0\.00 GB, [\d.]+ GB free\); .*--cache_dir',
    ) as error:
        FrameCache.open_or_build(reader, tmp_path)
    assert isinstance(error.value, DataError)
    assert list(tmp_path.iterdir()) == []


def test_valid_cache_is_reused_and_a_broken_one_rebuilt(reader, tmp_path):
    first = FrameCache.open_or_build(reader, tmp_path)
    array_file = next(first.directory.glob('*.u8'))
    stamp = array_file.stat().st_mtime_ns
    second = FrameCache.open_or_build(reader, tmp_path)
    assert second.directory == first.directory and array_file.stat().st_mtime_ns == stamp

    (first.directory / MANIFEST_FILE).write_text('{"format": 0}')
    rebuilt = FrameCache.open_or_build(reader, tmp_path)
    assert array_file.stat().st_mtime_ns != stamp
    np.testing.assert_array_equal(rebuilt.frames['observation.images.left'], first.frames['observation.images.left'])
    assert [p.name for p in tmp_path.iterdir()] == [first.directory.name]


def test_a_rebuild_removes_the_unfinished_builds_of_killed_processes_only(reader, tmp_path):
    first = FrameCache.open_or_build(reader, tmp_path)
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    alive = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        prefix = f'.tmp-{first.directory.name}-{machine_tag()}-'
        abandoned, running = tmp_path / f'{prefix}{dead.pid}', tmp_path / f'{prefix}{alive.pid}'
        elsewhere = tmp_path / f'.tmp-{first.directory.name}-othermachine-{dead.pid}'
        for folder in (abandoned, running, elsewhere):
            folder.mkdir()
            (folder / 'observation.images.left.u8').write_bytes(b'partial')
        (first.directory / MANIFEST_FILE).write_text('{"format": 0}')
        FrameCache.open_or_build(reader, tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [first.directory.name, running.name, elsewhere.name]
        )
    finally:
        alive.kill()
        alive.wait()


def test_other_dataset_gets_its_own_cache(reader, tmp_path):
    other = DatasetReader(write_tiny_dataset(tmp_path / 'other', lengths=(5,)))
    a = FrameCache.open_or_build(reader, tmp_path / 'cache')
    b = FrameCache.open_or_build(other, tmp_path / 'cache')
    assert a.directory != b.directory
    assert b.frames['observation.images.side'].shape[0] == 5


def test_a_dataset_reconverted_in_place_at_another_crf_rebuilds_its_stale_cache(tmp_path, capsys):
    root = write_tiny_dataset(tmp_path / 'dataset')
    old = FrameCache.open_or_build(DatasetReader(root), tmp_path / 'cache')
    old_left = np.array(old.frames['observation.images.left'])
    shutil.rmtree(root)
    reader = DatasetReader(write_tiny_dataset(root, video=VideoEncoding(crf=45)))
    assert reader.total_frames == sum(LENGTHS)  # same path, same frame count: only the files tell them apart

    capsys.readouterr()
    cache = FrameCache.open_or_build(reader, tmp_path / 'cache')
    out = capsys.readouterr().out
    assert 'is stale' in out and 'videos/observation.images.left/chunk-000/file-000.mp4 (rewritten)' in out
    for key, frames in cache.frames.items():
        for ep in reader.episodes:
            decoded = reader.decode_episode(key, ep.episode_index).transpose(0, 3, 1, 2)
            np.testing.assert_array_equal(frames[ep.from_index : ep.to_index], decoded)
    assert not np.array_equal(cache.frames['observation.images.left'], old_left)
    assert [p.name for p in (tmp_path / 'cache').iterdir()] == [cache.directory.name]
