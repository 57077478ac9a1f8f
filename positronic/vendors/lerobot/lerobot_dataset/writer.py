"""Writing a LeRobot v3.0 dataset: create a new one or append episodes to an existing one, atomically.

    features = {
        'observation.state': {'dtype': 'float32', 'shape': [8], 'names': [...]},
        'action': {'dtype': 'float32', 'shape': [8], 'names': [...]},
        'observation.images.left': {'dtype': 'video', 'shape': [480, 480, 3], 'names': ['height', 'width', 'channels']},
    }
    with DatasetWriter.create(root, features, fps=30, robot_type='panda', positronic_codec=codec_record) as w:
        w.add_episode({'observation.state': state, 'action': action, 'observation.images.left': frames}, task)

Leaving the ``with`` block normally commits the dataset; leaving it with an exception commits nothing (see
``staging``). Per episode, the cameras are encoded in parallel worker threads (``camera_encoding``) while the main
thread computes the numeric stats; the episode then goes to the open data, video and episode-metadata files.
"""

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from positronic import __version__
from positronic.vendors.lerobot.lerobot_dataset.append_check import check_append
from positronic.vendors.lerobot.lerobot_dataset.camera_encoding import CameraEncoder, EncodedCamera
from positronic.vendors.lerobot.lerobot_dataset.data_files import DataFileWriter
from positronic.vendors.lerobot.lerobot_dataset.episode_input import (
    EpisodeFrames,
    check_keys,
    check_video_array,
    episode_length,
    numeric_values,
)
from positronic.vendors.lerobot.lerobot_dataset.episodes import EpisodeRecord, EpisodesMetaWriter, read_episode_stats
from positronic.vendors.lerobot.lerobot_dataset.errors import (
    EmptyDatasetError,
    FeatureMismatchError,
    IncompatibleAppendError,
    InvalidFpsError,
    LeRobotDatasetError,
    OutputExistsError,
)
from positronic.vendors.lerobot.lerobot_dataset.features import Feature, data_schema, parse_user_features, with_defaults
from positronic.vendors.lerobot.lerobot_dataset.format import (
    CODEBASE_VERSION,
    DATA_DIR,
    DATA_PATH_TEMPLATE,
    DEFAULT_CHUNKS_SIZE,
    DEFAULT_DATA_FILES_SIZE_IN_MB,
    DEFAULT_FEATURES,
    DEFAULT_VIDEO_FILES_SIZE_IN_MB,
    EPISODE_INDEX,
    EPISODES_DIR,
    FIRST_FILE,
    FRAME_INDEX,
    INDEX,
    INFO_PATH,
    PARQUET_GLOB,
    POSITRONIC_META_PATH,
    STATS_PATH,
    TASK_INDEX,
    TASKS_PATH,
    TIMESTAMP,
    VIDEO_PATH_TEMPLATE,
    VIDEOS_DIR,
    FileIndex,
    next_free_file,
    size_in_mb_json,
    write_json_atomic,
)
from positronic.vendors.lerobot.lerobot_dataset.reader import (
    POSITRONIC_CODEC_KEY,
    POSITRONIC_SOURCES_KEY,
    POSITRONIC_VIDEO_KEY,
    POSITRONIC_WRITER_KEY,
    DatasetReader,
    read_positronic_meta,
)
from positronic.vendors.lerobot.lerobot_dataset.staging import Staging, has_pending_commit
from positronic.vendors.lerobot.lerobot_dataset.stats import Stats, aggregate_stats, numeric_stats, write_stats
from positronic.vendors.lerobot.lerobot_dataset.tasks import write_tasks
from positronic.vendors.lerobot.lerobot_dataset.video_concat import CameraFiles
from positronic.vendors.lerobot.lerobot_dataset.video_decode import probe_video_info
from positronic.vendors.lerobot.lerobot_dataset.video_encode import H264, VideoEncoding

VIDEO_INFO_IDENTITY = ('video.codec', 'video.pix_fmt', 'video.height', 'video.width')
"""Video ``info`` fields that must agree between an existing dataset and the episodes appended to it."""


def _check_fps(fps: Any) -> int:
    if isinstance(fps, bool) or not isinstance(fps, int | np.integer) or fps <= 0:
        raise InvalidFpsError(f'fps must be a positive integer, got {fps!r}')
    return int(fps)


def _arrow_column(feature: Feature, values: np.ndarray) -> pa.Array:
    if feature.shape == (1,):
        return pa.array(values)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), feature.shape[0])


