"""Local datasets: block/episode layout, id allocation, unfinished episodes and bad paths."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from positronic.dataset import LocalDataset, LocalDatasetWriter
from positronic.dataset.errors import NotADatasetError
from positronic.dataset.local import discard_unfinished, episode_dir, interrupted_episodes, is_being_written, is_id_name
from tests.raw_episodes import leave_interrupted_episode


def write_episodes(root, tasks):
    writer = LocalDatasetWriter(root)
    for task in tasks:
        with writer.new_episode() as ep:
            ep.append('x', float(len(task)), 1)
            ep.set_static('task', task)
    return writer


def test_episode_directories_are_block_then_zero_padded_id(tmp_path):
    assert episode_dir(tmp_path, 0) == tmp_path / '000000000000' / '000000000000'
    assert episode_dir(tmp_path, 1234) == tmp_path / '000000001000' / '000000001234'
    assert is_id_name('000000000042') and not is_id_name('42') and not is_id_name('00000000004x')
    assert not is_id_name('００００００００００４２')


def test_writer_numbers_episodes_from_zero_and_reader_lists_them_in_order(tmp_path):
    write_episodes(tmp_path / 'ds', ['a', 'bb', 'ccc'])
    assert sorted(p.name for p in (tmp_path / 'ds' / '000000000000').iterdir()) == [
        '000000000000',
        '000000000001',
        '000000000002',
    ]
    dataset = LocalDataset(tmp_path / 'ds')
    assert len(dataset) == 3
    assert [episode['task'] for episode in dataset] == ['a', 'bb', 'ccc']
    assert dataset[-1]['task'] == 'ccc' and [e['task'] for e in dataset[1:]] == ['bb', 'ccc']
    with pytest.raises(IndexError):
        dataset[3]


def test_next_id_follows_the_largest_existing_one_across_blocks(tmp_path):
    root = tmp_path / 'ds'
    write_episodes(root, ['a'])
    (root / '000000000000' / '000000000999').mkdir()
    (root / '000000000000' / '000000000999' / '.unfinished').write_text('unfinished')
    write_episodes(root, ['b'])
    assert (root / '000000001000' / '000000001000' / 'static.json').exists()
    dataset = LocalDataset(root)
    assert [e['task'] for e in dataset] == ['a', 'b']
    assert [p.name for p in dataset.episode_paths] == ['000000000000', '000000001000']


def test_sorting_is_by_id_and_foreign_entries_are_ignored(tmp_path):
    root = tmp_path / 'ds'
    write_episodes(root, ['a', 'b'])
    (root / 'notes').mkdir()
    (root / 'run_metadata_20260101_000000.yaml').write_text('x: 1')
    (root / '000000000000' / 'tmp').mkdir()
    (root / '00000000000').mkdir()
    assert [e['task'] for e in LocalDataset(root)] == ['a', 'b']


def test_unfinished_episodes_are_skipped_but_still_take_an_id(tmp_path):
    root = tmp_path / 'ds'
    writer = write_episodes(root, ['a'])
    open_episode = writer.new_episode()
    open_episode.append('x', 1.0, 1)
    assert len(LocalDataset(root)) == 1
    write_episodes(root, ['c'])
    assert [e.path.name for e in LocalDataset(root)] == ['000000000000', '000000000002']
    open_episode.finalize()
    assert [e['x'][0] for e in LocalDataset(root)] == [(1.0, 1), (1.0, 1), (1.0, 1)]


def test_aborted_id_is_reused_by_the_next_writer(tmp_path):
    root = tmp_path / 'ds'
    writer = write_episodes(root, ['a'])
    writer.new_episode().abort()
    assert LocalDatasetWriter(root).new_episode().path.name == '000000000001'
    assert writer.new_episode().path.name == '000000000002'


def test_crashed_writer_leaves_an_unfinished_episode_that_readers_skip(tmp_path):
    root = tmp_path / 'ds'
    write_episodes(root, ['a'])
    script = textwrap.dedent(
        f"""
        import os
        import numpy as np
        from positronic.dataset import LocalDatasetWriter
        ep = LocalDatasetWriter({str(root)!r}).new_episode()
        for i in range(12000):
            ep.append('q', np.full(7, i, np.float32), i)
        ep.append('cam', np.zeros((16, 16, 3), np.uint8), 0)
        ep.set_static('task', 'crash')
        os._exit(3)
        """
    )
    assert subprocess.run([sys.executable, '-c', script], check=False).returncode == 3
    crashed = root / '000000000000' / '000000000001'
    assert (crashed / '.unfinished').exists() and (crashed / 'q.parquet').exists()
    assert [e['task'] for e in LocalDataset(root)] == ['a']
    assert LocalDatasetWriter(root).new_episode().path.name == '000000000002'


def test_paths_that_are_not_datasets_are_refused(tmp_path):
    with pytest.raises(NotADatasetError, match=r'missing\); expected a directory'):
        LocalDataset(tmp_path / 'nope')
    (tmp_path / 'file').write_text('x')
    with pytest.raises(NotADatasetError, match=r'is not a dataset root \(a file\)'):
        LocalDataset(tmp_path / 'file')
    with pytest.raises(NotADatasetError, match='is a file'):
        LocalDatasetWriter(tmp_path / 'file')
    write_episodes(tmp_path / 'ds', ['a'])
    with pytest.raises(NotADatasetError, match='is an episode directory'):
        LocalDataset(tmp_path / 'ds' / '000000000000' / '000000000000')


def test_empty_directory_is_an_empty_dataset(tmp_path):
    assert len(LocalDataset(tmp_path)) == 0


def test_episode_list_is_taken_at_open(tmp_path):
    root = tmp_path / 'ds'
    write_episodes(root, ['a'])
    dataset = LocalDataset(root)
    write_episodes(root, ['b'])
    assert len(dataset) == 1 and len(LocalDataset(root)) == 2


def test_writer_creates_missing_parents(tmp_path):
    root = tmp_path / 'a' / 'b' / 'ds'
    with LocalDatasetWriter(root) as writer, writer.new_episode() as ep:
        ep.append('q', np.ones(2), 5)
    assert LocalDataset(root)[0]['q'].time[5][1] == 5


def test_interrupted_recordings_are_listed_and_discarded_but_a_live_one_is_kept(tmp_path):
    root = tmp_path / 'ds'
    write_episodes(root, ['a'])
    crashed = leave_interrupted_episode(root)
    live = LocalDatasetWriter(root).new_episode()
    live.append('x', 1.0, 1)
    assert LocalDataset(root).unfinished_paths == [crashed, live.path]
    assert is_being_written(live.path) and not is_being_written(crashed)
    assert interrupted_episodes(root) == [crashed]

    assert discard_unfinished(root) == [crashed]
    assert not crashed.exists() and live.path.is_dir()
    live.set_static('task', 'b')
    live.finalize()
    assert [e['task'] for e in LocalDataset(root)] == ['a', 'b'] and LocalDataset(root).unfinished_paths == []
