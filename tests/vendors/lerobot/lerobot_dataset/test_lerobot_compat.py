"""LeRobot 0.4.4 loads the datasets we write, with the values we wrote (needs LEROBOT_PYTHON; skipped otherwise)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from positronic.vendors.lerobot.lerobot_dataset import AV1_LEROBOT, DatasetReader, DatasetWriter

from .helpers import CAMERAS, FPS, VIDEO_TOLERANCE, episode, features, mean_abs_diff, write_dataset

pytestmark = pytest.mark.lerobot

REFERENCE_DATASET = Path('/work/shared/lerobot-reference/dataset_3c')
"""A 3 x 300-frame, two 480x480 AV1 cameras dataset written by LeRobot 0.4.4 (development machines only)."""
DUMP_SCRIPT = Path(__file__).with_name('lerobot_dump.py')
REPO_ROOT = Path(__file__).resolve().parents[4]
ACTION_STEPS = 5
NUMERIC = ('observation.state', 'action', 'next.reward', 'phase', 'timestamp', 'frame_index', 'index', 'task_index')


def dump_with_lerobot(
    lerobot_python: Path, root: Path, work: Path, stride: int = 1
) -> tuple[dict[str, np.ndarray], dict]:
    out = work / f'{root.name}_lerobot.npz'
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_HOME': str(work / 'hf_home')}
    result = subprocess.run(
        [str(lerobot_python), str(DUMP_SCRIPT), str(root), str(out), str(ACTION_STEPS), str(stride)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    with np.load(out) as data:
        arrays = dict(data)
    return arrays, json.loads(str(arrays.pop('meta')))


def expected_action_chunks(action: np.ndarray, lengths: list[int]) -> tuple[np.ndarray, np.ndarray]:
    chunks, pads = [], []
    start = 0
    for n in lengths:
        for i in range(start, start + n):
            wanted = i + np.arange(ACTION_STEPS)
            chunks.append(action[np.clip(wanted, start, start + n - 1)])
            pads.append(wanted >= start + n)
        start += n
    return np.stack(chunks), np.stack(pads)


def check_lerobot_sees_what_we_wrote(root: Path, episodes: list[dict], lerobot: dict, meta: dict) -> None:
    reader = DatasetReader(root)
    ours = reader.read_columns()
    lengths = [ep.length for ep in reader.episodes]
    assert meta['len'] == reader.total_frames and meta['total_episodes'] == reader.total_episodes
    assert meta['tasks'] == reader.tasks
    assert meta['episodes']['dataset_from_index'] == [ep.from_index for ep in reader.episodes]
    for cam in CAMERAS:
        assert meta['episodes'][f'videos/{cam}/from_timestamp'] == [ep.videos[cam].from_s for ep in reader.episodes]
    written = {name: np.concatenate([ep[name] for ep in episodes]) for name in ('observation.state', 'action', 'phase')}
    written['next.reward'] = np.concatenate([ep['next.reward'] for ep in episodes])
    np.testing.assert_array_equal(lerobot['observation.state'], written['observation.state'].astype(np.float32))
    np.testing.assert_array_equal(lerobot['phase'], written['phase'])
    np.testing.assert_array_equal(lerobot['next.reward'], written['next.reward'].astype(np.float32))
    for name in NUMERIC:
        if name != 'action':
            np.testing.assert_array_equal(lerobot[name], ours[name].astype(lerobot[name].dtype), err_msg=name)
    chunks, pads = expected_action_chunks(written['action'], lengths)
    np.testing.assert_array_equal(lerobot['action'], chunks)
    np.testing.assert_array_equal(lerobot['action_is_pad'], pads)
    assert lerobot['task'].tolist() == [reader.tasks[i] for i in ours['task_index']]
    for cam in CAMERAS:
        decoded = np.concatenate([reader.decode_episode(cam, ep.episode_index) for ep in reader.episodes])
        original = np.concatenate([ep[cam] for ep in episodes])
        assert mean_abs_diff(lerobot[cam], decoded) < 1.0
        assert mean_abs_diff(lerobot[cam], original) < VIDEO_TOLERANCE
    for feature, stats in reader.stats.items():
        for name, value in stats.items():
            np.testing.assert_allclose(meta['stats'][feature][name], value, err_msg=f'{feature} {name}')


def test_lerobot_loads_an_h264_dataset_created_then_appended(lerobot_python, tmp_path):
    root = tmp_path / 'h264'
    episodes = write_dataset(root, (12, 20, 9), ('pick', 'place', 'pick'), positronic_codec='eepose_absolute')
    more = [episode(7, seed=11), episode(15, seed=12)]
    with DatasetWriter.append(root, features(), FPS, positronic_codec='eepose_absolute') as writer:
        for frames, task in zip(more, ('place', 'stack'), strict=True):
            writer.add_episode(frames, task)
    assert DatasetReader(root).episodes[3].data_file.file == 1
    lerobot, meta = dump_with_lerobot(lerobot_python, root, tmp_path)
    check_lerobot_sees_what_we_wrote(root, episodes + more, lerobot, meta)


def test_lerobot_loads_an_av1_dataset_with_file_and_chunk_rollover(lerobot_python, tmp_path):
    root = tmp_path / 'av1'
    episodes = write_dataset(
        root,
        (6, 10, 8, 5),
        ('a', 'b', 'a', 'c'),
        video=AV1_LEROBOT,
        chunks_size=2,
        data_files_size_in_mb=0.0001,
        video_files_size_in_mb=0.0001,
    )
    assert DatasetReader(root).episodes[3].videos[CAMERAS[0]].file.chunk == 1
    lerobot, meta = dump_with_lerobot(lerobot_python, root, tmp_path)
    check_lerobot_sees_what_we_wrote(root, episodes, lerobot, meta)


CRASH_DURING_COMMIT = """
    import os, sys
    from positronic.vendors.lerobot.lerobot_dataset import DatasetWriter
    from tests.vendors.lerobot.lerobot_dataset.helpers import episode, features

    root, crash_after = sys.argv[1], int(sys.argv[2])
    real_replace, moved = os.replace, []

    def replace_then_crash(src, dst):
        real_replace(src, dst)
        if str(dst).startswith(root + os.sep):
            moved.append(dst)
            if len(moved) == crash_after:
                os._exit(3)

    os.replace = replace_then_crash
    with DatasetWriter.append(root, features(), 30) as writer:
        writer.add_episode(episode(4, seed=9), 'crash task')