class DatasetWriter:
    """Writes episodes into a staging directory and commits them to ``root`` on ``finalize``.

    Build one with ``DatasetWriter.create`` (new dataset) or ``DatasetWriter.append`` (existing dataset); use it as
    a context manager, or call ``finalize()`` / ``abort()`` yourself.
    """

    def __init__(
        self,
        *,
        staging: Staging,
        features: dict[str, Feature],
        fps: int,
        encoding: VideoEncoding,
        info: Mapping[str, Any],
        positronic_codec: Any,
        existing: DatasetReader | None,
        first_files: Mapping[str, FileIndex],
    ):
        self.root = staging.root
        self.fps = fps
        self.features = features
        self.encoding = encoding
        self._staging = staging
        self._robot_type = info.get('robot_type')
        self._chunks_size = int(info['chunks_size'])
        self._data_mb = info['data_files_size_in_mb']
        self._video_mb = info['video_files_size_in_mb']
        self._positronic_codec = positronic_codec
        self._existing = existing
        self._tasks = list(existing.tasks) if existing else []
        self._task_indices = {task: i for i, task in enumerate(self._tasks)}
        self._num_episodes = existing.total_episodes if existing else 0
        self._num_frames = existing.total_frames if existing else 0
        self._sources: list[str | None] = existing.source_episodes if existing else []
        self._episode_stats: list[dict[str, Stats]] = []
        self._video_keys = [f.name for f in features.values() if f.is_video]
        build = staging.build
        self._schema = data_schema(features)
        self._data = DataFileWriter(build, self._schema, first_files[DATA_DIR], self._chunks_size, self._data_mb)
        self._episodes = EpisodesMetaWriter(
            build, features, first_files[EPISODES_DIR], self._chunks_size, self._data_mb
        )
        self._videos = {
            key: CameraFiles(build, key, fps, first_files[key], self._chunks_size, self._video_mb)
            for key in self._video_keys
        }
        self._cameras = CameraEncoder(len(self._video_keys), fps, encoding)
        self._closed = False

    @classmethod
    def create(
        cls,
        root: str | Path,
        features: Mapping[str, Mapping[str, Any]],
        fps: int,
        *,
        robot_type: str | None = None,
        video: VideoEncoding = H264,
        positronic_codec: Any = None,
        chunks_size: int = DEFAULT_CHUNKS_SIZE,
        data_files_size_in_mb: float = DEFAULT_DATA_FILES_SIZE_IN_MB,
        video_files_size_in_mb: float = DEFAULT_VIDEO_FILES_SIZE_IN_MB,
    ) -> 'DatasetWriter':
        """Start a new dataset at ``root`` (must not exist, or be an empty directory).

        ``features``: user features in LeRobot's feature-dict form (the five default per-frame columns are added);
        ``fps``: frames per second, a positive int; ``video``: encoder settings for every camera;
        ``positronic_codec``: the record (JSON) of the positronic codec that produced the episodes, kept in
        meta/positronic.json (``codec_spec.CodecSpec.to_record``).
        The size limits (MiB) and ``chunks_size`` control file rollover as in LeRobot. Nothing is written when an
        argument is invalid.
        """
        root = Path(root).expanduser().absolute()
        fps = _check_fps(fps)
        user = parse_user_features(features)
        if chunks_size < 1 or data_files_size_in_mb <= 0 or video_files_size_in_mb <= 0:
            raise ValueError(
                'chunks_size and the file size limits must be positive, got '
                f'{chunks_size}, {data_files_size_in_mb}, {video_files_size_in_mb}'
            )
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise OutputExistsError(f'{root} exists and is not an empty directory; choose a new output path')
        info = {
            'robot_type': robot_type,
            'chunks_size': chunks_size,
            'data_files_size_in_mb': data_files_size_in_mb,
            'video_files_size_in_mb': video_files_size_in_mb,
        }
        first = {
            DATA_DIR: FIRST_FILE,
            EPISODES_DIR: FIRST_FILE,
            **{k: FIRST_FILE for k, f in user.items() if f.is_video},
        }
        return cls(
            staging=Staging.acquire(root, complete_pending_commit=False),
            features=with_defaults(user),
            fps=fps,
            encoding=video,
            info=info,
            positronic_codec=positronic_codec,
            existing=None,
            first_files=first,
        )

    @classmethod
    def append(
        cls,
        root: str | Path,
        features: Mapping[str, Mapping[str, Any]],
        fps: int,
        *,
        video: VideoEncoding | None = None,
        positronic_codec: Any = None,
    ) -> 'DatasetWriter':
        """Open an existing v3.0 dataset to add episodes; they go to new files after the existing ones.

        Refuses (IncompatibleAppendError, nothing written) when ``features`` (dtype, shape, names), ``fps`` or the
        video codec differ from the dataset's. ``video`` defaults to the settings the dataset recorded, else
        LeRobot-like settings for its codec. The dataset's positronic codec record is kept; ``positronic_codec`` is
        recorded only when meta/positronic.json has no codec entry. Check the codec first
        (``codec_spec.resolve_codec``). An append interrupted while committing is completed first.
        """
        root = Path(root).expanduser().absolute()
        fps = _check_fps(fps)
        user = parse_user_features(features)
        if has_pending_commit(root):
            Staging.acquire(root, complete_pending_commit=True).release()
        existing = DatasetReader(root)
        recorded = read_positronic_meta(root)
        encoding = check_append(existing, user, fps, video, recorded)
        chunks_size = int(existing.info['chunks_size'])
        first: dict[str, FileIndex] = {
            DATA_DIR: next_free_file(list((root / DATA_DIR).glob(PARQUET_GLOB)), chunks_size),
            EPISODES_DIR: next_free_file(list((root / EPISODES_DIR).glob(PARQUET_GLOB)), chunks_size),
            **{
                key: next_free_file(list((root / VIDEOS_DIR / key).glob('*/*.mp4')), chunks_size)
                for key in existing.video_keys
            },
        }
        return cls(
            staging=Staging.acquire(root, complete_pending_commit=True),
            features=dict(existing.features),
            fps=fps,
            encoding=encoding,
            info=existing.info,
            positronic_codec=recorded.get(POSITRONIC_CODEC_KEY, positronic_codec),
            existing=existing,
            first_files=first,
        )

    @property
    def num_episodes(self) -> int:
        """Episodes in the dataset, including those added by this writer."""
        return self._num_episodes

    @property
    def source_episodes(self) -> list[str | None]:
        """Per episode (existing and added), the ``source`` it was added with (None where unknown)."""
        return list(self._sources)

    def add_episode(self, frames: EpisodeFrames, task: str, source: str | None = None) -> int:
        """Add one episode and return its index.

        ``frames`` maps every declared feature to its T values (see EpisodeFrames); ``task`` is the instruction;
        ``source`` names where the episode comes from (e.g. its raw episode directory), kept in meta/positronic.json.
        Raises FeatureMismatchError (missing or unknown key, wrong shape or dtype, unequal lengths, a bad frame);
        an exception raised by a frame iterator propagates unchanged. In these cases nothing of the episode is
        written and the writer stays usable. A failure while writing files (e.g. a full disk) aborts the writer.
        """
        if self._closed:
            raise LeRobotDatasetError(f'{self.root}: the writer is already finalized or aborted')
        if not isinstance(task, str) or not task:
            raise FeatureMismatchError(f'task must be a non-empty string, got {task!r}')
        user = {n: f for n, f in self.features.items() if n not in DEFAULT_FEATURES}
        check_keys(frames, user)
        length = episode_length(frames)
        numeric = {n: numeric_values(f, frames[n], length) for n, f in user.items() if not f.is_video}
        for key in self._video_keys:
            if isinstance(frames[key], np.ndarray):
                check_video_array(self.features[key], frames[key], length)

        pending = self._cameras.start({k: self.features[k] for k in self._video_keys}, frames, length)
        try:
            task_index = self._task_indices.get(task, len(self._tasks))
            columns = {**numeric, **self._default_columns(length, task_index)}
            stats = {n: numeric_stats(v) for n, v in columns.items()}
        finally:
            cameras = pending.wait()
        stats.update({key: camera.stats for key, camera in cameras.items()})
        self._set_video_info(cameras)

        table = pa.table(
            {n: _arrow_column(self.features[n], columns[n]) for n in self._schema.names}, schema=self._schema
        )
        try:
            index = self._write_episode(task, task_index, length, table, cameras, stats)
        except BaseException:
            self.abort()  # files may hold part of the episode: nothing of this writer can be committed any more
            raise
        self._sources.append(source)
        return index

    def _write_episode(
        self,
        task: str,
        task_index: int,
        length: int,
        table: pa.Table,
        cameras: Mapping[str, EncodedCamera],
        stats: dict[str, Stats],
    ) -> int:
        if task_index == len(self._tasks):
            self._tasks.append(task)
            self._task_indices[task] = task_index
        spans = {key: self._videos[key].place(camera.video) for key, camera in cameras.items()}
        episode_index = self._num_episodes
        self._episodes.add(
            EpisodeRecord(
                episode_index=episode_index,
                tasks=(task,),
                length=length,
                data_file=self._data.write_episode(table),
                from_index=self._num_frames,
                to_index=self._num_frames + length,
                videos=spans,
                stats={n: stats[n] for n in self.features},
            )
        )
        self._episode_stats.append(stats)
        self._num_episodes += 1
        self._num_frames += length
        return episode_index

    def _default_columns(self, length: int, task_index: int) -> dict[str, np.ndarray]:
        frame_index = np.arange(length, dtype=np.int64)
        return {
            TIMESTAMP: (frame_index / self.fps).astype(np.float32),
            FRAME_INDEX: frame_index,
            EPISODE_INDEX: np.full(length, self._num_episodes, dtype=np.int64),
            INDEX: frame_index + self._num_frames,
            TASK_INDEX: np.full(length, task_index, dtype=np.int64),
        }

    def _set_video_info(self, cameras: Mapping[str, EncodedCamera]) -> None:
        """Fill each camera's info.json ``info`` from its first mp4, or check it against the existing dataset's."""
        for key, camera in cameras.items():
            feature = self.features[key]
            if not self._videos[key].is_empty:
                continue
            info = probe_video_info(camera.video.data)
            if feature.info is None:
                self.features[key] = Feature(feature.name, feature.dtype, feature.shape, feature.names, info)
            elif any(feature.info.get(k) != info.get(k) for k in VIDEO_INFO_IDENTITY):
                raise IncompatibleAppendError(
                    f'{self.root / INFO_PATH}: video {key!r} is {[feature.info.get(k) for k in VIDEO_INFO_IDENTITY]}, '
                    f'the new episodes encode to {[info.get(k) for k in VIDEO_INFO_IDENTITY]}'
                )

    def _info(self) -> dict[str, Any]:
        return {
            'codebase_version': CODEBASE_VERSION,
            'robot_type': self._robot_type,
            'total_episodes': self._num_episodes,
            'total_frames': self._num_frames,
            'total_tasks': len(self._tasks),
            'chunks_size': self._chunks_size,
            'data_files_size_in_mb': size_in_mb_json(self._data_mb),
            'video_files_size_in_mb': size_in_mb_json(self._video_mb),
            'fps': self.fps,
            'splits': {'train': f'0:{self._num_episodes}'},
            'data_path': DATA_PATH_TEMPLATE,
            'video_path': VIDEO_PATH_TEMPLATE if self._video_keys else None,
            'features': {name: f.to_json() for name, f in self.features.items()},
        }

    def _positronic_meta(self) -> dict[str, Any]:
        return {
            POSITRONIC_WRITER_KEY: f'positronic-act {__version__}',
            POSITRONIC_CODEC_KEY: self._positronic_codec,
            POSITRONIC_VIDEO_KEY: self.encoding.to_json() if self._video_keys else None,
            POSITRONIC_SOURCES_KEY: self._sources,
        }

    def _prior_stats(self) -> list[dict[str, Stats]]:
        if self._existing is None:
            return []
        if self._existing.stats is not None:
            return [self._existing.stats]
        return read_episode_stats(self.root, self._existing.features)

    def finalize(self) -> Path:
        """Close every file, write the metadata and commit; returns the dataset root.

        Raises EmptyDatasetError (and commits nothing) when a new dataset has no episode; an append without
        episodes leaves the dataset as it was.
        """
        if self._closed:
            raise LeRobotDatasetError(f'{self.root}: the writer is already finalized or aborted')
        if not self._episode_stats:
            self.abort()
            if self._existing is None:
                raise EmptyDatasetError(f'{self.root}: no episodes were added; nothing was written')
            return self.root
        self._closed = True
        self._cameras.shutdown()
        try:
            self._commit()
        except BaseException:
            self._staging.release()  # a no-op once an append's commit journal is written
            raise
        return self.root

    def _commit(self) -> None:
        for files in self._videos.values():
            files.close()
        self._data.close()
        self._episodes.close()
        build = self._staging.build
        write_tasks(build / TASKS_PATH, self._tasks)
        write_stats(build / STATS_PATH, aggregate_stats(self._prior_stats() + self._episode_stats))
        write_json_atomic(build / POSITRONIC_META_PATH, self._positronic_meta())
        write_json_atomic(build / INFO_PATH, self._info())
        if self._existing is None:
            self._staging.commit_new_dataset()
            return
        # Order keeps the dataset loadable by LeRobot at every step; info.json (the totals) goes last.
        moved = [p for files in self._videos.values() for p in files.written_paths]
        moved += [TASKS_PATH, *self._episodes.written_paths, *self._data.written_paths]
        moved += [POSITRONIC_META_PATH, STATS_PATH, INFO_PATH]
        self._staging.commit_moves([(p, p) for p in moved])

    def abort(self) -> None:
        """Drop everything written by this writer (the dataset, if any, stays as it was)."""
        if self._closed:
            return
        self._closed = True
        self._cameras.shutdown()
        closers = [f.close for f in self._videos.values()] + [self._data.close, self._episodes.close]
        for close in closers:
            with contextlib.suppress(Exception):  # the files are discarded anyway
                close()
        self._staging.release()

    def __enter__(self) -> 'DatasetWriter':
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finalize()
        else:
            self.abort()
