from collections.abc import Iterator

import pytest

from positronic.offboard.server import ServerSettings, ServerThread
from tests.offboard.sources import StepSource

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
STATUS_INTERVAL_S = 0.2


@pytest.fixture
def source() -> StepSource:
    return StepSource()


@pytest.fixture
def settings() -> ServerSettings:
    return ServerSettings(max_message_bytes=MAX_MESSAGE_BYTES, status_interval_s=STATUS_INTERVAL_S)


@pytest.fixture
def server(source: StepSource, settings: ServerSettings) -> Iterator[ServerThread]:
    """A real uvicorn server on a free loopback port, serving ``source``."""
    with ServerThread(source, host='127.0.0.1', port=0, settings=settings) as running:
        yield running
