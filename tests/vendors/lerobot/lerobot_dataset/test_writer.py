import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from positronic.vendors.lerobot.lerobot_dataset import (
    AV1_LEROBOT,
    DatasetReader,
    DatasetWriter,
    EmptyDatasetError,
    FeatureMismatchError,
    IncompatibleAppendError,
    InconsistentDatasetError,
    InvalidFpsError,
    NotADatasetError,
    OutputExistsError,
    VideoEncoding,
    WriterLockedError,
)
from positronic.vendors.lerobot.lerobot_dataset.staging import staging_path

from .helpers import (
    CAMERAS,
    FPS,
    LENGTHS,
    TASKS,
    VIDEO_TOLERANCE,
    episode,
    features,
    frames_raising_at,
    mean_abs_diff,
    scene,
    snapshot,
    write_dataset,
)

REPO_ROOT = Path(__file__).resolve().parents[4]
LEROBOT_FIXTURE = Path(__file__).parent / 'fixtures' / 'lerobot_044_tiny'


# ------------------------------------------------------------------------------------------------------ round trip
def test_reader_returns_exactly_the_numbers_and_closely_the_frames_written(written):
    root, episodes = written
    reader = DatasetReader(root)
    columns = reader.read_columns()
    np.testing.assert_array_equal(
        columns['observation.state'], np.concatenate([e['observation.state'] for e in episodes]).astype(np.float32)
    )
    np.testing.assert_array_equal(columns['action'], np.concatenate([e['action'] for e in episodes]))
    np.testing.assert_array_equal(columns['next.reward'], np.concatenate([e['next.reward'] for e in episodes]))
    np.testing.assert_array_equal(columns['phase'], np.concatenate([e['phase'] for e in episodes]))
    np.testing.assert_array_equal(columns['index'], np.arange(sum(LENGTHS)))
    np.testing.assert_array_equal(columns['episode_index'], np.repeat([0, 1, 2], LENGTHS))
    np.testing.assert_array_equal(columns['task_index'], np.repeat([0, 1, 0], LENGTHS))
    np.testing.assert_array_equal(
        columns['timestamp'], np.concatenate([np.arange(n) / FPS for n in LENGTHS]).astype(np.float32)
    )
    for e, ep in enumerate(episodes):
        for cam in CAMERAS:
            decoded = reader.decode_episode(cam, e)
            assert decoded.shape == ep[cam].shape
            assert mean_abs_diff(decoded, ep[cam]) < VIDEO_TOLERANCE
    assert reader.tasks == ['pick the cube', 'place the cube']
    assert [ep.tasks for ep in reader.episodes] == [(t,) for t in TASKS]
    np.testing.assert_array_equal(reader.read_episode(1, ['phase'])['phase'], episodes[1]['phase'])


def test_info_json_has_lerobot_fields_in_order(written):
    root, _ = written
    info = json.loads((root / 'meta/info.json').read_text())
    assert list(info) == [
        'codebase_version', 'robot_type', 'total_episodes', 'total_frames', 'total_tasks', 'chunks_size',
        'data_files_size_in_mb', 'video_files_size_in_mb', 'fps', 'splits', 'data_path', 'video_path', 'features',
    ]  # fmt: skip
    assert info['codebase_version'] == 'v3.0' and info['robot_type'] == 'test_robot'
    assert (info['total_episodes'], info['total_frames'], info['total_tasks']) == (3, 41, 2)
    assert (info['chunks_size'], info['data_files_size_in_mb'], info['video_files_size_in_mb']) == (1000, 100, 200)
    assert info['splits'] == {'train': '0:3'} and info['fps'] == 30
    assert info['data_path'] == 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet'
    assert info['video_path'] == 'videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4'
    assert list(info['features']) == [*features(), 'timestamp', 'frame_index', 'episode_index', 'index', 'task_index']
    assert info['features']['timestamp'] == {'dtype': 'float32', 'shape': [1], 'names': None}
    video = info['features'][CAMERAS[0]]
    assert video['info'] == {
        'video.height': 48, 'video.width': 64, 'video.codec': 'h264', 'video.pix_fmt': 'yuv420p',
        'video.is_depth_map': False, 'video.fps': 30, 'video.channels': 3, 'has_audio': False,
    }  # fmt: skip
    assert (root / 'meta/info.json').read_text().startswith('{\n    "codebase_version": "v3.0"')


