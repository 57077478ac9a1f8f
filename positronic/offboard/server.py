"""The protocol-v1 inference server: a FastAPI app over a ``ModelSource``, and ways to run it with uvicorn.

Endpoints (see ``positronic.offboard.protocol``):

- ``GET /api/v1/models`` -> ``{"models": [id, ...]}`` (``[]`` if the source cannot list);
- ``WS /api/v1/session`` (the source's default model) and ``WS /api/v1/session/{model_id}``.

A session is handshaken by ``ModelManager`` (``loading``/``waiting`` statuses, then ``ready`` with the model's
meta, or ``{"status": "error"}`` and close 1008). Then each binary frame is one raw observation, answered
with ``{"result": [action, ...]}`` or, when anything about that request fails (text frame, malformed msgpack,
a message over ``max_message_bytes``, a bad dtype or shape, the model raising), ``{"error": "..."}``; the
session goes on, until it sends nothing for ``idle_timeout_s`` (then close 1000). Decoding, inference and
encoding run in a worker thread pool, so the event loop keeps serving other sessions, handshakes and
``/api/v1/models`` meanwhile.

Size bounds: the transport refuses a frame over ``2 * max_message_bytes`` outright (close 1009, nothing
buffered past that); a message between the two limits is read and answered with an error. Connections, time to
send a request head or finish a message, and the bytes of unfinished messages are bounded too
(``positronic.offboard.transport``). With ``auth_token`` set, requests without it get 401
(``positronic.offboard.access``).
"""

import asyncio
import contextlib
import functools
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from positronic.offboard import memory, protocol, wire
from positronic.offboard.access import TokenGate
from positronic.offboard.manager import Lease, ModelLoadError, ModelManager
from positronic.offboard.models import LoadedModel, ModelNotFoundError, ModelSource
from positronic.offboard.transport import GuardedHTTPProtocol, GuardedWebSocketProtocol, TransportGuard

logger = logging.getLogger(__name__)

TIMING_LOG_FORMAT = 'answered %d bytes: unpack_ms=%.3f infer_ms=%.3f pack_ms=%.3f'
"""The DEBUG line logged per answered request (request size, then milliseconds per stage)."""
TEXT_FRAME_ERROR = 'text frames are not supported: send each observation as one binary msgpack frame'


DEFAULT_MAX_CONNECTIONS = 128
DEFAULT_MAX_BUFFERED_BYTES = 512 * 1024 * 1024
GUARDED_WS_IMPLEMENTATION = 'websockets-sansio'
HIDDEN_PATH = '<checkpoints_dir>'
"""What replaces each of ``ServerSettings.private_paths`` in text sent to clients."""


class ServerSettingsError(ValueError):
    """A ``ServerSettings`` field out of range; the message names the field, its value and what is expected."""