"""


@pytest.mark.parametrize('crash_after', [1, 3, 4, 5, 6, 7])
def test_lerobot_loads_the_dataset_at_every_step_of_an_interrupted_append_commit(lerobot_python, tmp_path, crash_after):
    # Moves: 2 videos, tasks.parquet, episode metadata, data, positronic.json, stats.json, info.json.
    root = tmp_path / 'ds'
    episodes = write_dataset(root, (5, 6), ('a', 'b'))
    result = subprocess.run(
        [sys.executable, '-c', textwrap.dedent(CRASH_DURING_COMMIT), str(root), str(crash_after)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, 'PYTHONPATH': str(REPO_ROOT)},
    )
    assert result.returncode == 3, result.stderr
    lerobot, meta = dump_with_lerobot(lerobot_python, root, tmp_path)
    # info.json is replaced last and LeRobot sizes the dataset from it: every step shows the previous dataset.
    state = np.concatenate([ep['observation.state'] for ep in episodes]).astype(np.float32)
    assert meta['len'] == 11 and meta['total_episodes'] == 2
    np.testing.assert_array_equal(lerobot['observation.state'], state)
    assert lerobot['task'].tolist() == ['a'] * 5 + ['b'] * 6


@pytest.mark.skipif(not REFERENCE_DATASET.is_dir(), reason=f'{REFERENCE_DATASET} is not on this machine')
def test_our_reader_matches_lerobot_on_its_reference_dataset(lerobot_python, tmp_path):
    stride = 29
    lerobot, meta = dump_with_lerobot(lerobot_python, REFERENCE_DATASET, tmp_path, stride)
    reader = DatasetReader(REFERENCE_DATASET)
    assert meta['len'] == reader.total_frames == 900 and meta['tasks'] == reader.tasks
    columns = reader.read_columns()
    picked = np.arange(0, reader.total_frames, stride)
    for name in ('observation.state', 'timestamp', 'frame_index', 'episode_index', 'index', 'task_index'):
        np.testing.assert_array_equal(lerobot[name], columns[name][picked], err_msg=name)
    for cam in reader.video_keys:
        frames = np.concatenate([reader.decode_episode(cam, ep.episode_index) for ep in reader.episodes])
        assert mean_abs_diff(lerobot[cam], frames[picked]) < 1.0
