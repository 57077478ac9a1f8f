#!/usr/bin/env bash
# Set up the environment (re-used when present), then run the whole loop on the built-in simulator:
# record -> convert -> train -> serve -> evaluate. Extra arguments go to positronic-quickstart (--help lists them).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/setup.sh"
venv="${POSITRONIC_VENV:-$repo/.venv}"
if [ -z "${DISPLAY:-}" ]; then export MUJOCO_GL="${MUJOCO_GL:-egl}"; fi
exec "$venv/bin/positronic-quickstart" "$@"
