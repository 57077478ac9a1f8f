"""``positronic-to-lerobot``: convert, append and verify through the real command line, on small raw datasets."""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import configuronic as cfn
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from positronic import keys
from positronic.command import DATA_ERROR_EXIT_CODE, INTERRUPTED_EXIT_CODE, USAGE_ERROR_EXIT_CODE
from positronic.data_collection import main as data_collection_main
from positronic.dataset import LocalDataset
from positronic.vendors.lerobot.codec import (
    GRIP_PART,
    JOINT_NAMES,
    Codec,
    ObservationEncoder,
    StatePart,
    image_size_pair,
)
from positronic.vendors.lerobot.codecs import eepose_absolute
from positronic.vendors.lerobot.conversion.conversion_check import (
    DEFAULT_MIN_PSNR_DB,
    ConversionMismatchError,
    check_conversion,
)
from positronic.vendors.lerobot.conversion.encoded_dataset import EncodedDataset
from positronic.vendors.lerobot.conversion.to_lerobot import main
from positronic.vendors.lerobot.lerobot_dataset import (
    AV1_LEROBOT,
    DatasetReader,
    InconsistentDatasetError,
    NotADatasetError,
    VideoEncoding,
)
from positronic.vendors.lerobot.lerobot_dataset.staging import staging_path
from tests.command_lines import PROGRESS_BAR, reported_error
from tests.raw_episodes import TASK, leave_interrupted_episode, write_dataset
from tests.signals import restore_sigint
from tests.vendors.lerobot.lerobot_dataset.helpers import mean_abs_diff, snapshot
from tests.vendors.lerobot.lerobot_dataset.test_lerobot_compat import dump_with_lerobot

SIZE = 64


@cfn.config(image_size=32)
def wrist_joints(image_size):
    """A custom codec as docs/codecs.md describes it: joints, grip and the wrist camera only."""
    state = (StatePart(keys.ROBOT_Q, JOINT_NAMES), GRIP_PART)
    cameras = {'observation.images.wrist': keys.IMAGE_WRIST}
    return Codec(f'{__name__}.wrist_joints', ObservationEncoder(state, cameras, image_size_pair(image_size)))


EEPOSE = '@positronic.vendors.lerobot.codecs.eepose_absolute'
JOINTS = '@positronic.vendors.lerobot.codecs.joints_absolute'


def cli_args(raw: Path, out: Path, *extra: str, fps: int | None = 30, size: int = SIZE) -> list[str]:
    """Arguments after the command word; ``extra`` comes before the image size so it may replace the codec."""
    args = [f'--dataset.dataset.path={raw}', f'--output_dir={out}', *extra, f'--dataset.codec.image_size={size}']
    return args if fps is None else [*args, f'--fps={fps}']


def encoded(raw: Path, codec=eepose_absolute, size: int = SIZE) -> EncodedDataset:
    return EncodedDataset(LocalDataset(raw), codec.override(image_size=size).instantiate())


def fails(argv: list[str], code: int = DATA_ERROR_EXIT_CODE) -> str:
    """Run the command expecting a reported error (one stderr line, no traceback, exit ``code``); returns the line."""
    exit_code, line = reported_error(main, argv)
    assert exit_code == code and line.startswith('positronic-to-lerobot: error: '), (exit_code, line)
    return line


def leaves_nothing(out: Path) -> bool:
    return not out.exists() and not staging_path(out).exists()


@pytest.fixture(scope='module')
def raw(tmp_path_factory) -> Path:
    """Two 1 s episodes: state at 100 Hz, two 64x48 cameras at 30 fps, a static task."""
    return write_dataset(tmp_path_factory.mktemp('raw') / 'raw', num_episodes=2)


