"""Episode metadata: ``meta/episodes/chunk-XXX/file-YYY.parquet``, one row per episode in ``episode_index`` order.

Columns (spec A.5): ``episode_index, tasks, length, data/chunk_index, data/file_index, dataset_from_index,
dataset_to_index``, four ``videos/<key>/...`` columns per video feature, ``stats/<feature>/<stat>`` for every
feature, then ``meta/episodes/chunk_index, meta/episodes/file_index``.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from positronic.vendors.lerobot.lerobot_dataset.errors import (
    PARQUET_FILE,
    InconsistentDatasetError,
    NotADatasetError,
    reading,
)
from positronic.vendors.lerobot.lerobot_dataset.features import Feature
from positronic.vendors.lerobot.lerobot_dataset.format import (
    EP_DATA_CHUNK,
    EP_DATA_FILE,
    EP_FROM_INDEX,
    EP_LENGTH,
    EP_META_CHUNK,
    EP_META_FILE,
    EP_TASKS,
    EP_TO_INDEX,
    EPISODE_INDEX,
    EPISODES_DIR,
    EPISODES_META_BUFFER_SIZE,
    PARQUET_GLOB,
    STATS_PREFIX,
    VIDEO_CHUNK,
    VIDEO_FILE,
    VIDEO_FROM_TS,
    VIDEO_TO_TS,
    FileIndex,
    episodes_path,
    stats_column,
    video_column,
)
from positronic.vendors.lerobot.lerobot_dataset.rolling_parquet import RollingParquetWriter
from positronic.vendors.lerobot.lerobot_dataset.stats import STAT_NAMES, Stats


@dataclass(frozen=True)
class VideoSpan:
    """Where one episode of one camera lives: the mp4 file and its time range ``[from_s, to_s)`` in that file."""

    file: FileIndex
    from_s: float
    to_s: float


@dataclass(frozen=True)
class EpisodeRecord:
    """One episode's metadata; frames have global indices ``from_index .. to_index - 1`` in ``data_file``."""

    episode_index: int
    tasks: tuple[str, ...]
    length: int
    data_file: FileIndex
    from_index: int
    to_index: int
    videos: Mapping[str, VideoSpan]
    stats: Mapping[str, Stats] | None = None


def _stat_type(feature: Feature, stat: str) -> pa.DataType:
    if stat == 'count':
        return pa.list_(pa.int64())
    if feature.is_video:
        return pa.list_(pa.list_(pa.list_(pa.float64())))
    if feature.is_integer and stat in ('min', 'max'):
        return pa.list_(pa.int64())
    return pa.list_(pa.float64())


def episodes_schema(features: Mapping[str, Feature]) -> pa.Schema:
    """Column order and types of the episode-metadata parquet for these features (in info.json order)."""
    fields = [
        pa.field(EPISODE_INDEX, pa.int64()),
        pa.field(EP_TASKS, pa.list_(pa.string())),
        pa.field(EP_LENGTH, pa.int64()),
        pa.field(EP_DATA_CHUNK, pa.int64()),
        pa.field(EP_DATA_FILE, pa.int64()),
        pa.field(EP_FROM_INDEX, pa.int64()),
        pa.field(EP_TO_INDEX, pa.int64()),
    ]
    for key in (f.name for f in features.values() if f.is_video):
        fields += [
            pa.field(video_column(key, VIDEO_CHUNK), pa.int64()),
            pa.field(video_column(key, VIDEO_FILE), pa.int64()),
            pa.field(video_column(key, VIDEO_FROM_TS), pa.float64()),
            pa.field(video_column(key, VIDEO_TO_TS), pa.float64()),
        ]
    for feature in features.values():
        fields += [pa.field(stats_column(feature.name, s), _stat_type(feature, s)) for s in STAT_NAMES]
    fields += [pa.field(EP_META_CHUNK, pa.int64()), pa.field(EP_META_FILE, pa.int64())]
    return pa.schema(fields)


def _rows_table(records: Sequence[EpisodeRecord], schema: pa.Schema, location: FileIndex) -> pa.Table:
    columns: dict[str, list] = {name: [] for name in schema.names}
    for r in records:
        columns[EPISODE_INDEX].append(r.episode_index)
        columns[EP_TASKS].append(list(r.tasks))
        columns[EP_LENGTH].append(r.length)
        columns[EP_DATA_CHUNK].append(r.data_file.chunk)
        columns[EP_DATA_FILE].append(r.data_file.file)
        columns[EP_FROM_INDEX].append(r.from_index)
        columns[EP_TO_INDEX].append(r.to_index)
        for key, span in r.videos.items():
            columns[video_column(key, VIDEO_CHUNK)].append(span.file.chunk)
            columns[video_column(key, VIDEO_FILE)].append(span.file.file)
            columns[video_column(key, VIDEO_FROM_TS)].append(span.from_s)
            columns[video_column(key, VIDEO_TO_TS)].append(span.to_s)
        for feature, stats in (r.stats or {}).items():
            for stat in STAT_NAMES:
                columns[stats_column(feature, stat)].append(np.asarray(stats[stat]).tolist())
        columns[EP_META_CHUNK].append(location.chunk)
        columns[EP_META_FILE].append(location.file)
    return pa.table(columns, schema=schema)


