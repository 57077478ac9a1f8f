"""Camera frames produced ahead of the encoder by a background thread, a bounded number at a time.

Conversion reads each camera as a lazy sequence (decode the raw video, letterbox). Wrapping it in
:class:`ReadAhead` moves that work to its own thread, so decoding and letterboxing overlap with encoding (both
release the GIL for most of their time), and the next episode's first frames are ready while the current episode's
slower camera finishes.
"""

import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

DEFAULT_DEPTH = 32
"""Frames buffered per camera (a 480x480 RGB frame is 0.66 MiB)."""
_POLL_S = 0.1
_END = object()


class ReadAheadDepthError(ValueError):
    """A read-ahead depth (``--read_ahead``) that is not a whole number of frames >= 0."""


def checked_depth(depth: object) -> int:
    """``depth`` as the frames to read ahead per camera (0: none); ReadAheadDepthError for anything else."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ReadAheadDepthError(
            f'--read_ahead={depth!r}: expected an integer >= 0 (camera frames decoded ahead; 0 decodes in the '
            'encoding thread)'
        )
    return depth


class ReadAheadClosedError(RuntimeError):
    """The iteration was waiting for a frame when the read-ahead was closed (e.g. the conversion was aborted)."""


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class ReadAhead:
    """``frames`` (a sized iterable, consumed once) read by a daemon thread into a queue of ``depth`` items.

    Iterate it once; an exception raised while producing is raised by the iteration at that point. ``close`` (also
    called when the iteration stops early) stops the thread, and an iteration still waiting for frames then raises
    ReadAheadClosedError instead of waiting forever.
    """

    def __init__(self, frames: Sequence[Any], depth: int = DEFAULT_DEPTH, name: str = 'read-ahead'):
        if depth < 1:
            raise ValueError(f'read-ahead depth must be at least 1, got {depth}')
        self._length = len(frames)
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._consumed = False
        self._thread = threading.Thread(target=self._produce, args=(frames,), name=name, daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        return self._length

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, frames: Sequence[Any]) -> None:
        try:
            for frame in frames:
                if not self._put(frame):
                    return
        except BaseException as error:  # handed to the consumer, which raises it
            self._put(_Failure(error))
            return
        self._put(_END)

    def __iter__(self) -> Iterator[Any]:
        if self._consumed:
            raise RuntimeError('ReadAhead can be iterated only once')
        self._consumed = True
        try:
            while True:
                try:
                    item = self._queue.get(timeout=_POLL_S)
                except queue.Empty:
                    if self._stop.is_set():
                        raise ReadAheadClosedError('the frames were closed while being read') from None
                    continue
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop producing and drop what is buffered (idempotent)."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
