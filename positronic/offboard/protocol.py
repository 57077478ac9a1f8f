"""Protocol v1 vocabulary: endpoints, message fields, handshake statuses, close codes, and message builders.

A session is one WebSocket on ``/api/v1/session`` (the server's default model) or
``/api/v1/session/{model_id}``. Every frame is binary msgpack (``positronic.offboard.wire``).

Server -> client, in order:

1. any number of ``{"status": "loading" | "waiting", "message": str}`` while the model is prepared;
2. ``{"status": "ready", "meta": {...}}``, or ``{"status": "error", "error": str}`` followed by a close with
   code 1008 and a short reason;
3. per request: ``{"result": [action, ...]}`` or ``{"error": str}`` (the session stays open).

Client -> server: one raw observation dict per request. The client ends a session by closing the socket.
"""

from typing import Any

API_PREFIX = '/api/v1'
MODELS_PATH = f'{API_PREFIX}/models'
SESSION_PATH = f'{API_PREFIX}/session'
DEFAULT_PORT = 8000

MODELS = 'models'
"""Key of the model-id list in the JSON answer of ``GET /api/v1/models``."""

STATUS = 'status'
MESSAGE = 'message'
META = 'meta'
ERROR = 'error'
RESULT = 'result'

STATUS_LOADING = 'loading'
STATUS_WAITING = 'waiting'
STATUS_READY = 'ready'
STATUS_ERROR = 'error'

CLOSE_NORMAL = 1000
CLOSE_POLICY_VIOLATION = 1008
"""Close code after a setup failure (``{"status": "error"}``)."""
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013
"""Close code when the server holds too many bytes of unfinished messages (from all clients) to take more."""
MAX_CLOSE_REASON_BYTES = 123
"""RFC 6455 limits a close reason to 123 bytes of UTF-8."""

AUTHORIZATION_HEADER = 'Authorization'
BEARER_PREFIX = 'Bearer '
"""With a server token set, every request and WebSocket upgrade carries ``Authorization: Bearer <token>``."""

REASON_MODEL_NOT_FOUND = 'Checkpoint not found'
REASON_CONFIGURED_MODEL_NOT_FOUND = 'Configured checkpoint not found'
REASON_NO_MODELS = 'No checkpoints available'


def status_message(status: str, message: str) -> dict[str, Any]:
    """A ``loading`` or ``waiting`` handshake message."""
    return {STATUS: status, MESSAGE: message}


def ready_message(meta: dict[str, Any]) -> dict[str, Any]:
    """The handshake message that opens the session for requests."""
    return {STATUS: STATUS_READY, META: meta}


def setup_error_message(error: str) -> dict[str, Any]:
    """The handshake message that refuses a session (followed by close 1008)."""
    return {STATUS: STATUS_ERROR, ERROR: error}


def result_message(actions: list[Any]) -> dict[str, Any]:
    """The answer to one request: an action chunk, oldest action first."""
    return {RESULT: actions}


def error_message(error: str) -> dict[str, Any]:
    """The answer to one failed request; the session continues."""
    return {ERROR: error}


def close_reason(text: str) -> str:
    """``text`` cut to fit a WebSocket close frame (at most 123 UTF-8 bytes, whole characters)."""
    encoded = text.encode()
    if len(encoded) <= MAX_CLOSE_REASON_BYTES:
        return text
    return encoded[:MAX_CLOSE_REASON_BYTES].decode(errors='ignore')


def idle_reason(idle_timeout_s: float) -> str:
    """The close reason of a session that sent nothing for ``idle_timeout_s`` (close code 1000)."""
    return f'idle: no request for {idle_timeout_s:g} s'


def authorization_value(token: str) -> str:
    """The ``Authorization`` header value that presents ``token``."""
    return f'{BEARER_PREFIX}{token}'


def waiting_text(active_sessions: int) -> str:
    """The ``waiting`` status text while other sessions hold a different model."""
    return f'Waiting for {active_sessions} active session(s) to finish...'
