"""Train an ``UnconstrainedPET`` on energies and forces (extended XYZ, eV and eV/Angstrom).

The recipe (docs/design.md, "Training"; why each choice, as measured: docs/model.md):

- Baseline: a per-species energy fit by least squares on the training energies,
  E ~ sum_s n_s b_s (``model.energy_baseline``). With a single composition ratio (pure water:
  always 2 H per O) the fit is rank-deficient and the minimum-norm solution is taken; only
  the total per molecule matters then.
  The initial network's own mean energy (on up to 32 training frames) is then absorbed into
  the baseline by a second least-squares fit, so that training starts without an energy
  offset and the force error drives it from the first step.
- Scale: ``model.energy_scale`` = the root mean square training force component times
  1 Angstrom (MACE's ``rms_forces_scaling``), so that the network's gradients with respect
  to its inputs are of order one.
- Augmentation: every structure gets a fresh random rotation, improper (with inversion) with
  probability 1/2 (``grids.random_rotations``), every time it is seen; positions, forces and
  the cell are rotated (``data.rotate_frame``).
- Loss per batch: [w_E mean over structures of ((E - E_ref) / N_atoms)^2 + mean over force
  components of (F - F_ref)^2] / sigma_F^2, with sigma_F the root mean square force component
  of the training set (so a model predicting zero forces has a force term of 1), the energy
  per atom in eV compared with forces in eV/Angstrom times 1 Angstrom, and w_E =
  ``energy_weight`` (default 1, MACE's weighted loss has 1 energy : 100 forces). With loss
  weights per structure (``weights``, MACE's ``config_weight``) both means are weighted means
  over structures (a structure's force components all carry its weight). Forces are -dE/dx
  by autograd with create_graph=True; the structures of a batch go through the network as one
  disjoint graph (the same energies as the raw model one structure at a time, checked by the
  tests).
- AdamW, gradient norm clipped at 10; the learning rate rises linearly over the first
  ``warmup_epochs`` epochs (per step), then follows ``schedule``: ``plateau`` halves it when
  the validation loss (the training loss without a validation set) has not improved for
  ``patience`` epochs (ReduceLROnPlateau); ``cosine`` decays it per step along a half cosine
  to lr/100 at the last of ``epochs`` (the better choice when the budget is fixed in advance).
- Baseline refit (``refit_baseline``): the energy term compares the per-atom errors with their
  batch mean removed, and after every epoch the per-species baseline is refit by least
  squares to the training energies the network now predicts (unrotated, no gradient), so
  that the energy offset, which Adam lets drift, stays out of the loss and the refit sets it
  for the cost of one forward pass over the training set. (With one structure per batch the
  centred energy term vanishes: forces and the refit alone then fix the energies.)
- Fine-tuning (``init_from``): the weights, baseline and scale of an existing model file are
  the starting point; its hyperparameters are kept, except that ``long_range`` in the
  settings' hyperparameters adds a charge head to a short-range model
  (``UnconstrainedPET.with_long_range``: the short-range part starts as the model was, the
  charges small).
- Every epoch writes the model file ``output`` (``save_model``: weights plus JSON metadata
  with the history) and the training checkpoint ``<output>.resume`` (model, optimizer and
  scheduler state, torch.load(weights_only=True)-safe). The shuffling and the rotations of
  epoch e are drawn from ``numpy.random.default_rng([seed, e])``, so ``resume=True``
  continues exactly as an uninterrupted run would.

Model units: Angstrom, eV. Errors are reported in meV/atom (energies) and meV/Angstrom (force
components).
"""

import hashlib
import inspect
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .data import Frame, read_datasets, read_frames, rotate_frame
from .grids import random_rotations
from .model.model_file import model_metadata, load_model, save_model
from .model.neighbors import neighbor_list
from .model.pet import UnconstrainedPET
from .predict import energies_and_forces, energies_no_grad, error_metrics, predict
from .train_settings import TrainSettings

RESUME_FORMAT = "omm-symbreak-train-resume-1"
MODEL_DEFAULTS = {name: parameter.default for name, parameter in
                  inspect.signature(UnconstrainedPET.__init__).parameters.items()
                  if parameter.default is not inspect.Parameter.empty}
GRADIENT_CLIP = 10.0