def test_data_parquet_has_lerobot_types_and_one_row_group_per_episode(written):
    root, _ = written
    meta = pq.ParquetFile(root / 'data/chunk-000/file-000.parquet')
    assert meta.metadata.num_row_groups == 3
    assert [meta.metadata.row_group(i).num_rows for i in range(3)] == list(LENGTHS)
    schema = meta.schema_arrow
    assert str(schema.field('action').type) == 'fixed_size_list<element: float>[4]'
    assert schema.field('timestamp').type == pa.float32()
    assert meta.metadata.row_group(0).column(0).compression == 'SNAPPY'


def test_episode_metadata_columns_and_types(written):
    root, _ = written
    table = pq.read_table(root / 'meta/episodes/chunk-000/file-000.parquet')
    names = table.column_names
    assert names[:7] == [
        'episode_index', 'tasks', 'length', 'data/chunk_index', 'data/file_index', 'dataset_from_index',
        'dataset_to_index',
    ]  # fmt: skip
    assert names[7:11] == [
        f'videos/{CAMERAS[0]}/{f}' for f in ('chunk_index', 'file_index', 'from_timestamp', 'to_timestamp')
    ]
    assert names[-2:] == ['meta/episodes/chunk_index', 'meta/episodes/file_index']
    stats_names = [n for n in names if n.startswith('stats/')]
    assert stats_names[:10] == [
        f'stats/observation.state/{s}'
        for s in ('min', 'max', 'mean', 'std', 'count', 'q01', 'q10', 'q50', 'q90', 'q99')
    ]
    assert len(stats_names) == 10 * (len(features()) + 5)
    types = {f.name: str(f.type) for f in table.schema}
    assert types['stats/phase/min'] == 'list<element: int64>'
    assert types['stats/phase/mean'] == 'list<element: double>'
    assert types['stats/action/count'] == 'list<element: int64>'
    assert types[f'stats/{CAMERAS[1]}/mean'] == 'list<element: list<element: list<element: double>>>'
    assert types[f'videos/{CAMERAS[1]}/from_timestamp'] == 'double'
    rows = table.to_pydict()
    assert rows['dataset_from_index'] == [0, 12, 32] and rows['dataset_to_index'] == [12, 32, 41]
    np.testing.assert_allclose(rows[f'videos/{CAMERAS[0]}/from_timestamp'], [0, 12 / 30, 32 / 30])
    np.testing.assert_allclose(rows[f'videos/{CAMERAS[0]}/to_timestamp'], [12 / 30, 32 / 30, 41 / 30])
    assert rows['tasks'] == [[t] for t in TASKS]
    assert rows[f'stats/{CAMERAS[0]}/count'] == [[12], [20], [9]]


def test_stats_json_covers_every_feature_with_lerobot_shapes(written):
    root, episodes = written
    stats = json.loads((root / 'meta/stats.json').read_text())
    assert set(stats) == {*features(), 'timestamp', 'frame_index', 'episode_index', 'index', 'task_index'}
    assert stats['index']['min'] == [0] and stats['index']['max'] == [40] and stats['index']['count'] == [41]
    state = np.concatenate([e['observation.state'] for e in episodes]).astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(stats['observation.state']['mean'], state.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats['observation.state']['std'], state.std(0), rtol=1e-6)
    image = np.asarray(stats[CAMERAS[0]]['std'])
    assert image.shape == (3, 1, 1) and (image > 0.02).all()
    assert stats[CAMERAS[0]]['count'] == [41]


CODEC_RECORD = {'version': 1, 'name': 'eepose_absolute', 'image_size': [32, 32]}


def test_positronic_meta_records_codec_and_encoding(tmp_path):
    root = tmp_path / 'ds'
    with DatasetWriter.create(root, features(), FPS, positronic_codec=CODEC_RECORD) as writer:
        writer.add_episode(episode(3, seed=0), 'x')
    reader = DatasetReader(root)
    assert reader.positronic_codec == CODEC_RECORD
    assert reader.video_encoding == VideoEncoding()


