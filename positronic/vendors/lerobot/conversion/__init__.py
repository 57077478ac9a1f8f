"""Conversion: raw Positronic datasets to LeRobot v3.0 (``positronic-to-lerobot``)."""
