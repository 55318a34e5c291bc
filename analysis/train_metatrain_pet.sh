#!/usr/bin/env bash
# Trains metatrain's PET on the built-in model's data (options: analysis/metatrain_pet/options.yaml)
# and exports it to analysis/metatrain_pet/model.pt (a metatomic model). Resumable: run it again
# after an interruption and it continues from the newest checkpoint in
# analysis/metatrain_pet/outputs/ (ignored by git, as the checkpoints are); a finished training
# (model.pt present) is skipped. metatrain's log: analysis/metatrain_pet/train.log (committed).
set -euo pipefail
cd "$(dirname "$0")/metatrain_pet"
if [[ -f model.pt ]]; then
    echo "analysis/metatrain_pet/model.pt exists: training finished (remove it to train again)"
    exit 0
fi
D=../data
cat "$D/train-liquid.extxyz" "$D/train-ice.extxyz" "$D/train-hot.extxyz" "$D/train-dense.extxyz" \
    "$D/train-distorted.extxyz" > train.extxyz
restart=()
if compgen -G "outputs/*/*/model_*.ckpt" > /dev/null; then
    restart=(--restart auto)
fi
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} nice -n 19 ../../.venv/bin/mtt train options.yaml \
    -o model.pt "${restart[@]}" 2>&1 | grep --line-buffered -v -i "warning\|register_new_resolver\|omegaconf\|it/s\]" >> train.log
