"""LeRobot 0.4.4's ACT policy, our own implementation: same config, weights, numerics and checkpoint files.

``ACTPolicy`` works on normalized tensors keyed as in LeRobot datasets; ``normalize`` holds the processors that
map raw values in and actions out (``save_processors``, ``load_processors``).
"""

from positronic.vendors.lerobot.act.config import ACTConfig, ConfigError, FeatureType, NormalizationMode, PolicyFeature
from positronic.vendors.lerobot.act.policy import ACTPolicy, CheckpointMismatchError

__all__ = [
    'ACTConfig',
    'ACTPolicy',
    'CheckpointMismatchError',
    'ConfigError',
    'FeatureType',
    'NormalizationMode',
    'PolicyFeature',
]
