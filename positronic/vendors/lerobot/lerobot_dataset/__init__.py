"""LeRobot v3.0 datasets: a writer (create, append; atomic) and a reader, compatible with LeRobot 0.4.4.

The format follows spec Part A (``format`` holds its names and paths); ``DatasetWriter`` builds datasets from
episodes of numeric arrays and camera frames, ``DatasetReader`` reads ours and LeRobot's.
"""

from positronic.vendors.lerobot.lerobot_dataset.episode_input import EpisodeFrames
from positronic.vendors.lerobot.lerobot_dataset.episodes import EpisodeRecord, VideoSpan
from positronic.vendors.lerobot.lerobot_dataset.errors import (
    CorruptFileError,
    EmptyDatasetError,
    FeatureMismatchError,
    FeatureSpecError,
    FrameTimestampError,
    IncompatibleAppendError,
    InconsistentDatasetError,
    InvalidFpsError,
    InvalidVideoEncodingError,
    LeRobotDatasetError,
    NonFiniteValueError,
    NotADatasetError,
    OutputExistsError,
    UnsupportedVersionError,
    WriterLockedError,
)
from positronic.vendors.lerobot.lerobot_dataset.features import Feature
from positronic.vendors.lerobot.lerobot_dataset.format import FileIndex
from positronic.vendors.lerobot.lerobot_dataset.reader import DatasetReader
from positronic.vendors.lerobot.lerobot_dataset.staging import recover_pending_commit
from positronic.vendors.lerobot.lerobot_dataset.video_encode import AV1_LEROBOT, H264, VideoEncoding
from positronic.vendors.lerobot.lerobot_dataset.writer import DatasetWriter

__all__ = [
    'AV1_LEROBOT',
    'H264',
    'CorruptFileError',
    'DatasetReader',
    'DatasetWriter',
    'EmptyDatasetError',
    'EpisodeFrames',
    'EpisodeRecord',
    'Feature',
    'FeatureMismatchError',
    'FeatureSpecError',
    'FileIndex',
    'FrameTimestampError',
    'IncompatibleAppendError',
    'InconsistentDatasetError',
    'InvalidFpsError',
    'InvalidVideoEncodingError',
    'LeRobotDatasetError',
    'NonFiniteValueError',
    'NotADatasetError',
    'OutputExistsError',
    'UnsupportedVersionError',
    'VideoEncoding',
    'VideoSpan',
    'WriterLockedError',
    'recover_pending_commit',
]
