"""The protocol-v1 client: ``InferenceClient`` opens sessions on a server, ``Session.infer`` gets action chunks.

Every wait is bounded (``Timeouts``): opening the connection, each handshake status message, each
inference answer. Failures raise ``OffboardError`` subclasses (all ``RuntimeError``) that name the server
and what to check. After an inference time-out or a dropped connection the session is closed (a late answer
would otherwise be read as the answer to the next request); open a new one.

Example::

    client = InferenceClient('gpu-box', 8000)
    with client.new_session() as session:          # logs 'loading'/'waiting' statuses until 'ready'
        print(session.meta)
        actions = session.infer(observation)       # list of wire-form actions
"""

import contextlib
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.protocol import State
from websockets.sync.client import ClientConnection, connect

from positronic.offboard import memory, protocol, wire
from positronic.offboard.access import AUTH_TOKEN_ENV, HTTP_UNAUTHORIZED, token_or_env

logger = logging.getLogger(__name__)

StatusListener = Callable[[str, str], None]
"""``listener(status, message)`` for each ``loading``/``waiting`` handshake message."""


class OffboardError(RuntimeError):
    """Talking to an inference server failed."""


class ServerUnreachableError(OffboardError):
    """No connection to the server could be opened."""


class ServerError(OffboardError):
    """The server answered with an error: a refused session (``{"status": "error"}``) or a failed request."""


class UnauthorizedError(ServerError):
    """The server wants a token this client did not send, or sent wrong (HTTP 401)."""


class SessionClosedError(OffboardError):
    """The session's connection is closed (by either side); open a new session."""


class ServerTimeoutError(OffboardError, TimeoutError):
    """The server did not answer within the time-out."""


class ProtocolError(OffboardError):
    """The server sent something protocol v1 does not allow."""


@dataclass(frozen=True)
class Timeouts:
    """Upper bounds, in seconds, on each wait of a client."""

    connect_s: float = 10.0
    """Opening the TCP connection and the WebSocket handshake (and each ``GET /api/v1/models``)."""
    status_s: float = 30.0
    """Each handshake message (the server repeats ``loading``/``waiting`` every few seconds)."""
    infer_s: float = 60.0
    """Each inference round trip."""


def _log_status(status: str, message: str) -> None:
    logger.info('Server status: [%s] %s', status, message)


def _host_in_url(host: str) -> str:
    return f'[{host}]' if ':' in host else host


def _closed_text(error: ConnectionClosed) -> str:
    frame = error.rcvd
    if frame is None:
        return 'the connection dropped without a close frame'
    return f'the server closed the connection (code {frame.code}{f", reason {frame.reason!r}" if frame.reason else ""})'


