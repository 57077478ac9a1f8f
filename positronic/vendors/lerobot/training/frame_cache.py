"""A dataset's camera frames decoded once into memory-mapped uint8 arrays, so training never seeks in video.

    cache = FrameCache.open_or_build(reader, cache_root)
    cache.frames['observation.images.left']     # uint8 memmap (total_frames, 3, H, W), row i = global index i

Frames are stored channel-first, the layout the model takes, so a batch is one gather and a cast. Each dataset
location has one cache directory under ``cache_root``; its manifest records the dataset's fingerprint (info.json, the
episodes' lengths and video spans, and the size and modification time of every file under ``data/``, ``videos/``
and ``meta/``). A cache whose manifest matches is reused; anything else is rebuilt, and a cache made stale by a
changed dataset (e.g. re-converted in place at another CRF: same paths and frame counts, other pixels) is rebuilt
with a line naming the files that changed.

Why size and mtime, not a content hash: a stat per file costs microseconds, while hashing reads every video (GBs)
before each run; our writer and LeRobot's write whole files and never edit them in place, so any rewrite changes the
modification time (ns resolution), and a re-encode at other settings its size too. A hash recorded at write time
would not cover datasets written by LeRobot. A copy that keeps mtimes and sizes but changes bytes is not detected.

A build writes into a temporary directory renamed into place, so an interrupted build is never mistaken for a
finished one. Episodes and cameras decode in parallel threads (PyAV releases the GIL while decoding).
"""

import hashlib
import json
import os
import shutil
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from positronic.command import NO_SPACE_ERRNOS, DataError
from positronic.host import interrupted_writes
from positronic.vendors.lerobot.lerobot_dataset import DatasetReader, InconsistentDatasetError
from positronic.vendors.lerobot.lerobot_dataset.format import DATA_DIR, INFO_PATH, VIDEOS_DIR

CACHE_FORMAT_VERSION = 2
MANIFEST_FILE = 'manifest.json'
FINGERPRINTED_DIRS = (VIDEOS_DIR, DATA_DIR, str(Path(INFO_PATH).parent))
"""Folders of a dataset whose files' size and modification time identify its contents (videos first: messages list
changed files in this order)."""
MAX_LISTED_FILES = 5
_TMP_PREFIX = '.tmp-'


def _array_file(video_key: str) -> str:
    return f'{video_key}.u8'


def file_stamps(root: Path) -> dict[str, list[int]]:
    """``[size, mtime_ns]`` of every file under the dataset's data, video and metadata folders, by relative path."""
    stamps = {}
    for folder in FINGERPRINTED_DIRS:
        for path in sorted((root / folder).rglob('*')):
            if path.is_file():
                stat = path.stat()
                stamps[str(path.relative_to(root))] = [stat.st_size, stat.st_mtime_ns]
    return stamps


def changed_files(before: dict[str, list[int]], now: dict[str, list[int]]) -> str:
    """The files that differ between two ``file_stamps`` (at most MAX_LISTED_FILES named), for messages."""
    changed = [
        f'{p} ({"removed" if p not in now else "new" if p not in before else "rewritten"})'
        for p in [*now, *(p for p in before if p not in now)]
        if before.get(p) != now.get(p)
    ]
    more = len(changed) - MAX_LISTED_FILES
    return ', '.join(changed[:MAX_LISTED_FILES]) + (f' and {more} more' if more > 0 else '')


def dataset_fingerprint(reader: DatasetReader) -> dict:
    """What identifies a dataset's frames: its root, info.json, every episode's length and video span, and its
    files' sizes and modification times."""
    episodes = [
        [
            ep.episode_index,
            ep.from_index,
            ep.to_index,
            {k: [str(v.file), v.from_s, v.to_s] for k, v in ep.videos.items()},
        ]
        for ep in reader.episodes
    ]
    return {
        'format': CACHE_FORMAT_VERSION,
        'root': str(reader.root),
        'info': reader.info,
        'episodes': episodes,
        'files': file_stamps(reader.root),
    }


