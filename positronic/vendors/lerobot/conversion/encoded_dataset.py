"""A raw dataset seen through a codec: the episodes a conversion reads, projected into model features.

encoded = EncodedDataset(LocalDataset('~/datasets/my_task_raw'), eepose_absolute.instantiate())
encoded.check(task=None)                      # every episode has the codec's signals and a task
projected = encoded.project(0, fps=30)        # ProjectedEpisode: state, action, lazy camera frames, task
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from positronic.dataset import Episode, episode_label
from positronic.keys import TASK
from positronic.vendors.lerobot.codec import Codec, MissingSignalError, ProjectedEpisode


class MissingTaskError(ValueError):
    """An episode has no static ``task`` and no task was given to override it."""


@dataclass(frozen=True)
class EncodedDataset:
    """Raw episodes ``dataset`` (e.g. a LocalDataset) paired with the ``codec`` that turns them into features."""

    dataset: Sequence[Episode]
    codec: Codec

    def __len__(self) -> int:
        return len(self.dataset)

    def features(self) -> dict[str, dict[str, Any]]:
        """LeRobot feature declarations the codec produces."""
        return self.codec.features()

    def check(self, task: str | None = None) -> None:
        """Raise before any work when an episode lacks a signal the codec reads (MissingSignalError naming the
        episode, the missing keys and the codec) or, without a ``task`` override, its static task."""
        for episode in self.dataset:
            missing = [key for key in self.codec.raw_keys if key not in episode]
            if missing:
                raise MissingSignalError(
                    f'episode {episode_label(episode)} lacks {missing} needed by codec {self.codec.name!r} '
                    f'(it reads {list(self.codec.raw_keys)}); the episode has {sorted(episode.keys())}'
                )
            if task is None and not _static_task(episode.static):
                raise MissingTaskError(
                    f'episode {episode_label(episode)} has no static {TASK!r}; pass --task="..." to set one for '
                    'every episode'
                )

    def project(self, index: int, fps: float, task: str | None = None) -> ProjectedEpisode:
        """Episode ``index`` sampled at ``fps`` by the codec (see ``Codec.project_episode``)."""
        return self.codec.project_episode(self.dataset[index], fps, task)


def _static_task(static: Mapping[str, Any]) -> str:
    value = static.get(TASK)
    return value if isinstance(value, str) else ''
