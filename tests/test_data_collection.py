import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from positronic import data_collection, keys
from positronic.command import DATA_ERROR_EXIT_CODE, USAGE_ERROR_EXIT_CODE
from positronic.data_collection import (
    STATIC_BLEND,
    STATIC_DWELL,
    STATIC_EARLY_CLOSE,
    STATIC_MISS_RATE,
    STATIC_NOISE,
    STATIC_NOISE_TIME,
    STATIC_REPLANS,
    STATIC_SEED,
    STATIC_SUCCESS,
    main,
)
from positronic.dataset import LocalDataset
from positronic.dataset.episode import UNFINISHED_MARKER
from positronic.sim import World
from positronic.sim.grasp_misses import MISSED_GRIP
from tests.command_lines import reported_error
from tests.raw_episodes import leave_interrupted_episode
from tests.signals import restore_sigint

SMALL = ['--camera_size=[64,48]', '--fps=10']
SIGNALS = (
    keys.ROBOT_Q,
    keys.ROBOT_DQ,
    keys.ROBOT_EE_POSE,
    keys.GRIP,
    keys.COMMAND_POSE,
    keys.TARGET_GRIP,
    keys.IMAGE_WRIST,
    keys.IMAGE_EXTERIOR,
)


def episode_dirs(root: Path) -> list[Path]:
    return sorted(p for block in root.iterdir() for p in block.iterdir())


def test_records_successful_demonstrations_with_all_signals_and_statics(tmp_path, capsys):
    root = tmp_path / 'raw'
    main(['sim', f'--output_dir={root}', '--num_episodes=2', '--seed=3', *SMALL])
    assert '2/2 demonstrations succeeded; kept 2 episodes' in capsys.readouterr().out

    dataset = LocalDataset(root)
    assert len(dataset) == 2
    for episode, seed in zip(dataset, (3, 4), strict=True):
        assert episode[keys.TASK] == keys.STACK_CUBES_TASK
        assert episode[STATIC_SEED] == seed
        assert episode[STATIC_SUCCESS] == 1.0
        lengths = {name: len(episode[name]) for name in SIGNALS}
        assert len(set(lengths.values())) == 1 and lengths[keys.ROBOT_Q] > 60  # one record per tick, ~8 s at 10 fps
        ts = episode[keys.ROBOT_Q].timestamps
        assert np.all(np.diff(ts) == 100_000_000)  # sim time, 1 / fps apart
        assert np.array_equal(episode[keys.IMAGE_WRIST].timestamps, ts)
        assert episode[keys.ROBOT_Q].dtype == np.float32 and episode[keys.ROBOT_Q].shape == (7,)
        assert episode[keys.ROBOT_EE_POSE].dtype == np.float64 and episode[keys.COMMAND_POSE].shape == (7,)
        frame, _ = episode[keys.IMAGE_EXTERIOR][10]
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
        grips = np.array(episode[keys.TARGET_GRIP].values)
        assert grips[0] == 0.0 and grips.max() == 1.0 and grips[-1] == 0.0  # open, grasp, release
        measured = np.array(episode[keys.GRIP].values)
        assert 0.3 < measured[np.argmax(grips) + 15] < 0.7  # the fingers stop on the 4 cm cube
    first, second = (np.array(ep[keys.COMMAND_POSE].values) for ep in dataset)
    assert not np.allclose(first[:60], second[:60])  # different seeds, different demonstrations


