import socket
import time

import pytest

from positronic.evaluation.retry import call_with_retry
from positronic.offboard.client import ServerUnreachableError
from positronic.policy.base import PolicyUnavailableError
from positronic.policy.remote import RemotePolicy


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_an_unreachable_server_is_tried_a_bounded_number_of_times_then_named_in_the_error():
    policy = RemotePolicy('127.0.0.1', closed_port(), connect_timeout_s=0.5)
    attempts = []

    def connect():
        attempts.append(time.monotonic())
        return policy.reset()

    with pytest.raises(PolicyUnavailableError, match=r'connecting failed after 3 attempt\(s\): cannot reach'):
        call_with_retry(connect, 'connecting', attempts=3, delay_s=0.05)
    assert len(attempts) == 3 and attempts[2] - attempts[0] >= 0.1


def test_a_transient_failure_is_retried_until_it_succeeds():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise PolicyUnavailableError('not yet')
        return 'ok'

    assert call_with_retry(flaky, 'x', attempts=2, delay_s=0.0) == 'ok'
    assert len(calls) == 2


def test_a_transport_error_that_the_policy_did_not_call_unavailable_is_not_retried():
    calls = []

    def raw_transport():
        calls.append(1)
        raise ServerUnreachableError('a policy should have said PolicyUnavailableError')

    with pytest.raises(ServerUnreachableError):
        call_with_retry(raw_transport, 'x', attempts=3, delay_s=0.0)
    assert len(calls) == 1


def test_other_errors_are_not_retried():
    calls = []

    def broken():
        calls.append(1)
        raise KeyError('bad config')

    with pytest.raises(KeyError):
        call_with_retry(broken, 'x', attempts=5, delay_s=0.0)
    assert len(calls) == 1
