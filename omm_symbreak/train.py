"""Train an ``UnconstrainedPET`` on energies and forces (extended XYZ, eV and eV/Angstrom).

Recipe (shared DESIGN.md, section 4):

- Baseline: a per-species energy fit by least squares on the training energies,
  E ~ sum_s n_s b_s (``model.energy_baseline``). With a single composition ratio (pure water:
  always 2 H per O) the fit is rank-deficient and the minimum-norm solution is taken; only
  the total per molecule matters then.
  The initial network's own mean energy (on up to 32 training frames) is then absorbed into
  the baseline by a second least-squares fit, so that training starts without an energy
  offset and the force error drives it from the first step.
- Scale: ``model.energy_scale`` = the root mean square training force component times
  1 Angstrom (MACE's ``rms_forces_scaling``), so that the network's gradients with respect
  to its inputs are of order one. (The std of the residual energy per atom, another
  candidate, is about 100 times smaller for water and would ask the network for gradients of
  order 100.)
- Augmentation: every structure gets a fresh random rotation, improper (with inversion) with
  probability 1/2 (``grids.random_rotations``), every time it is seen; positions, forces and
  the cell are rotated (``rotate_frame``).
- Loss per batch: [w_E mean over structures of ((E - E_ref) / N_atoms)^2 + mean over force
  components of (F - F_ref)^2] / sigma_F^2, with sigma_F the root mean square force component
  of the training set (so a model predicting zero forces has a force term of 1), the energy
  per atom in eV compared with forces in eV/Angstrom times 1 Angstrom, and w_E =
  ``energy_weight`` (default 1, MACE's weighted loss has 1 energy : 100 forces). With loss
  weights per structure (``weights``, MACE's ``config_weight``) both means are weighted means
  over structures (a structure's force components all carry its weight). Normalising
  the energy term by the training set's own energy spread instead (sigma_E, the std of the
  residual energy per atom, about 6 meV/atom for water against sigma_F of about 0.78
  eV/Angstrom) weights an eV of energy error 10^4 times more than an eV/Angstrom of force
  error; in a test on liquid water the forces then did not learn at all in the first epoch. Forces are -dE/dx by autograd with create_graph=True;
  the structures of a batch go through the network as one disjoint graph (the same energy as
  ``symmetrize.averaged(model, "none")``, checked by the tests).
- AdamW, gradient norm clipped at 10; the learning rate rises linearly over the first
  ``warmup_epochs`` epochs (per step), then follows ``schedule``: ``plateau`` halves it when
  the validation loss (the training loss without a validation set) has not improved for
  ``patience`` epochs (ReduceLROnPlateau); ``cosine`` decays it per step along a half cosine
  to lr/100 at the last of ``epochs`` (the better choice when the budget is fixed in advance).
- Baseline refit (``refit_baseline``): the energy term compares the per-atom errors with their
  batch mean removed, and after every epoch the per-species baseline is refit by least
  squares to the training energies the network now predicts (unrotated, no gradient). Adam
  moves every parameter by about the learning rate per step whatever its gradient, so the
  per-atom energy offset, pinned only by the small energy term, drifts (measured: 24
  meV/atom of offset against 1.0 meV/atom of spread on the test set after 9 epochs, and a
  weight-10 energy term dominated by that offset outweighed the forces); without the offset
  in the loss, relative energies and forces are learned and the refit sets the offset for
  the cost of one forward pass over the training set. (With one structure per batch the
  centred energy term vanishes: forces and the refit alone then fix the energies.)
- Fine-tuning (``init_from``): the weights, baseline and scale of an existing checkpoint are
  the starting point; its hyperparameters are kept.
- Every epoch writes the model checkpoint ``output`` (``save_checkpoint``: weights plus JSON
  metadata with the history) and ``<output>.resume`` (model, optimizer and scheduler state,
  torch.load(weights_only=True)-safe). The shuffling and the rotations of epoch e are drawn
  from ``numpy.random.default_rng([seed, e])``, so ``resume=True`` continues exactly as an
  uninterrupted run would.

Model units: Angstrom, eV. Errors are reported in meV/atom (energies) and meV/Angstrom (force
components).
"""