def _cache_key(fingerprint: dict) -> str:
    """The cache directory's name: one per dataset location (and cache format)."""
    where = {'format': fingerprint['format'], 'root': fingerprint['root']}
    return hashlib.sha256(json.dumps(where, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FrameCache:
    """Camera feature -> uint8 array (total_frames, 3, H, W) memory-mapped read-only from ``directory``."""

    directory: Path
    frames: dict[str, np.ndarray]

    @classmethod
    def open_or_build(cls, reader: DatasetReader, cache_root: Path, *, num_threads: int | None = None) -> 'FrameCache':
        """Open the cache of ``reader``'s dataset under ``cache_root``, decoding every episode first when there is
        no valid one. ``num_threads`` decoding threads (default: one per CPU)."""
        fingerprint = dataset_fingerprint(reader)
        directory = Path(cache_root) / _cache_key(fingerprint)
        if not cls._is_valid(directory, fingerprint):
            saved = _read_manifest(directory)
            if saved is not None:
                what = changed_files(saved['files'], fingerprint['files']) if 'files' in saved else ''
                what = what or 'its metadata or the cache format'
                print(
                    f'frame cache {directory} is stale: {reader.root} changed since it was built ({what}); rebuilding'
                )
            shutil.rmtree(directory, ignore_errors=True)
            cls._build(reader, directory, fingerprint, num_threads or os.cpu_count() or 1)
        return cls.open(directory, reader)

    @classmethod
    def open(cls, directory: Path, reader: DatasetReader) -> 'FrameCache':
        """Map a finished cache of ``reader``'s dataset; raises FileNotFoundError when it is not there."""
        frames = {}
        for key in reader.video_keys:
            height, width = reader.features[key].shape[:2]
            shape = (reader.total_frames, 3, height, width)
            frames[key] = np.memmap(directory / _array_file(key), dtype=np.uint8, mode='r', shape=shape)
        return cls(directory=directory, frames=frames)

    @staticmethod
    def _is_valid(directory: Path, fingerprint: dict) -> bool:
        return _read_manifest(directory) == json.loads(json.dumps(fingerprint))

    @staticmethod
    def _build(reader: DatasetReader, directory: Path, fingerprint: dict, num_threads: int) -> None:
        prefix = f'{_TMP_PREFIX}{directory.name}-{machine_tag()}-'
        for abandoned in interrupted_writes(directory.parent, prefix):  # only this machine's pids can be checked
            shutil.rmtree(abandoned, ignore_errors=True)
        tmp = directory.with_name(f'{prefix}{os.getpid()}')
        tmp.mkdir(parents=True)
        try:
            arrays = {}
            for key in reader.video_keys:
                height, width = reader.features[key].shape[:2]
                shape = (reader.total_frames, 3, height, width)
                _reserve(tmp / _array_file(key), int(np.prod(shape)), directory)
                arrays[key] = np.memmap(tmp / _array_file(key), dtype=np.uint8, mode='r+', shape=shape)
            jobs = [(key, ep.episode_index) for ep in reader.episodes for key in reader.video_keys]
            total = reader.total_frames * len(reader.video_keys)
            with (
                tqdm(total=total, desc='Decoding frames into the cache', unit='frame') as bar,
                ThreadPoolExecutor(max_workers=num_threads) as pool,
            ):
                for count in pool.map(lambda job: _decode_into(reader, *job, arrays[job[0]]), jobs):
                    bar.update(count)
            for array in arrays.values():
                array.flush()
            arrays.clear()
            (tmp / MANIFEST_FILE).write_text(json.dumps(fingerprint), encoding='utf-8')
            try:
                os.rename(tmp, directory)
            except OSError:
                if not FrameCache._is_valid(directory, fingerprint):
                    raise
                shutil.rmtree(tmp)  # another process finished the same cache first
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


class FrameCacheSpaceError(DataError):
    """The disk under the cache directory cannot hold the decoded frames."""


def _reserve(path: Path, size: int, directory: Path) -> None:
    """Create ``path`` with ``size`` bytes allocated on disk. A full disk then fails here, before any decoding, and
    not later as a SIGBUS that kills the process when a page of the memory map is first written. Where the file
    system cannot allocate ahead, the file is left sparse (as without this)."""
    allocate = getattr(os, 'posix_fallocate', None)  # not on macOS
    with open(path, 'wb') as file:
        try:
            if allocate is not None:
                allocate(file.fileno(), 0, size)
                return
        except OSError as e:
            if e.errno in NO_SPACE_ERRNOS:
                free = shutil.disk_usage(path.parent).free
                raise FrameCacheSpaceError(
                    f'frame cache {directory}: no space left on its disk for {path.name} ({size / 1e9:.2f} GB, '
                    f'{free / 1e9:.2f} GB free); free some, or put the cache on a bigger disk with --cache_dir'
                ) from e
        file.truncate(size)


def machine_tag() -> str:
    """This machine's name as it may appear in a folder name."""
    return ''.join(c if c.isalnum() else '_' for c in socket.gethostname())


def _read_manifest(directory: Path) -> dict | None:
    """The fingerprint a finished cache was built for; None when there is none or it is unreadable."""
    try:
        saved = json.loads((directory / MANIFEST_FILE).read_text(encoding='utf-8'))
    except (OSError, json.JSONDecodeError):
        return None
    return saved if isinstance(saved, dict) else None


def _decode_into(reader: DatasetReader, key: str, episode: int, frames: np.ndarray) -> int:
    """Decode one episode of camera ``key`` into its rows of ``frames`` (channel-first); returns the frame count."""
    record = reader.episode(episode)
    count = 0
    for count, frame in enumerate(reader.iter_frames(key, episode), start=1):
        frames[record.from_index + count - 1] = frame.transpose(2, 0, 1)
    if count != record.length:
        raise InconsistentDatasetError(
            f'{reader.video_file(key, episode)}: decoded {count} frames of episode {episode} for {key!r}, '
            f'expected {record.length}'
        )
    return count
