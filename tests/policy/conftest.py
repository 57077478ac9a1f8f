from tests.offboard.conftest import server, settings, source  # noqa: F401  (live protocol-v1 server fixtures)
