"""Signals: time-stamped sequences of values with index access and time access.

A signal is a step function of time: at time ``t`` its value is the last record at or before ``t``
(``i = searchsorted(ts, t, side='right') - 1``) and it is undefined before its first record. Timestamps are
int64 nanoseconds.

- ``signal[i]`` is ``(value, ts_ns)`` with ``ts_ns`` a Python int; negative ``i`` counts from the end.
- ``signal[a:b:s]`` and ``signal[[i, j, ...]]`` are views (no data is copied or read); boolean masks are refused.
- ``signal.time[t]`` is ``(value, ts_ns of that record)`` for the record at or before ``t`` (an int or float;
  an ``np.integer`` scalar is refused with TypeError, as in Positronic).
- ``signal.time[a:b]`` is the view of the records in ``[a, b)``; when ``a`` falls between two records, the
  earlier record is carried forward and given the timestamp ``a``. ``a`` before the first record clips the
  window to the first record; a missing ``a`` means the first record, a missing ``b`` the last plus one.
- ``signal.time[a:b:s]`` samples ``a, a+s, ...`` (``< b``, a missing ``b`` means last plus one); the view's
  timestamps are the requested times and its values those at or before them.
- ``signal.time[[t0, t1, ...]]`` does the same for explicit times (any order).
Grids and time arrays raise :class:`TimeOutOfRangeError` (a KeyError) when a time is before the first record.
"""

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from typing import Any, overload

import numpy as np

from positronic.dataset.errors import TimeOutOfRangeError, TimestampOrderError, TimestampTypeError

TimeQuery = int | float | np.floating
"""A single time in nanoseconds for ``signal.time[...]``."""


class LazySequence(Sequence):
    """A read-only sequence whose items are computed by ``item(i)`` only when accessed.

    Slicing returns another lazy sequence; ``np.asarray`` stacks all items.
    """

    def __init__(self, length: int, item: Callable[[int], Any]):
        self._length = length
        self._item = item

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> 'LazySequence': ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            positions = range(self._length)[index]
            return LazySequence(len(positions), lambda i: self._item(positions[i]))
        return self._item(_normalize_index(index, self._length))

    def __iter__(self) -> Iterator[Any]:
        for i in range(self._length):
            yield self._item(i)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        items = [np.asarray(item) for item in self]
        if not items:
            return np.empty((0,), dtype=dtype)
        return np.stack(items).astype(dtype, copy=False) if dtype is not None else np.stack(items)