import hashlib
import inspect
import json
import math
import os
import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch

from .data import Frame, read_datasets, read_frames
from .grids import random_rotations
from .model.checkpoint import checkpoint_metadata, load_checkpoint, save_checkpoint
from .model.neighbors import NeighborList, neighbor_list, trim_padding
from .model.pet import UnconstrainedPET

RESUME_FORMAT = "omm-symbreak-train-resume-1"
MODEL_DEFAULTS = {name: parameter.default for name, parameter in
                  inspect.signature(UnconstrainedPET.__init__).parameters.items()
                  if parameter.default is not inspect.Parameter.empty}
GRADIENT_CLIP = 10.0


# ---------------------------------------------------------------------------------- data


def rotate_frame(frame: Frame, rotation: np.ndarray) -> Frame:
    """The frame rotated by ``rotation`` [3, 3] (proper or improper): r -> R r, F -> R F.

    The cell rows are rotated as well; for an improper R they are then negated, which gives the
    same lattice (the vectors -a, -b, -c span it too) with a right-handed cell.
    """
    rotation = np.asarray(rotation, dtype=np.float64)
    cell = None
    if frame.cell_angstrom is not None:
        cell = frame.cell_angstrom @ rotation.T * np.sign(np.linalg.det(rotation))
    forces = frame.forces_ev_per_angstrom
    return Frame(frame.atomic_numbers, frame.positions_angstrom @ rotation.T, cell,
                 frame.energy_ev, None if forces is None else forces @ rotation.T,
                 dict(frame.info))


def energies_and_forces(model: UnconstrainedPET, frames: Sequence[Frame],
                        create_graph: bool = False):
    """Energies [S] (eV, tensor) and forces (list of [N_s, 3] tensors, eV/Angstrom) of the raw
    model for several structures, evaluated as one disjoint graph in a single forward pass."""
    energies, positions = _union_energies(model, frames, True)
    gradients = torch.autograd.grad(energies.sum(), positions, create_graph=create_graph)
    return energies, [-gradient for gradient in gradients]


def _union_energies(model: UnconstrainedPET, frames: Sequence[Frame], with_positions: bool):
    """Energies [S] of the frames as one disjoint graph, and the position tensors [N_s, 3]."""
    dtype, device = model.energy_scale.dtype, model.energy_scale.device
    positions, species, vectors, index, reverse, mask, segment = [], [], [], [], [], [], []
    offset = 0
    for number, frame in enumerate(frames):
        x = torch.tensor(frame.positions_angstrom, dtype=dtype, device=device,
                         requires_grad=with_positions)
        cell = (None if frame.cell_angstrom is None else
                torch.tensor(frame.cell_angstrom, dtype=dtype, device=device))
        neighbors = neighbor_list(x, cell, model.cutoff, model.max_neighbors)
        positions.append(x)
        species.append(model.species_of(frame.atomic_numbers.tolist()))
        vectors.append(neighbors.vectors)
        index.append(neighbors.index + offset)
        reverse.append(neighbors.reverse)
        mask.append(neighbors.mask)
        segment.append(torch.full((frame.n_atoms,), number, dtype=torch.long, device=device))
        offset += frame.n_atoms
    union = trim_padding(NeighborList(torch.cat(index), torch.cat(vectors), torch.cat(mask),
                                      torch.cat(reverse)))
    atomic = model(torch.cat(species), union.vectors[None], union.index, union.reverse,
                   union.mask)[0]
    energies = torch.zeros(len(frames), dtype=dtype, device=device).index_add(
        0, torch.cat(segment), atomic)
    return energies, positions


def predict(model: UnconstrainedPET, frames: Sequence[Frame], batch_size: int = 8):
    """Energies [S] (numpy, eV) and forces (list of numpy [N_s, 3], eV/Angstrom), no graph."""
    energies, forces = [], []
    for start in range(0, len(frames), batch_size):
        e, f = energies_and_forces(model, frames[start:start + batch_size])
        energies.append(e.detach().cpu().double().numpy())
        forces.extend(force.detach().cpu().double().numpy() for force in f)
    return np.concatenate(energies), forces


