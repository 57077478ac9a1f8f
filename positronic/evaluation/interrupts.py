"""Ctrl+C during a run: the first press stops at the next safe point, a second one at once.

A KeyboardInterrupt can otherwise land anywhere, e.g. between creating an episode directory and recording
that it exists, or between finalizing an episode and counting its result. Deferring it to the start of a
tick keeps the recording and the summary consistent.
"""

import signal
import threading
from types import FrameType, TracebackType

from tqdm import tqdm


class DeferredInterrupt:
    """While entered (in the main thread), SIGINT only sets ``requested``; ``check()`` then raises
    KeyboardInterrupt at a point the caller chose. A second SIGINT raises at once (for a policy call that
    blocks). Elsewhere than the main thread it does nothing and SIGINT keeps its default behaviour."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: signal.Handlers | None = None
        self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        tqdm.write('Ctrl+C: stopping at the next control tick (press again to stop at once)')

    def check(self) -> None:
        """Raise KeyboardInterrupt if Ctrl+C was pressed."""
        if self.requested:
            raise KeyboardInterrupt

    def __enter__(self) -> 'DeferredInterrupt':
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False