def test_an_append_keeps_the_codec_record_the_dataset_was_written_with(tmp_path):
    root = tmp_path / 'ds'
    old_record = 'positronic.vendors.lerobot.codecs.eepose_absolute'  # as datasets written before the spec record it
    with DatasetWriter.create(root, features(), FPS, positronic_codec=old_record) as writer:
        writer.add_episode(episode(3, seed=0), 'x')
    with DatasetWriter.append(root, features(), FPS, positronic_codec=CODEC_RECORD) as writer:
        writer.add_episode(episode(3, seed=1), 'x')
    assert DatasetReader(root).positronic_codec == old_record


def test_cameras_given_as_iterators_and_arrays_write_the_same_numbers(tmp_path):
    root = tmp_path / 'ds'
    with DatasetWriter.create(root, features(), FPS) as writer:
        writer.add_episode(episode(7, seed=5, iterators=True), 'x')
    a = json.loads((root / 'meta/stats.json').read_text())
    assert a[CAMERAS[0]]['count'] == [7]
    assert mean_abs_diff(DatasetReader(root).decode_episode(CAMERAS[0], 0), scene(7, 50)) < VIDEO_TOLERANCE


# -------------------------------------------------------------------------------------------------------- rollover
def test_files_roll_over_by_size_and_chunk(tmp_path):
    root = tmp_path / 'ds'
    lengths = (5, 6, 7, 8)
    episodes = write_dataset(
        root, lengths, ('a',) * 4, chunks_size=2, data_files_size_in_mb=0.0001, video_files_size_in_mb=0.0001
    )
    assert sorted(str(p.relative_to(root)) for p in (root / 'data').rglob('*.parquet')) == [
        'data/chunk-000/file-000.parquet', 'data/chunk-000/file-001.parquet',
        'data/chunk-001/file-000.parquet', 'data/chunk-001/file-001.parquet',
    ]  # fmt: skip
    reader = DatasetReader(root)
    spans = [ep.videos[CAMERAS[1]] for ep in reader.episodes]
    assert [(s.file.chunk, s.file.file, s.from_s) for s in spans] == [
        (0, 0, 0.0),
        (0, 1, 0.0),
        (1, 0, 0.0),
        (1, 1, 0.0),
    ]
    np.testing.assert_array_equal(
        reader.read_columns(['phase'])['phase'], np.concatenate([e['phase'] for e in episodes])
    )
    for e, ep in enumerate(episodes):
        assert mean_abs_diff(reader.decode_episode(CAMERAS[1], e), ep[CAMERAS[1]]) < VIDEO_TOLERANCE


def test_episode_metadata_is_written_in_batches_of_ten_and_rolls_over(tmp_path):
    root = tmp_path / 'ds'
    numeric = {'x': {'dtype': 'float32', 'shape': [2], 'names': None}}
    with DatasetWriter.create(root, numeric, FPS, data_files_size_in_mb=0.001) as writer:
        for e in range(25):
            writer.add_episode({'x': np.full((2, 2), e)}, 'task')
    files = sorted((root / 'meta/episodes').rglob('*.parquet'))
    assert [pq.ParquetFile(f).metadata.num_rows for f in files] == [10, 10, 5]
    assert len(DatasetReader(root).episodes) == 25
    assert DatasetReader(root).info['video_path'] is None


# ------------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize('fps', [0, -30, 29.97, True, '30'])
def test_non_positive_or_non_integer_fps_is_refused_before_writing(tmp_path, fps):
    with pytest.raises(InvalidFpsError, match='positive integer'):
        DatasetWriter.create(tmp_path / 'ds', features(), fps)
    assert list(tmp_path.iterdir()) == []


def test_create_refuses_a_non_empty_output_directory(tmp_path):
    (tmp_path / 'ds').mkdir()
    (tmp_path / 'ds' / 'notes.txt').write_text('mine')
    with pytest.raises(OutputExistsError, match='not an empty directory'):
        DatasetWriter.create(tmp_path / 'ds', features(), FPS)
    assert [p.name for p in tmp_path.iterdir()] == ['ds']


def test_create_fills_an_empty_output_directory(tmp_path):
    (tmp_path / 'ds').mkdir()
    write_dataset(tmp_path / 'ds', (3,), ('a',))
    assert DatasetReader(tmp_path / 'ds').total_frames == 3


def _bad(frames: dict, **changes) -> dict:
    out = dict(frames)
    for key, value in changes.items():
        if value is None:
            del out[key]
        else:
            out[key] = value
    return out


