"""The policy interface every robot loop talks to: raw observations in, an action chunk out."""

from collections.abc import Mapping
from typing import Any, Protocol

ACTIONS_PER_QUERY = 'n_action_steps'
"""Meta key under which a policy states how many actions it answers per query (for ACT, the checkpoint's LeRobot
field ``n_action_steps``: the first that many of each predicted chunk). A remote policy reports its server's under
``server.n_action_steps``; a policy without the key answers chunks of any length."""


class PolicyLoadError(RuntimeError):
    """The policy named cannot be loaded (a missing checkpoint, a codec it contradicts); retrying does not help."""


class PolicyUnavailableError(RuntimeError):
    """The policy cannot be reached now (no server answers, a time-out, a dropped connection); a later attempt
    may succeed. Policies raise it when starting an episode or describing themselves, so that robot loops can
    retry without knowing the transport behind the policy."""


class Policy(Protocol):
    """A policy for one robot. Observations are raw signals keyed as in ``positronic.keys`` (images uint8
    (H, W, 3), ``task`` a str); actions are wire-form dicts (``positronic.policy.action``)."""

    def select_action(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The next chunk of actions (at least one), to be executed one per control tick, oldest first."""
        ...

    def reset(self, context: Mapping[str, Any] | None = None) -> None:
        """Start a new episode (e.g. a new server session); ``context`` carries e.g. the task. Raises
        PolicyUnavailableError when the policy cannot be reached now."""
        ...

    @property
    def meta(self) -> dict[str, Any]:
        """Flat description of the policy (type, checkpoint, server, ...), recorded with evaluation runs."""
        ...

    def close(self) -> None:
        """Release resources (connections, models)."""
        ...
