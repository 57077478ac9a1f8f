"""uvicorn protocol classes that bound what a peer can hold before it is a session: connections, time, memory.

uvicorn offers a frame size limit (``ws_max_size``), WebSocket pings and a keep-alive time-out between HTTP
requests, but nothing against a peer that connects and sends its request slowly or never, and nothing against the
memory of many partly sent messages. ``GuardedHTTPProtocol`` and ``GuardedWebSocketProtocol`` add that, sharing one
``TransportGuard`` per server:

- ``max_connections``: a connection beyond this many open ones is answered ``503`` and closed at once;
- ``handshake_timeout_s``: a connection that has not sent a whole HTTP request head (a plain request or the
  WebSocket upgrade) this long after connecting, or after its last answer, is closed;
- ``message_timeout_s``: a WebSocket message must be complete this long after its first bytes arrived, else the
  connection is closed with 1008;
- ``max_buffered_bytes``: the bytes of partly received WebSocket messages, summed over all connections; the
  connection whose bytes take the sum past it is closed with 1013 (try again later).
"""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from positronic.offboard import protocol

logger = logging.getLogger(__name__)

OVERLOADED_BODY = b'too many connections; try again later\n'
OVERLOADED_RESPONSE = (
    b'HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n'
    + f'content-length: {len(OVERLOADED_BODY)}\r\n\r\n'.encode()
    + OVERLOADED_BODY
)
"""What a connection over ``max_connections`` receives before it is closed."""


@dataclass
class TransportGuard:
    """The limits of one server and what its connections hold now (changed only on the server's event loop)."""

    max_connections: int
    handshake_timeout_s: float
    message_timeout_s: float
    max_buffered_bytes: int
    buffered_bytes: int = 0
    """Bytes of partly received WebSocket messages, over all connections."""
    refused_connections: int = 0
    """Connections closed at once because ``max_connections`` were open (for logs and tests)."""


class GuardedHTTPProtocol(H11Protocol):
    """uvicorn's h11 protocol with a connection cap and a time-out on each request head."""

    def __init__(self, *args: Any, guard: TransportGuard, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._guard = guard
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        if len(self.connections) > self._guard.max_connections:
            self._guard.refused_connections += 1
            logger.warning('refused a connection from %s: %d connections are open', self.client, len(self.connections))
            self.transport.write(OVERLOADED_RESPONSE)
            self.transport.close()
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a whole request head arrived
            self._cancel_head_timer()

    def handle_websocket_upgrade(self, event: Any) -> None:
        self._cancel_head_timer()
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        self._arm_head_timer()  # the next request on this connection gets the same time for its head
        super().on_response_complete()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self._guard.handshake_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        logger.info('closed a connection from %s: no request within %s s', self.client, self._guard.handshake_timeout_s)
        self.transport.close()


class GuardedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O websockets protocol with a time limit per message and a server-wide memory budget."""

    def __init__(self, *args: Any, guard: TransportGuard, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._guard = guard
        self._buffered = 0
        self._message_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._count_buffered()
        if self._buffered and self._guard.buffered_bytes > self._guard.max_buffered_bytes:
            self._fail(
                protocol.CLOSE_TRY_AGAIN_LATER,
                f'server busy: over {self._guard.max_buffered_bytes} bytes of unfinished messages',
            )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_message_timer()
        self._guard.buffered_bytes -= self._buffered
        self._buffered = 0
        super().connection_lost(exc)

    def _count_buffered(self) -> None:
        """Update this connection's share of ``buffered_bytes``; start or stop its message clock."""
        buffered = len(self.conn.reader.buffer) + sum(len(frame) for frame in self.frames)
        self._guard.buffered_bytes += buffered - self._buffered
        self._buffered = buffered
        if not buffered:
            self._cancel_message_timer()
        elif self._message_timer is None:
            self._message_timer = self.loop.call_later(self._guard.message_timeout_s, self._message_timed_out)

    def _cancel_message_timer(self) -> None:
        if self._message_timer is not None:
            self._message_timer.cancel()
            self._message_timer = None

    def _message_timed_out(self) -> None:
        self._message_timer = None
        if self.read_paused:  # the rest waits for the server to take the previous message, not for the peer
            self._message_timer = self.loop.call_later(self._guard.message_timeout_s, self._message_timed_out)
            return
        self._fail(
            protocol.CLOSE_POLICY_VIOLATION,
            f'message not complete within {self._guard.message_timeout_s} s of its first bytes',
        )

    def _fail(self, code: int, reason: str) -> None:
        """Close the connection now with ``code`` (the unfinished message is dropped)."""
        if self.close_sent or self.transport.is_closing():
            return
        logger.warning('closing the WebSocket from %s (%d): %s', self.client, code, reason)
        self.conn.fail(code, protocol.close_reason(reason))
        self.transport.write(b''.join(self.conn.data_to_send()))
        self.close_sent = True
        self.transport.close()