@pytest.mark.parametrize(
    'change, match',
    [
        ({'action': None}, r"missing features \['action'\]"),
        ({'extra': np.zeros(6)}, r"unknown features \['extra'\]"),
        ({'action': np.zeros((6, 3), np.float32)}, r"'action': expected shape \(6, 4\), got \(6, 3\)"),
        ({'phase': np.zeros(6, np.float32)}, "'phase': expected int64-compatible values, got dtype float32"),
        ({'observation.state': np.array([['a'] * 4] * 6)}, "'observation.state': expected float32-compatible"),
        ({'next.reward': np.r_[0.0, np.nan, 0, 0, 0, 0]}, "'next.reward': non-finite value at frame 1"),
        ({'action': np.zeros((5, 4), np.float32)}, 'different numbers of frames'),
        ({CAMERAS[0]: np.zeros((6, 48, 64, 3), np.float32)}, 'expected uint8 frames of shape'),
        ({CAMERAS[0]: iter([np.zeros((48, 64, 3), np.uint8)] * 3 + [np.zeros((64, 48, 3), np.uint8)])}, 'frame 3'),
        ({CAMERAS[0]: iter([np.zeros((48, 64, 3), np.uint8)] * 4)}, '4 frames, expected 6'),
        ({CAMERAS[0]: iter([np.zeros((48, 64, 3), np.uint8)] * 7)}, 'more than 6 frames'),
    ],
)
def test_frames_that_do_not_match_the_features_are_refused_and_the_writer_goes_on(tmp_path, change, match):
    root = tmp_path / 'ds'
    with DatasetWriter.create(root, features(), FPS) as writer:
        with pytest.raises(FeatureMismatchError, match=match):
            writer.add_episode(_bad(episode(6, seed=1), **change), 'task')
        writer.add_episode(episode(4, seed=2), 'task')
    reader = DatasetReader(root)
    assert (reader.total_episodes, reader.total_frames) == (1, 4)
    assert reader.episodes[0].videos[CAMERAS[0]].from_s == 0.0


def test_a_dataset_without_episodes_is_not_created(tmp_path):
    with pytest.raises(EmptyDatasetError, match='no episodes'), DatasetWriter.create(tmp_path / 'ds', features(), FPS):
        pass
    assert list(tmp_path.iterdir()) == []


def test_empty_task_is_refused(tmp_path):
    with DatasetWriter.create(tmp_path / 'ds', features(), FPS) as writer:
        with pytest.raises(FeatureMismatchError, match='task must be a non-empty string'):
            writer.add_episode(episode(2, seed=0), '')
        writer.add_episode(episode(2, seed=0), 't')


def test_a_second_writer_of_the_same_path_is_refused(tmp_path):
    first = DatasetWriter.create(tmp_path / 'ds', features(), FPS)
    try:
        with pytest.raises(WriterLockedError, match='another process is writing'):
            DatasetWriter.create(tmp_path / 'ds', features(), FPS)
    finally:
        first.abort()
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------- interruption
def test_an_exception_inside_a_frame_iterator_leaves_no_dataset_and_a_rerun_completes(tmp_path):
    root = tmp_path / 'ds'
    broken = episode(8, seed=1)
    broken[CAMERAS[1]] = frames_raising_at(broken[CAMERAS[1]], 4, RuntimeError('camera unplugged'))
    with pytest.raises(RuntimeError, match='camera unplugged'), DatasetWriter.create(root, features(), FPS) as writer:
        writer.add_episode(episode(5, seed=0), 'a')
        writer.add_episode(broken, 'a')
    assert list(tmp_path.iterdir()) == []
    write_dataset(root)
    assert DatasetReader(root).total_episodes == 3


KILLED_WRITER = """
    import sys, time
    from positronic.vendors.lerobot.lerobot_dataset import DatasetWriter
    from tests.vendors.lerobot.lerobot_dataset.helpers import CAMERAS, episode, features

    def stalled(frames):
        yield from frames[:3]
        print('STALLED', flush=True)
        time.sleep(600)

    root, mode = sys.argv[1], sys.argv[2]
    opener = DatasetWriter.create if mode == 'create' else DatasetWriter.append
    with opener(root, features(), 30) as writer:
        writer.add_episode(episode(6, seed=7), 'killed task')
        frames = episode(6, seed=8)
        frames[CAMERAS[0]] = stalled(frames[CAMERAS[0]])
        writer.add_episode(frames, 'killed task')
"""