def test_command_noise_moves_the_robot_off_the_path_but_records_the_expert_command(tmp_path, capsys):
    clean, noisy = tmp_path / 'clean', tmp_path / 'noisy'
    main(['sim', f'--output_dir={clean}', '--num_episodes=1', '--seed=2', *SMALL])
    noise = ['--command_noise_m=0.02', '--command_noise_time_s=0.4']
    main(['sim', f'--output_dir={noisy}', '--num_episodes=1', '--seed=2', *noise, *SMALL])
    assert capsys.readouterr().out.count('1/1 demonstrations succeeded') == 2  # the noise fades at grasp and release
    (a,), (b,) = LocalDataset(clean), LocalDataset(noisy)
    assert (a[STATIC_NOISE], b[STATIC_NOISE]) == (0.0, 0.02)
    assert (a[STATIC_NOISE_TIME], b[STATIC_NOISE_TIME]) == (0.5, 0.4)  # every noise setting travels with the episode
    assert np.allclose(np.array(a[keys.COMMAND_POSE].values), np.array(b[keys.COMMAND_POSE].values))
    gap = np.linalg.norm(
        np.array(a[keys.ROBOT_EE_POSE].values)[:, :3] - np.array(b[keys.ROBOT_EE_POSE].values)[:, :3], axis=1
    )
    assert gap[0] == 0 and gap.max() > 0.02  # the same start, then centimetres off the clean run
    assert gap[-1] < 0.01  # the retreat is not perturbed


def test_a_blending_expert_records_shorter_demonstrations_that_still_stack(tmp_path, capsys):
    stopping, blending = tmp_path / 'stopping', tmp_path / 'blending'
    main(['sim', f'--output_dir={stopping}', '--num_episodes=1', '--seed=5', *SMALL])
    main(['sim', f'--output_dir={blending}', '--num_episodes=1', '--seed=5', '--expert_blend=0.5', *SMALL])
    assert capsys.readouterr().out.count('1/1 demonstrations succeeded') == 2
    (a,), (b,) = LocalDataset(stopping), LocalDataset(blending)
    assert (a[STATIC_BLEND], b[STATIC_BLEND]) == (0.0, 0.5)
    assert len(b[keys.COMMAND_POSE]) < len(a[keys.COMMAND_POSE]) - 10  # over a second saved at 10 fps


def test_a_dwelling_expert_records_the_close_after_the_hand_has_settled_at_the_cube(tmp_path, capsys):
    root = tmp_path / 'raw'
    noisy = ['--command_noise_m=0.02', '--grasp_dwell_s=0.5']
    main(['sim', f'--output_dir={root}', '--num_episodes=1', '--seed=5', *noisy, *SMALL])
    assert '1/1 demonstrations succeeded' in capsys.readouterr().out
    (episode,) = LocalDataset(root)
    assert episode[STATIC_DWELL] == 0.5
    labels = np.array(episode[keys.TARGET_GRIP].values)
    commands = np.array(episode[keys.COMMAND_POSE].values)
    hand = np.array(episode[keys.ROBOT_EE_POSE].values)[:, :3]
    close = int(np.argmax(labels > 0.5))
    still = commands[close - 4 : close + 1, :3]  # the last 0.4 s (10 fps) before the close: the grasp pose, held
    assert np.abs(still - commands[close, :3]).max() < 1e-9
    assert np.abs(hand[close] - commands[close, :3]).max() < 0.003  # the noise has faded: the hand is on the pose


def test_a_gripper_closed_early_misses_and_the_expert_grasps_again(tmp_path, capsys):
    root = tmp_path / 'raw'
    main(['sim', f'--output_dir={root}', '--num_episodes=1', '--seed=2', '--grasp_miss_rate=1', *SMALL])
    assert '1/1 demonstrations succeeded' in capsys.readouterr().out
    (episode,) = LocalDataset(root)
    assert (episode[STATIC_MISS_RATE], episode[STATIC_EARLY_CLOSE], episode[STATIC_REPLANS]) == (1.0, True, 1)
    labels, measured = np.array(episode[keys.TARGET_GRIP].values), np.array(episode[keys.GRIP].values)
    first_close = int(np.argmax(labels > 0.5))
    assert measured[:first_close].max() > MISSED_GRIP  # the executed gripper closed on air; the label stayed open
    assert measured[first_close - 1] < 0.1  # then it opened again for the second grasp
    assert 0.3 < measured[first_close + 15] < 0.7  # which holds the cube


