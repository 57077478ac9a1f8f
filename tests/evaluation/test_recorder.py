import numpy as np
import pytest

from positronic import keys
from positronic.dataset import LocalDataset, LocalDatasetWriter
from positronic.evaluation.recorder import EpisodeRecorder, json_static


def test_json_static_turns_numpy_and_odd_values_into_json():
    assert json_static(np.float32(0.5)) == 0.5 and json_static(np.int64(3)) == 3 and json_static(np.bool_(True)) is True
    assert json_static(np.arange(3)) == [0, 1, 2]
    assert json_static(float('nan')) == 'nan'
    assert json_static({'a': None, 'b': (1, 2)}) == {'b': [1, 2]}
    assert json_static(object).startswith("<class 'object'>")
    assert json_static(None) is None


def test_recorder_writes_ticks_commands_and_statics_that_reopen(tmp_path):
    recorder = EpisodeRecorder(LocalDatasetWriter(tmp_path).new_episode())
    frame = np.full((48, 64, 3), 90, np.uint8)
    for i in range(3):
        observation = {
            keys.ROBOT_Q: np.full(7, i, np.float32),
            keys.GRIP: 0.25,
            keys.IMAGE_WRIST: frame,
            keys.TASK: 'stack',
        }
        recorder.record_tick(1000 * i, observation, stacking_success=0.1 * i, box_distance=0.2)
        recorder.record_command(1000 * i, np.array([0.4, 0, 0.5, 0, 1, 0, 0]), 1.0)
    recorder.finalize({'task': 'stack', 'seed': np.int64(7), 'failure': None, 'score': np.float64(0.2)})

    episode = LocalDataset(tmp_path)[0]
    assert sorted(episode.signals) == sorted(
        [
            keys.ROBOT_Q,
            keys.GRIP,
            keys.IMAGE_WRIST,
            keys.STACKING_SUCCESS,
            keys.BOX_DISTANCE,
            keys.COMMAND_POSE,
            keys.TARGET_GRIP,
        ]
    )
    assert episode.static == {'task': 'stack', 'seed': 7, 'score': 0.2}
    assert episode[keys.STACKING_SUCCESS][2] == (pytest.approx(0.2), 2000)
    assert episode[keys.COMMAND_POSE][1][0].tolist() == [0.4, 0, 0.5, 0, 1, 0, 0]
    assert episode[keys.IMAGE_WRIST][0][0].shape == (48, 64, 3)