def error_metrics(frames: Sequence[Frame], energies: np.ndarray, forces: List[np.ndarray]) -> dict:
    """MAE and RMSE of energies per atom (meV/atom) and force components (meV/Angstrom)."""
    n_atoms = np.array([frame.n_atoms for frame in frames])
    energy_error = (np.asarray(energies) - [frame.energy_ev for frame in frames]) / n_atoms
    force_error = np.concatenate([(f - frame.forces_ev_per_angstrom).reshape(-1)
                                  for f, frame in zip(forces, frames)])
    return {
        "energy_mae_mev_per_atom": 1000 * float(np.mean(np.abs(energy_error))),
        "energy_rmse_mev_per_atom": 1000 * float(np.sqrt(np.mean(energy_error ** 2))),
        "force_mae_mev_per_angstrom": 1000 * float(np.mean(np.abs(force_error))),
        "force_rmse_mev_per_angstrom": 1000 * float(np.sqrt(np.mean(force_error ** 2))),
    }


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


def check_frames(frames: Sequence[Frame], atomic_numbers: Sequence[int], cutoff: float,
                 max_neighbors: int, name: str) -> None:
    """ValueError for unknown species or for more than ``max_neighbors`` neighbours."""
    known = set(int(z) for z in atomic_numbers)
    for number, frame in enumerate(frames):
        unknown = sorted(set(frame.atomic_numbers.tolist()) - known)
        if unknown:
            raise ValueError(f"{name} frame {number} has atomic numbers {unknown} that the "
                             f"training set (atomic numbers {sorted(known)}) does not have")
        try:
            neighbor_list(torch.tensor(frame.positions_angstrom),
                          None if frame.cell_angstrom is None else torch.tensor(frame.cell_angstrom),
                          cutoff, max_neighbors)
        except RuntimeError as error:
            raise ValueError(f"{name} frame {number}: {error}; raise --max-neighbors") from None


def _fingerprint(frames: Sequence[Frame]) -> str:
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(frame.atomic_numbers.tobytes())
        digest.update(np.round(frame.positions_angstrom, 5).tobytes())
        digest.update(np.float64(round(frame.energy_ev, 8)).tobytes())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------------- training


def resume_path(output) -> Path:
    """The optimizer/scheduler state file that goes with a checkpoint: ``<output>.resume``."""
    output = Path(output)
    return output.with_name(output.name + ".resume")


def _atomic_save(content, path: Path) -> None:
    temporary = path.with_name(path.name + ".tmp")
    torch.save(content, temporary)
    os.replace(temporary, path)


def _loss(model, batch: Sequence[Frame], energy_weight: float, sigma_force: float,
          center_energy: bool, weights: Optional[Sequence[float]] = None):
    """The batch loss (module docstring); ``weights``: one per structure (default 1 each), the
    energy and force means become means weighted by structure."""
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


SCHEDULES = ("plateau", "cosine")


def _learning_rate(config: dict, global_step: int, warmup_steps: float,
                   total_steps: int) -> Optional[float]:
    """The learning rate of a step, or None where ReduceLROnPlateau sets it."""
    peak = config["lr"]
    if global_step < warmup_steps:
        return peak * (global_step + 1) / (warmup_steps + 1)
    if config.get("schedule", "plateau") == "cosine":
        progress = (global_step - warmup_steps) / max(total_steps - 1 - warmup_steps, 1.0)
        final = peak / 100
        return final + (peak - final) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    if global_step == math.ceil(warmup_steps) and warmup_steps > 0:
        return peak
    return None


def _energies_no_grad(model: UnconstrainedPET, frames: Sequence[Frame],
                      batch_size: int) -> np.ndarray:
    """Energies [S] (float64 numpy, eV) of unrotated frames, in batches, without gradients."""
    with torch.no_grad():
        return torch.cat([_union_energies(model, frames[i:i + batch_size], False)[0]
                          for i in range(0, len(frames), batch_size)]).double().cpu().numpy()