@dataclass(frozen=True)
class ServerSettings:
    """How the server bounds and paces sessions. Every limit applies per server process."""

    max_message_bytes: int = wire.DEFAULT_MAX_MESSAGE_BYTES
    """Largest request answered; larger ones get ``{"error"}`` (up to twice this) or close 1009 (beyond)."""
    status_interval_s: float = 5.0
    """Seconds between repeated ``waiting``/``loading`` statuses while a session waits."""
    inference_threads: int = 1
    """Worker threads running requests; above 1, ``LoadedModel.infer`` must be thread-safe."""
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """Open connections (sessions, waiting sessions, HTTP requests); one more is answered 503 and closed."""
    max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES
    """Bytes of partly received messages over all connections; the connection passing it is closed (1013)."""
    handshake_timeout_s: float = 10.0
    """Seconds a new connection has to send its whole HTTP request head (or WebSocket upgrade)."""
    message_timeout_s: float = 30.0
    """Seconds a message has to arrive completely once its first bytes did (32 MiB at 10 Mbit/s: 27 s)."""
    idle_timeout_s: float = 60.0
    """Seconds a ready session may send nothing before it is closed (1000), freeing its model for a switch."""
    switch_grace_s: float = 30.0
    """Seconds a waiting model switch lets new sessions join the loaded model; later ones queue behind it."""
    auth_token: str | None = field(default=None, repr=False)
    """The shared token every request must present (``positronic.offboard.access``); None: no check."""
    private_paths: tuple[str, ...] = ()
    """Filesystem paths shown to clients as ``HIDDEN_PATH`` (in errors, close reasons and ``ready`` meta)."""
    ws_implementation: str = GUARDED_WS_IMPLEMENTATION
    """uvicorn's WebSocket implementation. Only the default enforces ``message_timeout_s`` and
    ``max_buffered_bytes``; ``websockets`` and ``wsproto`` are for comparison benchmarks."""

    def __post_init__(self) -> None:
        for name in ('max_message_bytes', 'inference_threads', 'max_connections', 'max_buffered_bytes'):
            _check_positive(name, getattr(self, name), int)
        for name in ('status_interval_s', 'handshake_timeout_s', 'message_timeout_s', 'idle_timeout_s'):
            _check_positive(name, getattr(self, name), float)
        _check_positive('switch_grace_s', self.switch_grace_s, float, allow_zero=True)
        if self.max_buffered_bytes < self.transport_max_bytes:
            raise ServerSettingsError(
                f'max_buffered_bytes={self.max_buffered_bytes}: expected at least twice '
                f'max_message_bytes ({self.transport_max_bytes}), or no message that size could arrive'
            )
        if self.auth_token is not None and not (isinstance(self.auth_token, str) and self.auth_token):
            raise ServerSettingsError('auth_token is empty or not text: expected a non-empty str, or None for no token')

    @property
    def transport_max_bytes(self) -> int:
        """The frame size over which the transport closes the connection without reading it."""
        return 2 * self.max_message_bytes

    def public_text(self, text: str) -> str:
        """``text`` with every private path replaced by ``HIDDEN_PATH``: what may be sent to a client."""
        for path in sorted(self.private_paths, key=len, reverse=True):
            text = text.replace(path, HIDDEN_PATH)
        return text


def _check_positive(name: str, value: Any, kind: type, allow_zero: bool = False) -> None:
    numeric = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not numeric or (kind is int and not isinstance(value, int)) or value < 0 or (value == 0 and not allow_zero):
        expected = 'a whole number' if kind is int else 'a number of seconds'
        sign = 'zero or more' if allow_zero else 'above zero'
        raise ServerSettingsError(f'{name}={value!r}: expected {expected} {sign}')


def _public_meta(value: Any, settings: ServerSettings) -> Any:
    """``value`` (a ready meta) with private paths hidden in every string it holds."""
    if isinstance(value, str):
        return settings.public_text(value)
    if isinstance(value, Mapping):
        return {key: _public_meta(item, settings) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_public_meta(item, settings) for item in value]
    return value


def _error_text(error: Exception) -> str:
    if isinstance(error, wire.WireError):
        return str(error)
    return f'{type(error).__name__}: {error}' if str(error) else type(error).__name__


def answer_request(model: LoadedModel, data: bytes, settings: ServerSettings) -> bytes:
    """The packed answer to one packed request: ``{"result": [...]}`` or ``{"error": "..."}`` (its text without
    private paths). Never raises.

    At DEBUG level it logs where the time went (``TIMING_LOG_FORMAT``): unpacking, the model, packing.
    """
    try:
        started = time.perf_counter()
        observation = wire.unpack(data, max_bytes=settings.max_message_bytes)
        if not isinstance(observation, dict) or not all(isinstance(k, str) for k in observation):
            raise wire.WireError(f'an observation must be a map with str keys, got {type(observation).__name__}')
        unpacked = time.perf_counter()
        actions = model.infer(observation)
        inferred = time.perf_counter()
        if not isinstance(actions, list | tuple):
            raise TypeError(f'the model returned {type(actions).__name__}, expected a list of actions')
        reply = wire.pack(protocol.result_message(list(actions)))
        if logger.isEnabledFor(logging.DEBUG):
            timing = (unpacked - started, inferred - unpacked, time.perf_counter() - inferred)
            logger.debug(TIMING_LOG_FORMAT, len(data), *(1e3 * t for t in timing))
        return reply
    except Exception as error:
        text = _error_text(error)
        logger.warning('request failed: %s', text)
        logger.debug('request failure details', exc_info=True)
        return wire.pack(protocol.error_message(settings.public_text(text)))


