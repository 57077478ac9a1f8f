"""Error types of the LeRobot v3.0 dataset writer and reader.

Every error is raised where the bad input enters, and its message names the offending path, key or value and
what was expected.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import pyarrow as pa

UNREADABLE_FILE_ERRORS = (OSError, pa.ArrowException, av.FFmpegError, json.JSONDecodeError, UnicodeDecodeError)
"""What reading a truncated or corrupt parquet, mp4 or JSON file raises."""
PARQUET_FILE = 'a parquet file'
MP4_FILE = 'an mp4 video'


class LeRobotDatasetError(Exception):
    """Base of every error raised by ``positronic.vendors.lerobot.lerobot_dataset``."""


class NotADatasetError(LeRobotDatasetError):
    """A path is not a LeRobot v3.0 dataset: ``meta/info.json`` or another required file is missing or unreadable."""


class UnsupportedVersionError(NotADatasetError):
    """``codebase_version`` in ``meta/info.json`` is not a v3.x version."""


class InconsistentDatasetError(LeRobotDatasetError):
    """The dataset's files contradict each other, or an interrupted append has not been completed yet."""


class FeatureSpecError(LeRobotDatasetError, ValueError):
    """A features declaration is invalid (unsupported dtype, bad shape, reserved or malformed name)."""


class FeatureMismatchError(LeRobotDatasetError, ValueError):
    """Frames given for an episode do not match the declared features (missing key, shape, dtype, length)."""


class InvalidFpsError(LeRobotDatasetError, ValueError):
    """The frame rate is not a positive integer."""


class InvalidVideoEncodingError(LeRobotDatasetError, ValueError):
    """Video encoder settings out of the encoder's range (e.g. a CRF above 51 for libx264)."""


class OutputExistsError(LeRobotDatasetError, FileExistsError):
    """``create`` was pointed at a path that exists and is not an empty directory."""


class IncompatibleAppendError(LeRobotDatasetError, ValueError):
    """Episodes to append differ from the existing dataset in features, fps, video codec or producing codec."""


class WriterLockedError(LeRobotDatasetError):
    """Another live process is writing the same dataset path."""


class FrameTimestampError(LeRobotDatasetError):
    """A video has no frame within the tolerance of a timestamp the data parquet asks for."""


class EmptyDatasetError(LeRobotDatasetError, ValueError):
    """A new dataset was finalized without any episode (LeRobot cannot load a dataset without episodes)."""


class NonFiniteValueError(LeRobotDatasetError, ValueError):
    """A numeric column holds NaN or inf (a dataset written or edited by another tool: our writer refuses them)."""


class CorruptFileError(LeRobotDatasetError):
    """A file of the dataset is there but cannot be read: a truncated or corrupt parquet, mp4 or JSON file."""


@contextmanager
def reading(path: Path, what: str = '') -> Iterator[None]:
    """Turn a failure to read or parse ``path`` (``what`` it should hold) into CorruptFileError naming the file."""
    try:
        yield
    except UNREADABLE_FILE_ERRORS as e:
        reason = getattr(e, 'strerror', None) or str(e)
        expected = f'; expected {what}' if what else ''
        raise CorruptFileError(f'{path}: cannot read it ({reason}){expected}') from e
