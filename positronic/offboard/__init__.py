"""Offboard inference over WebSocket protocol v1: wire format, server and clients.

- ``wire``: msgpack with the numpy envelope (``pack``/``unpack``), dtype whitelist and size limits;
- ``protocol``: endpoints, message fields, statuses, close codes and message builders;
- ``models``: ``ModelSource``/``LoadedModel``, what a vendor server implements over its checkpoints;
- ``manager``: one model loaded at a time, shared by live sessions, switched fairly;
- ``server``: the FastAPI app, ``serve`` and ``ServerThread``;
- ``transport``: uvicorn protocols bounding connections, request and message time, unfinished-message memory;
- ``access``: the optional shared token (``Authorization: Bearer``), checked before any request is served;
- ``client``: ``InferenceClient`` and ``Session`` (``positronic.policy.remote.RemotePolicy`` builds on it).
"""
