"""Reference (teacher) potentials in OpenMM: q-TIP4P/F water."""
from omm_symbreak.reference.qtip4pf import (
    add_virtual_sites,
    create_qtip4pf_system,
    qtip4pf_forcefield_parameters,
)

__all__ = ["add_virtual_sites", "create_qtip4pf_system", "qtip4pf_forcefield_parameters"]
