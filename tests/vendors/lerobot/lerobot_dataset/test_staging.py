import json

import pytest

from positronic.vendors.lerobot.lerobot_dataset import staging as staging_module
from positronic.vendors.lerobot.lerobot_dataset.errors import OutputExistsError, WriterLockedError
from positronic.vendors.lerobot.lerobot_dataset.staging import (
    BUILD_DIR,
    JOURNAL_FILE,
    LOCK_FILE,
    Staging,
    has_pending_commit,
    recover_pending_commit,
    staging_path,
)


def test_staging_is_a_hidden_sibling(tmp_path):
    assert staging_path(tmp_path / 'my_task') == tmp_path / '.my_task.partial'


def test_a_live_lock_is_refused_and_released_on_release(tmp_path):
    root = tmp_path / 'ds'
    staging = Staging.acquire(root, complete_pending_commit=False)
    with pytest.raises(WriterLockedError):
        Staging.acquire(root, complete_pending_commit=False)
    staging.release()
    assert not staging_path(root).exists()
    Staging.acquire(root, complete_pending_commit=False).release()


def test_what_a_dead_writer_left_is_cleared(tmp_path):
    root = tmp_path / 'ds'
    left = staging_path(root)
    (left / BUILD_DIR / 'data').mkdir(parents=True)
    (left / BUILD_DIR / 'data' / 'half.parquet').write_bytes(b'PAR1')
    (left / LOCK_FILE).touch()
    staging = Staging.acquire(root, complete_pending_commit=False)
    assert list(staging.build.iterdir()) == []
    staging.release()


def test_create_commit_renames_the_build_onto_the_target(tmp_path):
    root = tmp_path / 'ds'
    staging = Staging.acquire(root, complete_pending_commit=False)
    (staging.build / 'meta').mkdir()
    (staging.build / 'meta' / 'info.json').write_text('{}')
    staging.commit_new_dataset()
    assert (root / 'meta' / 'info.json').read_text() == '{}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ds']


def test_create_commit_refuses_a_target_that_filled_up_meanwhile(tmp_path):
    root = tmp_path / 'ds'
    staging = Staging.acquire(root, complete_pending_commit=False)
    (staging.build / 'x').write_text('new')
    root.mkdir()
    (root / 'y').write_text('theirs')
    with pytest.raises(OutputExistsError):
        staging.commit_new_dataset()
    staging.release()
    assert [p.name for p in root.iterdir()] == ['y']


def test_a_pending_journal_is_replayed_idempotently_by_the_next_writer(tmp_path):
    root = tmp_path / 'ds'
    (root / 'meta').mkdir(parents=True)
    (root / 'meta' / 'info.json').write_text('old')
    left = staging_path(root)
    (left / BUILD_DIR / 'data').mkdir(parents=True)
    (left / BUILD_DIR / 'data' / 'file-001.parquet').write_text('moved already')  # pretend: not yet moved
    (left / BUILD_DIR / 'meta').mkdir()
    (left / BUILD_DIR / 'meta' / 'info.json').write_text('new')
    (root / 'videos').mkdir()
    (root / 'videos' / 'file-001.mp4').write_text('moved before the crash')
    moves = [['videos/file-001.mp4', 'videos/file-001.mp4'], ['data/file-001.parquet', 'data/file-001.parquet']]
    moves.append(['meta/info.json', 'meta/info.json'])
    (left / JOURNAL_FILE).write_text(json.dumps({'moves': moves}))
    assert has_pending_commit(root)
    Staging.acquire(root, complete_pending_commit=True).release()
    assert not has_pending_commit(root) and not left.exists()
    assert (root / 'meta' / 'info.json').read_text() == 'new'
    assert (root / 'data' / 'file-001.parquet').read_text() == 'moved already'
    assert (root / 'videos' / 'file-001.mp4').read_text() == 'moved before the crash'


def _start_commit(tmp_path, monkeypatch, moves_done: int):
    """A dataset with info.json 'old' and an append committing a new video and info.json 'new', killed (an
    exception standing for the kill) after ``moves_done`` moves."""
    root = tmp_path / 'ds'
    (root / 'meta').mkdir(parents=True)
    (root / 'meta' / 'info.json').write_text('old')
    staging = Staging.acquire(root, complete_pending_commit=True)
    (staging.build / 'videos').mkdir()
    (staging.build / 'videos' / 'file-001.mp4').write_text('video')
    (staging.build / 'meta').mkdir()
    (staging.build / 'meta' / 'info.json').write_text('new')
    real_move, done = staging_module._move, []

    def move_then_stop(source, target):
        if len(done) == moves_done:
            raise KeyboardInterrupt
        real_move(source, target)
        done.append(target)

    monkeypatch.setattr(staging_module, '_move', move_then_stop)
    with pytest.raises(KeyboardInterrupt):
        staging.commit_moves([('videos/file-001.mp4', 'videos/file-001.mp4'), ('meta/info.json', 'meta/info.json')])
    monkeypatch.setattr(staging_module, '_move', real_move)
    return root


@pytest.mark.parametrize('moves_done', [0, 1])
def test_recover_rolls_back_an_interrupted_commit_to_the_files_before_it(tmp_path, monkeypatch, moves_done):
    root = _start_commit(tmp_path, monkeypatch, moves_done)
    assert has_pending_commit(root) and (root / 'videos' / 'file-001.mp4').exists() == (moves_done == 1)
    assert recover_pending_commit(root, rollback=True)
    assert (root / 'meta' / 'info.json').read_text() == 'old' and not (root / 'videos' / 'file-001.mp4').exists()
    assert not staging_path(root).exists() and not recover_pending_commit(root)


def test_recover_finishes_an_interrupted_commit(tmp_path, monkeypatch):
    root = _start_commit(tmp_path, monkeypatch, moves_done=1)
    assert recover_pending_commit(root)
    assert (root / 'meta' / 'info.json').read_text() == 'new' and (root / 'videos' / 'file-001.mp4').exists()
    assert not staging_path(root).exists()