def _kill_writer_midway(root: Path, mode: str) -> None:
    process = subprocess.Popen(
        [sys.executable, '-c', textwrap.dedent(KILLED_WRITER), str(root), mode],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, 'PYTHONPATH': str(REPO_ROOT)},
    )
    try:
        line = process.stdout.readline()
        assert line.strip() == 'STALLED', process.stderr.read()
        assert staging_path(root).exists()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)


def test_a_killed_create_leaves_no_dataset_and_a_rerun_completes(tmp_path):
    root = tmp_path / 'ds'
    _kill_writer_midway(root, 'create')
    assert not root.exists()
    with pytest.raises(NotADatasetError):
        DatasetReader(root)
    write_dataset(root)
    assert DatasetReader(root).total_frames == sum(LENGTHS)
    assert not staging_path(root).exists()


# ---------------------------------------------------------------------------------------------------------- append
def test_append_adds_episodes_in_new_files_and_matches_a_single_write(tmp_path):
    root, whole = tmp_path / 'ds', tmp_path / 'whole'
    first = write_dataset(root, (12, 20), TASKS[:2])
    with DatasetWriter.append(root, features(), FPS) as writer:
        third = episode(9, seed=2)
        assert writer.add_episode(third, 'new task') == 2
    write_dataset(whole, LENGTHS, (*TASKS[:2], 'new task'))

    reader = DatasetReader(root)
    assert (reader.total_episodes, reader.total_frames) == (3, 41)
    assert reader.tasks == ['pick the cube', 'place the cube', 'new task']
    assert sorted(str(p.relative_to(root)) for p in root.rglob('*.parquet')) == [
        'data/chunk-000/file-000.parquet', 'data/chunk-000/file-001.parquet',
        'meta/episodes/chunk-000/file-000.parquet', 'meta/episodes/chunk-000/file-001.parquet', 'meta/tasks.parquet',
    ]  # fmt: skip
    assert reader.episodes[2].videos[CAMERAS[0]].file.file == 1 and reader.episodes[2].videos[CAMERAS[0]].from_s == 0
    np.testing.assert_array_equal(reader.read_columns(['index'])['index'], np.arange(41))
    assert mean_abs_diff(reader.decode_episode(CAMERAS[0], 2), third[CAMERAS[0]]) < VIDEO_TOLERANCE
    assert mean_abs_diff(reader.decode_episode(CAMERAS[0], 0), first[0][CAMERAS[0]]) < VIDEO_TOLERANCE
    appended, single = reader.stats, DatasetReader(whole).stats
    for feature in single:
        for stat in ('min', 'max', 'mean', 'std', 'count', 'q50'):
            np.testing.assert_allclose(appended[feature][stat], single[feature][stat], rtol=1e-9, err_msg=feature)