@pytest.fixture(scope='module')
def converted(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('converted') / 'lerobot'
    main(['convert', *cli_args(raw, out)])
    return out


def test_convert_writes_what_the_codec_projects(raw, converted):
    reader = DatasetReader(converted)
    codec = eepose_absolute.override(image_size=SIZE).instantiate()
    assert reader.fps == 30 and reader.total_episodes == 2 and reader.tasks == [TASK]
    assert reader.positronic_codec == {'version': 1, 'name': 'eepose_absolute', 'image_size': [SIZE, SIZE]}
    assert {n: reader.features[n].declaration()['shape'] for n in codec.features()} == {
        n: list(f['shape']) for n, f in codec.features().items()
    }
    for i, episode in enumerate(LocalDataset(raw)):
        projected = codec.project_episode(episode, 30)
        columns = reader.read_episode(i)
        assert len(projected) == reader.episode(i).length == 30
        np.testing.assert_array_equal(columns['observation.state'], projected.frames['observation.state'])
        np.testing.assert_array_equal(columns['action'], projected.frames['action'])
        np.testing.assert_array_equal(columns['timestamp'], (np.arange(30) / 30).astype(np.float32))
        decoded = reader.decode_episode('observation.images.left', i)
        assert decoded.shape == (30, SIZE, SIZE, 3)


def test_verify_rereads_every_feature_and_frame(raw, converted, capsys):
    main(['verify', *cli_args(raw, converted, fps=None)])
    out = capsys.readouterr().out
    assert '2 episodes, 60 frames match' in out
    assert '| observation.state | absolute difference, largest | 0 |' in out
    report = check_conversion(converted, encoded(raw))
    assert report.episodes == 2 and report.frames == 60
    assert report.worst['action'] == 0 and min(report.worst['observation.images.side'], 99) > 30


def test_verify_catches_swapped_cameras_and_a_wrong_task(raw, converted, tmp_path):
    codec = encoded(raw).codec
    swapped = ObservationEncoder(
        codec.observation.state,
        {'observation.images.left': keys.IMAGE_EXTERIOR, 'observation.images.side': keys.IMAGE_WRIST},
        codec.observation.image_size,
    )
    unrecorded = tmp_path / 'unrecorded'  # a dataset recording no codec: any codec of its features may check it
    shutil.copytree(converted, unrecorded)
    (unrecorded / 'meta' / 'positronic.json').unlink()
    with pytest.raises(ConversionMismatchError, match=r"'observation.images.left' frame \d+ has PSNR"):
        check_conversion(unrecorded, EncodedDataset(LocalDataset(raw), Codec('mine.swapped', swapped)))
    message = fails(['verify', *cli_args(raw, converted, '--task=something else', fps=None)])
    assert "expected 'something else'" in message


def test_the_documented_command_line_with_home_paths(tmp_path):
    """Exactly the documented console command, with ``~`` paths (the shell does not expand ``--x=~/...``)."""
    home = tmp_path / 'home'
    write_dataset(home / 'datasets' / 'my_task_raw', num_episodes=1, duration_s=0.5)
    script = Path(sys.executable).with_name('positronic-to-lerobot')
    command = (
        [str(script)] if script.exists() else [sys.executable, '-m', 'positronic.vendors.lerobot.conversion.to_lerobot']
    )
    result = subprocess.run(
        [
            *command,
            'convert',
            '--dataset.dataset.path=~/datasets/my_task_raw',
            f'--dataset.codec={EEPOSE}',
            '--output_dir=~/datasets/lerobot/my_task',
            '--fps=30',
            '--task=stack the red cube',
        ],
        env={**os.environ, 'HOME': str(home)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'episode/s' in result.stderr  # the progress bar
    reader = DatasetReader(home / 'datasets' / 'lerobot' / 'my_task')
    assert reader.total_episodes == 1 and reader.tasks == ['stack the red cube']
    assert reader.features['observation.images.side'].shape == (480, 480, 3)


def test_task_override_and_episodes_without_a_task(tmp_path):
    no_task = write_dataset(tmp_path / 'raw', num_episodes=1, task=None)
    message = fails(['convert', *cli_args(no_task, tmp_path / 'a')])
    assert str(LocalDataset(no_task)[0].path) in message and '--task' in message
    assert leaves_nothing(tmp_path / 'a')
    main(['convert', *cli_args(no_task, tmp_path / 'b', '--task=put it on top')])
    assert DatasetReader(tmp_path / 'b').tasks == ['put it on top']


def test_append_adds_episodes_that_verify_against_their_raw_source(raw, tmp_path):
    out = tmp_path / 'lerobot'
    main(['convert', *cli_args(raw, out)])
    more = write_dataset(tmp_path / 'more', num_episodes=1, duration_s=0.5, task='another task')
    main(['append', *cli_args(more, out)])
    reader = DatasetReader(out)
    assert reader.total_episodes == 3 and reader.tasks == [TASK, 'another task']
    assert [ep.length for ep in reader.episodes] == [30, 30, 15]
    main(['verify', *cli_args(more, out, '--first_episode=2', fps=None)])
    main(['verify', *cli_args(raw, out, fps=None)])


@pytest.mark.parametrize(
    'extra, fps, size, match',
    [
        ((), 15, SIZE, r'dataset fps is 30, got fps=15'),
        ((), 30, 32, r"positronic.json records codec 'eepose_absolute' at 64x64, but codec 'eepose_absolute' at 32x32"),
        ((f'--dataset.codec={JOINTS}',), 30, SIZE, r"records codec 'eepose_absolute' at 64x64, but codec 'joints_abs"),
    ],
    ids=['fps', 'image_size', 'codec'],
)
def test_append_refuses_a_different_fps_image_size_or_codec(raw, converted, extra, fps, size, match):
    before = snapshot(converted)
    message = fails(['append', *cli_args(raw, converted, *extra, fps=fps, size=size)])
    assert str(converted) in message
    assert re.search(match, message), message
    assert snapshot(converted) == before and not staging_path(converted).exists()


def test_append_needs_an_existing_dataset(raw, tmp_path):
    message = fails(['append', *cli_args(raw, tmp_path / 'absent')])
    assert 'meta/info.json is missing' in message


def test_missing_signals_name_the_episode_the_key_and_the_codec(tmp_path):
    partial = write_dataset(tmp_path / 'raw', num_episodes=2, skip=(keys.IMAGE_EXTERIOR,))
    message = fails(['convert', *cli_args(partial, tmp_path / 'out')])
    assert str(LocalDataset(partial)[0].path) in message
    assert "['image.exterior']" in message and "'eepose_absolute'" in message
    assert leaves_nothing(tmp_path / 'out')
    joints = fails(['convert', *cli_args(partial, tmp_path / 'out', f'--dataset.codec={JOINTS}')])
    assert "'joints_absolute'" in joints


@pytest.mark.parametrize(
    'case, match, code',
    [
        ('empty dataset', 'has no finished episodes', DATA_ERROR_EXIT_CODE),
        ('missing input', 'is not a dataset root (missing)', DATA_ERROR_EXIT_CODE),
        ('zero fps', 'fps must be a positive integer, got 0', USAGE_ERROR_EXIT_CODE),
        ('negative fps', 'fps must be a positive integer, got -5', USAGE_ERROR_EXIT_CODE),
        ('fractional fps', 'fps must be a positive integer, got 29.97', USAGE_ERROR_EXIT_CODE),
        ('empty task', "--task must be a non-empty string, got ''", USAGE_ERROR_EXIT_CODE),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(raw, tmp_path, case, match, code):
    source, fps, extra = raw, 30, ()
    if case == 'empty dataset':
        source = tmp_path / 'empty'
        source.mkdir()
    elif case == 'missing input':
        source = tmp_path / 'nowhere'
    elif case.endswith('fps'):
        fps = {'zero fps': 0, 'negative fps': -5, 'fractional fps': 29.97}[case]
    else:
        extra = ('--task=',)
    out = tmp_path / 'out'
    assert match in fails(['convert', *cli_args(source, out, *extra, fps=fps)], code)
    assert leaves_nothing(out)


@pytest.mark.parametrize(
    'flags, match',
    [
        (('--video.crf=999',), '--video.crf=999 is out of range: libx264 takes an integer CRF in [0, 51]'),
        (('--video.crf=-1',), '--video.crf=-1 is out of range'),
        (('--video.encoder=libsvtav1', '--video.crf=64'), 'libsvtav1 takes an integer CRF in [0, 63]'),
        (('--video.gop=0',), '--video.gop=0'),
        (('--read_ahead=-1',), '--read_ahead=-1: expected an integer >= 0'),
    ],
)
def test_out_of_range_video_and_read_ahead_flags_are_refused_before_writing(raw, tmp_path, flags, match):
    out = tmp_path / 'out'
    assert match in fails(['convert', *cli_args(raw, out, *flags)], USAGE_ERROR_EXIT_CODE)
    assert leaves_nothing(out)


def test_append_refuses_a_negative_read_ahead(raw, converted, tmp_path):
    before = snapshot(converted)
    assert '--read_ahead=-1' in fails(['append', *cli_args(raw, converted, '--read_ahead=-1')], USAGE_ERROR_EXIT_CODE)
    assert snapshot(converted) == before


def test_convert_refuses_a_non_empty_output_directory(raw, tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'notes.txt').write_text('mine')
    assert 'exists and is not an empty directory' in fails(['convert', *cli_args(raw, out)])
    assert [p.name for p in out.iterdir()] == ['notes.txt'] and not staging_path(out).exists()
    empty = tmp_path / 'empty_dir'
    empty.mkdir()
    main(['convert', *cli_args(raw, empty)])
    assert DatasetReader(empty).total_episodes == 2


def test_a_failing_conversion_leaves_nothing(tmp_path):
    source = write_dataset(tmp_path / 'raw', num_episodes=3)
    video = LocalDataset(source)[2].path / f'{keys.IMAGE_WRIST}.mp4'
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 3])  # the last episode's camera is cut short
    out = tmp_path / 'out'
    assert str(video) in fails(['convert', *cli_args(source, out)])
    assert leaves_nothing(out)


@pytest.fixture(scope='module')
def long_raw(tmp_path_factory) -> Path:
    """Eight 2 s episodes: converted at 192x192, long enough to interrupt after the first episode."""
    return write_dataset(tmp_path_factory.mktemp('long') / 'raw', num_episodes=8, duration_s=2.0)


def start_and_interrupt(args: list[str], out: Path, signum: int) -> subprocess.CompletedProcess:
    """Run ``convert`` in a child process and send it ``signum`` once its first episode is in the staging area."""
    command = [sys.executable, '-m', 'positronic.vendors.lerobot.conversion.to_lerobot', 'convert', *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=restore_sigint
    )
    first_episode = staging_path(out) / 'dataset' / 'data' / 'chunk-000' / 'file-000.parquet'
    deadline = time.monotonic() + 60
    while not first_episode.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, 'the conversion finished before it could be interrupted'
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def test_a_killed_conversion_leaves_nothing_that_loads_and_a_rerun_completes(long_raw, tmp_path):
    out = tmp_path / 'out'
    args = cli_args(long_raw, out, size=192)
    assert start_and_interrupt(args, out, signal.SIGKILL).returncode == -signal.SIGKILL
    assert not out.exists() and staging_path(out).exists()  # the dead writer's staging area, cleared by the next
    with pytest.raises(NotADatasetError):
        DatasetReader(out)
    main(['convert', *args])
    assert DatasetReader(out).total_episodes == 8 and not staging_path(out).exists()


def test_ctrl_c_stops_a_conversion_promptly_and_cleans_up(long_raw, tmp_path):
    out = tmp_path / 'out'
    result = start_and_interrupt(cli_args(long_raw, out, size=192), out, signal.SIGINT)
    assert result.returncode == INTERRUPTED_EXIT_CODE and 'positronic-to-lerobot: interrupted' in result.stderr
    assert leaves_nothing(out)


def test_help_describes_the_commands_and_their_arguments(capsys):
    main(['--help'])
    listing = capsys.readouterr().out
    assert all(word in listing for word in ('convert', 'append', 'verify', '--dataset.dataset.path=<REQUIRED>'))
    main(['convert', '--help'])
    text = capsys.readouterr().out
    assert 'output_dir: <REQUIRED>' in text and 'fps: <REQUIRED>' in text
    assert 'positronic.vendors.lerobot.codecs.eepose_absolute' in text and 'image_size: 480' in text


@pytest.mark.lerobot
def test_lerobot_loads_a_converted_then_appended_dataset_with_the_same_values(lerobot_python, raw, tmp_path):
    out = tmp_path / 'lerobot'
    main(['convert', *cli_args(raw, out)])
    more = write_dataset(tmp_path / 'more', num_episodes=1, duration_s=0.5, task='another task')
    main(['append', *cli_args(more, out)])
    lerobot, meta = dump_with_lerobot(lerobot_python, out, tmp_path)
    reader = DatasetReader(out)
    columns = reader.read_columns()
    assert meta['len'] == reader.total_frames == 75 and meta['tasks'] == [TASK, 'another task']
    codec = encoded(raw).codec
    projected = [codec.project_episode(ep, 30) for ep in [*LocalDataset(raw), *LocalDataset(more)]]
    state = np.concatenate([p.frames['observation.state'] for p in projected])
    np.testing.assert_array_equal(lerobot['observation.state'], state)
    np.testing.assert_array_equal(lerobot['action'][:, 0], np.concatenate([p.frames['action'] for p in projected]))
    for name in ('timestamp', 'frame_index', 'episode_index', 'index', 'task_index'):
        np.testing.assert_array_equal(lerobot[name], columns[name], err_msg=name)
    assert lerobot['task'].tolist() == [p.task for p in projected for _ in range(len(p))]
    for camera in codec.observation.cameras:
        ours = np.concatenate([reader.decode_episode(camera, ep.episode_index) for ep in reader.episodes])
        assert mean_abs_diff(lerobot[camera], ours) < 1.0


def test_a_custom_codec_config_converts_and_verifies(raw, tmp_path):
    codec = f'--dataset.codec=@{__name__}.wrist_joints'
    out = tmp_path / 'custom'
    main(['convert', f'--dataset.dataset.path={raw}', codec, f'--output_dir={out}', '--fps=10'])
    reader = DatasetReader(out)
    assert reader.video_keys == ['observation.images.wrist'] and reader.features['observation.state'].shape == (8,)
    assert reader.positronic_codec == {'version': 1, 'name': f'{__name__}.wrist_joints', 'image_size': [32, 32]}
    assert reader.total_frames == 20
    main(['verify', f'--dataset.dataset.path={raw}', codec, f'--output_dir={out}'])


def test_video_settings_come_from_the_command_line(raw, tmp_path):
    main(['convert', *cli_args(raw, tmp_path / 'crf', '--video.crf=35')])
    assert DatasetReader(tmp_path / 'crf').video_encoding == VideoEncoding(crf=35)
    main(
        ['convert', *cli_args(raw, tmp_path / 'av1', '--video=@positronic.vendors.lerobot.lerobot_dataset.AV1_LEROBOT')]
    )
    reader = DatasetReader(tmp_path / 'av1')
    assert (
        reader.video_encoding == AV1_LEROBOT and reader.features['observation.images.left'].info['video.codec'] == 'av1'
    )
    main(['verify', *cli_args(raw, tmp_path / 'av1', fps=None)])


def test_verify_reports_a_changed_value_another_codec_and_missing_episodes(raw, tmp_path):
    out = tmp_path / 'lerobot'
    main(['convert', *cli_args(raw, out)])
    data = out / 'data' / 'chunk-000' / 'file-000.parquet'
    table = pq.read_table(data)
    action = table.column('action').combine_chunks()
    values = action.values.to_numpy(zero_copy_only=False).copy()
    values[8 * 40 + 7] += 0.5  # frame 10 of episode 1: target_grip
    changed = pa.FixedSizeListArray.from_arrays(pa.array(values, type=action.type.value_type), 8)
    pq.write_table(table.set_column(table.schema.get_field_index('action'), 'action', changed), data)
    assert "episode 1 (raw episode 1): 'action' differs from frame 10 on" in fails(
        ['verify', *cli_args(raw, out, fps=None)]
    )
    assert f"{out / 'meta' / 'positronic.json'} records codec 'eepose_absolute' at 64x64, but codec " in fails(
        ['verify', *cli_args(raw, out, f'--dataset.codec={JOINTS}', fps=None)]
    )
    three = write_dataset(tmp_path / 'three', num_episodes=3)
    assert 'are asked for but it has 2' in fails(['verify', *cli_args(three, out, fps=None)])


@pytest.mark.parametrize(
    'flags, named',
    [
        (
            ['--dataset.codec=@positronic.vendors.lerobot.codecs.nope', '--fps=30'],
            '--dataset.codec=@positronic.vendors.lerobot.codecs.nope: module',
        ),
        ([f'--dataset.codec.image_size={SIZE}'], 'convert needs --fps'),
        (['--dataset.codec.image_size=-32', '--fps=30'], '--dataset.codec: image_size must be positive and even'),
        (['--dataset.codec.image_size=32', '--fps=30', '--no_such_flag=1'], 'unknown flag --no_such_flag'),
    ],
    ids=['unknown-codec', 'missing-fps', 'negative-image-size', 'unknown-flag'],
)
def test_a_wrong_flag_is_a_usage_error_naming_it_and_writes_nothing(raw, tmp_path, flags, named):
    out = tmp_path / 'out'
    line = fails(['convert', f'--dataset.dataset.path={raw}', f'--output_dir={out}', *flags], USAGE_ERROR_EXIT_CODE)
    assert named in line
    assert leaves_nothing(out)


def _cut_in_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    'damage, file_name',
    [
        (_cut_in_half, f'{keys.ROBOT_Q}.parquet'),
        (lambda path: path.write_bytes(b'PAR1' + bytes(200) + b'PAR1'), f'{keys.ROBOT_EE_POSE}.parquet'),
        (_cut_in_half, f'{keys.IMAGE_WRIST}.mp4'),
        (lambda path: path.write_bytes(b'not a video' * 50), f'{keys.IMAGE_EXTERIOR}.mp4'),
        (_cut_in_half, 'static.json'),
    ],
    ids=['truncated-parquet', 'corrupt-parquet', 'truncated-mp4', 'corrupt-mp4', 'truncated-static-json'],
)
def test_an_unreadable_raw_file_is_a_data_error_naming_it_and_writes_nothing(tmp_path, damage, file_name):
    source = write_dataset(tmp_path / 'raw', num_episodes=2)
    broken = LocalDataset(source)[1].path / file_name
    damage(broken)
    out = tmp_path / 'out'
    assert str(broken) in fails(['convert', *cli_args(source, out)])
    assert leaves_nothing(out)


@pytest.mark.parametrize(
    'content, expected',
    [('{"action": ', 'cannot read it'), ('{"action": 3}', 'expected a JSON object {feature: {stat:')],
    ids=['truncated', 'wrong-shape'],
)
def test_a_bad_stats_json_is_a_data_error_naming_it_and_append_writes_nothing(raw, tmp_path, content, expected):
    out = tmp_path / 'lerobot'
    main(['convert', *cli_args(raw, out)])
    stats = out / 'meta' / 'stats.json'
    stats.write_text(content)
    before = snapshot(out)
    line = fails(['append', *cli_args(raw, out)])
    assert f'{stats}: ' in line and expected in line
    assert snapshot(out) == before and not staging_path(out).exists()


def test_a_truncated_dataset_parquet_is_a_data_error_naming_it(raw, tmp_path):
    out = tmp_path / 'lerobot'
    main(['convert', *cli_args(raw, out)])
    data = out / 'data' / 'chunk-000' / 'file-000.parquet'
    _cut_in_half(data)
    assert f'{data}: cannot read it' in fails(['verify', *cli_args(raw, out, fps=None)])


def _small_filesystem_command(size: str, mount_point: Path, command: list[str]) -> list[str] | None:
    """``command`` run with a tmpfs of ``size`` mounted at ``mount_point`` in a private mount namespace, then
    ``left: <what the tmpfs holds>`` printed (needs ``unshare``; None where this machine does not allow it)."""
    unshare = shutil.which('unshare')
    if unshare is None or subprocess.run([unshare, '-rm', 'true'], capture_output=True).returncode != 0:
        return None
    where = shlex.quote(str(mount_point))
    script = f'mount -t tmpfs -o size={size} tmpfs {where} && {{ {shlex.join(command)}; status=$?; }}'
    return [unshare, '-rm', 'sh', '-c', f'{script} && echo "left: $(ls -A {where})" && exit $status']


def test_a_full_disk_is_a_data_error_naming_the_output_and_leaves_nothing(raw, tmp_path):
    disk = tmp_path / 'disk'
    disk.mkdir()
    out = disk / 'lerobot'
    convert = [sys.executable, '-m', 'positronic.vendors.lerobot.conversion.to_lerobot', 'convert', *cli_args(raw, out)]
    command = _small_filesystem_command('60k', disk, convert)
    if command is None:
        pytest.skip('no unprivileged mount namespace here to make a small filesystem')
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    lines = [line for line in re.split(r'[\r\n]+', result.stderr) if line and not PROGRESS_BAR.search(line)]
    assert result.returncode == DATA_ERROR_EXIT_CODE and 'Traceback' not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith(f'positronic-to-lerobot: error: --output_dir={out}: no space left')
    assert result.stdout.splitlines()[-1] == 'left: '  # neither the dataset nor its staging area


@pytest.fixture(scope='module')
def sim_raw(tmp_path_factory) -> Path:
    """One scripted stacking episode rendered by the MuJoCo simulator (320x240 cameras, ~8 s)."""
    root = tmp_path_factory.mktemp('sim') / 'raw'
    data_collection_main(['sim', f'--output_dir={root}', '--num_episodes=1', '--keep_failed=True'])
    return root


def test_verify_passes_a_fresh_32_px_conversion_whose_codec_loss_is_under_the_fixed_bar(sim_raw, tmp_path):
    out = tmp_path / 'out'
    main(['convert', *cli_args(sim_raw, out, size=32)])
    report = check_conversion(out, encoded(sim_raw, size=32), min_psnr_db=0)
    assert min(report.worst[key] for key in encoded(sim_raw).codec.observation.cameras) < DEFAULT_MIN_PSNR_DB
    main(['verify', *cli_args(sim_raw, out, fps=None, size=32)])


@pytest.mark.parametrize('damage', ['the other camera', 'a coarser encode', 'zeroed bytes'])
def test_verify_fails_a_corrupted_32_px_video(sim_raw, tmp_path, damage):
    out = tmp_path / 'out'
    main(['convert', *cli_args(sim_raw, out, size=32)])
    left, side = (next((out / 'videos' / key).rglob('*.mp4')) for key in encoded(sim_raw).codec.observation.cameras)
    if damage == 'the other camera':
        left.write_bytes(side.read_bytes())
    elif damage == 'a coarser encode':
        main(['convert', *cli_args(sim_raw, tmp_path / 'coarse', '--video.crf=45', size=32)])
        left.write_bytes(next((tmp_path / 'coarse' / 'videos' / left.parent.parent.name).rglob('*.mp4')).read_bytes())
    else:
        data = bytearray(left.read_bytes())
        data[len(data) // 2 : len(data) // 2 + len(data) // 8] = bytes(len(data) // 8)
        left.write_bytes(data)
    message = fails(['verify', *cli_args(sim_raw, out, fps=None, size=32)])
    if damage != 'zeroed bytes':  # an undecodable packet is reported by the decoder itself
        assert "'observation.images.left' frame" in message and 'the codec alone gives' in message


APPEND_THAT_DIES = """
import os, sys
from positronic.vendors.lerobot.lerobot_dataset import staging
from positronic.vendors.lerobot.conversion.to_lerobot import main

moves_before_death = int(sys.argv[1])
real_move, done = staging._move, []


def die_before_the_journal(*args, **kwargs):
    os._exit(3)


def move_then_die(source, target):
    if len(done) == moves_before_death:
        os._exit(3)
    real_move(source, target)
    done.append(target)
    if len(done) == moves_before_death:
        os._exit(3)


if moves_before_death < 0:
    staging.write_json_atomic = die_before_the_journal
staging._move = move_then_die
main(sys.argv[2:])
"""
APPEND_MOVES = 8
"""Files an append of two episodes moves into a two-camera dataset: 2 videos, tasks, episode metadata, data,
positronic.json, stats.json, info.json."""


def append_and_die(raw: Path, out: Path, moves_before_death: int) -> None:
    """Run ``append`` in a child process that dies (os._exit, no cleanup) after that many of its commit's moves
    (-1: just before the commit journal is written)."""
    script = [sys.executable, '-c', APPEND_THAT_DIES, str(moves_before_death), 'append', *cli_args(raw, out)]
    result = subprocess.run(script, capture_output=True, text=True)
    assert result.returncode == 3, result.stderr


@pytest.fixture
def converted_and_second_raw(raw, tmp_path) -> tuple[Path, Path]:
    out = tmp_path / 'out'
    main(['convert', *cli_args(raw, out)])
    return out, write_dataset(tmp_path / 'raw2', num_episodes=2)


def raw_sources(raw: Path) -> list[str]:
    return [str(path.resolve()) for path in LocalDataset(raw).episode_paths]


@pytest.mark.parametrize('moves_before_death', [-1, 0, 4, APPEND_MOVES])
def test_rerunning_an_append_killed_around_its_commit_adds_each_episode_once(
    raw, converted_and_second_raw, moves_before_death
):
    out, raw2 = converted_and_second_raw
    append_and_die(raw2, out, moves_before_death)
    if moves_before_death >= 0:
        with pytest.raises(InconsistentDatasetError, match=f'positronic-to-lerobot recover --output_dir={out}'):
            DatasetReader(out)
    main(['append', *cli_args(raw2, out)])
    reader = DatasetReader(out)
    assert reader.total_episodes == 4
    assert reader.source_episodes == raw_sources(raw) + raw_sources(raw2)
    main(['verify', *cli_args(raw2, out, '--first_episode=2', fps=None)])


def test_rerunning_a_finished_append_or_appending_converted_episodes_changes_nothing(
    raw, converted_and_second_raw, capsys
):
    out, raw2 = converted_and_second_raw
    main(['append', *cli_args(raw2, out)])
    before = snapshot(out)
    capsys.readouterr()
    main(['append', *cli_args(raw2, out)])
    main(['append', *cli_args(raw, out)])
    assert capsys.readouterr().out.count('nothing to append: every episode of') == 2
    assert snapshot(out) == before and DatasetReader(out).total_episodes == 4


def test_an_append_of_new_and_known_episodes_adds_only_the_new_ones(raw, converted_and_second_raw, tmp_path, capsys):
    out, raw2 = converted_and_second_raw
    main(['append', *cli_args(raw2, out)])
    write_dataset(raw2, num_episodes=1)  # a third episode recorded into the same raw dataset
    main(['append', *cli_args(raw2, out)])
    assert '2 of 3 raw episodes are already in' in capsys.readouterr().out
    assert DatasetReader(out).source_episodes == raw_sources(raw) + raw_sources(raw2)


@pytest.mark.parametrize('rollback', [False, True])
def test_recover_finishes_or_rolls_back_an_append_killed_while_committing(
    raw, converted_and_second_raw, capsys, rollback
):
    out, raw2 = converted_and_second_raw
    before = snapshot(out)
    append_and_die(raw2, out, moves_before_death=6)  # the new episodes and tasks are in, stats and info are not
    main(['recover', f'--output_dir={out}', f'--rollback={rollback}'])
    assert ('rolled back' if rollback else 'finished') in capsys.readouterr().out
    assert not staging_path(out).exists()
    if rollback:
        assert snapshot(out) == before
    else:
        assert DatasetReader(out).source_episodes == raw_sources(raw) + raw_sources(raw2)
    main(['recover', f'--output_dir={out}'])
    assert 'no interrupted append to recover' in capsys.readouterr().out


def test_convert_names_interrupted_recordings_it_skips_and_how_to_delete_them(tmp_path, capsys):
    raw = write_dataset(tmp_path / 'raw', num_episodes=1)
    crashed = leave_interrupted_episode(raw)
    main(['convert', *cli_args(raw, tmp_path / 'out')])
    err = capsys.readouterr().err
    assert f'skipping 1 interrupted recording(s) still marked unfinished: {crashed}' in err
    assert f'positronic-data-collection discard_unfinished --output_dir={raw}' in err
    assert DatasetReader(tmp_path / 'out').total_episodes == 1