# ------------------------------------------------------------------------------- statistics


def fit_baseline(frames: Sequence[Frame], atomic_numbers: Sequence[int],
                 energies: Optional[np.ndarray] = None):
    """Least-squares per-species energies b [S] (eV; minimum-norm if rank-deficient) and the
    residual energies per atom [F] (eV/atom) of the frames' energies (or of ``energies``)."""
    counts = np.array([[np.sum(frame.atomic_numbers == z) for z in atomic_numbers]
                       for frame in frames], dtype=np.float64)
    if energies is None:
        energies = np.array([frame.energy_ev for frame in frames])
    baseline = np.linalg.lstsq(counts, energies, rcond=None)[0]
    residual_per_atom = (energies - counts @ baseline) / counts.sum(axis=1)
    return baseline, residual_per_atom


def dataset_statistics(frames: Sequence[Frame], atomic_numbers: Sequence[int]) -> dict:
    """Baseline, energy scale and loss normalisation of a training set (see module docstring)."""
    baseline, residual = fit_baseline(frames, atomic_numbers)
    sigma_energy = float(np.std(residual)) if len(frames) > 1 else 0.0
    forces = np.concatenate([frame.forces_ev_per_angstrom.reshape(-1) for frame in frames])
    sigma_force = float(np.sqrt(np.mean(forces ** 2)))
    # floors keep a degenerate set (one frame, zero forces) from dividing by zero
    sigma_energy = max(sigma_energy, 1e-4)
    sigma_force = max(sigma_force, 1e-3)
    return {
        "energy_baseline_ev": baseline.tolist(),
        "energy_scale_ev": sigma_force * 1.0,  # eV/Angstrom times 1 Angstrom
        "sigma_energy_ev_per_atom": sigma_energy,
        "sigma_force_ev_per_angstrom": sigma_force,
    }


def check_frames(frames: Sequence[Frame], model: UnconstrainedPET, name: str) -> None:
    """ValueError for species the model does not know or for more neighbours than its
    ``max_neighbors`` within its cutoff; ``name``: the frames' role in the messages."""
    known = set(model.atomic_numbers.tolist())
    for number, frame in enumerate(frames):
        unknown = sorted(set(frame.atomic_numbers.tolist()) - known)
        if unknown:
            raise ValueError(f"{name} frame {number} has atomic numbers {unknown} that the "
                             f"training set (atomic numbers {sorted(known)}) does not have")
        try:
            neighbor_list(torch.tensor(frame.positions_angstrom),
                          None if frame.cell_angstrom is None else torch.tensor(frame.cell_angstrom),
                          model.cutoff, model.max_neighbors)
        except RuntimeError as error:
            raise ValueError(f"{name} frame {number}: {error}; raise --max-neighbors") from None


def _fingerprint(frames: Sequence[Frame]) -> str:
    """16 hex digits identifying the frames' species, positions and energies."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(frame.atomic_numbers.tobytes())
        digest.update(np.round(frame.positions_angstrom, 5).tobytes())
        digest.update(np.float64(round(frame.energy_ev, 8)).tobytes())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------------- training


def resume_path(output) -> Path:
    """The optimizer/scheduler state file that goes with a model file: ``<output>.resume``."""
    output = Path(output)
    return output.with_name(output.name + ".resume")


@dataclass
class TrainingRun:
    """A run in progress: its settings (a resumed run's stored ones), the model (Angstrom, eV),
    its optimizer and scheduler, the ``config`` and ``history`` (one record per epoch) that the
    model file stores, the model file ``output`` and the epochs done when this sitting began."""

    settings: TrainSettings
    model: UnconstrainedPET
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    config: dict
    history: List[dict]
    output: Path
    start_epoch: int


def _optimizer_and_scheduler(model: UnconstrainedPET, settings: TrainSettings):
    """AdamW and the plateau scheduler (halving, down to lr/1000) of ``settings``."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr,
                                  weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=0.5, patience=settings.patience, min_lr=settings.lr * 1e-3)
    return optimizer, scheduler


def _check_labels(train_frames: Sequence[Frame], valid_frames: Sequence[Frame]) -> None:
    """ValueError for an empty training set or a frame without energy or forces."""
    if not train_frames:
        raise ValueError("the training set is empty")
    for name, frames in (("training", train_frames), ("validation", valid_frames)):
        for number, frame in enumerate(frames):
            if not frame.has_labels:
                raise ValueError(f"{name} frame {number} has no energy or no forces")


