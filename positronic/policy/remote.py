"""``RemotePolicy``: a policy whose model runs on a protocol-v1 inference server (``--policy=.remote``)."""

from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from positronic.offboard import protocol
from positronic.offboard.client import (
    InferenceClient,
    ServerTimeoutError,
    ServerUnreachableError,
    Session,
    SessionClosedError,
    Timeouts,
)
from positronic.policy.base import PolicyUnavailableError

META_TYPE = 'remote'
SERVER_META_PREFIX = 'server.'
UNAVAILABLE_ERRORS = (ServerUnreachableError, ServerTimeoutError, SessionClosedError)
"""Transport failures that another attempt may cure (no connection, no answer in time, a dropped connection):
opening a session turns them into PolicyUnavailableError."""


def shrink_images(observation: Mapping[str, Any], max_side: int | None) -> dict[str, Any]:
    """``observation`` with every RGB image (uint8 (H, W, 3)) whose longest side exceeds ``max_side`` pixels
    resized (PIL bilinear) so that its longest side is ``max_side``, keeping the aspect ratio. Other values,
    and everything when ``max_side`` is None, pass through unchanged; the input is not modified."""
    if max_side is None:
        return dict(observation)
    shrunk = {}
    for key, value in observation.items():
        if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 3 and value.shape[2] == 3:
            height, width = value.shape[:2]
            if max(height, width) > max_side:
                scale = max_side / max(height, width)
                size = (max(1, round(width * scale)), max(1, round(height * scale)))
                value = np.asarray(Image.fromarray(value).resize(size, Image.Resampling.BILINEAR))
        shrunk[key] = value
    return shrunk


def flat_meta(meta: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
    """``meta`` with nested mappings flattened into dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``)."""
    flat: dict[str, Any] = {}
    for key, value in meta.items():
        name = f'{prefix}{key}'
        if isinstance(value, Mapping):
            flat.update(flat_meta(value, f'{name}.'))
        else:
            flat[name] = value
    return flat


class RemotePolicy:
    """A ``Policy`` served by a protocol-v1 server at ``host``:``port``.

    Each episode (``reset``) gets a fresh server session; the first ``select_action`` or ``meta`` opens one
    lazily, and so does the next call after a session was lost (time-out, dropped connection); a session that
    cannot be opened raises PolicyUnavailableError (the transport error is its cause). Images
    larger than ``resize`` pixels on their longest side are shrunk before sending (None: never).
    ``model_id`` picks a model (e.g. a checkpoint step); None uses the server's default. ``auth_token`` is the
    server's shared token, if it has one (None: ``$POSITRONIC_AUTH_TOKEN``, else none).
    """

    def __init__(
        self,
        host: str = 'localhost',
        port: int = protocol.DEFAULT_PORT,
        model_id: str | int | None = None,
        resize: int | None = 640,
        connect_timeout_s: float = 10.0,
        status_timeout_s: float = 30.0,
        infer_timeout_s: float = 60.0,
        auth_token: str | None = None,
    ):
        timeouts = Timeouts(connect_s=connect_timeout_s, status_s=status_timeout_s, infer_s=infer_timeout_s)
        self._client = InferenceClient(host, port, timeouts=timeouts, auth_token=auth_token)
        self._model_id = None if model_id is None else str(model_id)
        self._resize = resize
        self._session: Session | None = None

    def _live_session(self) -> Session:
        if self._session is None or self._session.closed:
            self._session = self._open_session()
        return self._session

    def _open_session(self) -> Session:
        try:
            return self._client.new_session(self._model_id)
        except UNAVAILABLE_ERRORS as error:
            raise PolicyUnavailableError(str(error)) from error

    def select_action(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The server's action chunk for one raw observation (images shrunk to ``resize`` first)."""
        return self._live_session().infer(shrink_images(observation, self._resize))

    def reset(self, context: Mapping[str, Any] | None = None) -> None:
        """Close the current session and open a fresh one for the next episode (``context`` is not sent)."""
        del context
        self.close()
        self._session = self._open_session()

    @property
    def meta(self) -> dict[str, Any]:
        """``{"type": "remote", "server.<key>": value, ...}`` from the server's ``ready`` meta, flattened."""
        return {'type': META_TYPE, **flat_meta(self._live_session().meta, SERVER_META_PREFIX)}

    def close(self) -> None:
        """Close the session, if one is open."""
        if self._session is not None:
            self._session.close()
            self._session = None
