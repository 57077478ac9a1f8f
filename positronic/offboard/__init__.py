"""Offboard inference over WebSocket protocol v1: wire format, server and clients."""