class Signal(ABC):
    """A time-stamped sequence of values; see the module docstring for index and time access."""

    name: str = ''
    """The signal's name in its episode ('' when it has none); used in error messages."""

    @property
    @abstractmethod
    def timestamps(self) -> np.ndarray:
        """Record timestamps, int64 ns, shape (N,), ascending."""

    @abstractmethod
    def _value_at(self, index: int) -> Any:
        """Value of record ``index`` (0 <= index < N)."""

    @abstractmethod
    def _values_at(self, indices: np.ndarray) -> Sequence[Any]:
        """Values of the records ``indices`` (int64 array, each in [0, N)), as an array or a lazy sequence."""

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def values(self) -> Sequence[Any]:
        """All values: an ndarray (N, ...) for parquet-backed signals, a lazy sequence of frames for video."""
        return self._values_at(np.arange(len(self), dtype=np.int64))

    @property
    def dtype(self) -> np.dtype | None:
        """dtype of one value (object for strings); None for an empty signal."""
        return np.asarray(self._value_at(0)).dtype if len(self) else None

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Shape of one value: () for scalars, (D,) for vectors, (H, W, 3) for images; None when empty."""
        return np.shape(self._value_at(0)) if len(self) else None

    @property
    def first_ts(self) -> int:
        """Timestamp of the first record, int ns; IndexError when the signal is empty."""
        return int(self.timestamps[0])

    @property
    def last_ts(self) -> int:
        """Timestamp of the last record, int ns; IndexError when the signal is empty."""
        return int(self.timestamps[-1])

    @overload
    def __getitem__(self, key: int | np.integer) -> tuple[Any, int]: ...

    @overload
    def __getitem__(self, key: slice | Sequence[int] | np.ndarray) -> 'Signal': ...

    def __getitem__(self, key):
        if isinstance(key, int | np.integer) and not isinstance(key, bool | np.bool_):
            i = _normalize_index(key, len(self))
            return self._value_at(i), int(self.timestamps[i])
        if isinstance(key, slice):
            indices = np.arange(len(self), dtype=np.int64)[key]
        else:
            indices = _index_array(key, len(self), self.name)
        return SignalView(self, indices, self.timestamps[indices])

    def __iter__(self) -> Iterator[tuple[Any, int]]:
        timestamps = self.timestamps
        for i in range(len(timestamps)):
            yield self._value_at(i), int(timestamps[i])

    @property
    def time(self) -> 'SignalTime':
        """Time access (see the module docstring)."""
        return SignalTime(self)

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.name!r})'


class SignalView(Signal):
    """Records ``indices`` of ``source`` presented with ``timestamps`` (same length); reads nothing itself."""

    def __init__(self, source: Signal, indices: np.ndarray, timestamps: np.ndarray):
        if isinstance(source, SignalView):
            indices = source._indices[indices]
            source = source._source
        self._source = source
        self._indices = np.asarray(indices, dtype=np.int64)
        self._timestamps = np.asarray(timestamps, dtype=np.int64)
        self._timestamps.flags.writeable = False
        self.name = source.name

    @property
    def source(self) -> Signal:
        """The signal whose records this view presents."""
        return self._source

    @property
    def source_indices(self) -> np.ndarray:
        """For each record of the view, its index in ``source``; int64 (N,)."""
        return self._indices

    @property
    def timestamps(self) -> np.ndarray:
        return self._timestamps

    def _value_at(self, index: int) -> Any:
        return self._source._value_at(int(self._indices[index]))

    def _values_at(self, indices: np.ndarray) -> Sequence[Any]:
        return self._source._values_at(self._indices[indices])

    @property
    def dtype(self) -> np.dtype | None:
        return self._source.dtype if len(self) else None

    @property
    def shape(self) -> tuple[int, ...] | None:
        return self._source.shape if len(self) else None

    @cached_property
    def _is_sorted(self) -> bool:
        return bool(np.all(np.diff(self._timestamps) >= 0))


class SignalTime:
    """``signal.time[...]``: lookups by time (see the module docstring)."""

    __slots__ = ('_signal',)

    def __init__(self, signal: Signal):
        self._signal = signal

    @overload
    def __getitem__(self, key: TimeQuery) -> tuple[Any, int]: ...

    @overload
    def __getitem__(self, key: slice | Sequence[TimeQuery] | np.ndarray) -> Signal: ...

    def __getitem__(self, key):
        signal = self._signal
        if isinstance(signal, SignalView) and not signal._is_sorted:
            raise ValueError(f'signal {signal.name!r}: time access needs ascending timestamps; this view is unsorted')
        if isinstance(key, slice):
            return self._stepped(key) if key.step is not None else self._window(key)
        if isinstance(key, list | tuple | np.ndarray):
            return self._at_times(np.asarray(key))
        t = _scalar_time(key, signal.name)
        timestamps = signal.timestamps
        i = int(np.searchsorted(timestamps, t, side='right')) - 1
        if i < 0:
            raise TimeOutOfRangeError(_before_first_message(signal, t))
        return signal._value_at(i), int(timestamps[i])

    def _window(self, key: slice) -> Signal:
        signal = self._signal
        timestamps = signal.timestamps
        n = len(timestamps)
        stop = n if key.stop is None else int(np.searchsorted(timestamps, _bound(key.stop, signal.name), 'left'))
        if key.start is None or n == 0:
            indices = np.arange(0, stop, dtype=np.int64)
            return SignalView(signal, indices, timestamps[indices])
        start_ts = _bound(key.start, signal.name)
        start = int(np.searchsorted(timestamps, start_ts, 'left'))
        indices = np.arange(start, max(start, stop), dtype=np.int64)
        view_ts = timestamps[indices]
        carried = start > 0 and (start == n or timestamps[start] != start_ts)
        if carried and (key.stop is None or start_ts < _bound(key.stop, signal.name)):
            indices = np.concatenate(([start - 1], indices))
            view_ts = np.concatenate(([start_ts], view_ts))
        return SignalView(signal, indices, view_ts)

    def _stepped(self, key: slice) -> Signal:
        signal = self._signal
        if key.start is None:
            raise ValueError(f'signal {signal.name!r}: a stepped time slice needs a start, got {key}')
        step = key.step
        if not isinstance(step, int | float | np.integer | np.floating) or isinstance(step, bool) or not step > 0:
            raise ValueError(
                f'signal {signal.name!r}: the step of a time slice must be a positive number, got {step!r}'
            )
        stop = key.stop if key.stop is not None else signal.last_ts + 1
        return self._at_times(time_grid(key.start, stop, step))

    def _at_times(self, times: np.ndarray) -> Signal:
        signal = self._signal
        if times.dtype.kind not in 'iuf' or times.ndim != 1:
            raise TimestampTypeError(
                f'signal {signal.name!r}: time arrays must be 1-D numbers (ns), got dtype {times.dtype} '
                f'with shape {times.shape}'
            )
        query = _floor_times(times, signal.name)
        timestamps = signal.timestamps
        indices = np.searchsorted(timestamps, query, side='right').astype(np.int64) - 1
        if len(indices) and indices.min() < 0:
            raise TimeOutOfRangeError(_before_first_message(signal, int(query[np.argmin(indices)])))
        return SignalView(signal, indices, query)


def time_grid(start: int | float, stop: int | float, step: int | float) -> np.ndarray:
    """Times ``start + i*step`` below ``stop``, as int64 ns (rounded down when not integers), shape (K,).

    With an integer start, the offsets ``i*step`` are computed on their own so that large absolute times keep
    nanosecond precision even with a float step.
    """
    if all(isinstance(x, int | np.integer) for x in (start, stop, step)):
        return np.arange(int(start), int(stop), int(step), dtype=np.int64)
    count = max(0, math.ceil((stop - start) / step))
    offsets = np.arange(count, dtype=np.float64) * step
    if isinstance(start, int | np.integer):
        grid = int(start) + np.floor(offsets).astype(np.int64)
    else:
        grid = np.floor(start + offsets).astype(np.int64)
    return grid[grid < stop]


def _before_first_message(signal: Signal, t: int | float) -> str:
    if len(signal) == 0:
        return f'signal {signal.name!r} has no records; no value at t={t} ns'
    return f'signal {signal.name!r} has no value at t={t} ns: its first record is at {signal.first_ts} ns'


def _normalize_index(index: int | np.integer, length: int) -> int:
    i = int(index)
    if i < 0:
        i += length
    if not 0 <= i < length:
        raise IndexError(f'index {int(index)} is out of range for length {length}')
    return i


def _index_array(key: Any, length: int, name: str) -> np.ndarray:
    indices = np.asarray(key)
    if indices.dtype.kind == 'b':
        raise TypeError(f'signal {name!r}: boolean masks are not supported; pass integer indices')
    if indices.size == 0:
        return np.empty((0,), dtype=np.int64)
    if indices.dtype.kind not in 'iu' or indices.ndim != 1:
        raise TypeError(f'signal {name!r}: indices must be a 1-D integer array, a slice or an int; got {key!r}')
    indices = indices.astype(np.int64)
    if indices.min() < -length or indices.max() >= length:
        raise IndexError(f'signal {name!r}: indices out of range for length {length}')
    return np.where(indices < 0, indices + length, indices)


def _scalar_time(t: Any, name: str) -> int:
    if isinstance(t, np.integer):
        raise TimestampTypeError(
            f'signal {name!r}: a single time lookup takes a Python int or float (ns), not {type(t).__name__}; '
            f'use int(t)'
        )
    if isinstance(t, bool) or not isinstance(t, int | float | np.floating):
        raise TimestampTypeError(f'signal {name!r}: a time lookup takes an int or float (ns), got {t!r}')
    if isinstance(t, int):
        return t
    if not math.isfinite(t):
        raise TimestampTypeError(f'signal {name!r}: time {t!r} is not finite')
    return math.floor(t)


def _bound(t: Any, name: str) -> int:
    """A window bound as int ns; a float bound is rounded up (records are at integer times)."""
    if isinstance(t, bool) or not isinstance(t, int | float | np.integer | np.floating):
        raise TimestampTypeError(f'signal {name!r}: a time window bound must be a number (ns), got {t!r}')
    if isinstance(t, int | np.integer):
        return int(t)
    if not math.isfinite(t):
        raise TimestampTypeError(f'signal {name!r}: time window bound {t!r} is not finite')
    return math.ceil(t)


def _floor_times(times: np.ndarray, name: str) -> np.ndarray:
    """Query times as int64 ns; a float time is rounded down, which keeps its at-or-before record."""
    if times.dtype.kind == 'f':
        if not np.all(np.isfinite(times)):
            raise TimestampTypeError(f'signal {name!r}: time arrays must be finite')
        return np.floor(times).astype(np.int64)
    return times.astype(np.int64)


class SignalWriter(ABC):
    """Appends the records of one signal to its files; records must come in strictly increasing time."""

    def __init__(self, name: str):
        self.name = name
        self._last_ts: int | None = None

    def _checked_ts(self, ts_ns: Any) -> int:
        """``ts_ns`` as an int after checking it is an integer strictly after ``_last_ts``.

        The caller sets ``_last_ts`` once the record is stored, so a rejected value leaves the order unchanged.
        """
        if isinstance(ts_ns, bool) or not isinstance(ts_ns, int | np.integer):
            raise TimestampTypeError(
                f'signal {self.name!r}: timestamps are int nanoseconds, got {type(ts_ns).__name__} {ts_ns!r}'
            )
        ts = int(ts_ns)
        if self._last_ts is not None and ts <= self._last_ts:
            raise TimestampOrderError(
                f'signal {self.name!r}: timestamp {ts} ns is not after the previous one ({self._last_ts} ns); '
                f'timestamps must strictly increase'
            )
        return ts

    @abstractmethod
    def append(self, value: Any, ts_ns: int) -> None:
        """Add one record; raises on a bad timestamp or a value that differs in kind from the first one."""

    @abstractmethod
    def close(self) -> None:
        """Flush everything and close the files; the signal is then complete on disk."""

    @abstractmethod
    def abort(self) -> None:
        """Close and delete this signal's files."""
