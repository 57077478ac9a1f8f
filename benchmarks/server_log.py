"""Per-request times from the inference server's DEBUG log, for subtracting each request's own policy time.

At DEBUG level the server logs one ``positronic.offboard.server.TIMING_LOG_FORMAT`` line per answered request. The
pattern here is built from that format, so the two cannot drift apart.
"""

import re
import time
from pathlib import Path

from positronic.offboard.client import InferenceClient
from positronic.offboard.server import TIMING_LOG_FORMAT

ServerTiming = tuple[float, float, float]
"""(unpack, policy, pack) seconds of one request, as the server measured them."""

_NUMBER = r'([\d.]+)'
TIMING_PATTERN = re.compile(re.escape(TIMING_LOG_FORMAT).replace('%d', r'\d+').replace(r'%\.3f', _NUMBER))


def server_timings(log: Path) -> list[ServerTiming]:
    """The timings of every request the server answered so far, in order."""
    return [tuple(float(x) / 1e3 for x in m.groups()) for m in TIMING_PATTERN.finditer(log.read_text())]


def measure_latency(
    client: InferenceClient, log: Path, observations: list[dict], requests: int, warmup: int = 20
) -> tuple[list[float], list[ServerTiming]]:
    """Round trips (s) of ``requests`` sequential requests on one session (after ``warmup`` more, cycling through
    ``observations``), and the server's timings of each."""
    before = len(server_timings(log))
    rtts = []
    with client.new_session(on_status=lambda *_: None) as session:
        for i in range(warmup + requests):
            started = time.perf_counter()
            session.infer(observations[i % len(observations)])
            rtts.append(time.perf_counter() - started)
    timings = server_timings(log)[before:]
    if len(timings) != len(rtts):
        raise RuntimeError(f'{log}: {len(timings)} timing lines for {len(rtts)} requests (is the level DEBUG?)')
    return rtts[warmup:], timings[warmup:]


def overheads(rtts: list[float], timings: list[ServerTiming]) -> list[float]:
    """Each request's round trip minus its own policy time."""
    return [rtt - timing[1] for rtt, timing in zip(rtts, timings, strict=True)]
