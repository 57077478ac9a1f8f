"""What the protocol-v1 server serves: a source of models, and the model it has loaded.

A vendor server (e.g. the LeRobot one) implements ``ModelSource`` over its checkpoints; the generic server
(``positronic.offboard.server``) handles the network, the sessions and the one-model-at-a-time rule.
"""

import re
from collections.abc import Mapping
from typing import Any, Protocol

from positronic.offboard import protocol

SAFE_MODEL_ID = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}')
"""A model id the server will pass to a source: 1-128 letters, digits, ``_``, ``.`` or ``-``, not starting
with ``.`` (so never ``..``, a path separator, or an absolute path)."""


class ModelNotFoundError(LookupError):
    """A session asked for a model the source does not have (or the source has none).

    ``reason`` is the short text of the 1008 close frame (see ``protocol.REASON_*``); ``str(error)`` is
    the longer message of the ``{"status": "error"}`` handshake answer.
    """

    def __init__(self, message: str, reason: str = protocol.REASON_MODEL_NOT_FOUND):
        super().__init__(message)
        self.reason = reason


class LoadedModel(Protocol):
    """One model in memory, ready to answer requests: the codec and the policy step together."""

    @property
    def meta(self) -> Mapping[str, Any]:
        """What the ``ready`` handshake message carries (msgpack-serializable: checkpoint, device, codec...)."""
        ...

    def warm_up(self) -> None:
        """Run whatever the first request would otherwise pay (kernel selection, allocations). Called once,
        in a worker thread, after loading and before any session is told ``ready``."""
        ...

    def infer(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The action chunk for one raw observation (keys as in ``positronic.keys``; arrays are read-only).

        Actions are wire-form dicts (``positronic.policy.action``). Raise any exception for a bad
        observation: its text goes back to the client as ``{"error": ...}`` and the session continues.
        Called in a worker thread; calls are serialized unless the server is given more inference threads.
        """
        ...

    def unload(self) -> None:
        """Release the model's memory (GPU included). Called in a worker thread before another model loads."""
        ...


class ModelSource(Protocol):
    """The models a server can serve, identified by string ids."""

    def model_ids(self) -> list[str]:
        """The ids ``GET /api/v1/models`` lists, sorted (numerically for checkpoint steps)."""
        ...

    def resolve(self, model_id: str | None) -> str:
        """The id of the model a session asked for; ``None`` means the source's default model.

        ``model_id`` has already passed ``check_model_id``. Raise ModelNotFoundError (with one of the
        ``protocol.REASON_*`` reasons) when there is no such model or no default.
        """
        ...

    def load(self, model_id: str) -> LoadedModel:
        """Load a resolved model. Called in a worker thread; an exception refuses the waiting sessions."""
        ...


def check_model_id(model_id: str) -> str:
    """``model_id`` if it is safe to hand to a source (see ``SAFE_MODEL_ID``); ModelNotFoundError otherwise."""
    if not SAFE_MODEL_ID.fullmatch(model_id):
        raise ModelNotFoundError(f'invalid model id {model_id!r}: expected letters, digits, "_", "." or "-"')
    return model_id
