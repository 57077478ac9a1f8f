"""Lazy signal and episode transforms: each returns a view that computes values only when they are read.

- :func:`resample` / :func:`resample_episode`: values at or before each time of a grid;
- :func:`concat`: several scalar/vector signals as one vector signal on the union of their timestamps;
- :func:`select`: part of each vector of a signal;
- :func:`letterbox` (one image) and :func:`letterboxed` (an image signal): resize keeping the aspect ratio,
  centred on a black canvas of the target size.

Nothing here copies raw data up front: transforms hold their sources and index arrays, and a video frame is
decoded (and letterboxed) only when it is accessed.
"""

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

import numpy as np
from PIL import Image

from positronic.dataset.episode import Episode, EpisodeView
from positronic.dataset.signal import LazySequence, Signal
from positronic.dataset.video import is_image


def letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an RGB image to ``width`` x ``height`` keeping its aspect ratio, padding with black.

    ``image`` is uint8 (H, W, 3); the result is uint8 (height, width, 3). An image already of the target size
    is returned unchanged (the same object). Otherwise, with ``ratio = max(W / width, H / height)``, the image
    is resized with Pillow's BILINEAR filter to ``(int(W / ratio), int(H / ratio))`` and pasted on a black
    canvas at ``(int((width - new_w) / 2), int((height - new_h) / 2))``. This is the only implementation: the
    conversion path (via :func:`letterboxed`) and live inference both call it, so they agree to the byte.
    """
    if not is_image(image):
        raise ValueError(f'letterbox expects a uint8 (H, W, 3) image, got {getattr(image, "shape", type(image))}')
    if width <= 0 or height <= 0:
        raise ValueError(f'letterbox target must be positive, got {width}x{height}')
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    ratio = max(w / width, h / height)
    new_w, new_h = max(1, int(w / ratio)), max(1, int(h / ratio))
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR))
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    left, top = int((width - new_w) / 2), int((height - new_h) / 2)
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas


class _MappedSignal(Signal):
    """``source`` with ``fn`` applied to each value on access; ``batch_fn`` maps an ndarray of values at once.

    ``value_shape``, when known up front, answers ``shape`` without computing a value.
    """

    def __init__(
        self,
        source: Signal,
        fn: Callable[[Any], Any],
        batch_fn: Callable[[np.ndarray], np.ndarray] | None = None,
        value_shape: tuple[int, ...] | None = None,
    ):
        self._source = source
        self._fn = fn
        self._batch_fn = batch_fn
        self._value_shape = value_shape
        self.name = source.name

    @property
    def shape(self) -> tuple[int, ...] | None:
        if self._value_shape is not None and len(self):
            return self._value_shape
        return super().shape

    @property
    def timestamps(self) -> np.ndarray:
        return self._source.timestamps

    def _value_at(self, index: int) -> Any:
        return self._fn(self._source._value_at(index))

    def _values_at(self, indices: np.ndarray) -> Sequence[Any]:
        values = self._source._values_at(indices)
        if self._batch_fn is not None and isinstance(values, np.ndarray):
            return self._batch_fn(values)
        return LazySequence(len(values), lambda i: self._fn(values[i]))


def letterboxed(signal: Signal, width: int, height: int) -> Signal:
    """Image signal whose frames are ``letterbox(frame, width, height)``, computed per accessed frame.

    Values are uint8 (height, width, 3); timestamps are the source's.
    """
    return _MappedSignal(signal, lambda frame: letterbox(frame, width, height), value_shape=(height, width, 3))


def select(signal: Signal, index: int | slice | Sequence[int]) -> Signal:
    """Vector signal with ``value[index]`` of each source value (1-D vectors; e.g. ``slice(0, 3)`` for xyz).

    An int index gives a scalar signal; a slice or a list of ints gives vectors. Dtype is kept.
    """
    key = list(index) if isinstance(index, list | tuple | np.ndarray) else index
    return _MappedSignal(signal, lambda value: np.asarray(value)[key], lambda values: values[:, key])


def resample(signal: Signal, ts_ns: np.ndarray | Sequence[int]) -> Signal:
    """The values of ``signal`` at or before each time of ``ts_ns`` (int64 ns, ascending), stamped with ``ts_ns``.

    Same as ``signal.time[ts_ns]``: raises TimeOutOfRangeError (a KeyError) for a time before the first record.
    """
    return signal.time[np.asarray(ts_ns)]


def resample_episode(episode: Episode, ts_ns: np.ndarray | Sequence[int]) -> Episode:
    """Every signal of ``episode`` resampled on ``ts_ns`` (see :func:`resample`); static items are kept."""
    times = np.asarray(ts_ns)
    return EpisodeView({name: resample(s, times) for name, s in episode.signals.items()}, episode.static, episode.meta)


class _ConcatSignal(Signal):
    """Scalar/vector signals joined into one vector per time of the union of their timestamps."""

    def __init__(self, sources: Sequence[Signal], dtype: np.dtype | None):
        self._sources = list(sources)
        self._dtype = dtype
        self.name = '+'.join(s.name for s in self._sources)

    @cached_property
    def _alignment(self) -> tuple[np.ndarray, list[np.ndarray]]:
        stamps = [s.timestamps for s in self._sources]
        if any(len(ts) == 0 for ts in stamps):
            return np.empty((0,), dtype=np.int64), [np.empty((0,), dtype=np.int64) for _ in stamps]
        union = np.unique(np.concatenate(stamps))
        union = union[union >= max(int(ts[0]) for ts in stamps)]
        indices = [np.searchsorted(ts, union, side='right').astype(np.int64) - 1 for ts in stamps]
        union.flags.writeable = False
        return union, indices

    @cached_property
    def _result_dtype(self) -> np.dtype:
        if self._dtype is not None:
            return np.dtype(self._dtype)
        return np.result_type(*(np.asarray(s._value_at(0)).dtype for s in self._sources))

    @property
    def timestamps(self) -> np.ndarray:
        return self._alignment[0]

    def _value_at(self, index: int) -> np.ndarray:
        _, indices = self._alignment
        parts = [
            np.asarray(s._value_at(int(idx[index]))).reshape(-1) for s, idx in zip(self._sources, indices, strict=True)
        ]
        return np.concatenate(parts).astype(self._result_dtype, copy=False)

    def _values_at(self, indices: np.ndarray) -> np.ndarray:
        _, source_indices = self._alignment
        parts = [
            np.asarray(s._values_at(idx[indices])).reshape(len(indices), -1)
            for s, idx in zip(self._sources, source_indices, strict=True)
        ]
        return np.concatenate(parts, axis=1).astype(self._result_dtype, copy=False)


def concat(*signals: Signal, dtype: np.dtype | type | None = None) -> Signal:
    """One vector signal from scalar/vector ``signals``, their values joined in the order given.

    Timestamps are the union of the sources' timestamps from the latest first timestamp on (where every
    source has a value); at each, every source contributes its value at or before it. Values are 1-D of
    length sum(D_i) (a scalar counts 1), of ``dtype`` (default: numpy's promotion of the source dtypes).
    """
    if not signals:
        raise ValueError('concat needs at least one signal')
    return _ConcatSignal(signals, dtype)
