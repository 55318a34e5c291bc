"""What defines a training run: ``TrainSettings`` and the learning-rate ``SCHEDULES``.

The loss, the baseline refit and resumption: ``omm_symbreak.train``.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

SCHEDULES = ("plateau", "cosine")


@dataclass(frozen=True)
class TrainSettings:
    """The settings of a training run; the defaults are those of ``omm-symbreak train``.

    ``epochs``: the total number of epochs (a resumed run continues up to it; the cosine
    schedule stretches to a new total). ``lr``: the peak AdamW learning rate. ``batch_size``:
    structures per step. ``weight_decay``: AdamW's decoupled weight decay. ``patience``: epochs
    without improvement before the ``plateau`` schedule halves the rate. ``warmup_epochs``: the
    linear warm-up, in epochs (a fraction counts steps). ``energy_weight``: the weight of the
    (eV/atom)^2 energy term against the (eV/Angstrom)^2 force term. ``schedule``: one of
    ``SCHEDULES``. ``refit``: centre the energy term and refit the per-species baseline after
    every epoch. ``init_from``: a model file to start from (its hyperparameters win over
    ``hyperparameters``). ``hyperparameters``: ``UnconstrainedPET`` arguments except
    atomic_numbers (defaults for those not given).
    """

    epochs: int = 100
    lr: float = 1e-3
    batch_size: int = 4
    seed: int = 0
    weight_decay: float = 0.0
    patience: int = 10
    warmup_epochs: float = 1.0
    energy_weight: float = 1.0
    schedule: str = "plateau"
    refit: bool = True
    init_from: Optional[Union[str, Path]] = None
    hyperparameters: Optional[dict] = None

    def validate(self) -> None:
        """ValueError naming the ``omm-symbreak train`` option of a value out of range."""
        ranges = (("--epochs", self.epochs, self.epochs >= 1, "at least 1"),
                  ("--batch-size", self.batch_size, self.batch_size >= 1, "at least 1"),
                  ("--lr", self.lr, self.lr > 0, "positive"),
                  ("--weight-decay", self.weight_decay, self.weight_decay >= 0, "at least 0"),
                  ("--patience", self.patience, self.patience >= 0, "at least 0"),
                  ("--warmup-epochs", self.warmup_epochs, self.warmup_epochs >= 0, "at least 0"),
                  ("--energy-weight", self.energy_weight, self.energy_weight >= 0, "at least 0"))
        for flag, value, in_range, requirement in ranges:
            if not in_range:
                raise ValueError(f"{flag} must be {requirement}, got {value}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown --schedule {self.schedule!r}; choose one of "
                             f"{', '.join(SCHEDULES)}")

    def learning_rate(self, step: int, steps_per_epoch: int) -> Optional[float]:
        """The learning rate of ``step`` (counted from 0 over all epochs): the linear warm-up,
        then the cosine decay to lr/100 at the last step; None where ReduceLROnPlateau sets it
        (the ``plateau`` schedule after the warm-up)."""
        warmup_steps = self.warmup_epochs * steps_per_epoch
        if step < warmup_steps:
            return self.lr * (step + 1) / (warmup_steps + 1)
        if self.schedule == "cosine":
            total_steps = self.epochs * steps_per_epoch
            progress = (step - warmup_steps) / max(total_steps - 1 - warmup_steps, 1.0)
            final = self.lr / 100
            return final + (self.lr - final) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        if step == math.ceil(warmup_steps) and warmup_steps > 0:
            return self.lr
        return None

    def config(self) -> dict:
        """The settings a run stores in its ``config`` (model file metadata and resume state);
        ``epochs``, ``init_from`` and the hyperparameters are stored elsewhere."""
        return dict(lr=self.lr, batch_size=self.batch_size, seed=self.seed,
                    weight_decay=self.weight_decay, patience=self.patience,
                    warmup_epochs=self.warmup_epochs, energy_weight=self.energy_weight,
                    schedule=self.schedule, refit_baseline=self.refit)

    @classmethod
    def from_config(cls, config: dict, epochs: int) -> "TrainSettings":
        """The settings stored in a run's ``config``, with the total ``epochs``. A config
        without warmup_epochs, schedule or refit_baseline (resume files older than those
        options) ran without warm-up, with the plateau schedule and without refit."""
        return cls(epochs=epochs, lr=config["lr"], batch_size=config["batch_size"],
                   seed=config["seed"], weight_decay=config["weight_decay"],
                   patience=config["patience"], warmup_epochs=config.get("warmup_epochs", 0.0),
                   energy_weight=config["energy_weight"],
                   schedule=config.get("schedule", "plateau"),
                   refit=config.get("refit_baseline", False))
