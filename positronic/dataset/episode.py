"""Episodes: named signals plus static items, with episode-wide time access.

An episode is a read-only mapping from names to signals (:class:`~positronic.dataset.signal.Signal`) or
static items (JSON values). On disk (:class:`DiskEpisode`) it is one directory holding ``static.json``,
``meta.json``, and per signal ``<name>.parquet`` or ``<name>.mp4`` + ``<name>.frames.parquet``; the
``.unfinished`` marker is present while a writer still owns the directory.

Episode time access (``episode.time[...]``), timestamps in int64 ns:

- ``ep.time[t]``: dict of all static items plus, per signal, its value at or before ``t``;
- ``ep.time[a:b:s]``: dict of the static items plus, per signal, the sequence of its values at
  ``a, a+s, ...`` (``< b``); a missing ``a`` means ``ep.start_ts``, a missing ``b`` means ``ep.last_ts + 1``;
  ``ep.time[a:b]`` without a step raises KeyError, as in Positronic;
- ``ep.time[[t0, t1, ...]]``: the same for explicit times.
Each signal raises :class:`~positronic.dataset.errors.TimeOutOfRangeError` (a KeyError) for a time before
its first record. Vector values come back as ndarrays (K, ...), video values as lazy frame sequences.
"""

import json
import os
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from positronic.dataset.errors import CorruptSignalError, MissingFrameIndexError, NotAnEpisodeError, UnknownKeyError
from positronic.dataset.signal import Signal, time_grid
from positronic.dataset.vector import PARQUET_SUFFIX, VectorSignal
from positronic.dataset.video import FRAMES_SUFFIX, VIDEO_SUFFIX, VideoSignal, frames_path

STATIC_FILE = 'static.json'
"""Static items of an episode: one JSON object."""
META_FILE = 'meta.json'
"""System metadata of an episode (schema version, creation time, writer)."""
UNFINISHED_MARKER = '.unfinished'
"""Present in an episode directory until its writer finalizes it; readers skip such episodes."""
META_PATH = 'path'
"""meta.json key with the episode directory (rewritten with the current location when read)."""
META_SIZE_MB = 'size_mb'
"""Key added to the metadata on read: total size of the episode's files in MiB."""


class Episode(Mapping):
    """Signals and static items by name; ``episode[name]`` is a Signal or a static value.

    Episodes compare by identity: comparing contents would read every signal.
    """

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    @property
    @abstractmethod
    def signals(self) -> Mapping[str, Signal]:
        """Signals by name."""

    @property
    @abstractmethod
    def static(self) -> Mapping[str, Any]:
        """Static items by name (JSON values)."""

    @property
    def meta(self) -> Mapping[str, Any]:
        """System metadata (empty unless the episode has some)."""
        return {}

    def __getitem__(self, name: str) -> Signal | Any:
        signal = self.signals.get(name)
        if signal is not None:
            return signal
        static = self.static
        if name in static:
            return static[name]
        raise UnknownKeyError(
            f'episode has no signal or static item {name!r}; signals: {sorted(self.signals)}, static: {sorted(static)}'
        )

    def __iter__(self) -> Iterator[str]:
        yield from self.signals
        yield from (name for name in self.static if name not in self.signals)

    def __len__(self) -> int:
        return len(set(self.signals) | set(self.static))

    @property
    def start_ts(self) -> int:
        """Latest first timestamp over all signals (int ns): from here on every signal has a value."""
        return max(signal.first_ts for signal in self._nonempty_signals())

    @property
    def last_ts(self) -> int:
        """Latest last timestamp over all signals (int ns)."""
        return max(signal.last_ts for signal in self._nonempty_signals())

    def _nonempty_signals(self) -> list[Signal]:
        signals = [signal for signal in self.signals.values() if len(signal)]
        if not signals:
            raise ValueError(f'{self!r} has no signal records, so it has no time range')
        return signals

    @property
    def time(self) -> 'EpisodeTime':
        """Episode-wide time access (see the module docstring)."""
        return EpisodeTime(self)


def episode_label(episode: Episode) -> str:
    """How messages name an episode: its directory when it has one (a DiskEpisode), else ``<in memory>``."""
    path = getattr(episode, 'path', None)
    return str(path) if path is not None else '<in memory>'