def _structure_weights(weights: Optional[Sequence[float]],
                       n_structures: int) -> Tuple[np.ndarray, Optional[str]]:
    """The loss weight of each structure [n_structures] (default 1 each), checked, and its
    fingerprint (None when all are 1, as in runs without weights)."""
    weights = np.ones(n_structures) if weights is None else np.asarray(weights, dtype=float)
    if weights.shape != (n_structures,):
        raise ValueError(f"need one loss weight per training structure ({n_structures}), "
                         f"got {weights.size}")
    if not np.all(np.isfinite(weights) & (weights > 0)):
        raise ValueError("loss weights must be positive and finite")
    fingerprint = (None if np.all(weights == 1.0) else
                   hashlib.sha256(np.round(weights, 8).tobytes()).hexdigest()[:16])
    return weights, fingerprint


def _initial_model(train_frames: Sequence[Frame], settings: TrainSettings):
    """The model a new run starts from, and the dataset statistics its config stores: the model
    of ``settings.init_from`` (with its energy scale), or a new one seeded by ``settings.seed``
    whose baseline absorbs its initial mean energy on up to 32 training frames."""
    atomic_numbers = sorted(set(np.concatenate([f.atomic_numbers for f in train_frames]).tolist()))
    statistics = dataset_statistics(train_frames, atomic_numbers)
    torch.manual_seed(settings.seed)
    if settings.init_from is not None:
        model = load_model(settings.init_from).train()
        wanted = {**MODEL_DEFAULTS, **(settings.hyperparameters or {})}
        if wanted["long_range"] and not model.long_range:
            model = model.with_long_range(wanted["ewald_cutoff"], wanted["ewald_tolerance"])
            statistics["long_range_added"] = True
        check_frames(train_frames, model, "training")
        statistics["energy_scale_ev"] = float(model.energy_scale)
        statistics["init_from"] = str(settings.init_from)
        statistics["init_from_epoch"] = model_metadata(settings.init_from).get("epoch")
        return model, statistics
    hyperparameters = {**MODEL_DEFAULTS, **(settings.hyperparameters or {})}
    model = UnconstrainedPET(atomic_numbers, **hyperparameters)
    check_frames(train_frames, model, "training")
    with torch.no_grad():
        model.energy_scale.fill_(statistics["energy_scale_ev"])
        subset = train_frames[::max(1, len(train_frames) // 32)][:32]
        offset = fit_baseline(subset, atomic_numbers, energies_no_grad(model, subset))[0]
        statistics["network_offset_ev"] = offset.tolist()
        model.energy_baseline.copy_(torch.tensor(statistics["energy_baseline_ev"]) -
                                    torch.tensor(offset))
    return model, statistics


def _new_run(train_frames: Sequence[Frame], n_valid: int, output: Path,
             settings: TrainSettings, weights_fingerprint: Optional[str], sources: dict,
             force: bool) -> TrainingRun:
    """A run from epoch 0 (FileExistsError for an existing output unless ``force``)."""
    for path in (output, resume_path(output)):
        if path.exists() and not force:
            raise FileExistsError(f"{path} exists: pass --force to overwrite it, or --resume "
                                  "to continue that run")
    model, statistics = _initial_model(train_frames, settings)
    config = dict(settings.config(), n_train=len(train_frames), n_valid=n_valid,
                  train_fingerprint=_fingerprint(train_frames),
                  weights_fingerprint=weights_fingerprint, sources=sources, **statistics)
    return TrainingRun(settings, model, *_optimizer_and_scheduler(model, settings), config, [],
                       output, 0)


def _resumed_run(train_frames: Sequence[Frame], output: Path, epochs: int,
                 weights_fingerprint: Optional[str]) -> TrainingRun:
    """The run stored in ``<output>.resume``, with its settings and the new total ``epochs``;
    ValueError unless the training set and loss weights are those of its first sitting."""
    state_path = resume_path(output)
    if not state_path.is_file():
        raise FileNotFoundError(f"no resume state {state_path} (written by a run with "
                                f"-o {output})")
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise ValueError(f"{state_path} is not an omm-symbreak resume file")
    config = json.loads(state["config"])
    fingerprint = _fingerprint(train_frames)
    if config["train_fingerprint"] != fingerprint:
        raise ValueError("--resume needs the training set of the first run "
                         f"({config['n_train']} frames, fingerprint "
                         f"{config['train_fingerprint']}); got {len(train_frames)} frames, "
                         f"fingerprint {fingerprint}")
    if config.get("weights_fingerprint") != weights_fingerprint:
        raise ValueError("--resume needs the loss weights of the first run")
    settings = TrainSettings.from_config(config, epochs)
    model = UnconstrainedPET(**json.loads(state["hyperparameters"]))
    model.load_state_dict(state["model"])
    optimizer, scheduler = _optimizer_and_scheduler(model, settings)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return TrainingRun(settings, model, optimizer, scheduler, config, json.loads(state["history"]),
                       output, int(state["epoch"]))


def _loss(model, batch: Sequence[Frame], energy_weight: float, sigma_force: float,
          center_energy: bool, weights: Optional[Sequence[float]] = None):
    """The batch loss (module docstring); ``weights``: one per structure (default 1 each), the
    energy and force means become means weighted by structure.

    Returns the loss (scalar tensor with its graph), the energy errors per atom [B] (eV/atom)
    and the force component errors [3 * atoms in the batch] (eV/Angstrom), both detached.
    """
    energies, forces = energies_and_forces(model, batch, create_graph=True)
    like = dict(dtype=energies.dtype, device=energies.device)
    n_atoms = torch.tensor([frame.n_atoms for frame in batch], **like)
    reference = torch.tensor([frame.energy_ev for frame in batch], **like)
    weight = torch.ones(len(batch), **like) if weights is None else torch.tensor(weights, **like)
    energy_error = (energies - reference) / n_atoms
    force_error = torch.cat([(f - torch.tensor(frame.forces_ev_per_angstrom, **like)).reshape(-1)
                             for f, frame in zip(forces, batch)])
    component_weight = torch.repeat_interleave(weight, 3 * n_atoms.long())
    fitted = energy_error - (weight * energy_error).sum() / weight.sum() if center_energy else energy_error
    energy_term = (weight * fitted ** 2).sum() / weight.sum()
    force_term = (component_weight * force_error ** 2).sum() / component_weight.sum()
    loss = (energy_weight * energy_term + force_term) / sigma_force ** 2
    return loss, energy_error.detach(), force_error.detach()


def refit_baseline(model: UnconstrainedPET, frames: Sequence[Frame]) -> float:
    """Shift ``model.energy_baseline`` by the least-squares per-species fit of the reference
    minus the predicted energies of ``frames`` (no rotation, no gradient).

    Returns the mean shift per atom (eV/atom), the offset that was removed.
    """
    residual = (np.array([frame.energy_ev for frame in frames]) -
                energies_no_grad(model, frames))
    shift, _ = fit_baseline(frames, model.atomic_numbers.tolist(), residual)
    model.energy_baseline += torch.as_tensor(shift, dtype=model.energy_baseline.dtype,
                                             device=model.energy_baseline.device)
    n_atoms = np.array([frame.n_atoms for frame in frames])
    return float(np.mean(residual / n_atoms))


def _train_steps(run: TrainingRun, frames: Sequence[Frame], weights: np.ndarray, epoch: int,
                 progress: bool) -> dict:
    """The steps of epoch ``epoch`` (0-based) over ``frames`` in the order and rotations drawn
    from ``default_rng([seed, epoch])``; ``weights``: [len(frames)]. Returns the record so far:
    epoch (1-based), lr, mean loss, RMSEs (meV/atom, meV/Angstrom) of the rotated batches."""
    from tqdm import tqdm

    settings = run.settings
    size, n_train = settings.batch_size, len(frames)
    steps_per_epoch = math.ceil(n_train / size)
    sigma_force = run.config["sigma_force_ev_per_angstrom"]
    run.model.train()
    rng = np.random.default_rng([settings.seed, epoch])
    order = rng.permutation(n_train)
    rotations = random_rotations(n_train, rng, inversion=True)
    sums = np.zeros(3)  # loss * structures, energy error^2, force error^2
    counts = np.zeros(2)  # structures, force components
    bar = tqdm(range(0, n_train, size), desc=f"epoch {epoch + 1}/{settings.epochs}", unit="batch",
               disable=not progress, leave=False, mininterval=2.0)
    for step, start in enumerate(bar):
        rate = settings.learning_rate(epoch * steps_per_epoch + step, steps_per_epoch)
        if rate is not None:
            for group in run.optimizer.param_groups:
                group["lr"] = rate
        indices = order[start:start + size]
        batch = [rotate_frame(frames[i], rotations[i]) for i in indices]
        run.optimizer.zero_grad(set_to_none=True)
        loss, energy_error, force_error = _loss(run.model, batch, settings.energy_weight,
                                                sigma_force, settings.refit, weights[indices])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), GRADIENT_CLIP)
        run.optimizer.step()
        sums += [float(loss.detach()) * len(batch), float((energy_error ** 2).sum()),
                 float((force_error ** 2).sum())]
        counts += [len(batch), force_error.numel()]
        bar.set_postfix(loss=f"{sums[0] / counts[0]:.4g}",
                        e_rmse=f"{1000 * math.sqrt(sums[1] / counts[0]):.3g}",
                        f_rmse=f"{1000 * math.sqrt(sums[2] / counts[1]):.4g}")
    bar.close()
    return {"epoch": epoch + 1, "lr": run.optimizer.param_groups[0]["lr"],
            "train_loss": sums[0] / counts[0],
            "train_energy_rmse_mev_per_atom": 1000 * math.sqrt(sums[1] / counts[0]),
            "train_force_rmse_mev_per_angstrom": 1000 * math.sqrt(sums[2] / counts[1])}


