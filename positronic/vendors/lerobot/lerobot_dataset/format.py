"""Names, paths and constants of the LeRobot v3.0 on-disk format, defined once.

Layout of a dataset root (see spec Part A):

    meta/info.json, meta/stats.json, meta/tasks.parquet, meta/episodes/chunk-XXX/file-YYY.parquet
    data/chunk-XXX/file-YYY.parquet
    videos/<video_key>/chunk-XXX/file-YYY.mp4

plus ``meta/positronic.json``, a small file of ours that LeRobot never reads (which positronic codec and which
video encoder settings produced the dataset).
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CODEBASE_VERSION = 'v3.0'
SUPPORTED_MAJOR_VERSION = 3

INFO_PATH = 'meta/info.json'
STATS_PATH = 'meta/stats.json'
TASKS_PATH = 'meta/tasks.parquet'
EPISODES_DIR = 'meta/episodes'
DATA_DIR = 'data'
VIDEOS_DIR = 'videos'
POSITRONIC_META_PATH = 'meta/positronic.json'

DATA_PATH_TEMPLATE = 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet'
VIDEO_PATH_TEMPLATE = 'videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4'
EPISODES_PATH_TEMPLATE = 'meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet'
PARQUET_GLOB = '*/*.parquet'
"""Files of ``data/`` and ``meta/episodes/`` as LeRobot finds them: ``chunk-XXX/file-YYY.parquet``, sorted."""

DEFAULT_CHUNKS_SIZE = 1000
DEFAULT_DATA_FILES_SIZE_IN_MB = 100
DEFAULT_VIDEO_FILES_SIZE_IN_MB = 200
EPISODES_META_BUFFER_SIZE = 10
"""Episode-metadata rows are written in batches of this many episodes, one row group per batch."""
MB = 1024 * 1024

DEFAULT_TOLERANCE_S = 1e-4
"""A video frame matches a query time when ``|pts - query| < tolerance`` (strict), as LeRobot checks it."""

# Default per-frame columns, appended after the user features in this order.
TIMESTAMP = 'timestamp'
FRAME_INDEX = 'frame_index'
EPISODE_INDEX = 'episode_index'
INDEX = 'index'
TASK_INDEX = 'task_index'
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    TIMESTAMP: {'dtype': 'float32', 'shape': [1], 'names': None},
    FRAME_INDEX: {'dtype': 'int64', 'shape': [1], 'names': None},
    EPISODE_INDEX: {'dtype': 'int64', 'shape': [1], 'names': None},
    INDEX: {'dtype': 'int64', 'shape': [1], 'names': None},
    TASK_INDEX: {'dtype': 'int64', 'shape': [1], 'names': None},
}

# Episode-metadata columns (meta/episodes/*.parquet), besides the per-video and per-stat groups.
EP_TASKS = 'tasks'
EP_LENGTH = 'length'
EP_DATA_CHUNK = 'data/chunk_index'
EP_DATA_FILE = 'data/file_index'
EP_FROM_INDEX = 'dataset_from_index'
EP_TO_INDEX = 'dataset_to_index'
EP_META_CHUNK = 'meta/episodes/chunk_index'
EP_META_FILE = 'meta/episodes/file_index'
VIDEO_CHUNK = 'chunk_index'
VIDEO_FILE = 'file_index'
VIDEO_FROM_TS = 'from_timestamp'
VIDEO_TO_TS = 'to_timestamp'
VIDEO_FIELDS = (VIDEO_CHUNK, VIDEO_FILE, VIDEO_FROM_TS, VIDEO_TO_TS)
STATS_PREFIX = 'stats/'

# meta/tasks.parquet: one int64 column; the task strings are the pandas index.
TASKS_INDEX_COLUMN = '__index_level_0__'

# Keys of info.json, in the order LeRobot writes them.
INFO_KEYS = (
    'codebase_version',
    'robot_type',
    'total_episodes',
    'total_frames',
    'total_tasks',
    'chunks_size',
    'data_files_size_in_mb',
    'video_files_size_in_mb',
    'fps',
    'splits',
    'data_path',
    'video_path',
    'features',
)


def video_column(video_key: str, field: str) -> str:
    """Episode-metadata column of a video key, e.g. ``videos/observation.images.left/from_timestamp``."""
    return f'{VIDEOS_DIR}/{video_key}/{field}'


def stats_column(feature: str, stat: str) -> str:
    """Episode-metadata column of one per-episode statistic, e.g. ``stats/action/q01``."""
    return f'{STATS_PREFIX}{feature}/{stat}'


@dataclass(frozen=True, order=True)
class FileIndex:
    """Position of a data, video or episode-metadata file: ``chunk-{chunk:03d}/file-{file:03d}``."""

    chunk: int
    file: int

    def next(self, chunks_size: int) -> 'FileIndex':
        """The following file; after file ``chunks_size - 1`` comes file 0 of the next chunk."""
        if self.file + 1 >= chunks_size:
            return FileIndex(self.chunk + 1, 0)
        return FileIndex(self.chunk, self.file + 1)


FIRST_FILE = FileIndex(0, 0)


def data_path(index: FileIndex) -> str:
    """Relative path of a data parquet file."""
    return DATA_PATH_TEMPLATE.format(chunk_index=index.chunk, file_index=index.file)


def video_path(video_key: str, index: FileIndex) -> str:
    """Relative path of one camera's mp4 file."""
    return VIDEO_PATH_TEMPLATE.format(video_key=video_key, chunk_index=index.chunk, file_index=index.file)


def episodes_path(index: FileIndex) -> str:
    """Relative path of an episode-metadata parquet file."""
    return EPISODES_PATH_TEMPLATE.format(chunk_index=index.chunk, file_index=index.file)


def size_in_mb_json(value: float) -> int | float:
    """A file-size limit as info.json stores it: an int when whole (LeRobot writes ints)."""
    return int(value) if float(value).is_integer() else float(value)


def write_json_atomic(path: Path, content: Any) -> None:
    """Write JSON with indent 4 (as LeRobot does) through a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp')
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(content, f, indent=4, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def major_version(codebase_version: str) -> int | None:
    """3 for ``"v3.0"``; None when the string is not of the form ``v<major>.<minor>``."""
    if not codebase_version.startswith('v'):
        return None
    head = codebase_version[1:].split('.', 1)[0]
    return int(head) if head.isdigit() else None


def parse_file_index(path: Path) -> FileIndex | None:
    """FileIndex of a ``.../chunk-XXX/file-YYY.<ext>`` path; None when the names do not follow the template."""
    chunk, stem = path.parent.name, path.stem
    if not (chunk.startswith('chunk-') and stem.startswith('file-')):
        return None
    c, f = chunk[len('chunk-') :], stem[len('file-') :]
    return FileIndex(int(c), int(f)) if c.isdigit() and f.isdigit() else None


def next_free_file(paths: list[Path], chunks_size: int) -> FileIndex:
    """The file after the last of ``paths`` (new files of an append never reopen existing ones); 0/0 if none."""
    indices = [i for i in (parse_file_index(p) for p in paths) if i is not None]
    return max(indices).next(chunks_size) if indices else FIRST_FILE
