#!/usr/bin/env bash
# Trains the default water model on the committed q-TIP4P/F data (analysis/data/), in two
# stages, each resumable across sittings (checkpoint, optimizer state and log written every
# epoch into analysis/training/stageN/, which is committed):
#   stage 1: from scratch, lr 1e-3, energy weight 1, no baseline refit, 9 epochs;
#   stage 2: fine-tunes stage 1 with a cosine schedule from lr 5e-4 to 5e-6 over 80 epochs,
#            energy weight 10 and the per-epoch baseline refit.
# Run `bash analysis/train_water_model.sh` again after an interruption: a stage with a resume
# state continues from its last epoch, a finished one only re-writes its final report.
# About 60 s per epoch on 2 quiet cores (300 structures of 192 atoms, batches of 4).
set -euo pipefail
cd "$(dirname "$0")/training"
D=../data
stage() {
    local name=$1; shift
    local resume=()
    [[ -f $name/model.ckpt.resume ]] && resume=(--resume)
    mkdir -p "$name"
    nice -n 19 ../../.venv/bin/omm-symbreak train "$D/train-liquid.extxyz" \
        "$D/train-ice.extxyz" --valid "$D/valid.extxyz" -o "$name/model.ckpt" --batch-size 4 \
        --quiet "${resume[@]}" "$@" 2>&1 | grep --line-buffered -v "simtk.openmm" >> "$name/train.log"
}
stage stage1 --epochs 9 --lr 1e-3 --seed 0 --no-refit
stage stage2 --init-from stage1/model.ckpt --epochs 80 --lr 5e-4 --schedule cosine \
    --energy-weight 10 --seed 1