def test_no_grasp_misses_record_what_the_recorder_did_without_the_option(tmp_path):
    plain, zero = tmp_path / 'plain', tmp_path / 'zero'
    main(['sim', f'--output_dir={plain}', '--num_episodes=1', '--seed=2', '--command_noise_m=0.02', *SMALL])
    main(
        [
            'sim',
            f'--output_dir={zero}',
            '--num_episodes=1',
            '--seed=2',
            '--command_noise_m=0.02',
            *SMALL,
            '--grasp_miss_rate=0',
        ]
    )
    (a,), (b,) = LocalDataset(plain), LocalDataset(zero)
    for name in (keys.ROBOT_EE_POSE, keys.GRIP, keys.COMMAND_POSE, keys.TARGET_GRIP):
        assert np.array_equal(np.array(a[name].values), np.array(b[name].values))
    assert STATIC_REPLANS not in b


def test_a_perturbed_command_out_of_reach_falls_back_to_the_clean_one_or_ends_the_episode():
    with World(seed=0, camera_size=(32, 32)) as world:
        pose = world.ee_pose()
        assert data_collection._execute(world, pose, np.array([1.5, 0.0, 0.0]), 0.0)  # clean pose used
        world.step(0.5)
        assert np.linalg.norm(world.ee_pose()[:3] - pose[:3]) < 0.005  # it held the clean pose
        far = np.concatenate([[2.0, 0.0, 0.5], pose[3:]])
        assert not data_collection._execute(world, far, np.array([0.01, 0.0, 0.0]), 0.0)


def test_existing_dataset_is_appended_to_and_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    main(['sim', '--output_dir=~/raw', '--num_episodes=1', '--seed=0', *SMALL])
    main(['sim', '--output_dir=~/raw', '--num_episodes=1', '--seed=5', *SMALL])
    dataset = LocalDataset(tmp_path / 'raw')
    assert [ep[STATIC_SEED] for ep in dataset] == [0, 5]


def test_failed_demonstrations_are_dropped_unless_asked_to_keep(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data_collection, 'SUCCESS_SCORE', 1.5)  # nothing can succeed
    main(['sim', f'--output_dir={tmp_path / "dropped"}', '--num_episodes=1', *SMALL])
    assert '0/1 demonstrations succeeded; kept 0 episodes' in capsys.readouterr().out
    assert len(LocalDataset(tmp_path / 'dropped')) == 0
    assert episode_dirs(tmp_path / 'dropped') == []

    main(['sim', f'--output_dir={tmp_path / "kept"}', '--num_episodes=1', '--keep_failed=True', *SMALL])
    assert len(LocalDataset(tmp_path / 'kept')) == 1


