"""Access control for the inference server: an optional shared token, checked before any request is served.

With a token set, every HTTP request and every WebSocket upgrade must carry ``Authorization: Bearer <token>``
(compared in constant time), or it is answered ``401`` before the upgrade. A WebSocket upgrade that carries an
``Origin`` header (which browsers add, and robots do not) is answered ``403``: a browser cannot send the header
on a WebSocket, so a page on another site must not reach the server through a visitor's browser. Without a token
everything passes, as protocol v1 always did (Positronic 0.4.1 clients send no token).

The token is never put in URLs: query strings end up in access logs.
"""

import hmac
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from positronic.offboard import protocol

logger = logging.getLogger(__name__)

AUTH_TOKEN_ENV = 'POSITRONIC_AUTH_TOKEN'
"""Environment variable with the shared token, read by the server and by clients when none is given."""
HTTP_UNAUTHORIZED = 401
HTTP_FORBIDDEN = 403
UNAUTHORIZED_TEXT = 'a valid "Authorization: Bearer <token>" header is required (the server has --auth_token set)'
ORIGIN_REFUSED_TEXT = 'WebSocket upgrades with an Origin header (from browsers) are refused while a token is set'


def token_or_env(auth_token: str | int | None) -> str | None:
    """The token to use: ``auth_token`` as text (the command line reads ``--auth_token=123`` as a number), or when it
    is None ``$POSITRONIC_AUTH_TOKEN``, an unset or empty variable meaning no token (None)."""
    if auth_token is None:
        return os.environ.get(AUTH_TOKEN_ENV) or None
    return str(auth_token)


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get('headers', ()):
        if key.lower() == name:
            return value
    return None


def presents_token(scope: Scope, token: str) -> bool:
    """Whether the request in ``scope`` carries ``Authorization: Bearer <token>``."""
    value = _header(scope, protocol.AUTHORIZATION_HEADER.lower().encode()) or b''
    expected = protocol.authorization_value(token).encode()
    return hmac.compare_digest(value, expected)


class TokenGate:
    """ASGI middleware: requests without the token get ``401``, browser WebSocket upgrades ``403``."""

    def __init__(self, app: ASGIApp, token: str):
        if not token:
            raise ValueError('the auth token must be a non-empty string')
        self._app = app
        self._token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] not in ('http', 'websocket'):
            await self._app(scope, receive, send)
            return
        if not presents_token(scope, self._token):
            await _deny(scope, send, HTTP_UNAUTHORIZED, UNAUTHORIZED_TEXT)
        elif scope['type'] == 'websocket' and _header(scope, b'origin') is not None:
            await _deny(scope, send, HTTP_FORBIDDEN, ORIGIN_REFUSED_TEXT)
        else:
            await self._app(scope, receive, send)


async def _deny(scope: Scope, send: Send, status: int, text: str) -> None:
    """Answer ``status`` with ``text``: a plain HTTP response, or one instead of the WebSocket upgrade."""
    logger.warning('refused %s %s from %s: HTTP %d', scope['type'], scope.get('path'), scope.get('client'), status)
    prefix = 'websocket.http.response' if scope['type'] == 'websocket' else 'http.response'
    headers = [(b'content-type', b'text/plain; charset=utf-8')]
    if status == HTTP_UNAUTHORIZED:
        headers.append((b'www-authenticate', b'Bearer'))
    await send({'type': f'{prefix}.start', 'status': status, 'headers': headers})
    await send({'type': f'{prefix}.body', 'body': text.encode() + b'\n'})
