"""The symmetrization strategies, in one table: what each one evaluates, which OpenMM forces
(energy modules and force groups) it becomes, and which integrator runs them.

- ``none``:   the raw model, one force;
- ``full``:   the model averaged over a rotation grid, one force;
- ``mts``:    the raw model in force group ``FAST_GROUP`` plus the correction E_avg - E_raw
              over a grid in ``SLOW_GROUP``, integrated with multiple time stepping (the slow
              force every ``mts_stride`` inner steps: ``integrator_groups``);
- ``random``: the model in a fresh random orientation at every evaluation, one force.

Every energy module is named by the strategy whose module it is (``Strategy.module``, built by
``symmetrize.strategy_energy``): ``mts``'s own module is the correction, which is what a file
exported for ``mts`` holds; its fast force is the module of ``none``.
"""

from typing import Dict, List, NamedTuple, Optional, Tuple

from .grids import RotationGrid

FAST_GROUP = 0
SLOW_GROUP = 1


class Force(NamedTuple):
    """One OpenMM force of a strategy: the module of strategy ``module`` (its grid the
    strategy's, if that module evaluates one) in force group ``force_group``."""

    module: str
    force_group: int


class Strategy(NamedTuple):
    """A strategy: its ``name``; ``uses_grid``, whether it evaluates a rotation grid;
    ``module``, what its own energy module computes (``"average"``: sum_g w_g E(R_g x), the
    raw model for the grid ``none``; ``"correction"``: E_avg - E_raw; ``"random"``: E(Q x) for
    a random Q per configuration); ``forces``, the forces a system of it holds; and
    ``multiple_time_step``, whether an MTS integrator runs them."""

    name: str
    uses_grid: bool
    module: str
    forces: Tuple[Force, ...]
    multiple_time_step: bool


TABLE: Dict[str, Strategy] = {strategy.name: strategy for strategy in (
    Strategy("none", False, "average", (Force("none", FAST_GROUP),), False),
    Strategy("full", True, "average", (Force("full", FAST_GROUP),), False),
    Strategy("mts", True, "correction",
             (Force("none", FAST_GROUP), Force("mts", SLOW_GROUP)), True),
    Strategy("random", False, "random", (Force("random", FAST_GROUP),), False),
)}
STRATEGIES = tuple(TABLE)
GRID_STRATEGIES = tuple(name for name, strategy in TABLE.items() if strategy.uses_grid)
# Their grid when none is given: the cheapest exact to l = 3 with every odd degree, as the
# study's "2i" (36 rotations) is; this one has 24 (grids.cheapest_grid(3, inversion=True)).
DEFAULT_GRID = "Ti"


def strategy_of(name: str) -> Strategy:
    """The strategy ``name`` of ``STRATEGIES``; ValueError for another name."""
    if name not in TABLE:
        raise ValueError(f"unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}")
    return TABLE[name]


def check_strategy(strategy: str, grid: Optional[RotationGrid]) -> None:
    """ValueError for an unknown strategy, a grid missing for full / mts, or a grid given to
    none / random (which evaluate no grid); TypeError for a grid that is not a RotationGrid."""
    uses_grid = strategy_of(strategy).uses_grid
    if grid is not None and not isinstance(grid, RotationGrid):
        raise TypeError(f"grid must be a RotationGrid, got {grid!r}: parse a grid spec with "
                        "omm_symbreak.grids.parse_grid")
    if uses_grid and grid is None:
        raise ValueError(f"strategy {strategy} needs a rotation grid")
    if not uses_grid and grid is not None and grid.spec != "none":
        raise ValueError(f"strategy {strategy} evaluates no grid (got {grid.spec}): a grid "
                         f"applies to strategies {' and '.join(GRID_STRATEGIES)}")


def grid_of_force(force: Force, grid: Optional[RotationGrid]) -> Optional[RotationGrid]:
    """The grid of ``force``'s module: the strategy's ``grid`` where that module evaluates one,
    else None."""
    return grid if strategy_of(force.module).uses_grid else None


def integrator_groups(strategy: str, mts_stride: int) -> Optional[List[Tuple[int, int]]]:
    """The (force group, substeps) of OpenMM's MTS integrators for ``strategy``: the slow group
    once per outer step and the fast one ``mts_stride`` times; None for a strategy that runs
    with one time step."""
    if not strategy_of(strategy).multiple_time_step:
        return None
    return [(SLOW_GROUP, 1), (FAST_GROUP, mts_stride)]