class Session:
    """One protocol-v1 session: a WebSocket that answers observations with action chunks."""

    def __init__(self, connection: ClientConnection, url: str, timeouts: Timeouts, max_message_bytes: int):
        self._connection = connection
        self._url = url
        self._meta: dict[str, Any] = {}
        self._timeouts = timeouts
        self._max_message_bytes = max_message_bytes
        self._closed = False

    @property
    def meta(self) -> dict[str, Any]:
        """What the server said about its model in the ``ready`` message."""
        return self._meta

    @property
    def closed(self) -> bool:
        """Whether the session can no longer be used (also once the server closed it, e.g. for idling)."""
        return self._closed or self._connection.state is not State.OPEN

    def infer(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The action chunk for one raw observation (numpy arrays, numbers, str; keys as in ``positronic.keys``).

        Raises ServerError when the server could not answer this observation (the session stays usable),
        ServerTimeoutError / SessionClosedError when the session is lost (it is closed), wire.WireError when
        the observation cannot be sent (nothing was sent).
        """
        if self._closed:
            raise SessionClosedError(f'session on {self._url} is closed; open a new one')
        data = wire.pack(dict(observation), max_bytes=self._max_message_bytes)
        try:
            self._connection.send(data)
        except ConnectionClosed as error:
            self._closed = True
            raise SessionClosedError(f'cannot send to {self._url}: {_closed_text(error)}') from error
        reply = self._receive(self._timeouts.infer_s, 'inference answer')
        if protocol.ERROR in reply:
            raise ServerError(f'{self._url} could not answer the observation: {reply[protocol.ERROR]}')
        if protocol.RESULT not in reply:
            self.close()
            raise ProtocolError(f'{self._url} answered without {protocol.RESULT!r}: keys {sorted(reply)}')
        return reply[protocol.RESULT]

    def wait_until_ready(self, on_status: StatusListener) -> None:
        """Read the handshake until ``ready`` (then ``meta`` is set); called by ``InferenceClient.new_session``."""
        while True:
            message = self._receive(self._timeouts.status_s, 'handshake status')
            status = message.get(protocol.STATUS)
            if status == protocol.STATUS_READY:
                meta = message.get(protocol.META, {})
                self._meta = dict(meta) if isinstance(meta, Mapping) else {}
                return
            if status in (protocol.STATUS_LOADING, protocol.STATUS_WAITING):
                on_status(status, str(message.get(protocol.MESSAGE, '')))
            elif status == protocol.STATUS_ERROR or protocol.ERROR in message:
                raise ServerError(f'{self._url} refused the session: {message.get(protocol.ERROR, "")}')
            else:
                raise ProtocolError(f'{self._url} sent an unexpected handshake message: {message!r:.200}')

    def _receive(self, timeout_s: float, what: str) -> dict[str, Any]:
        """The next message as a dict; closes the session and raises on time-out, close or a malformed message."""
        try:
            data = self._connection.recv(timeout=timeout_s)
        except TimeoutError as error:
            self.close()
            raise ServerTimeoutError(
                f'{self._url} sent no {what} within {timeout_s} s; the session was closed'
            ) from error
        except ConnectionClosed as error:
            self._closed = True
            raise SessionClosedError(f'waiting for the {what} from {self._url}: {_closed_text(error)}') from error
        if isinstance(data, str):
            self.close()
            raise ProtocolError(f'{self._url} sent a text frame; protocol v1 frames are binary msgpack')
        try:
            message = wire.unpack(data, max_bytes=None)
        except wire.WireError as error:
            self.close()
            raise ProtocolError(f'{self._url} sent an undecodable {what}: {error}') from error
        if not isinstance(message, dict):
            self.close()
            raise ProtocolError(f'{self._url} sent a {type(message).__name__} as {what}, expected a map')
        return message

    def close(self) -> None:
        """End the session (the server keeps the model loaded for the next one)."""
        if not self._closed:
            self._closed = True
            self._connection.close()

    def __enter__(self) -> 'Session':
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class InferenceClient:
    """A protocol-v1 server at ``host``:``port``: lists its models and opens sessions on them.

    Unless ``reuse_large_buffers`` is False, the first client tunes this process's allocator for megabyte messages
    (``positronic.offboard.memory``; what it saves per round trip: docs/serving.md, Speed).
    ``auth_token`` is sent as ``Authorization: Bearer <token>`` with every request; None: ``$POSITRONIC_AUTH_TOKEN``,
    and no token when that is unset or empty.
    """

    def __init__(
        self,
        host: str = 'localhost',
        port: int = protocol.DEFAULT_PORT,
        timeouts: Timeouts | None = None,
        max_message_bytes: int = wire.DEFAULT_MAX_MESSAGE_BYTES,
        reuse_large_buffers: bool = True,
        auth_token: str | None = None,
    ):
        if reuse_large_buffers:
            memory.reuse_large_buffers()
        token = token_or_env(auth_token)
        self._headers = {protocol.AUTHORIZATION_HEADER: protocol.authorization_value(token)} if token else {}
        self.host = host
        self.port = int(port)
        self.timeouts = timeouts or Timeouts()
        self.max_message_bytes = max_message_bytes
        address = f'{_host_in_url(host)}:{self.port}'
        self.http_base = f'http://{address}{protocol.API_PREFIX}'
        self.session_base = f'ws://{address}{protocol.SESSION_PATH}'

    def _unreachable(self, url: str, error: BaseException) -> ServerUnreachableError:
        return ServerUnreachableError(
            f'cannot reach the inference server at {self.host}:{self.port} ({url}): {error}. Check that the '
            'server is running and listening on that host and port (a server bound to 127.0.0.1 accepts only '
            'local clients) and that no firewall blocks the port.'
        )

    def _refused(self, url: str, status: int) -> ServerError:
        if status == HTTP_UNAUTHORIZED:
            return UnauthorizedError(
                f'{url} refused this client with HTTP {status}: the server wants a token. Pass the one it was '
                f'started with (--policy.auth_token, or the {AUTH_TOKEN_ENV} environment variable).'
            )
        return ServerError(
            f'{url} answered HTTP {status}: is this a protocol-v1 server (with {protocol.MODELS_PATH}, '
            f'{protocol.SESSION_PATH} and {protocol.SESSION_PATH}/{{model_id}})?'
        )

    def list_models(self) -> list[str]:
        """The model ids the server offers (``GET /api/v1/models``)."""
        url = f'{self.http_base}/models'
        try:
            request = urllib.request.Request(url, headers=self._headers)
            with urllib.request.urlopen(request, timeout=self.timeouts.connect_s) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise self._refused(url, error.code) from error
        except (urllib.error.URLError, OSError) as error:
            raise self._unreachable(url, error) from error
        except ValueError as error:
            raise ProtocolError(f'{url} answered something that is not JSON: {error}') from error
        if not isinstance(body, dict) or not isinstance(body.get(protocol.MODELS), list):
            raise ProtocolError(f'{url} answered {body!r:.200}, expected {{"{protocol.MODELS}": [...]}}')
        return [str(model_id) for model_id in body[protocol.MODELS]]

    def new_session(self, model_id: str | int | None = None, on_status: StatusListener | None = None) -> Session:
        """Open a session on ``model_id`` (None: the server's default) and wait until the server is ready.

        Each ``loading``/``waiting`` status goes to ``on_status`` (default: logged at INFO). Raises
        ServerUnreachableError, ServerError (session refused; UnauthorizedError for a missing or wrong token),
        ServerTimeoutError, SessionClosedError or ProtocolError.
        """
        url = self.session_base if model_id is None else f'{self.session_base}/{model_id}'
        on_status = on_status or _log_status
        with contextlib.ExitStack() as on_failure:
            try:
                connection = on_failure.enter_context(
                    connect(
                        url,
                        open_timeout=self.timeouts.connect_s,
                        max_size=2 * self.max_message_bytes,
                        compression=None,
                        close_timeout=1.0,
                        additional_headers=self._headers,
                    )
                )
            except InvalidStatus as error:
                raise self._refused(url, error.response.status_code) from error
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as error:
                raise self._unreachable(url, error) from error
            session = Session(connection, url, self.timeouts, self.max_message_bytes)
            session.wait_until_ready(on_status)
            on_failure.pop_all()  # the session owns the connection from here on
        return session
