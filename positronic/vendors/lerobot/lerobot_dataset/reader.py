"""Reading a LeRobot v3.0 dataset (ours or one written by LeRobot): metadata, numeric columns, camera frames.

    reader = DatasetReader(root)
    reader.fps, reader.features, reader.tasks, reader.stats, reader.episodes
    columns = reader.read_columns(['observation.state', 'action'])   # whole dataset, numpy
    frames = reader.decode_episode('observation.images.left', 3)     # uint8 (T, H, W, 3)

Opening checks the metadata's consistency (totals, contiguous episodes and indices, no stray data files that
LeRobot would also load); frame decoding checks every frame time against the data parquet timestamps.
"""

import json
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from positronic.vendors.lerobot.lerobot_dataset.data_files import column_to_numpy, read_columns
from positronic.vendors.lerobot.lerobot_dataset.episodes import EpisodeRecord, read_episodes
from positronic.vendors.lerobot.lerobot_dataset.errors import (
    PARQUET_FILE,
    InconsistentDatasetError,
    NotADatasetError,
    UnsupportedVersionError,
    reading,
)
from positronic.vendors.lerobot.lerobot_dataset.features import Feature, features_from_info
from positronic.vendors.lerobot.lerobot_dataset.format import (
    CODEBASE_VERSION,
    DATA_DIR,
    DEFAULT_TOLERANCE_S,
    EPISODE_INDEX,
    INDEX,
    INFO_KEYS,
    INFO_PATH,
    PARQUET_GLOB,
    POSITRONIC_META_PATH,
    STATS_PATH,
    SUPPORTED_MAJOR_VERSION,
    TASKS_PATH,
    TIMESTAMP,
    data_path,
    major_version,
    video_path,
)
from positronic.vendors.lerobot.lerobot_dataset.staging import has_pending_commit, staging_path
from positronic.vendors.lerobot.lerobot_dataset.stats import Stats, read_stats
from positronic.vendors.lerobot.lerobot_dataset.tasks import read_tasks
from positronic.vendors.lerobot.lerobot_dataset.video_decode import decode_frames
from positronic.vendors.lerobot.lerobot_dataset.video_encode import VideoEncoding

POSITRONIC_CODEC_KEY = 'codec'
POSITRONIC_VIDEO_KEY = 'video_encoding'
POSITRONIC_WRITER_KEY = 'writer'
POSITRONIC_SOURCES_KEY = 'source_episodes'
"""meta/positronic.json: per episode, the raw episode directory it was converted from (null when unknown); what
makes re-running an append add only the episodes not yet in."""


def read_info(root: Path) -> dict[str, Any]:
    """meta/info.json, checked to be a v3.x dataset description with the keys the format requires."""
    path = root / INFO_PATH
    if not path.is_file():
        raise NotADatasetError(f'{path} is missing: {root} is not a LeRobot v3.0 dataset')
    try:
        with open(path, encoding='utf-8') as f:
            info = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise NotADatasetError(f'{path} is not valid JSON: {e}') from e
    if not isinstance(info, dict):
        raise NotADatasetError(f'{path}: expected a JSON object, got {type(info).__name__}')
    version = info.get('codebase_version')
    if not isinstance(version, str) or major_version(version) != SUPPORTED_MAJOR_VERSION:
        raise UnsupportedVersionError(
            f'{path}: codebase_version is {version!r}, expected {CODEBASE_VERSION!r} (v{SUPPORTED_MAJOR_VERSION}.x)'
        )
    missing = [k for k in INFO_KEYS if k not in info and k != 'robot_type']
    if missing:
        raise NotADatasetError(f'{path}: missing keys {missing}')
    return info


def read_positronic_meta(root: Path) -> dict[str, Any]:
    """meta/positronic.json (which positronic codec and video encoder produced the dataset); {} when absent."""
    path = root / POSITRONIC_META_PATH
    if not path.is_file():
        return {}
    with reading(path, 'a JSON object'), open(path, encoding='utf-8') as f:
        return json.load(f)


