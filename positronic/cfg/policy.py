"""Policy presets for ``--policy=...`` (relative names resolve in this module, e.g. ``--policy=.remote``)."""

import configuronic as cfn

from positronic.policy.remote import RemotePolicy

remote = cfn.config(host='localhost', port=8000, model_id=None, resize=640)(RemotePolicy)
"""A policy served over protocol v1: ``--policy=.remote --policy.host=gpu-box [--policy.port=8000]
[--policy.model_id=10000] [--policy.resize=640]``."""
