"""Writing a LeRobot v3.0 dataset: create a new one or append episodes to an existing one, atomically.

    features = {
        'observation.state': {'dtype': 'float32', 'shape': [8], 'names': [...]},
        'action': {'dtype': 'float32', 'shape': [8], 'names': [...]},
        'observation.images.left': {'dtype': 'video', 'shape': [480, 480, 3], 'names': ['height', 'width', 'channels']},
    }
    with DatasetWriter.create(root, features, fps=30, robot_type='panda') as writer:
        writer.add_episode({'observation.state': state, 'action': action, 'observation.images.left': frames}, task)

On leaving the ``with`` block normally the dataset is committed; on an exception nothing is committed (see
``staging``). Cameras are encoded in parallel threads, one per video feature; FFmpeg releases the GIL while it
encodes, so the work spreads over the cores.
"""

import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from positronic import __version__
from positronic.vendors.lerobot.lerobot_dataset.data_files import DataFileWriter
from positronic.vendors.lerobot.lerobot_dataset.episodes import (
    EpisodeRecord,
    EpisodesMetaWriter,
    VideoSpan,
    read_episode_stats,
)
from positronic.vendors.lerobot.lerobot_dataset.errors import (
    EmptyDatasetError,
    FeatureMismatchError,
    FeatureSpecError,
    IncompatibleAppendError,
    InvalidFpsError,
    LeRobotDatasetError,
    OutputExistsError,
)
from positronic.vendors.lerobot.lerobot_dataset.features import (
    Feature,
    data_schema,
    parse_feature,
    parse_user_features,
    with_defaults,
)
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
    video_path,
    write_json_atomic,
)
from positronic.vendors.lerobot.lerobot_dataset.reader import (
    POSITRONIC_CODEC_KEY,
    POSITRONIC_VIDEO_KEY,
    POSITRONIC_WRITER_KEY,
    DatasetReader,
    read_info,
    read_positronic_meta,
)
from positronic.vendors.lerobot.lerobot_dataset.staging import Staging, has_pending_commit
from positronic.vendors.lerobot.lerobot_dataset.stats import (
    ImageStatsAccumulator,
    Stats,
    aggregate_stats,
    numeric_stats,
    write_stats,
)
from positronic.vendors.lerobot.lerobot_dataset.tasks import write_tasks
from positronic.vendors.lerobot.lerobot_dataset.video_concat import VideoFileAppender
from positronic.vendors.lerobot.lerobot_dataset.video_decode import probe_video_info
from positronic.vendors.lerobot.lerobot_dataset.video_encode import (
    ENCODINGS_BY_CODEC,
    H264,
    EncodedVideo,
    VideoEncoding,
    encode_episode,
)

EpisodeFrames = Mapping[str, np.ndarray | Iterable[np.ndarray]]
"""Feature name -> the episode's values: a numeric array (T,) / (T, N), or camera frames as a uint8 array
(T, H, W, 3) or an iterable of T uint8 (H, W, 3) frames (consumed once, from a worker thread)."""

VIDEO_INFO_IDENTITY = ('video.codec', 'video.pix_fmt', 'video.height', 'video.width')
"""Video ``info`` fields that must agree between an existing dataset and the episodes appended to it."""


class _Cancelled(Exception):
    """Raised inside a camera's frame loop when another camera of the same episode failed."""


def _check_fps(fps: Any) -> int:
    if isinstance(fps, bool) or not isinstance(fps, int | np.integer) or fps <= 0:
        raise InvalidFpsError(f'fps must be a positive integer, got {fps!r}')
    return int(fps)


def _check_output(root: Path) -> None:
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise OutputExistsError(f'{root} exists and is not an empty directory; choose a new output path')


