#!/usr/bin/env bash
# The CPU recipe of docs/results.md: 600 scripted demonstrations (seeds 0-599) recorded with a 2 cm command noise (the
# robot is pushed off the expert's path, the recorded command leads back) and a 0.4 s rest of the expert at the grasp
# pose before it closes (the policy's close then comes with the hand at the cube) -> convert with a codec -> train ACT (chunk
# 40) for 2000 steps of batch 32 (the learning rate annealed along a cosine; bf16 autocast where the machine has bf16
# kernels: a GPU, or a CPU with AVX512 or AMX; fp32 elsewhere, where bf16 would be emulated and 16x slower) ->
# evaluate the final checkpoint with temporal ensembling (the newest predictions weighing most) on 50 unseen seeds
# (10000-10049), then on 10 training seeds (0-9) and three earlier checkpoints on the unseen seeds for the success
# curve.
# One training run is one draw: trainer seeds 0, 1 and 2 stacked on 45, 36 and 23 of 50 unseen layouts at the same
# loss. So where the machine has bf16 kernels, the recipe trains two candidates (trainer seeds 3 and 4), runs each
# on 50 held-out layouts (20000-20049) and keeps the one that stacks more often: 44/50 unseen, 75.8 minutes to the
# final evaluation on 2 CPU cores with AVX512-BF16 (measured before the rest; with it, trainer seeds 2, 1 and 0 went from
# 23, 36 and 45 to 36, 44 and 47 of 50). A 2-core CPU with AVX2 alone trains one candidate in fp32 at
# 0.53 steps/s, 90 minutes to the final evaluation (38/50). See docs/results.md.
# On a machine with an NVIDIA GPU the same command trains there (bf16 autocast).
# Flags after the codec override the recipe's, e.g. --candidates=1 --train_seed=0 (one training run, 36 minutes:
# the 45/50 draw on this host type), or --curve_points=0 (no earlier checkpoints evaluated after the final one).
# Usage: bash scripts/stack_cubes_recipe.sh [eepose_absolute|joints_absolute] [more positronic-quickstart flags]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
codec="${1:-eepose_absolute}"
shift $(($# > 0 ? 1 : 0))
bash "$repo/scripts/setup.sh"
venv="${POSITRONIC_VENV:-$repo/.venv}"
if [ -z "${DISPLAY:-}" ]; then export MUJOCO_GL="${MUJOCO_GL:-egl}"; fi
precision="$("$venv/bin/python" -m positronic.vendors.lerobot.training.precision)"
candidates=1
if [ "$precision" = bf16 ]; then candidates=2; fi  # two training runs fit the 90 minutes only with bf16 kernels
exec "$venv/bin/positronic-quickstart" --workdir="$HOME/positronic-results/$codec" --codec="$codec" \
    --num_episodes=600 --command_noise_m=0.02 --grasp_dwell_s=0.4 --seed=0 --camera_size=[96,96] --image_size=96 --fps=15 \
    --num_train_steps=2000 --batch_size=32 --precision="$precision" --chunk_size=40 --dim_model=256 --dropout=0 \
    --lr=1e-4 --lr_schedule=cosine --use_vae=False --train_batchnorm=True --train_seed=3 --candidates="$candidates" \
    --select_seed=20000 --select_iterations=50 --eval_iterations=50 --eval_seed=10000 --simulation_time=15 \
    --temporal_ensemble_coeff=-0.05 --curve_points=3 --train_eval_iterations=10 "$@"
