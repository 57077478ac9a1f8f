#!/usr/bin/env bash
# Set up the environment (re-used when present) and run the test suite. Extra arguments go to pytest.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/setup.sh"
venv="${POSITRONIC_VENV:-$repo/.venv}"
cd "$repo"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
exec "$venv/bin/python" -m pytest "$@"