class EpisodesMetaWriter(RollingParquetWriter):
    """Writes episode rows in batches of 10 (one row group each), starting a new file when the next batch would
    bring the current file to ``size_limit_mb`` or more (size estimated from the bytes per row so far)."""

    def __init__(
        self, root: Path, features: Mapping[str, Feature], first_file: FileIndex, chunks_size: int, size_limit_mb: float
    ):
        super().__init__(root, episodes_schema(features), episodes_path, first_file, chunks_size, size_limit_mb)
        self._buffer: list[EpisodeRecord] = []

    def add(self, record: EpisodeRecord) -> None:
        self._buffer.append(record)
        if len(self._buffer) >= EPISODES_META_BUFFER_SIZE:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self.write(len(self._buffer), lambda file: _rows_table(self._buffer, self._schema, file))
            self._buffer.clear()

    def close(self) -> None:
        """Flush buffered rows and close the file (required for a readable parquet footer)."""
        self.flush()
        super().close()


def episode_files(root: Path) -> list[Path]:
    """Episode-metadata parquet files in sorted path order (the order LeRobot concatenates them)."""
    return sorted((root / EPISODES_DIR).glob(PARQUET_GLOB))


def read_episodes(root: Path, video_keys: Sequence[str]) -> list[EpisodeRecord]:
    """Episode rows (without stats) of a dataset, checked to be contiguous from episode 0."""
    paths = episode_files(root)
    if not paths:
        raise NotADatasetError(f'{root / EPISODES_DIR} has no chunk-XXX/file-YYY.parquet: not a LeRobot v3.0 dataset')
    records: list[EpisodeRecord] = []
    for path in paths:
        with reading(path, PARQUET_FILE):
            names = [n for n in pq.read_schema(path).names if not n.startswith(STATS_PREFIX)]
            rows = pq.read_table(path, columns=names).to_pydict()
        for i in range(len(rows[EPISODE_INDEX])):
            videos = {
                key: VideoSpan(
                    FileIndex(rows[video_column(key, VIDEO_CHUNK)][i], rows[video_column(key, VIDEO_FILE)][i]),
                    rows[video_column(key, VIDEO_FROM_TS)][i],
                    rows[video_column(key, VIDEO_TO_TS)][i],
                )
                for key in video_keys
            }
            records.append(
                EpisodeRecord(
                    episode_index=rows[EPISODE_INDEX][i],
                    tasks=tuple(rows[EP_TASKS][i]),
                    length=rows[EP_LENGTH][i],
                    data_file=FileIndex(rows[EP_DATA_CHUNK][i], rows[EP_DATA_FILE][i]),
                    from_index=rows[EP_FROM_INDEX][i],
                    to_index=rows[EP_TO_INDEX][i],
                    videos=videos,
                )
            )
    for position, record in enumerate(records):
        if record.episode_index != position:
            raise InconsistentDatasetError(
                f'{root / EPISODES_DIR}: row {position} holds episode {record.episode_index}; '
                'rows must be sorted by episode_index and contiguous from 0'
            )
    return records


def read_episode_stats(root: Path, features: Mapping[str, Feature]) -> list[dict[str, Stats]]:
    """Per-episode stats columns of a dataset, as arrays, for features that have them."""
    result: list[dict[str, Stats]] = []
    for path in episode_files(root):
        with reading(path, PARQUET_FILE):
            available = set(pq.read_schema(path).names)
            wanted = [stats_column(f, s) for f in features for s in STAT_NAMES if stats_column(f, s) in available]
            rows = pq.read_table(path, columns=wanted).to_pydict()
        count = len(rows[wanted[0]]) if wanted else 0
        for i in range(count):
            episode: dict[str, Stats] = {}
            for feature in features:
                stats = {s: np.asarray(rows[c][i]) for s in STAT_NAMES if (c := stats_column(feature, s)) in rows}
                if 'count' in stats:
                    episode[feature] = stats
            result.append(episode)
    return result