def _refit_and_validate(run: TrainingRun, train_frames: Sequence[Frame],
                        valid_frames: Sequence[Frame], train_loss: float) -> dict:
    """After an epoch's steps: the baseline refit (with ``refit``), the validation errors and
    loss (unrotated), and the plateau scheduler's step on the validation loss (the training
    loss without validation frames). Returns the record entries (meV/atom, meV/Angstrom)."""
    entries = {}
    if run.settings.refit:
        run.model.eval()
        entries["baseline_shift_mev_per_atom"] = 1000 * refit_baseline(run.model, train_frames)
    monitored = train_loss
    if valid_frames:
        run.model.eval()
        metrics = error_metrics(valid_frames, *predict(run.model, valid_frames))
        monitored = (run.settings.energy_weight * (metrics["energy_rmse_mev_per_atom"] / 1000) ** 2
                     + (metrics["force_rmse_mev_per_angstrom"] / 1000) ** 2
                     ) / run.config["sigma_force_ev_per_angstrom"] ** 2
        entries.update(valid_loss=monitored, **{f"valid_{k}": v for k, v in metrics.items()})
    if run.settings.schedule == "plateau":
        run.scheduler.step(monitored)
    return entries


def _run_epoch(run: TrainingRun, train_frames: Sequence[Frame], valid_frames: Sequence[Frame],
               weights: np.ndarray, epoch: int, progress: bool, log: Callable[[str], None]) -> None:
    """Epoch ``epoch`` (0-based): steps, refit and validation; appends its record (with its wall
    time in seconds) to the history, logs it as one line of key=value and saves the run."""
    started = time.time()
    record = _train_steps(run, train_frames, weights, epoch, progress)
    record.update(_refit_and_validate(run, train_frames, valid_frames, record["train_loss"]))
    record["seconds"] = time.time() - started
    run.history.append(record)
    log(" ".join(f"{key}={value:.5g}" if isinstance(value, float) else f"{key}={value}"
                 for key, value in record.items()))
    _save(run, epoch + 1)


