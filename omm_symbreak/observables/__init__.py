"""Observables, one function per quantity: arrays in, arrays out, units documented.

Units follow OpenMM: positions nm, velocities nm/ps, masses amu (g/mol), forces kJ/mol/nm,
time ps. Angular momentum is then in amu nm^2/ps, a torque in kJ/mol (= amu nm^2/ps^2).

Grouped by kind, one module each: ``mechanics`` (centre of mass, angular momentum, torque),
``statistics`` (block averages and errors, correlation times, statistics of a run's
diagnostics), ``orientation`` (molecular directions and their distribution), ``structure``
(pair distributions), ``dynamics`` (diffusion, reorientation) and ``spectra``. Every public
name of the modules is also an attribute of this package, imported on first use: importing the
package or ``mechanics`` alone does not import mdtraj.

Trajectory observables take an ``mdtraj.Trajectory`` (F frames, N atoms, M molecules). Those
that need molecules need water as residues HOH with atoms O, H1, H2 in that order. Statistical
errors are standard errors over non-overlapping blocks of frames (``block_average``): every
observable with a time axis returns its mean and that error.
"""

import importlib

_MODULE_EXPORTS = {
    "mechanics": ("center_of_mass", "angular_momentum", "torque"),
    "statistics": ("block_average", "statistical_inefficiency", "integrated_correlation_time",
                   "angular_momentum_statistics", "torque_statistics"),
    "orientation": ("water_atom_indices", "molecular_direction", "orientation_anisotropy",
                    "anisotropy_between_blocks", "orientation_correlation_time",
                    "isotropic_anisotropy_baseline", "weighted_orientation_anisotropy",
                    "orientation_density", "orientational_free_energy"),
    "structure": ("radial_distribution_oo", "first_peak", "first_peak_oo",
                  "orientation_correlations"),
    "dynamics": ("YEH_HUMMER_XI", "unwrapped_positions", "mean_square_displacement",
                 "diffusion_coefficient", "msd_exponent", "yeh_hummer_correction",
                 "orientation_autocorrelation"),
    "spectra": ("power_spectrum",),
}
_MODULE_OF = {name: module for module, names in _MODULE_EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    """A public name of a submodule, imported on first access (PEP 562)."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted({*globals(), *__all__})
