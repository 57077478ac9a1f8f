import threading
import time

import pytest

from positronic.vendors.lerobot.conversion.read_ahead import ReadAhead, ReadAheadClosedError


class Frames:
    """A sized source that records how far it was read and can fail at one index."""

    def __init__(self, length: int, fail_at: int | None = None):
        self.length, self.fail_at, self.produced = length, fail_at, 0

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        for i in range(self.length):
            if i == self.fail_at:
                raise OSError(f'frame {i} is unreadable')
            self.produced += 1
            yield i


def wait_until(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_yields_every_frame_in_order_and_knows_its_length():
    frames = ReadAhead(Frames(50), depth=4)
    assert len(frames) == 50 and list(frames) == list(range(50))
    with pytest.raises(RuntimeError, match='only once'):
        list(frames)


def test_reads_at_most_depth_frames_ahead():
    source = Frames(100)
    frames = iter(ReadAhead(source, depth=5))
    assert next(frames) == 0
    assert wait_until(lambda: source.produced >= 6)
    time.sleep(0.2)
    assert source.produced <= 7  # one consumed, five queued, one waiting to be put
    assert list(frames) == list(range(1, 100))


def test_a_failure_is_raised_where_it_happened():
    frames = iter(ReadAhead(Frames(10, fail_at=6), depth=3))
    assert [next(frames) for _ in range(6)] == list(range(6))
    with pytest.raises(OSError, match='frame 6 is unreadable'):
        next(frames)


def test_stopping_early_or_closing_ends_the_producer_thread():
    before = threading.active_count()
    frames = iter(ReadAhead(Frames(1000), depth=2))
    next(frames)
    frames.close()
    unread = ReadAhead(Frames(1000), depth=2)
    unread.close()
    assert wait_until(lambda: threading.active_count() == before)
    with pytest.raises(ValueError, match='at least 1'):
        ReadAhead(Frames(1), depth=0)


def test_closing_releases_a_consumer_waiting_for_frames():
    release = threading.Event()

    class Stalled:
        def __len__(self):
            return 3

        def __iter__(self):
            yield 0
            release.wait(10)  # a source that stops delivering
            yield 1

    frames = ReadAhead(Stalled(), depth=2)
    outcome = []

    def consume():
        try:
            for frame in frames:
                outcome.append(frame)
        except ReadAheadClosedError as error:
            outcome.append(error)

    consumer = threading.Thread(target=consume)
    consumer.start()
    assert wait_until(lambda: outcome == [0])
    frames.close()
    consumer.join(timeout=5)
    release.set()
    assert not consumer.is_alive() and isinstance(outcome[-1], ReadAheadClosedError)