def _numeric_values(feature: Feature, raw: Any, length: int) -> np.ndarray:
    """Validate and cast one numeric feature's episode values to (T,) for scalars or (T, N) for vectors."""
    values = np.asarray(raw)
    expected = f'({length},) or ({length}, 1)' if feature.shape == (1,) else f'({length}, {feature.shape[0]})'
    if feature.shape == (1,) and values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    want = (length,) if feature.shape == (1,) else (length, feature.shape[0])
    if values.shape != want:
        raise FeatureMismatchError(f'feature {feature.name!r}: expected shape {expected}, got {values.shape}')
    allowed_kinds = 'iu' if feature.is_integer else 'fiu'
    if values.dtype.kind not in allowed_kinds:
        raise FeatureMismatchError(
            f'feature {feature.name!r}: expected {feature.dtype}-compatible values, got dtype {values.dtype}'
        )
    if values.dtype.kind == 'f' and not np.isfinite(values).all():
        bad = int(np.argwhere(~np.isfinite(values.reshape(length, -1)))[0, 0])
        raise FeatureMismatchError(f'feature {feature.name!r}: non-finite value at frame {bad}')
    return values.astype(feature.dtype, copy=False)


def _known_length(name: str, raw: Any) -> int | None:
    if isinstance(raw, np.ndarray):
        return len(raw) if raw.ndim else None
    if hasattr(raw, '__len__'):
        return len(raw)
    return None


def _check_video_array(feature: Feature, frames: np.ndarray, length: int) -> None:
    expected = (length, *feature.shape)
    if frames.shape != expected or frames.dtype != np.uint8:
        raise FeatureMismatchError(
            f'feature {feature.name!r}: expected uint8 frames of shape {expected}, got {frames.dtype} {frames.shape}'
        )


