"""Raw robot recordings in Positronic's on-disk format: episodes of time-stamped signals plus static items.

>>> with LocalDatasetWriter(root).new_episode() as ep:
...     ep.append('robot_state.q', q, ts_ns)          # float32 (7,) -> parquet
...     ep.append('image.wrist', frame, ts_ns)        # uint8 (H, W, 3) -> H.264 mp4
...     ep.set_static('task', 'stack the cubes')
>>> episode = LocalDataset(root)[0]
>>> value, ts_ns = episode['robot_state.q'].time[t_ns]
"""

from positronic.dataset.episode import DiskEpisode, Episode, EpisodeView, episode_label
from positronic.dataset.episode_writer import EpisodeWriter
from positronic.dataset.errors import (
    ClosedWriterError,
    CorruptSignalError,
    InvalidNameError,
    MissingFrameIndexError,
    NameConflictError,
    NotADatasetError,
    NotAnEpisodeError,
    SignalValueError,
    StaticValueError,
    TimeOutOfRangeError,
    TimestampOrderError,
    TimestampTypeError,
    UnknownKeyError,
)
from positronic.dataset.local import LocalDataset, LocalDatasetWriter
from positronic.dataset.signal import Signal

__all__ = [
    'ClosedWriterError',
    'CorruptSignalError',
    'DiskEpisode',
    'Episode',
    'EpisodeView',
    'EpisodeWriter',
    'InvalidNameError',
    'LocalDataset',
    'LocalDatasetWriter',
    'MissingFrameIndexError',
    'NameConflictError',
    'NotADatasetError',
    'NotAnEpisodeError',
    'Signal',
    'SignalValueError',
    'StaticValueError',
    'TimeOutOfRangeError',
    'TimestampOrderError',
    'TimestampTypeError',
    'UnknownKeyError',
    'episode_label',
]