class DatasetReader:
    """A LeRobot v3.0 dataset opened for reading. Raises NotADatasetError / UnsupportedVersionError for a path
    that is not a v3.x dataset and InconsistentDatasetError when its files contradict each other."""

    def __init__(self, root: str | Path, *, tolerance_s: float = DEFAULT_TOLERANCE_S):
        self.root = Path(root).expanduser().absolute()
        self.tolerance_s = tolerance_s
        self.info = read_info(self.root)
        if has_pending_commit(self.root):
            raise InconsistentDatasetError(
                f'{self.root}: an append was interrupted while committing ({staging_path(self.root)}); '
                f'finish it with `positronic-to-lerobot recover --output_dir={self.root}` (add --rollback=True to undo '
                'it instead), or re-run the same append'
            )
        self.features: dict[str, Feature] = features_from_info(self.info['features'])
        self.fps: int = int(self.info['fps'])
        self.tasks: list[str] = read_tasks(self.root / TASKS_PATH)
        self.stats: dict[str, Stats] | None = read_stats(self.root / STATS_PATH)
        self.episodes: list[EpisodeRecord] = read_episodes(self.root, self.video_keys)
        self._positronic = read_positronic_meta(self.root)
        self._check_consistency()

    @property
    def robot_type(self) -> str | None:
        return self.info.get('robot_type')

    @property
    def total_episodes(self) -> int:
        return int(self.info['total_episodes'])

    @property
    def total_frames(self) -> int:
        return int(self.info['total_frames'])

    @property
    def video_keys(self) -> list[str]:
        """Camera features (stored as mp4), in info.json order."""
        return [f.name for f in self.features.values() if f.is_video]

    @property
    def column_names(self) -> list[str]:
        """Per-frame data parquet columns (every non-video feature), in info.json order."""
        return [f.name for f in self.features.values() if not f.is_video]

    @property
    def positronic_codec(self) -> Any:
        """The record of the positronic codec that produced the dataset as stored (None if none; read it with
        ``codec_spec.CodecSpec.from_record``)."""
        return self._positronic.get(POSITRONIC_CODEC_KEY)

    @property
    def source_episodes(self) -> list[str | None]:
        """Per episode, the raw episode it was converted from as the writer recorded it (None where unknown)."""
        recorded = list(self._positronic.get(POSITRONIC_SOURCES_KEY) or [])[: self.total_episodes]
        return recorded + [None] * (self.total_episodes - len(recorded))

    @property
    def video_encoding(self) -> VideoEncoding | None:
        """Encoder settings the dataset was written with, if recorded by our writer."""
        content = self._positronic.get(POSITRONIC_VIDEO_KEY)
        return VideoEncoding.from_json(content) if content else None

    def _check_consistency(self) -> None:
        where = self.root / INFO_PATH
        if len(self.episodes) != self.total_episodes:
            raise InconsistentDatasetError(
                f'{where}: total_episodes is {self.total_episodes}, '
                f'but the episode metadata has {len(self.episodes)} rows'
            )
        expected_from = 0
        for ep in self.episodes:
            if ep.from_index != expected_from or ep.to_index - ep.from_index != ep.length:
                raise InconsistentDatasetError(
                    f'{self.root}: episode {ep.episode_index} spans [{ep.from_index}, {ep.to_index}) with length '
                    f'{ep.length}; expected to start at {expected_from}'
                )
            expected_from = ep.to_index
        if expected_from != self.total_frames:
            raise InconsistentDatasetError(
                f'{where}: total_frames is {self.total_frames} but the episodes hold {expected_from} frames'
            )
        referenced = {self.root / data_path(ep.data_file) for ep in self.episodes}
        on_disk = set((self.root / DATA_DIR).glob(PARQUET_GLOB))
        if stray := sorted(on_disk - referenced):
            raise InconsistentDatasetError(
                f'{self.root}: data files not referenced by any episode (LeRobot would load their rows): {stray}'
            )
        if missing := sorted(referenced - on_disk):
            raise InconsistentDatasetError(f'{self.root}: episodes reference missing data files: {missing}')

    @property
    def data_files(self) -> list[Path]:
        """Data parquet files in sorted path order (row ``i`` of their concatenation is global index ``i``)."""
        return sorted({self.root / data_path(ep.data_file) for ep in self.episodes})

    def read_columns(self, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Whole-dataset per-frame columns: (total_frames,) for scalars, (total_frames, N) for vectors."""
        names = list(self.column_names if names is None else names)
        unknown = [n for n in names if n not in self.column_names]
        if unknown:
            raise KeyError(f'{self.root}: no per-frame columns {unknown}; available: {self.column_names}')
        columns = read_columns(self.data_files, names)
        for name, values in columns.items():
            if len(values) != self.total_frames:
                raise InconsistentDatasetError(
                    f'{self.root}: column {name!r} has {len(values)} rows, expected total_frames={self.total_frames}'
                )
        return columns

    def read_episode(self, episode_index: int, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Per-frame columns of one episode (its rows of its data file), in frame order."""
        ep = self.episode(episode_index)
        names = list(self.column_names if names is None else names)
        path = self.root / data_path(ep.data_file)
        with reading(path, PARQUET_FILE):
            table = pq.read_table(
                path, columns=list(dict.fromkeys([*names, INDEX])), filters=[(EPISODE_INDEX, '=', episode_index)]
            )
        index = column_to_numpy(table.column(INDEX), path, INDEX)
        if len(index) != ep.length or (len(index) and (index[0] != ep.from_index or index[-1] != ep.to_index - 1)):
            raise InconsistentDatasetError(
                f'{path}: episode {episode_index} has rows with index {index[:1]}..{index[-1:]}, '
                f'expected [{ep.from_index}, {ep.to_index})'
            )
        return {name: column_to_numpy(table.column(name), path, name) for name in names}

    def episode(self, episode_index: int) -> EpisodeRecord:
        if not 0 <= episode_index < len(self.episodes):
            raise IndexError(f'{self.root}: episode {episode_index} out of range [0, {len(self.episodes)})')
        return self.episodes[episode_index]

    @cached_property
    def _timestamps(self) -> np.ndarray:
        columns = self.read_columns([TIMESTAMP, INDEX])
        if not np.array_equal(columns[INDEX], np.arange(self.total_frames)):
            raise InconsistentDatasetError(f'{self.root}: the index column is not 0..total_frames-1 in file order')
        return columns[TIMESTAMP].astype(np.float64)

    def video_file(self, video_key: str, episode_index: int) -> Path:
        """The mp4 holding an episode of a camera."""
        self._check_video_key(video_key)
        return self.root / video_path(video_key, self.episode(episode_index).videos[video_key].file)

    def _check_video_key(self, video_key: str) -> None:
        if video_key not in self.video_keys:
            raise KeyError(f'{self.root}: no video feature {video_key!r}; available: {self.video_keys}')

    def frame_times(self, video_key: str, episode_index: int) -> np.ndarray:
        """Query times (s) of an episode's frames inside its mp4: ``from_timestamp + timestamp`` (float64, (T,))."""
        self._check_video_key(video_key)
        ep = self.episode(episode_index)
        return ep.videos[video_key].from_s + self._timestamps[ep.from_index : ep.to_index]

    def iter_frames(
        self, video_key: str, episode_index: int, *, size: tuple[int, int] | None = None
    ) -> Iterator[np.ndarray]:
        """An episode's frames of one camera in order, uint8 (H, W, 3) or resized to ``size = (height, width)``."""
        return decode_frames(
            self.video_file(video_key, episode_index),
            self.frame_times(video_key, episode_index),
            episode_index=episode_index,
            size=size,
            tolerance_s=self.tolerance_s,
        )

    def decode_episode(self, video_key: str, episode_index: int, *, size: tuple[int, int] | None = None) -> np.ndarray:
        """All frames of an episode of one camera: uint8 (T, H, W, 3), H and W from ``size`` when given."""
        self._check_video_key(video_key)
        ep = self.episode(episode_index)
        feature = self.features[video_key]
        height, width = size if size is not None else feature.shape[:2]
        out = np.empty((ep.length, height, width, 3), dtype=np.uint8)
        count = 0
        for count, frame in enumerate(self.iter_frames(video_key, episode_index, size=size), start=1):
            out[count - 1] = frame
        if count != ep.length:
            raise InconsistentDatasetError(f'{self.root}: decoded {count} frames of episode {episode_index}')
        return out
