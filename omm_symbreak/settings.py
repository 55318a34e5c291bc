"""What defines a simulation: ``RunSettings`` and the choices each setting takes.

Every count of steps (``steps`` and the intervals) is in units of ``timestep_fs``; with multiple
time stepping (strategy ``mts``) the outer step is ``mts_stride`` of them and every count must
be a multiple of ``mts_stride``: a count left at its default (None) becomes the multiple nearest
to ``DEFAULT_STEP_COUNTS``, a count given that is not one is refused.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

from .frames import TRAJECTORY_FORMATS
from .grids import check_grid_size, parse_grid
from .kernel import DEFAULT_MEMORY_BUDGET_BYTES
from .strategies import DEFAULT_GRID, GRID_STRATEGIES, STRATEGIES

ENSEMBLES = ("nve", "nvt")
THERMOSTATS = ("langevin", "nose-hoover")
PLATFORMS = ("Reference", "CPU", "CUDA", "OpenCL")
PRECISIONS = ("single", "double")
# The defaults of the counts of steps (of timestep_fs), before rounding to the mts stride.
DEFAULT_STEP_COUNTS = dict(steps=1000, state_interval=100, trajectory_interval=100,
                           diagnostics_interval=100, checkpoint_interval=1000)


@dataclass(frozen=True)
class RunSettings:
    """Everything that defines a run. Steps and intervals count steps of ``timestep_fs``.

    ``model``: the model file (None: the shipped model). ``grid``: the rotation grid of the
    strategies full and mts (None: ``DEFAULT_GRID``); for none and random it is ``"none"``,
    and any other grid raises ValueError. Both grids are parsed on construction (ValueError for
    bad notation) and stored as their canonical notation, their ``RotationGrid`` as the
    attributes ``rotation_grid`` and ``diagnostic_rotation_grid`` (not fields: ``asdict`` and
    run.json hold the notation only). Hence ``dataclasses.replace`` of the strategy to none or
    random needs ``grid=None`` too.
    ``trajectory_format``: ``"dcd"`` (single precision) or ``"xtc"`` (0.001 nm, compressed:
    the compact form for durable run state, ``omm_symbreak.archive``).
    ``replicate``: copies of a periodic template along its box vectors a, b, c
    (``systems.load``), a tuple (run.json holds a list). ``memory_gb``: the activation memory
    the rotated copies of one evaluation may hold at once (a cost, not physics: a resume may
    change it); ``allow_large_grid``: accept grids of more than ``MAX_GRID_EVALUATIONS``;
    ``allow_incomplete_water``: let a water model run residues that are not whole molecules.
    """

    system: str
    model: Optional[str] = None
    strategy: str = "none"
    grid: Optional[str] = None
    mts_stride: int = 4
    ensemble: str = "nvt"
    thermostat: str = "langevin"
    temperature_k: float = 300.0
    friction_per_ps: float = 1.0
    timestep_fs: float = 0.5
    steps: Optional[int] = None
    platform: str = "CPU"
    precision: str = "single"
    seed: int = 0
    state_interval: Optional[int] = None
    trajectory_interval: Optional[int] = None
    diagnostics_interval: Optional[int] = None
    diagnostic_grid: str = DEFAULT_GRID
    checkpoint_interval: Optional[int] = None
    velocities: bool = False
    trajectory_format: str = "dcd"
    replicate: Tuple[int, int, int] = (1, 1, 1)
    memory_gb: float = DEFAULT_MEMORY_BUDGET_BYTES / 2**30
    allow_large_grid: bool = False
    allow_incomplete_water: bool = False

    def __post_init__(self) -> None:
        uses_grid = self.strategy in GRID_STRATEGIES
        if self.grid is None:
            rotation_grid = parse_grid(DEFAULT_GRID if uses_grid else "none")
        else:
            rotation_grid = parse_grid(self.grid)
        if self.strategy in ("none", "random") and rotation_grid.spec != "none":
            raise ValueError(f"--grid applies to strategies full and mts, not to strategy "
                             f"{self.strategy!r}: leave it out")
        diagnostic_rotation_grid = parse_grid(self.diagnostic_grid)
        if diagnostic_rotation_grid.randomized:
            raise ValueError(f"--diagnostic-grid {diagnostic_rotation_grid.spec}: Delta is "
                             "measured against a fixed grid; leave out '+random'")
        object.__setattr__(self, "grid", rotation_grid.spec)
        object.__setattr__(self, "diagnostic_grid", diagnostic_rotation_grid.spec)
        object.__setattr__(self, "rotation_grid", rotation_grid)
        object.__setattr__(self, "diagnostic_rotation_grid", diagnostic_rotation_grid)
        object.__setattr__(self, "replicate", tuple(self.replicate))
        self._resolve_default_step_counts()

    def _resolve_default_step_counts(self) -> None:
        """Set every count of steps left at None to its default rounded to the stride, with a
        note for each default that changed."""
        stride = self.stride if isinstance(self.stride, int) and self.stride >= 1 else 1
        notes = []
        for name, default in DEFAULT_STEP_COUNTS.items():
            if getattr(self, name) is None:
                count = round_to_stride(default, stride)
                object.__setattr__(self, name, count)
                if count != default:
                    notes.append(f"{flag(name)} {count}: the default {default} rounded to a "
                                 f"multiple of --mts-stride {stride}")
        object.__setattr__(self, "notes", tuple(notes))

    @property
    def memory_budget_bytes(self) -> int:
        """``memory_gb`` in bytes."""
        return int(self.memory_gb * 2**30)

    @property
    def stride(self) -> int:
        """Steps of ``timestep_fs`` per integrator step (``mts_stride`` for ``mts``, else 1)."""
        return self.mts_stride if self.strategy == "mts" else 1

    def validate(self) -> None:
        """ValueError, with what to change (named by its command-line flag), for any inconsistent
        setting."""
        choices = dict(strategy=STRATEGIES, ensemble=ENSEMBLES, thermostat=THERMOSTATS,
                       platform=PLATFORMS, precision=PRECISIONS,
                       trajectory_format=TRAJECTORY_FORMATS)
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"unknown {flag(name)} {getattr(self, name)!r}: choose one of "
                                 f"{', '.join(allowed)}")
        if self.strategy == "random" and self.ensemble == "nve":
            raise ValueError("--strategy random gives noisy, non-conservative forces: it needs "
                             "a thermostat (--ensemble nvt), not NVE")
        if self.rotation_grid.randomized and self.ensemble == "nve":
            raise ValueError(f"--grid {self.grid} turns the grid at random at every evaluation: "
                             "the forces are not conservative, so it needs a thermostat "
                             "(--ensemble nvt), not NVE")
        if self.strategy == "mts" and self.thermostat == "nose-hoover" and self.ensemble == "nvt":
            raise ValueError("multiple time stepping runs with --thermostat langevin or "
                             "--ensemble nve; OpenMM has no multiple-time-step Nose-Hoover "
                             "integrator")
        for name in ("mts_stride", "steps", "state_interval", "trajectory_interval",
                     "diagnostics_interval", "checkpoint_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{flag(name)} must be a positive number of steps, not "
                                 f"{getattr(self, name)}")
            if name != "mts_stride" and getattr(self, name) % self.stride:
                count = getattr(self, name)
                raise ValueError(f"{flag(name)} {count} is not a multiple of --mts-stride "
                                 f"{self.stride}: with --strategy mts every count of steps is "
                                 f"a whole number of outer steps (such as "
                                 f"{round_to_stride(count, self.stride)})")
        if len(self.replicate) != 3 or not all(isinstance(count, int) and count >= 1
                                               for count in self.replicate):
            raise ValueError(f"--replicate takes three positive integers (copies of the periodic "
                             f"box along a, b, c), not {' '.join(map(str, self.replicate))}")
        check_grid_size(self.rotation_grid, self.allow_large_grid)
        check_grid_size(self.diagnostic_rotation_grid, self.allow_large_grid)
        for name, unit in (("timestep_fs", "fs"), ("temperature_k", "K"),
                           ("friction_per_ps", "1/ps"), ("memory_gb", "GB")):
            if not getattr(self, name) > 0:
                raise ValueError(f"{flag(name)} must be positive ({unit}), not "
                                 f"{getattr(self, name)}")


def round_to_stride(count: int, stride: int) -> int:
    """The multiple of ``stride`` nearest to ``count`` (steps), at least ``stride``."""
    return max(stride, stride * round(count / stride))


# The command-line flag of each setting whose flag is not its name with dashes.
FLAGS = {"system": "SYSTEM", "temperature_k": "--temperature", "friction_per_ps": "--friction"}


def flag(name: str) -> str:
    """The ``omm-symbreak simulate`` flag of the setting ``name`` (``timestep_fs`` ->
    ``--timestep-fs``), for messages."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))
