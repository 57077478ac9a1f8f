"""Serving: ACT checkpoints as policies, over protocol v1 (``positronic-lerobot-server``) or in process."""