def test_show_gui_without_a_display_says_so_and_records_headless(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv('DISPLAY', raising=False)
    monkeypatch.delenv('WAYLAND_DISPLAY', raising=False)
    main(['sim', f'--output_dir={tmp_path}', '--num_episodes=1', '--show_gui=True', *SMALL])
    assert 'no display' in capsys.readouterr().err
    assert len(LocalDataset(tmp_path)) == 1


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (['--num_episodes=0'], '--num_episodes must be a positive integer, got 0'),
        (['--num_episodes=-3'], '--num_episodes must be a positive integer, got -3'),
        (['--fps=0'], '--fps must be a positive integer (frames per second), got 0'),
        (['--camera_size=[63,48]'], '--camera_size must be [width,height] with even positive integers'),
        (['--keep_failed=yes'], "--keep_failed must be True or False, got 'yes'"),
        (['--command_noise_m=0.2'], '--command_noise_m must be in [0, 0.05] metres, got 0.2'),
        (['--command_noise_m=-0.01'], '--command_noise_m must be in [0, 0.05] metres, got -0.01'),
        (['--command_noise_m=big'], "--command_noise_m must be a number, got 'big'"),
        (['--command_noise_time_s=0'], '--command_noise_time_s must be > 0 seconds, got 0'),
        (['--command_noise_fade_s=-1'], '--command_noise_fade_s must be >= 0 seconds, got -1'),
        (['--command_noise_fade_s=soon'], "--command_noise_fade_s must be a number, got 'soon'"),
        (['--expert_blend=0.6'], '--expert_blend must be a number in [0, 0.5], got 0.6'),
        (['--expert_blend=True'], '--expert_blend must be a number in [0, 0.5], got True'),
        (['--grasp_dwell_s=3'], '--grasp_dwell_s must be a number of seconds in [0, 2.0], got 3'),
        (['--grasp_dwell_s=True'], '--grasp_dwell_s must be a number of seconds in [0, 2.0], got True'),
        (['--grasp_miss_rate=1.5'], '--grasp_miss_rate must be a number in [0, 1] (a share of the episodes), got 1.5'),
        (
            ['--grasp_miss_rate=True'],
            '--grasp_miss_rate must be a number in [0, 1] (a share of the episodes), got True',
        ),
        (['--bogus=1'], "unknown flag --bogus: the command has no 'bogus'"),
    ],
)
def test_bad_arguments_fail_before_any_work(tmp_path, args, message):
    root = tmp_path / 'never'
    exit_code, line = reported_error(main, ['sim', f'--output_dir={root}', *args])
    assert exit_code == USAGE_ERROR_EXIT_CODE and line.startswith('positronic-data-collection: error: ')
    assert message in line
    assert not root.exists()


def test_missing_output_dir_is_named():
    assert reported_error(main, ['sim', '--num_episodes=1']) == (
        USAGE_ERROR_EXIT_CODE,
        'positronic-data-collection: error: sim needs --output_dir (see --help)',
    )


def test_unwritable_output_dir_is_refused(tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    for bad in (blocker, blocker / 'sub'):
        exit_code, line = reported_error(main, ['sim', f'--output_dir={bad}', '--num_episodes=1'])
        assert exit_code == DATA_ERROR_EXIT_CODE and re.search(
            r'--output_dir=.*(is a file|not a writable directory)', line
        )
    locked = tmp_path / 'locked'
    locked.mkdir(mode=0o500)
    if not os.access(locked, os.W_OK):  # root can write anywhere
        exit_code, line = reported_error(main, ['sim', f'--output_dir={locked}', '--num_episodes=1'])
        assert exit_code == DATA_ERROR_EXIT_CODE and 'not a writable directory' in line


def test_ctrl_c_keeps_finished_episodes_and_discards_the_interrupted_one(tmp_path):
    root = tmp_path / 'raw'
    cmd = [sys.executable, '-m', 'positronic.data_collection', 'sim', f'--output_dir={root}', '--num_episodes=20']
    proc = subprocess.Popen(
        [*cmd, *SMALL], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=restore_sigint
    )
    deadline = time.monotonic() + 60
    while not list(root.glob('*/*/meta.json')):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.3)  # into the next episode
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert 'interrupted' in out
    finished = LocalDataset(root)
    assert 1 <= len(finished) < 20
    for episode in finished:  # only complete demonstrations are visible
        assert episode[STATIC_SUCCESS] == 1.0
        assert len(episode[keys.IMAGE_WRIST]) == len(episode[keys.ROBOT_Q]) > 60
    unfinished = [d for d in episode_dirs(root) if (d / UNFINISHED_MARKER).exists()]
    assert len(unfinished) <= 1  # the interrupted episode is deleted (or, if cut at its very first line, hidden)


def test_discard_unfinished_deletes_what_a_killed_recorder_left(tmp_path, capsys):
    root = tmp_path / 'raw'
    main(['sim', f'--output_dir={root}', '--num_episodes=1', *SMALL])
    crashed = leave_interrupted_episode(root)
    main(['discard_unfinished', f'--output_dir={root}'])
    assert f'deleted {crashed}' in capsys.readouterr().out
    assert not crashed.exists() and len(LocalDataset(root)) == 1
