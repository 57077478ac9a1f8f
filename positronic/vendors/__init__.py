"""Integrations with other robot-learning stacks, one sub-package per vendor."""