class _SessionHandler:
    """Runs protocol-v1 sessions for one app: handshake through the manager, then request/answer."""

    def __init__(self, manager: ModelManager, executor: ThreadPoolExecutor, settings: ServerSettings):
        self._manager = manager
        self._executor = executor
        self._settings = settings

    async def __call__(self, websocket: WebSocket, model_id: str | None) -> None:
        await websocket.accept()

        async def on_status(status: str, message: str) -> None:
            await websocket.send_bytes(wire.pack(protocol.status_message(status, message)))

        try:
            lease = await self._manager.acquire(model_id, on_status)
        except WebSocketDisconnect:
            logger.info('client left while waiting for model %r', model_id)
            return
        except ModelNotFoundError as error:
            logger.info('session for model %r refused: %s', model_id, error)
            await self._refuse(websocket, str(error), error.reason)
            return
        except Exception as error:
            if not isinstance(error, ModelLoadError):
                logger.exception('setting up a session for model %r failed', model_id)
            await self._refuse(websocket, str(error) or type(error).__name__, str(error) or type(error).__name__)
            return
        try:
            await self._serve(websocket, lease)
        except WebSocketDisconnect:
            logger.info('client left a session on model %s', lease.model_id)
        finally:
            self._manager.release(lease)

    async def _refuse(self, websocket: WebSocket, error: str, reason: str) -> None:
        error, reason = self._settings.public_text(error), self._settings.public_text(reason)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await websocket.send_bytes(wire.pack(protocol.setup_error_message(error)))
            await websocket.close(code=protocol.CLOSE_POLICY_VIOLATION, reason=protocol.close_reason(reason))

    async def _serve(self, websocket: WebSocket, lease: Lease) -> None:
        try:
            ready = wire.pack(protocol.ready_message(_public_meta(dict(lease.model.meta), self._settings)))
        except wire.WireError as error:
            await self._refuse(websocket, f'model {lease.model_id} has meta that cannot be sent: {error}', str(error))
            return
        await websocket.send_bytes(ready)
        logger.info('session started on model %s (%d active)', lease.model_id, self._manager.active_sessions)
        loop = asyncio.get_running_loop()
        idle_timeout_s = self._settings.idle_timeout_s
        while True:
            try:
                async with asyncio.timeout(idle_timeout_s):  # no extra task per message, unlike wait_for
                    message = await websocket.receive()
            except TimeoutError:
                logger.info('closing an idle session on model %s (nothing for %g s)', lease.model_id, idle_timeout_s)
                with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                    await websocket.close(code=protocol.CLOSE_NORMAL, reason=protocol.idle_reason(idle_timeout_s))
                return
            if message['type'] == 'websocket.disconnect':
                return
            data = message.get('bytes')
            if data is None:
                reply = wire.pack(protocol.error_message(TEXT_FRAME_ERROR))
            else:
                reply = await loop.run_in_executor(self._executor, answer_request, lease.model, data, self._settings)
            await websocket.send_bytes(reply)


def create_app(source: ModelSource, settings: ServerSettings | None = None) -> FastAPI:
    """The protocol-v1 app serving ``source``. ``app.state.manager`` is its ModelManager.

    The app does not check ``settings.auth_token``: ``serve`` and ``ServerThread`` put it behind the token gate."""
    settings = settings or ServerSettings()
    executor = ThreadPoolExecutor(max_workers=settings.inference_threads, thread_name_prefix='offboard-infer')
    manager = ModelManager(source, status_interval_s=settings.status_interval_s, switch_grace_s=settings.switch_grace_s)
    handler = _SessionHandler(manager, executor, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title='Positronic protocol v1 inference server', lifespan=lifespan)
    app.state.manager = manager

    @app.get(protocol.MODELS_PATH)
    def list_models() -> dict[str, list[str]]:
        try:
            ids = [str(i) for i in source.model_ids()]
        except Exception:
            logger.exception('listing models failed')
            ids = []
        return {protocol.MODELS: ids}

    @app.websocket(protocol.SESSION_PATH)
    async def default_session(websocket: WebSocket) -> None:
        await handler(websocket, None)

    @app.websocket(protocol.SESSION_PATH + '/{model_id:path}')
    async def model_session(websocket: WebSocket, model_id: str) -> None:
        await handler(websocket, model_id)

    return app


