"""Writing one episode directory: signals as they arrive, static items, then finalize or abort.

The directory is created with the ``.unfinished`` marker. A clean finalize (the clean exit of
``with writer:``) closes every signal (parquet flushed, video encoded and its frame index written), writes
``static.json`` then ``meta.json``, and removes the marker. An exception inside the ``with`` block, or
``abort()``, deletes the whole directory. A process that dies mid-episode leaves the directory with its
marker, so readers skip it. While the writer lives it holds an ``flock`` on the marker, which tells a recording in
progress from an interrupted one (``local.discard_unfinished`` deletes only the latter).
"""

import fcntl
import functools
import json
import math
import os
import platform
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

from positronic.dataset.episode import META_FILE, META_PATH, STATIC_FILE, UNFINISHED_MARKER
from positronic.dataset.errors import ClosedWriterError, InvalidNameError, NameConflictError, StaticValueError
from positronic.dataset.signal import SignalWriter
from positronic.dataset.vector import PARQUET_SUFFIX, VectorWriter
from positronic.dataset.video import FRAMES_SUFFIX, VIDEO_SUFFIX, VideoWriter, is_image

SCHEMA_VERSION = 1
"""``schema_version`` written into meta.json."""
DISTRIBUTION = 'positronic-act'
"""Distribution whose version is recorded as the writer version."""
_FORBIDDEN_IN_NAMES = ('/', '\\', '\0')
_FRAMES_STEM = FRAMES_SUFFIX[: -len(PARQUET_SUFFIX)]