def _final_report(run: TrainingRun, train_frames: Sequence[Frame],
                  valid_frames: Sequence[Frame], log: Callable[[str], None]) -> dict:
    """The unrotated training (and validation) errors of the trained model, saved with the run
    as the model file's ``final`` metadata and logged."""
    run.model.eval()
    report = {"epoch": len(run.history),
              "train": error_metrics(train_frames, *predict(run.model, train_frames))}
    if valid_frames:
        report["valid"] = error_metrics(valid_frames, *predict(run.model, valid_frames))
    _save(run, len(run.history), report)
    log("final report (no rotation): " + json.dumps(report, indent=1))
    return report


def _save(run: TrainingRun, epoch: int, report: Optional[dict] = None) -> None:
    """Write the model file (weights, config, history, ``report``) and the resume state after
    ``epoch`` epochs, each by an atomic rename."""
    metadata = dict(epoch=epoch, epochs=run.settings.epochs, config=run.config, history=run.history,
                    units="energy eV, forces eV/Angstrom; errors meV/atom and meV/Angstrom")
    if report is not None:
        metadata["final"] = report
    run.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = run.output.with_name(run.output.name + ".tmp")
    save_model(run.model, temporary, metadata)
    os.replace(temporary, run.output)
    weights = {name: t.detach().cpu().clone() for name, t in run.model.state_dict().items()}
    state = dict(format=RESUME_FORMAT, epoch=epoch,
                 hyperparameters=json.dumps(run.model.hyperparameters),
                 config=json.dumps(run.config), history=json.dumps(run.history), model=weights,
                 optimizer=run.optimizer.state_dict(), scheduler=run.scheduler.state_dict())
    state_path = resume_path(run.output)
    temporary = state_path.with_name(state_path.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, state_path)