def _check_frame(feature: Feature, frame: Any, index: int) -> None:
    if not isinstance(frame, np.ndarray) or frame.shape != feature.shape or frame.dtype != np.uint8:
        got = f'{frame.dtype} {frame.shape}' if isinstance(frame, np.ndarray) else type(frame).__name__
        raise FeatureMismatchError(
            f'feature {feature.name!r} frame {index}: expected uint8 array of shape {feature.shape}, got {got}'
        )


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
        root: Path,
        staging: Staging,
        features: dict[str, Feature],
        fps: int,
        robot_type: str | None,
        encoding: VideoEncoding,
        positronic_codec: str | None,
        chunks_size: int,
        data_files_size_in_mb: float,
        video_files_size_in_mb: float,
        tasks: list[str],
        prior_episodes: int,
        prior_frames: int,
        prior_stats: dict[str, Stats] | None,
        first_files: Mapping[str, FileIndex],
    ):
        self.root = root
        self.fps = fps
        self.features = features
        self.encoding = encoding
        self._staging = staging
        self._robot_type = robot_type
        self._positronic_codec = positronic_codec
        self._chunks_size = chunks_size
        self._data_mb = data_files_size_in_mb
        self._video_mb = video_files_size_in_mb
        self._tasks = list(tasks)
        self._task_lookup = {t: i for i, t in enumerate(self._tasks)}
        self._appending = prior_episodes > 0
        self._num_episodes = prior_episodes
        self._num_frames = prior_frames
        self._prior_stats = prior_stats
        self._episode_stats: list[dict[str, Stats]] = []
        self._video_keys = [f.name for f in features.values() if f.is_video]
        build = staging.build
        self._schema = data_schema(features)
        self._data = DataFileWriter(build, self._schema, first_files[DATA_DIR], chunks_size, self._data_mb)
        self._episodes = EpisodesMetaWriter(build, features, first_files[EPISODES_DIR], chunks_size, self._data_mb)
        self._video_files = {key: first_files[key] for key in self._video_keys}
        self._appenders: dict[str, VideoFileAppender] = {}
        self._written_videos: list[str] = []
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self._video_keys)), thread_name_prefix='lerobot-video')
        self._closed = False

    # ----------------------------------------------------------------------------------------------- construction
    @classmethod
    def create(
        cls,
        root: str | Path,
        features: Mapping[str, Mapping[str, Any]],
        fps: int,
        *,
        robot_type: str | None = None,
        video: VideoEncoding = H264,
        positronic_codec: str | None = None,
        chunks_size: int = DEFAULT_CHUNKS_SIZE,
        data_files_size_in_mb: float = DEFAULT_DATA_FILES_SIZE_IN_MB,
        video_files_size_in_mb: float = DEFAULT_VIDEO_FILES_SIZE_IN_MB,
    ) -> 'DatasetWriter':
        """Start a new dataset at ``root`` (must not exist, or be an empty directory).

        ``features``: user features in LeRobot's feature-dict form (the five default per-frame columns are added);
        ``fps``: frames per second, a positive int; ``video``: encoder settings for every camera;
        ``positronic_codec``: name of the positronic codec that produced the episodes, kept in meta/positronic.json.
        The size limits (MiB) and ``chunks_size`` control file rollover as in LeRobot. Nothing is written when an
        argument is invalid.
        """
        root = Path(root).expanduser()
        fps = _check_fps(fps)
        user = parse_user_features(features)
        if chunks_size < 1 or data_files_size_in_mb <= 0 or video_files_size_in_mb <= 0:
            raise ValueError(
                'chunks_size and the file size limits must be positive, got '
                f'{chunks_size}, {data_files_size_in_mb}, {video_files_size_in_mb}'
            )
        _check_output(root)
        staging = Staging.acquire(root, complete_pending_commit=False)
        first = {DATA_DIR: FIRST_FILE, EPISODES_DIR: FIRST_FILE, **{k: FIRST_FILE for k in user}}
        return cls(
            root=root,
            staging=staging,
            features=with_defaults(user),
            fps=fps,
            robot_type=robot_type,
            encoding=video,
            positronic_codec=positronic_codec,
            chunks_size=chunks_size,
            data_files_size_in_mb=data_files_size_in_mb,
            video_files_size_in_mb=video_files_size_in_mb,
            tasks=[],
            prior_episodes=0,
            prior_frames=0,
            prior_stats=None,
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
        positronic_codec: str | None = None,
    ) -> 'DatasetWriter':
        """Open an existing v3.0 dataset to add episodes; they go to new files after the existing ones.

        Refuses (IncompatibleAppendError, nothing written) when ``features`` (dtype, shape, names), ``fps``, the
        video codec or the recorded ``positronic_codec`` differ from the dataset's. ``video`` defaults to the
        settings the dataset recorded, else LeRobot-like settings for its codec. An append interrupted while
        committing is completed first.
        """
        root = Path(root).expanduser()
        fps = _check_fps(fps)
        user = parse_user_features(features)
        info = read_info(root)
        if has_pending_commit(root):
            Staging.acquire(root, complete_pending_commit=True).release()
        existing = DatasetReader(root)
        recorded = read_positronic_meta(root)
        encoding = cls._check_append(existing, recorded, user, fps, video, positronic_codec)
        staging = Staging.acquire(root, complete_pending_commit=True)
        first: dict[str, FileIndex] = {
            DATA_DIR: next_free_file(list((root / DATA_DIR).glob(PARQUET_GLOB)), info['chunks_size']),
            EPISODES_DIR: next_free_file(list((root / EPISODES_DIR).glob(PARQUET_GLOB)), info['chunks_size']),
        }
        for key in existing.video_keys:
            first[key] = next_free_file(list((root / VIDEOS_DIR / key).glob('*/*.mp4')), info['chunks_size'])
        prior_stats = existing.stats
        if prior_stats is None:
            prior_stats = aggregate_stats(read_episode_stats(root, existing.features)) or None
        return cls(
            root=root,
            staging=staging,
            features=dict(existing.features),
            fps=fps,
            robot_type=existing.robot_type,
            encoding=encoding,
            positronic_codec=recorded.get(POSITRONIC_CODEC_KEY, positronic_codec),
            chunks_size=int(info['chunks_size']),
            data_files_size_in_mb=info['data_files_size_in_mb'],
            video_files_size_in_mb=info['video_files_size_in_mb'],
            tasks=existing.tasks,
            prior_episodes=existing.total_episodes,
            prior_frames=existing.total_frames,
            prior_stats=prior_stats,
            first_files=first,
        )

    @staticmethod
    def _check_append(
        existing: DatasetReader,
        recorded: Mapping[str, Any],
        user: Mapping[str, Feature],
        fps: int,
        video: VideoEncoding | None,
        positronic_codec: str | None,
    ) -> VideoEncoding:
        where = existing.root / INFO_PATH
        if fps != existing.fps:
            raise IncompatibleAppendError(f'{where}: dataset fps is {existing.fps}, got fps={fps}')
        theirs = {n: f for n, f in existing.features.items() if n not in DEFAULT_FEATURES}
        if set(user) != set(theirs):
            raise IncompatibleAppendError(
                f'{where}: dataset features are {sorted(theirs)}, got {sorted(user)} '
                f'(missing {sorted(set(theirs) - set(user))}, unexpected {sorted(set(user) - set(theirs))})'
            )
        for name, feature in theirs.items():
            if user[name].declaration() != feature.declaration():
                raise IncompatibleAppendError(
                    f'{where}: feature {name!r} is {feature.declaration()} in the dataset, '
                    f'got {user[name].declaration()}'
                )
            try:
                parse_feature(name, feature.to_json())
            except FeatureSpecError as e:
                raise IncompatibleAppendError(f'{where}: this writer cannot add to feature {name!r}: {e}') from e
        recorded_codec = recorded.get(POSITRONIC_CODEC_KEY)
        if positronic_codec is not None and positronic_codec != recorded_codec:
            raise IncompatibleAppendError(
                f'{existing.root / POSITRONIC_META_PATH}: dataset was produced by positronic codec '
                f'{recorded_codec!r}, got {positronic_codec!r}'
            )
        codecs = {f.info.get('video.codec') for f in theirs.values() if f.is_video and f.info}
        if video is None:
            recorded_video = recorded.get(POSITRONIC_VIDEO_KEY)
            if recorded_video:
                video = VideoEncoding.from_json(recorded_video)
            elif codecs:
                codec = next(iter(codecs))
                if codec not in ENCODINGS_BY_CODEC:
                    raise IncompatibleAppendError(
                        f'{where}: videos use codec {codec!r}; pass video=VideoEncoding(...) with an encoder for it'
                    )
                video = ENCODINGS_BY_CODEC[codec]
            else:
                video = H264
        for f in theirs.values():
            stored = (f.info.get('video.codec'), f.info.get('video.pix_fmt')) if f.is_video and f.info else None
            if stored is not None and stored != (video.codec_name, video.pix_fmt):
                raise IncompatibleAppendError(
                    f'{where}: video {f.name!r} is {stored[0]}/{stored[1]}, '
                    f'got encoder {video.encoder!r} ({video.codec_name}/{video.pix_fmt})'
                )
        return video

    # ------------------------------------------------------------------------------------------------- episodes
    @property
    def num_episodes(self) -> int:
        """Episodes in the dataset, including those added by this writer."""
        return self._num_episodes

    def add_episode(self, frames: EpisodeFrames, task: str) -> int:
        """Add one episode and return its index.

        ``frames`` maps every declared feature to its T values (see EpisodeFrames); ``task`` is the instruction.
        Raises FeatureMismatchError (missing or unknown key, wrong shape or dtype, unequal lengths) before anything
        is written for the episode; an exception raised by a frame iterator propagates unchanged. In both cases the
        episode is dropped and the writer stays usable.
        """
        if self._closed:
            raise LeRobotDatasetError(f'{self.root}: the writer is already finalized or aborted')
        if not isinstance(task, str) or not task:
            raise FeatureMismatchError(f'task must be a non-empty string, got {task!r}')
        user = {n: f for n, f in self.features.items() if n not in DEFAULT_FEATURES}
        missing, unknown = sorted(set(user) - set(frames)), sorted(set(frames) - set(user))
        if missing or unknown:
            raise FeatureMismatchError(
                f'episode frames: missing features {missing}, unknown features {unknown}; expected {sorted(user)}'
            )
        length = self._episode_length(frames)
        numeric = {n: _numeric_values(f, frames[n], length) for n, f in user.items() if not f.is_video}
        for key in self._video_keys:
            if isinstance(frames[key], np.ndarray):
                _check_video_array(self.features[key], frames[key], length)

        cancel = threading.Event()
        jobs: dict[str, Future] = {
            key: self._pool.submit(self._encode_camera, self.features[key], frames[key], length, cancel)
            for key in self._video_keys
        }
        try:
            episode_index = self._num_episodes
            task_index = self._task_lookup.get(task, len(self._tasks))
            columns = self._default_columns(length, episode_index, task_index)
            stats = {n: numeric_stats(v) for n, v in {**numeric, **columns}.items()}
        finally:
            videos = self._collect(jobs, cancel)
        for key, (_, video_stats) in videos.items():
            stats[key] = video_stats
        self._check_video_info({key: encoded for key, (encoded, _) in videos.items()})

        if task_index == len(self._tasks):
            self._tasks.append(task)
            self._task_lookup[task] = task_index
        spans = {key: self._place_video(key, encoded) for key, (encoded, _) in videos.items()}
        table_columns = {**numeric, **columns}
        table = pa.table(
            {n: _arrow_column(f, table_columns[n]) for n, f in self.features.items() if not f.is_video},
            schema=self._schema,
        )
        data_file = self._data.write_episode(table)
        self._episodes.add(
            EpisodeRecord(
                episode_index=episode_index,
                tasks=(task,),
                length=length,
                data_file=data_file,
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

    def _episode_length(self, frames: EpisodeFrames) -> int:
        lengths = {name: n for name in self.features if name in frames and (n := _known_length(name, frames[name]))}
        if not lengths:
            raise FeatureMismatchError('cannot tell the episode length: give at least one feature as an array')
        if len(set(lengths.values())) != 1:
            raise FeatureMismatchError(f'features have different numbers of frames: {lengths}')
        length = next(iter(lengths.values()))
        if length < 1:
            raise FeatureMismatchError(f'an episode needs at least one frame, got {lengths}')
        return length

    def _default_columns(self, length: int, episode_index: int, task_index: int) -> dict[str, np.ndarray]:
        frame_index = np.arange(length, dtype=np.int64)
        return {
            TIMESTAMP: (frame_index / self.fps).astype(np.float32),
            FRAME_INDEX: frame_index,
            EPISODE_INDEX: np.full(length, episode_index, dtype=np.int64),
            INDEX: frame_index + self._num_frames,
            TASK_INDEX: np.full(length, task_index, dtype=np.int64),
        }

    def _checked_frames(
        self, feature: Feature, frames: Iterable[np.ndarray], length: int, stats: ImageStatsAccumulator, cancel
    ) -> Iterator[np.ndarray]:
        count = 0
        for frame in frames:
            if cancel.is_set():
                raise _Cancelled()
            if count == length:
                raise FeatureMismatchError(f'feature {feature.name!r}: more than {length} frames')
            _check_frame(feature, frame, count)
            stats.observe(count, frame)
            yield frame
            count += 1
        if count != length:
            raise FeatureMismatchError(f'feature {feature.name!r}: {count} frames, expected {length}')

    def _encode_camera(
        self, feature: Feature, frames: Iterable[np.ndarray], length: int, cancel: threading.Event
    ) -> tuple[EncodedVideo, Stats]:
        try:
            height, width = feature.shape[:2]
            stats = ImageStatsAccumulator(length, height, width)
            checked = self._checked_frames(feature, frames, length, stats, cancel)
            encoded = encode_episode(checked, fps=self.fps, height=height, width=width, encoding=self.encoding)
            return encoded, stats.result()
        except BaseException:
            cancel.set()
            raise

    @staticmethod
    def _collect(jobs: Mapping[str, Future], cancel: threading.Event) -> dict[str, tuple[EncodedVideo, Stats]]:
        results, errors = {}, []
        for key, job in jobs.items():
            try:
                results[key] = job.result()
            except BaseException as e:  # re-raised below, once every camera has stopped
                cancel.set()
                errors.append(e)
        real = [e for e in errors if not isinstance(e, _Cancelled)]
        if real:
            raise real[0]
        if errors:
            raise errors[0]
        return results

    def _check_video_info(self, videos: Mapping[str, EncodedVideo]) -> None:
        for key, encoded in videos.items():
            feature = self.features[key]
            if feature.info is not None and self._appenders.get(key) is not None:
                continue
            info = probe_video_info(encoded.data)
            if feature.info is None:
                self.features[key] = Feature(feature.name, feature.dtype, feature.shape, feature.names, info)
            elif any(feature.info.get(k) != info.get(k) for k in VIDEO_INFO_IDENTITY):
                raise IncompatibleAppendError(
                    f'{self.root / INFO_PATH}: video {key!r} is {[feature.info.get(k) for k in VIDEO_INFO_IDENTITY]}, '
                    f'the new episodes encode to {[info.get(k) for k in VIDEO_INFO_IDENTITY]}'
                )

    def _place_video(self, key: str, encoded: EncodedVideo) -> VideoSpan:
        appender = self._appenders.get(key)
        new_mb = len(encoded.data) / (1024 * 1024)
        if appender is not None and appender.size_mb + new_mb >= self._video_mb:
            appender.close()
            self._video_files[key] = self._video_files[key].next(self._chunks_size)
            appender = None
        if appender is None:
            relative = video_path(key, self._video_files[key])
            appender = VideoFileAppender(self._staging.build / relative, self.fps)
            self._appenders[key] = appender
            self._written_videos.append(relative)
        from_s, to_s = appender.append(encoded)
        return VideoSpan(self._video_files[key], from_s, to_s)

    # --------------------------------------------------------------------------------------------------- commit
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
        }

    def finalize(self) -> Path:
        """Close every file, write the metadata and commit; returns the dataset root.

        Raises EmptyDatasetError (and commits nothing) when a new dataset has no episode; an append without
        episodes leaves the dataset as it was.
        """
        if self._closed:
            raise LeRobotDatasetError(f'{self.root}: the writer is already finalized or aborted')
        added = len(self._episode_stats)
        if added == 0:
            self.abort()
            if not self._appending:
                raise EmptyDatasetError(f'{self.root}: no episodes were added; nothing was written')
            return self.root
        self._closed = True
        self._pool.shutdown()
        try:
            self._commit()
        except BaseException:
            self._staging.release()  # a no-op once an append's commit journal is written
            raise
        return self.root

    def _commit(self) -> None:
        for appender in self._appenders.values():
            appender.close()
        self._data.close()
        self._episodes.close()
        build = self._staging.build
        write_tasks(build / TASKS_PATH, self._tasks)
        stats = aggregate_stats(([self._prior_stats] if self._prior_stats else []) + self._episode_stats)
        write_stats(build / STATS_PATH, stats)
        write_json_atomic(build / POSITRONIC_META_PATH, self._positronic_meta())
        write_json_atomic(build / INFO_PATH, self._info())
        if not self._appending:
            self._staging.commit_new_dataset()
            return
        moved = [*self._written_videos, TASKS_PATH, *self._episodes.written_paths, *self._data.written_paths]
        moved += [POSITRONIC_META_PATH, STATS_PATH, INFO_PATH]
        self._staging.commit_moves([(p, p) for p in moved])

    def abort(self) -> None:
        """Drop everything written by this writer (the dataset, if any, stays as it was)."""
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(cancel_futures=True)
        closers = [a.close for a in self._appenders.values()] + [self._data.close, self._episodes.close]
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