class EpisodeWriter:
    """Writes the episode directory ``path`` (created here; it must not exist yet).

    Use as a context manager: ``with EpisodeWriter(path) as ep: ep.append(...); ep.set_static(...)``.
    Raises FileExistsError if ``path`` exists.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.mkdir(parents=False, exist_ok=False)
        (self.path / UNFINISHED_MARKER).write_text('unfinished')
        self._marker_fd: int | None = os.open(self.path / UNFINISHED_MARKER, os.O_RDONLY)
        fcntl.flock(self._marker_fd, fcntl.LOCK_EX)
        self.created_ts_ns = time.time_ns()
        self._writers: dict[str, SignalWriter] = {}
        self._static: dict[str, Any] = {}
        self._closed = False
        self._finalized = False

    def append(self, name: str, value: Any, ts_ns: int) -> None:
        """Add a record to signal ``name`` at ``ts_ns`` (int ns, strictly after its previous record).

        The first record decides the storage: a uint8 (H, W, 3) ndarray starts a video signal, anything else
        a parquet signal (scalar or 1-D vector); later records must have the same kind, shape and dtype.
        """
        writer = self._writers.get(name)
        if writer is None:
            self._check_open()
            self._check_signal_name(name)
            writer = VideoWriter(self.path / (name + VIDEO_SUFFIX), name) if is_image(value) else None
            writer = writer or VectorWriter(self.path / (name + PARQUET_SUFFIX), name)
            try:
                writer.append(value, ts_ns)
            except BaseException:
                writer.abort()
                raise
            self._writers[name] = writer
            return
        if self._closed:
            self._check_open()
        writer.append(value, ts_ns)

    def set_static(self, name: str, value: Any) -> None:
        """Store a static item: JSON made of str, int, float (finite), bool, lists/tuples and str-keyed dicts.

        ``None`` (JSON null) is refused, as are names already used by a signal or an earlier static item.
        """
        self._check_open()
        if not isinstance(name, str) or not name:
            raise InvalidNameError(f'static item names must be non-empty strings, got {name!r}')
        if name in self._writers:
            raise NameConflictError(f'{name!r} is already a signal of this episode; it cannot also be a static item')
        if name in self._static:
            raise NameConflictError(f'static item {name!r} is already set; each static item is set once')
        _check_json(value, name, name)
        self._static[name] = json.loads(json.dumps(value))

    def _check_signal_name(self, name: Any) -> None:
        if not isinstance(name, str) or not name or name.startswith('.') or any(c in name for c in _FORBIDDEN_IN_NAMES):
            raise InvalidNameError(
                f'signal name {name!r} cannot be a file name; expected a non-empty string without path separators '
                f'that does not start with "."'
            )
        if name.endswith(_FRAMES_STEM):
            raise InvalidNameError(
                f'signal name {name!r} would clash with the frame index of a video {name[: -len(_FRAMES_STEM)]!r}'
            )
        if name in self._static:
            raise NameConflictError(f'{name!r} is already a static item of this episode; it cannot also be a signal')

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedWriterError(f'episode {self.path} is already finalized or aborted')

    def finalize(self) -> None:
        """Close all signals, write static.json and meta.json, and remove the unfinished marker.

        If closing a signal fails, the episode is aborted and the error re-raised.
        """
        self._check_open()
        try:
            for writer in self._writers.values():
                writer.close()
            (self.path / STATIC_FILE).write_text(json.dumps(self._static, indent=2))
            (self.path / META_FILE).write_text(json.dumps(self._meta(), indent=2))
        except BaseException:
            self.abort()
            raise
        (self.path / UNFINISHED_MARKER).unlink()
        self._release_marker()
        self._closed = self._finalized = True

    def abort(self) -> None:
        """Delete everything written for this episode; further appends raise ClosedWriterError.

        Aborting twice is harmless; aborting a finalized episode raises ClosedWriterError (it stays on disk).
        """
        if self._finalized:
            raise ClosedWriterError(f'episode {self.path} is finalized; it can no longer be aborted')
        self._closed = True
        for writer in self._writers.values():
            writer.abort()
        shutil.rmtree(self.path, ignore_errors=True)
        self._release_marker()

    def _release_marker(self) -> None:
        if self._marker_fd is not None:
            os.close(self._marker_fd)
            self._marker_fd = None

    def _meta(self) -> dict[str, Any]:
        writer = {
            'python': platform.python_version(),
            'platform': platform.platform(),
            'version': _package_version(),
        }
        git = _git_state(os.getcwd())
        if git is not None:
            writer['git'] = git
        writer['name'] = f'{type(self).__module__}.{type(self).__qualname__}'
        return {
            'schema_version': SCHEMA_VERSION,
            'created_ts_ns': self.created_ts_ns,
            'writer': writer,
            META_PATH: str(self.path.resolve()),
        }

    def __enter__(self) -> 'EpisodeWriter':
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.finalize()


def _check_json(value: Any, name: str, where: str) -> None:
    if value is None:
        raise StaticValueError(f'static item {name!r}: {where} is None; null is not allowed in static items')
    if isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise StaticValueError(f'static item {name!r}: {where} is {value}; only finite floats are JSON')
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(item, name, f'{where}[{i}]')
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise StaticValueError(f'static item {name!r}: {where} has key {key!r}; dict keys must be str')
            _check_json(item, name, f'{where}[{key!r}]')
        return
    raise StaticValueError(
        f'static item {name!r}: {where} is a {type(value).__module__}.{type(value).__qualname__}; expected str, '
        f'int, float, bool, list, tuple or dict with str keys (convert arrays with .tolist())'
    )


@functools.cache
def _package_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return ''


@functools.cache
def _git_state(cwd: str) -> dict[str, Any] | None:
    """Commit, branch and dirty flag of the git work tree at ``cwd``; None outside one or without git."""

    def git(*args: str) -> str:
        done = subprocess.run(['git', *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True)
        return done.stdout.strip()

    try:
        return {
            'commit': git('rev-parse', 'HEAD'),
            'branch': git('rev-parse', '--abbrev-ref', 'HEAD'),
            'dirty': bool(git('status', '--porcelain', '--untracked-files=no')),
        }
    except (OSError, subprocess.SubprocessError):
        return None
