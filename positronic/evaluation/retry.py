"""Bounded retries for policy calls that fail because the inference server cannot be reached (yet)."""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from positronic.offboard.client import ServerTimeoutError, ServerUnreachableError, SessionClosedError

logger = logging.getLogger(__name__)

T = TypeVar('T')

TRANSIENT_ERRORS = (ServerUnreachableError, ServerTimeoutError, SessionClosedError)
"""Failures that another attempt may cure: no connection, no answer in time, a dropped connection."""


class PolicyUnavailableError(RuntimeError):
    """The policy could not be reached within the allowed attempts."""


def call_with_retry(call: Callable[[], T], what: str, attempts: int, delay_s: float) -> T:
    """``call()``, tried up to ``attempts`` times, ``delay_s`` seconds apart, while it raises one of
    ``TRANSIENT_ERRORS``; then PolicyUnavailableError naming ``what`` and the last error. Other errors
    propagate at once."""
    if attempts < 1:
        raise ValueError(f'attempts must be at least 1, got {attempts}')
    last_error: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except TRANSIENT_ERRORS as error:
            last_error = error
            if attempt < attempts:
                logger.warning(
                    '%s failed (attempt %d of %d), retrying in %.1f s: %s', what, attempt, attempts, delay_s, error
                )
                time.sleep(delay_s)
    raise PolicyUnavailableError(f'{what} failed after {attempts} attempt(s): {last_error}') from last_error