class EpisodeTime:
    """``episode.time[...]``: every signal looked up at the same time(s), plus the static items."""

    def __init__(self, episode: Episode):
        self._episode = episode

    def __getitem__(self, key: Any) -> dict[str, Any]:
        episode = self._episode
        result = dict(episode.static)
        if isinstance(key, slice):
            if key.step is None:
                raise KeyError(f'episode time windows need a step (ep.time[a:b:step]), got {key}')
            if not isinstance(key.step, int | float | np.integer | np.floating) or not key.step > 0:
                raise ValueError(f'the step of an episode time slice must be a positive number, got {key.step!r}')
            start = episode.start_ts if key.start is None else key.start
            stop = episode.last_ts + 1 if key.stop is None else key.stop
            key = time_grid(start, stop, key.step)
        if isinstance(key, list | tuple | np.ndarray):
            times = np.asarray(key)
            for name, signal in episode.signals.items():
                result[name] = signal.time[times].values
        else:
            for name, signal in episode.signals.items():
                result[name] = signal.time[key][0]
        return result


class EpisodeView(Episode):
    """An episode made of given signals and static items (e.g. transformed ones); reads nothing itself."""

    def __init__(
        self, signals: Mapping[str, Signal], static: Mapping[str, Any] | None = None, meta: Mapping | None = None
    ):
        self._signals = dict(signals)
        self._static = dict(static or {})
        self._meta = dict(meta or {})

    @property
    def signals(self) -> Mapping[str, Signal]:
        return MappingProxyType(self._signals)

    @property
    def static(self) -> Mapping[str, Any]:
        return MappingProxyType(self._static)

    @property
    def meta(self) -> Mapping[str, Any]:
        return MappingProxyType(self._meta)


class DiskEpisode(Episode):
    """A finished episode directory, opened lazily.

    Opening lists the directory (to know the signals) and reads nothing else; ``static`` and ``meta`` read
    their JSON file on first access, and each signal reads its files on first access.
    Raises NotAnEpisodeError if ``path`` is not a directory or is still marked unfinished, and
    MissingFrameIndexError for a ``<name>.mp4`` without ``<name>.frames.parquet``.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if not self.path.is_dir():
            raise NotAnEpisodeError(f'{self.path} is not an episode directory (no such directory)')
        if (self.path / UNFINISHED_MARKER).exists():
            raise NotAnEpisodeError(f'{self.path} is an unfinished episode (it has {UNFINISHED_MARKER})')
        self._signals = _discover_signals(self.path)

    @property
    def signals(self) -> Mapping[str, Signal]:
        return MappingProxyType(self._signals)

    @cached_property
    def _static(self) -> Mapping[str, Any]:
        path = self.path / STATIC_FILE
        return MappingProxyType(_read_json_object(path))

    @property
    def static(self) -> Mapping[str, Any]:
        return self._static

    @property
    def meta(self) -> Mapping[str, Any]:
        """meta.json, with ``path`` set to the current directory and ``size_mb`` the files' total in MiB."""
        path = self.path / META_FILE
        meta = _read_json_object(path)
        meta[META_PATH] = str(self.path.resolve())
        meta[META_SIZE_MB] = sum(f.stat().st_size for f in self.path.iterdir() if f.is_file()) / 2**20
        return meta

    def close(self) -> None:
        """Release open video files (they reopen on the next access)."""
        for signal in self._signals.values():
            if isinstance(signal, VideoSignal):
                signal.close()

    def __repr__(self) -> str:
        return f'DiskEpisode({str(self.path)!r})'


def _discover_signals(path: Path) -> dict[str, Signal]:
    signals: dict[str, Signal] = {}
    for file_name in sorted(os.listdir(path)):
        if file_name.endswith(FRAMES_SUFFIX):
            continue
        if file_name.endswith(PARQUET_SUFFIX):
            name = file_name[: -len(PARQUET_SUFFIX)]
            signals[name] = VectorSignal(path / file_name, name)
        elif file_name.endswith(VIDEO_SUFFIX):
            name = file_name[: -len(VIDEO_SUFFIX)]
            if not frames_path(path / file_name).is_file():
                raise MissingFrameIndexError(
                    f'signal {name!r}: video {path / file_name} has no frame index; expected '
                    f'{frames_path(path / file_name).name} beside it'
                )
            signals[name] = VideoSignal(path / file_name, name)
    return signals


def _read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` ({} when there is no such file); CorruptSignalError naming it otherwise."""
    if not path.exists():
        return {}
    try:
        content = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptSignalError(f'{path}: cannot read it ({e}); expected a JSON object') from e
    if not isinstance(content, dict):
        raise CorruptSignalError(f'{path}: expected a JSON object, got {type(content).__name__}')
    return content
