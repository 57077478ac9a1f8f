import logging
from pathlib import Path

import pytest

from positronic.offboard.client import InferenceClient
from positronic.offboard.server import ServerThread
from tests.benchmarks.test_run_all import BENCHMARKS_DIR
from tests.offboard.sources import StepSource, observation


@pytest.fixture
def server_log(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS_DIR))
    import server_log

    return server_log


@pytest.fixture
def debug_log(tmp_path: Path):
    """The server's per-request DEBUG lines, written to a file as a deployed server writes its log."""
    path = tmp_path / 'server.log'
    handler = logging.FileHandler(path)
    server_logger = logging.getLogger('positronic.offboard.server')
    level = server_logger.level
    server_logger.setLevel(logging.DEBUG)
    server_logger.addHandler(handler)
    yield path
    server_logger.removeHandler(handler)
    server_logger.setLevel(level)
    handler.close()


def test_each_round_trip_is_paired_with_the_servers_own_timing_of_it(server_log, debug_log):
    delays = [0.02, 0.15, 0.05]
    with ServerThread(StepSource(), host='127.0.0.1', port=0) as server:
        client = InferenceClient('127.0.0.1', server.port)
        observations = [observation(delay_s=delay) for delay in delays]
        rtts, timings = server_log.measure_latency(client, debug_log, observations, requests=3, warmup=3)

    assert len(rtts) == len(timings) == 3
    policy_s = [timing[1] for timing in timings]
    assert policy_s[0] < policy_s[2] < policy_s[1], 'the policy times follow the observations sent, in order'
    assert all(delay <= policy < delay + 1.0 for delay, policy in zip(delays, policy_s, strict=True))
    overheads = server_log.overheads(rtts, timings)
    assert all(0 < overhead < rtt for overhead, rtt in zip(overheads, rtts, strict=True))


def test_a_log_without_timing_lines_is_refused_with_its_path(server_log, tmp_path):
    log = tmp_path / 'server.log'
    log.write_text('')
    with ServerThread(StepSource(), host='127.0.0.1', port=0) as server:
        client = InferenceClient('127.0.0.1', server.port)
        with pytest.raises(RuntimeError, match=rf'{log}: 0 timing lines for 2 requests'):
            server_log.measure_latency(client, log, [observation()], requests=1, warmup=1)