def train(train_frames: Sequence[Frame], valid_frames: Optional[Sequence[Frame]], output,
          settings: TrainSettings = TrainSettings(), *,
          weights: Optional[Sequence[float]] = None, resume: bool = False, force: bool = False,
          sources: Optional[dict] = None, progress: bool = True,
          log: Callable[[str], None] = print) -> dict:
    """Train (or, with ``resume``, continue training) a model; returns the final report.

    ``settings`` (validated here): with ``resume`` the stored ones except ``epochs`` are used,
    and the training set and ``weights`` must be those of the first run. ``weights``: a
    positive loss weight per training structure (default 1 each; MACE's ``config_weight``),
    e.g. to keep rare high-force structures without letting them dominate the force term.
    ``force``: overwrite an existing ``output``. ``sources``: file names recorded in the
    metadata. ``log``: receives the resume notice, a line per epoch and the final report.
    """
    settings.validate()
    output = Path(output)
    train_frames, valid_frames = list(train_frames), list(valid_frames or [])
    _check_labels(train_frames, valid_frames)
    weights, weights_fingerprint = _structure_weights(weights, len(train_frames))
    if resume:
        run = _resumed_run(train_frames, output, settings.epochs, weights_fingerprint)
    else:
        run = _new_run(train_frames, len(valid_frames), output, settings, weights_fingerprint,
                       sources or {}, force)
    check_frames(train_frames, run.model, "training")
    check_frames(valid_frames, run.model, "validation")
    if resume:
        log(f"resuming {output} after epoch {run.start_epoch} of {settings.epochs}")
    for epoch in range(run.start_epoch, settings.epochs):
        _run_epoch(run, train_frames, valid_frames, weights, epoch, progress, log)
    return _final_report(run, train_frames, valid_frames, log)


def train_files(train_paths: Sequence, valid_paths: Sequence, output,
                settings: TrainSettings = TrainSettings(), *,
                file_weights: Optional[Sequence[float]] = None, **options) -> dict:
    """``train`` on extended XYZ files (validated before any training); ``file_weights``: the
    loss weight of each training file's structures (default 1 each); ``options``: ``train``'s
    resume, force, progress and log."""
    if file_weights is not None and len(file_weights) != len(train_paths):
        raise ValueError(f"need one loss weight per training file ({len(train_paths)}), "
                         f"got {len(file_weights)}")
    per_file = [read_frames(path) for path in train_paths]
    train_frames = [frame for frames in per_file for frame in frames]
    valid_frames = read_datasets(valid_paths) if valid_paths else []
    sources = {"train": [str(p) for p in train_paths], "valid": [str(p) for p in valid_paths or []]}
    weights = None
    if file_weights is not None:
        weights = np.concatenate([np.full(len(frames), float(weight))
                                  for frames, weight in zip(per_file, file_weights)])
        sources["train_weights"] = [float(weight) for weight in file_weights]
    return train(train_frames, valid_frames, output, settings, sources=sources, weights=weights,
                 **options)
