#!/usr/bin/env bash
# Trains the candidate default water model on the committed q-TIP4P/F data (analysis/data/).
# Resumable across sittings: the checkpoint (model.ckpt) and the optimizer state
# (model.ckpt.resume, torch.load(weights_only=True)-safe) are written every epoch into
# analysis/training/, which is committed, so a later session on a fresh machine continues:
#   bash analysis/train_water_model.sh            # first start
#   bash analysis/train_water_model.sh --resume   # continue (EPOCHS=400 ... to extend)
# About 110 s per epoch on 2 quiet cores (default model sizes, 300 structures of 192 atoms).
set -euo pipefail
cd "$(dirname "$0")/training"
D=../data
nice -n 19 ../../.venv/bin/omm-symbreak train "$D/train-liquid.extxyz" "$D/train-ice.extxyz" \
    --valid "$D/valid.extxyz" -o model.ckpt --epochs "${EPOCHS:-200}" --lr 1e-3 \
    --batch-size 4 --seed 0 --quiet "$@" 2>&1 | grep --line-buffered -v "simtk.openmm" >> train.log
