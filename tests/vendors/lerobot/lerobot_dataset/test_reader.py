import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from positronic.vendors.lerobot.lerobot_dataset import (
    DatasetReader,
    FrameTimestampError,
    InconsistentDatasetError,
    NotADatasetError,
    UnsupportedVersionError,
)

from .helpers import CAMERAS, FPS, write_dataset

FIXTURES = Path(__file__).parent / 'fixtures'
LEROBOT_FIXTURE = FIXTURES / 'lerobot_044_tiny'


@pytest.fixture(scope='module')
def lerobot_items() -> dict[str, np.ndarray]:
    """What LeRobot 0.4.4's own LeRobotDataset returned for every item of the fixture (see make_lerobot_fixture)."""
    with np.load(FIXTURES / 'lerobot_044_items.npz') as items:
        return dict(items)


def test_reads_metadata_of_a_dataset_written_by_lerobot():
    reader = DatasetReader(LEROBOT_FIXTURE)
    assert reader.fps == FPS and reader.robot_type == 'fixture'
    assert reader.video_keys == list(CAMERAS)
    assert reader.column_names == [
        'observation.state', 'action', 'timestamp', 'frame_index', 'episode_index', 'index', 'task_index',
    ]  # fmt: skip
    assert [ep.length for ep in reader.episodes] == [12, 20, 9]
    assert [(ep.from_index, ep.to_index) for ep in reader.episodes] == [(0, 12), (12, 32), (32, 41)]
    assert reader.tasks == ['pick the cube', 'place the cube']
    assert reader.positronic_codec is None and reader.video_encoding is None
    assert reader.features[CAMERAS[0]].info['video.codec'] == 'av1'
    assert reader.stats['action']['mean'].shape == (4,)
    assert reader.stats[CAMERAS[0]]['mean'].shape == (3, 1, 1)
    span = reader.episodes[2].videos[CAMERAS[1]]
    assert (span.file.chunk, span.file.file, span.from_s, span.to_s) == (0, 0, 32 / FPS, 41 / FPS)


def test_numeric_columns_equal_lerobot_items(lerobot_items):
    columns = DatasetReader(LEROBOT_FIXTURE).read_columns()
    for name, values in columns.items():
        np.testing.assert_array_equal(values, lerobot_items[name], err_msg=name)


def test_decoded_frames_match_lerobot_decoding(lerobot_items):
    reader = DatasetReader(LEROBOT_FIXTURE)
    for cam in CAMERAS:
        ours = np.concatenate([reader.decode_episode(cam, ep.episode_index) for ep in reader.episodes])
        diff = np.abs(ours.astype(np.int16) - lerobot_items[cam].astype(np.int16))
        assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 3, (cam, diff.mean(), diff.max())


def test_tasks_per_item_match_lerobot(lerobot_items):
    reader = DatasetReader(LEROBOT_FIXTURE)
    task_index = reader.read_columns(['task_index'])['task_index']
    assert [reader.tasks[i] for i in task_index] == lerobot_items['task'].tolist()


def test_iter_frames_resizes(tmp_path):
    frames = list(DatasetReader(LEROBOT_FIXTURE).iter_frames(CAMERAS[0], 1, size=(24, 32)))
    assert len(frames) == 20 and frames[0].shape == (24, 32, 3) and frames[0].dtype == np.uint8


def test_missing_info_json_is_not_a_dataset(tmp_path):
    with pytest.raises(NotADatasetError, match=r'meta/info\.json is missing'):
        DatasetReader(tmp_path)


def test_an_older_codebase_version_is_refused(tmp_path):
    root = tmp_path / 'ds'
    shutil.copytree(LEROBOT_FIXTURE, root)
    info = json.loads((root / 'meta/info.json').read_text())
    (root / 'meta/info.json').write_text(json.dumps({**info, 'codebase_version': 'v2.1'}))
    with pytest.raises(UnsupportedVersionError, match=r"codebase_version is 'v2.1', expected 'v3.0'"):
        DatasetReader(root)


def test_missing_episode_metadata_is_not_a_dataset(tmp_path):
    root = tmp_path / 'ds'
    shutil.copytree(LEROBOT_FIXTURE, root)
    shutil.rmtree(root / 'meta/episodes')
    with pytest.raises(NotADatasetError, match='meta/episodes has no'):
        DatasetReader(root)


def test_a_stray_data_file_is_reported(tmp_path):
    root = tmp_path / 'ds'
    shutil.copytree(LEROBOT_FIXTURE, root)
    shutil.copy(root / 'data/chunk-000/file-000.parquet', root / 'data/chunk-000/file-001.parquet')
    with pytest.raises(InconsistentDatasetError, match=r'not referenced by any episode.*file-001\.parquet'):
        DatasetReader(root)


def test_totals_that_disagree_with_the_episodes_are_reported(tmp_path):
    root = tmp_path / 'ds'
    shutil.copytree(LEROBOT_FIXTURE, root)
    info = json.loads((root / 'meta/info.json').read_text())
    (root / 'meta/info.json').write_text(json.dumps({**info, 'total_frames': 40}))
    with pytest.raises(InconsistentDatasetError, match='total_frames is 40 but the episodes hold 41'):
        DatasetReader(root)


def test_a_frame_time_without_a_video_frame_raises_naming_file_episode_and_time(tmp_path):
    root = tmp_path / 'ds'
    write_dataset(root)
    path = root / 'data/chunk-000/file-000.parquet'
    table = pq.read_table(path)
    timestamps = table.column('timestamp').to_numpy().copy()
    timestamps[12 + 5] += 0.5 / FPS  # episode 1, frame 5 now asks for a time between two frames
    column = table.schema.get_field_index('timestamp')
    pq.write_table(table.set_column(column, 'timestamp', pa.array(timestamps, pa.float32())), path)
    reader = DatasetReader(root)
    reader.decode_episode(CAMERAS[0], 0)
    expected = 12 / FPS + 5.5 / FPS
    with pytest.raises(FrameTimestampError, match=rf'file-000\.mp4 \(episode 1\): .* t={expected:.6f} s'):
        reader.decode_episode(CAMERAS[0], 1)


def test_unknown_names_are_key_errors(written):
    root, _ = written
    reader = DatasetReader(root)
    with pytest.raises(KeyError, match='no per-frame columns'):
        reader.read_columns(['observation.images.left'])
    with pytest.raises(KeyError, match='no video feature'):
        reader.decode_episode('observation.state', 0)
    with pytest.raises(IndexError, match=r'episode 3 out of range \[0, 3\)'):
        reader.episode(3)


def test_read_episode_gives_every_column_of_one_episode(written):
    root, episodes = written
    reader = DatasetReader(root)
    columns = reader.read_episode(1)
    assert set(columns) == set(reader.column_names)
    np.testing.assert_array_equal(columns['observation.state'], episodes[1]['observation.state'].astype(np.float32))
    np.testing.assert_array_equal(columns['index'], np.arange(reader.episode(1).from_index, reader.episode(1).to_index))
