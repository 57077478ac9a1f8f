"""LeRobot integration: codecs, the v3.0 dataset format, the ACT policy, its trainer and server."""