def refit_baseline(model: UnconstrainedPET, frames: Sequence[Frame], batch_size: int) -> float:
    """Shift ``model.energy_baseline`` by the least-squares per-species fit of the reference
    minus the predicted energies of ``frames`` (no rotation, no gradient).

    Returns the mean shift per atom (eV/atom), the offset that was removed.
    """
    residual = (np.array([frame.energy_ev for frame in frames]) -
                _energies_no_grad(model, frames, batch_size))
    shift, _ = fit_baseline(frames, model.atomic_numbers.tolist(), residual)
    model.energy_baseline += torch.as_tensor(shift, dtype=model.energy_baseline.dtype,
                                             device=model.energy_baseline.device)
    n_atoms = np.array([frame.n_atoms for frame in frames])
    return float(np.mean(residual / n_atoms))


def train(train_frames: Sequence[Frame], valid_frames: Optional[Sequence[Frame]], output,
          epochs: int = 100, lr: float = 1e-3, batch_size: int = 4, seed: int = 0,
          weight_decay: float = 0.0, patience: int = 10, warmup_epochs: float = 1.0,
          energy_weight: float = 1.0, schedule: str = "plateau", refit: bool = True,
          init_from=None, resume: bool = False, weights: Optional[Sequence[float]] = None,
          force: bool = False, hyperparameters: Optional[dict] = None,
          sources: Optional[dict] = None, progress: bool = True,
          log: Callable[[str], None] = print) -> dict:
    """Train (or, with ``resume``, continue training) a model; returns the final report.

    ``epochs`` is the total number of epochs (a resumed run continues up to it; the cosine
    schedule stretches to a new total). With ``resume`` the stored settings (lr, batch size,
    seed, weight decay, patience, warmup, energy weight, schedule, refit, model
    hyperparameters) are used and the training set must be the one of the first run.
    ``schedule``: ``plateau`` or ``cosine``; ``refit``: refit the baseline every epoch;
    ``init_from``: a checkpoint to start from (its hyperparameters win over ``hyperparameters``).
    ``weights``: a positive loss weight per training structure (default 1 each; MACE's
    ``config_weight``), e.g. to keep rare high-force structures in the data without letting
    them dominate the force term.
    ``hyperparameters``: ``UnconstrainedPET`` arguments except atomic_numbers (defaults for
    those not given). ``sources``: file names recorded in the metadata.
    """
    from tqdm import tqdm

    output = Path(output)
    state_path = resume_path(output)
    train_frames = list(train_frames)
    valid_frames = list(valid_frames or [])
    if not train_frames:
        raise ValueError("the training set is empty")
    for name, frames in (("training", train_frames), ("validation", valid_frames)):
        for number, frame in enumerate(frames):
            if not frame.has_labels:
                raise ValueError(f"{name} frame {number} has no energy or no forces")
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(f"need epochs >= 1, batch size >= 1 and lr > 0, got {epochs}, "
                         f"{batch_size}, {lr}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    fingerprint = _fingerprint(train_frames)
    weights = np.ones(len(train_frames)) if weights is None else np.asarray(weights, dtype=float)
    if weights.shape != (len(train_frames),):
        raise ValueError(f"need one loss weight per training structure ({len(train_frames)}), "
                         f"got {weights.size}")
    if not np.all(np.isfinite(weights) & (weights > 0)):
        raise ValueError("loss weights must be positive and finite")
    weights_fingerprint = (None if np.all(weights == 1.0) else
                           hashlib.sha256(np.round(weights, 8).tobytes()).hexdigest()[:16])

    if resume:
        if not state_path.is_file():
            raise FileNotFoundError(f"no resume state {state_path} (written by a run with "
                                    f"-o {output})")
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
            raise ValueError(f"{state_path} is not an omm-symbreak resume file")
        config = json.loads(state["config"])
        if config["train_fingerprint"] != fingerprint:
            raise ValueError("--resume needs the training set of the first run "
                             f"({config['n_train']} frames, fingerprint "
                             f"{config['train_fingerprint']}); got {len(train_frames)} frames, "
                             f"fingerprint {fingerprint}")
        if config.get("weights_fingerprint") != weights_fingerprint:
            raise ValueError("--resume needs the loss weights of the first run")
        model = UnconstrainedPET(**json.loads(state["hyperparameters"]))
        model.load_state_dict(state["model"])
        history = json.loads(state["history"])
        start_epoch = int(state["epoch"])
    else:
        for path in (output, state_path):
            if path.exists() and not force:
                raise FileExistsError(f"{path} exists: pass --force to overwrite it, or --resume "
                                      "to continue that run")
        atomic_numbers = sorted(set(np.concatenate([f.atomic_numbers for f in train_frames]).tolist()))
        statistics = dataset_statistics(train_frames, atomic_numbers)
        if init_from is not None:
            model = load_checkpoint(init_from).train()
            check_frames(train_frames, model.atomic_numbers.tolist(), model.cutoff,
                         model.max_neighbors, "training")
            statistics["energy_scale_ev"] = float(model.energy_scale)
            statistics["init_from"] = str(init_from)
            statistics["init_from_epoch"] = checkpoint_metadata(init_from).get("epoch")
        else:
            options = dict(MODEL_DEFAULTS)
            options.update(hyperparameters or {})
            torch.manual_seed(seed)
            model = UnconstrainedPET(atomic_numbers, **options)
            check_frames(train_frames, atomic_numbers, model.cutoff, model.max_neighbors,
                         "training")
            with torch.no_grad():
                model.energy_scale.fill_(statistics["energy_scale_ev"])
                subset = train_frames[::max(1, len(train_frames) // 32)][:32]
                network = _energies_no_grad(model, subset, batch_size)
                offset = fit_baseline(subset, atomic_numbers, network)[0]
                statistics["network_offset_ev"] = offset.tolist()
                model.energy_baseline.copy_(torch.tensor(statistics["energy_baseline_ev"]) -
                                            torch.tensor(offset))
        config = dict(lr=lr, batch_size=batch_size, seed=seed, weight_decay=weight_decay,
                      patience=patience, warmup_epochs=warmup_epochs,
                      energy_weight=energy_weight, schedule=schedule, refit_baseline=refit,
                      n_train=len(train_frames),
                      n_valid=len(valid_frames),
                      train_fingerprint=fingerprint, weights_fingerprint=weights_fingerprint,
                      sources=sources or {}, **statistics)
        history = []
        start_epoch = 0
    atomic_numbers = model.atomic_numbers.tolist()
    check_frames(train_frames, atomic_numbers, model.cutoff, model.max_neighbors, "training")
    check_frames(valid_frames, atomic_numbers, model.cutoff, model.max_neighbors, "validation")

    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"],
                                  weight_decay=config["weight_decay"])
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=0.5, patience=config["patience"], min_lr=config["lr"] * 1e-3)
    if resume:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        log(f"resuming {output} after epoch {start_epoch} of {epochs}")
    energy_weight, sigma_force = config["energy_weight"], config["sigma_force_ev_per_angstrom"]
    n_train = len(train_frames)
    size = config["batch_size"]
    steps_per_epoch = math.ceil(n_train / size)
    warmup_steps = config.get("warmup_epochs", 0.0) * steps_per_epoch

    for epoch in range(start_epoch, epochs):
        started = time.time()
        model.train()
        rng = np.random.default_rng([config["seed"], epoch])
        order = rng.permutation(n_train)
        rotations = random_rotations(n_train, rng, inversion=True)
        sums = np.zeros(3)  # loss * structures, energy error^2, force error^2
        counts = np.zeros(2)  # structures, force components
        bar = tqdm(range(0, n_train, size), desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                   disable=not progress, leave=False, mininterval=2.0)
        for step, start in enumerate(bar):
            rate = _learning_rate(config, epoch * steps_per_epoch + step, warmup_steps,
                                  epochs * steps_per_epoch)
            if rate is not None:
                for group in optimizer.param_groups:
                    group["lr"] = rate
            batch = [rotate_frame(train_frames[i], rotations[i]) for i in order[start:start + size]]
            optimizer.zero_grad(set_to_none=True)
            loss, energy_error, force_error = _loss(model, batch, energy_weight, sigma_force,
                                                    config.get("refit_baseline", False),
                                                    weights[order[start:start + size]])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRADIENT_CLIP)
            optimizer.step()
            sums += [float(loss.detach()) * len(batch), float((energy_error ** 2).sum()),
                     float((force_error ** 2).sum())]
            counts += [len(batch), force_error.numel()]
            bar.set_postfix(loss=f"{sums[0] / counts[0]:.4g}",
                            e_rmse=f"{1000 * math.sqrt(sums[1] / counts[0]):.3g}",
                            f_rmse=f"{1000 * math.sqrt(sums[2] / counts[1]):.4g}")
        bar.close()
        record = {
            "epoch": epoch + 1,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": sums[0] / counts[0],
            "train_energy_rmse_mev_per_atom": 1000 * math.sqrt(sums[1] / counts[0]),
            "train_force_rmse_mev_per_angstrom": 1000 * math.sqrt(sums[2] / counts[1]),
        }
        if config.get("refit_baseline", False):
            model.eval()
            record["baseline_shift_mev_per_atom"] = 1000 * refit_baseline(model, train_frames, size)
        monitored = record["train_loss"]
        if valid_frames:
            model.eval()
            metrics = error_metrics(valid_frames, *predict(model, valid_frames, size))
            monitored = (energy_weight * (metrics["energy_rmse_mev_per_atom"] / 1000) ** 2
                         + (metrics["force_rmse_mev_per_angstrom"] / 1000) ** 2) / sigma_force ** 2
            record.update(valid_loss=monitored, **{f"valid_{k}": v for k, v in metrics.items()})
        if config.get("schedule", "plateau") == "plateau":
            scheduler.step(monitored)
        record["seconds"] = time.time() - started
        history.append(record)
        log(" ".join(f"{key}={value:.5g}" if isinstance(value, float) else f"{key}={value}"
                     for key, value in record.items()))
        _save(model, optimizer, scheduler, config, history, epoch + 1, epochs, output, state_path)

    model.eval()
    report = {"epoch": len(history), "train": error_metrics(train_frames, *predict(model, train_frames, size))}
    if valid_frames:
        report["valid"] = error_metrics(valid_frames, *predict(model, valid_frames, size))
    _save(model, optimizer, scheduler, config, history, len(history), epochs, output, state_path,
          report)
    log("final report (no rotation): " + json.dumps(report, indent=1))
    return report


def _save(model, optimizer, scheduler, config, history, epoch, epochs, output: Path,
          state_path: Path, report: Optional[dict] = None) -> None:
    metadata = dict(epoch=epoch, epochs=epochs, config=config, history=history,
                    units="energy eV, forces eV/Angstrom; errors meV/atom and meV/Angstrom")
    if report is not None:
        metadata["final"] = report
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(output.name + ".tmp")
    save_checkpoint(model, temporary, metadata)
    os.replace(temporary, output)
    _atomic_save({
        "format": RESUME_FORMAT,
        "epoch": epoch,
        "hyperparameters": json.dumps(model.hyperparameters),
        "config": json.dumps(config),
        "history": json.dumps(history),
        "model": {name: t.detach().cpu().clone() for name, t in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
    }, state_path)


def train_files(train_paths: Sequence, valid_paths: Sequence, output,
                file_weights: Optional[Sequence[float]] = None, **options) -> dict:
    """``train`` on extended XYZ files (validated before any training); ``file_weights``: the
    loss weight of each training file's structures (default 1 each)."""
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
    return train(train_frames, valid_frames, output, sources=sources, weights=weights, **options)
