"""Bounded retries for policy calls that fail because the policy cannot be reached (yet)."""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from positronic.policy.base import PolicyUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar('T')


def call_with_retry(call: Callable[[], T], what: str, attempts: int, delay_s: float) -> T:
    """``call()``, tried up to ``attempts`` times, ``delay_s`` seconds apart, while it raises
    PolicyUnavailableError (the policy cannot be reached now); then PolicyUnavailableError naming ``what``, the
    attempts and the last error. Other errors propagate at once."""
    if attempts < 1:
        raise ValueError(f'attempts must be at least 1, got {attempts}')
    last_error: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except PolicyUnavailableError as error:
            last_error = error
            if attempt < attempts:
                logger.warning(
                    '%s failed (attempt %d of %d), retrying in %.1f s: %s', what, attempt, attempts, delay_s, error
                )
                time.sleep(delay_s)
    raise PolicyUnavailableError(f'{what} failed after {attempts} attempt(s): {last_error}') from last_error
