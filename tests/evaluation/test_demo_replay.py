"""The pipeline loses nothing a policy needs: demonstrations recorded by the expert, converted at the policy rate
and replayed action by action through the evaluation loop (the codec's decode, one action per control tick) stack
the cubes again on the same seeds. A model that imitates the converted actions can therefore succeed."""

import pytest

from positronic import data_collection
from positronic.evaluation.drivers import TimedDriver
from positronic.evaluation.runner import run_evaluation
from positronic.evaluation.settings import LoopSettings
from positronic.vendors.lerobot.codecs import eepose_absolute, joints_absolute
from positronic.vendors.lerobot.conversion import to_lerobot
from positronic.vendors.lerobot.lerobot_dataset import DatasetReader

FPS = 15
EPISODES = 2


class DatasetReplay:
    """Replays the converted actions of episode 0, 1, ... (one per ``reset``): the whole episode as one chunk,
    then its last action until the iteration ends."""

    def __init__(self, reader: DatasetReader, codec):
        self.reader, self.codec = reader, codec
        self.next_episode, self.actions, self.calls = 0, None, 0

    def reset(self, context=None) -> None:
        self.actions = self.reader.read_episode(self.next_episode, ['action'])['action']
        self.next_episode += 1
        self.calls = 0

    def select_action(self, observation):
        self.calls += 1
        return self.codec.decode_chunk(self.actions if self.calls == 1 else self.actions[-1:])

    @property
    def meta(self):
        return {'type': 'replay'}

    def close(self) -> None:
        pass


@pytest.fixture(scope='module')
def raw_demos(tmp_path_factory):
    raw = tmp_path_factory.mktemp('replay') / 'raw'
    data_collection.main(['sim', f'--output_dir={raw}', f'--num_episodes={EPISODES}', '--camera_size=[64,48]'])
    return raw


def convert(raw, output, codec_name: str):
    """Convert the raw demonstrations with ``codec_name`` at 32x32 and the policy rate; returns ``output``."""
    to_lerobot.main(
        [
            'convert',
            f'--dataset.dataset.path={raw}',
            f'--dataset.codec=@positronic.vendors.lerobot.codecs.{codec_name}',
            '--dataset.codec.image_size=32',
            f'--output_dir={output}',
            f'--fps={FPS}',
        ]
    )
    return output


@pytest.mark.parametrize('codec_name', ['eepose_absolute', 'joints_absolute'])
def test_converted_demonstrations_replayed_through_the_loop_stack_again(raw_demos, tmp_path, codec_name):
    output = convert(raw_demos, tmp_path / 'lerobot', codec_name)
    codec = {'eepose_absolute': eepose_absolute, 'joints_absolute': joints_absolute}[codec_name]
    replay = DatasetReplay(DatasetReader(output), codec.override(image_size=32).instantiate())
    summary = run_evaluation(
        replay,
        TimedDriver(num_iterations=EPISODES, simulation_time=12.0),
        LoopSettings(policy_fps=FPS),
        seed=0,
        camera_size=(64, 48),
    )
    assert summary.successes == EPISODES, summary.table()


def test_replaying_another_seeds_demonstration_does_not_stack(raw_demos, tmp_path):
    output = convert(raw_demos, tmp_path / 'lerobot', 'eepose_absolute')
    replay = DatasetReplay(DatasetReader(output), eepose_absolute.override(image_size=32).instantiate())
    replay.next_episode = 1  # seed 1's actions in seed 0's scene
    summary = run_evaluation(
        replay,
        TimedDriver(num_iterations=1, simulation_time=12.0),
        LoopSettings(policy_fps=FPS),
        seed=0,
        camera_size=(64, 48),
    )
    assert summary.successes == 0