def _transport_guard(settings: ServerSettings) -> TransportGuard:
    return TransportGuard(
        max_connections=settings.max_connections,
        handshake_timeout_s=settings.handshake_timeout_s,
        message_timeout_s=settings.message_timeout_s,
        max_buffered_bytes=settings.max_buffered_bytes,
    )


def _uvicorn_config(
    app: FastAPI, host: str, port: int, settings: ServerSettings, guard: TransportGuard, **kwargs: Any
) -> uvicorn.Config:
    """uvicorn serving ``app`` behind the token gate (if a token is set) and the transport guards."""
    ws: Any = settings.ws_implementation
    if ws == GUARDED_WS_IMPLEMENTATION:
        ws = functools.partial(GuardedWebSocketProtocol, guard=guard)
    return uvicorn.Config(
        app if settings.auth_token is None else TokenGate(app, settings.auth_token),
        host=host,
        port=port,
        http=functools.partial(GuardedHTTPProtocol, guard=guard),
        ws=ws,
        ws_max_size=settings.transport_max_bytes,
        ws_per_message_deflate=False,
        **kwargs,
    )


def _server(
    source: ModelSource, host: str, port: int, settings: ServerSettings, log_level: str
) -> tuple[FastAPI, TransportGuard, uvicorn.Server]:
    """The app over ``source``, its transport guard and the uvicorn server that will run them on ``host``:``port``."""
    app = create_app(source, settings)
    guard = _transport_guard(settings)
    return app, guard, uvicorn.Server(_uvicorn_config(app, host, port, settings, guard, log_level=log_level))


def serve(
    source: ModelSource,
    host: str = '127.0.0.1',
    port: int = protocol.DEFAULT_PORT,
    settings: ServerSettings | None = None,
    log_level: str = 'info',
) -> None:
    """Serve ``source`` on ``host``:``port`` until interrupted (binds only there; pass 0.0.0.0 to expose).

    Tunes this process's allocator for megabyte messages first (``memory.reuse_large_buffers``)."""
    memory.reuse_large_buffers()
    _, _, server = _server(source, host, port, settings or ServerSettings(), log_level)
    server.run()


class ServerThread:
    """The server running in a background thread of this process; ``port=0`` picks a free port.

    For tests, benchmarks and robots that serve a model in-process. Use as a context manager or call
    ``start()``/``stop()``. ``guard`` holds the connection limits and what the connections hold now (read from
    another thread: a snapshot).
    """

    def __init__(
        self,
        source: ModelSource,
        host: str = '127.0.0.1',
        port: int = 0,
        settings: ServerSettings | None = None,
        log_level: str = 'warning',
    ):
        self.app, self.guard, self._server = _server(source, host, port, settings or ServerSettings(), log_level)
        self.host = host
        self._thread = threading.Thread(target=self._server.run, name='offboard-server', daemon=True)

    @property
    def manager(self) -> ModelManager:
        """The app's model manager (read its counters; do not call it from another thread)."""
        return self.app.state.manager

    @property
    def port(self) -> int:
        """The port bound (the real one when 0 was asked)."""
        return self._server.servers[0].sockets[0].getsockname()[1]

    def start(self, timeout_s: float = 10.0) -> 'ServerThread':
        """Start serving; returns once the socket is bound. Raises RuntimeError if it did not start in time."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._thread.is_alive():
            if self._server.started:
                return self
            time.sleep(0.01)
        raise RuntimeError(f'the inference server did not start on {self.host} within {timeout_s} s')

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.should_exit = True
        self._thread.join(timeout_s)

    def __enter__(self) -> 'ServerThread':
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