@pytest.mark.parametrize(
    'kwargs, match',
    [
        ({'fps': 15}, 'dataset fps is 30, got fps=15'),
        ({'features': features(CAMERAS[:1])}, r"missing \['observation.images.side'\]"),
        (
            {'features': {**features(), 'action': {'dtype': 'float32', 'shape': [5], 'names': None}}},
            "feature 'action' is",
        ),
        (
            {'features': {**features(), 'phase': {'dtype': 'int64', 'shape': [1], 'names': ['p']}}},
            "feature 'phase' is",
        ),
        ({'video': AV1_LEROBOT}, "is h264/yuv420p, got encoder 'libsvtav1'"),
    ],
)
def test_append_refuses_a_different_dataset_and_writes_nothing(tmp_path, kwargs, match):
    root = tmp_path / 'ds'
    with DatasetWriter.create(root, features(), FPS, positronic_codec=CODEC_RECORD) as writer:
        writer.add_episode(episode(4, seed=0), 'a')
    before = snapshot(root)
    args = {'features': features(), 'fps': FPS, **kwargs}
    with pytest.raises(IncompatibleAppendError, match=match):
        DatasetWriter.append(root, args.pop('features'), args.pop('fps'), **args)
    assert snapshot(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ds']


def test_append_to_a_path_that_is_not_a_dataset(tmp_path):
    with pytest.raises(NotADatasetError, match=r'info\.json is missing'):
        DatasetWriter.append(tmp_path / 'nothing', features(), FPS)
    assert list(tmp_path.iterdir()) == []


def test_an_exception_during_append_leaves_the_dataset_intact_and_a_rerun_completes(tmp_path):
    root = tmp_path / 'ds'
    write_dataset(root, (5, 6), TASKS[:2])
    before = snapshot(root)
    with pytest.raises(RuntimeError, match='source failed'), DatasetWriter.append(root, features(), FPS) as writer:
        writer.add_episode(episode(4, seed=3), 'a')
        broken = episode(5, seed=4)
        broken[CAMERAS[0]] = frames_raising_at(broken[CAMERAS[0]], 2, RuntimeError('source failed'))
        writer.add_episode(broken, 'a')
    assert snapshot(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ds']
    with DatasetWriter.append(root, features(), FPS) as writer:
        writer.add_episode(episode(4, seed=3), 'a')
    assert DatasetReader(root).total_frames == 15


def test_a_killed_append_leaves_the_dataset_intact_and_a_rerun_completes(tmp_path):
    root = tmp_path / 'ds'
    write_dataset(root, (5, 6), TASKS[:2])
    before = snapshot(root)
    _kill_writer_midway(root, 'append')
    assert snapshot(root) == before
    assert DatasetReader(root).total_episodes == 2
    with DatasetWriter.append(root, features(), FPS) as writer:
        writer.add_episode(episode(4, seed=3), 'a')
    assert DatasetReader(root).total_episodes == 3
    assert not staging_path(root).exists()


CRASH_DURING_COMMIT = """
    import os, sys
    from positronic.vendors.lerobot.lerobot_dataset import DatasetWriter
    from tests.vendors.lerobot.lerobot_dataset.helpers import episode, features

    root = sys.argv[1]
    real_replace, moved = os.replace, []

    def replace_then_crash(src, dst):
        real_replace(src, dst)
        if str(dst).startswith(root + os.sep):
            moved.append(dst)
            if len(moved) == 4:  # both videos, tasks.parquet, the episode metadata: then the process dies
                os._exit(3)

    os.replace = replace_then_crash
    with DatasetWriter.append(root, features(), 30) as writer:
        writer.add_episode(episode(4, seed=9), 'crash task')
"""


def test_an_append_that_dies_while_committing_is_completed_by_the_next_writer(tmp_path):
    root = tmp_path / 'ds'
    write_dataset(root, (5, 6), TASKS[:2])
    result = subprocess.run(
        [sys.executable, '-c', textwrap.dedent(CRASH_DURING_COMMIT), str(root)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, 'PYTHONPATH': str(REPO_ROOT)},
    )
    assert result.returncode == 3, result.stderr
    with pytest.raises(InconsistentDatasetError, match='append was interrupted while committing'):
        DatasetReader(root)
    with DatasetWriter.append(root, features(), FPS) as writer:
        writer.add_episode(episode(3, seed=10), 'later task')
    reader = DatasetReader(root)
    assert [ep.length for ep in reader.episodes] == [5, 6, 4, 3]
    assert reader.tasks == [*TASKS[:2], 'crash task', 'later task']
    assert reader.decode_episode(CAMERAS[0], 3).shape == (3, 48, 64, 3)


def test_append_to_a_lerobot_written_dataset_keeps_its_av1_codec(tmp_path):
    root = tmp_path / 'lerobot'
    shutil.copytree(LEROBOT_FIXTURE, root)
    info_features = json.loads((root / 'meta/info.json').read_text())['features']
    declared = {name: info_features[name] for name in ('observation.state', 'action', *CAMERAS)}
    new = {'observation.state': np.ones((4, 4), np.float32), 'action': np.zeros((4, 4), np.float32)}
    new.update({cam: scene(4, 77) for cam in CAMERAS})
    with DatasetWriter.append(root, declared, FPS) as writer:
        assert writer.encoding == AV1_LEROBOT
        writer.add_episode(new, 'pick the cube')
    reader = DatasetReader(root)
    assert reader.total_episodes == 4 and reader.tasks == ['pick the cube', 'place the cube']
    assert reader.features[CAMERAS[0]].info['video.codec'] == 'av1'
    assert mean_abs_diff(reader.decode_episode(CAMERAS[1], 3), new[CAMERAS[1]]) < VIDEO_TOLERANCE
