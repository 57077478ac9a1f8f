"""Positronic ACT: record robot demonstrations, convert them to LeRobot datasets, train ACT, serve and run it."""

__version__ = '0.1.0'
