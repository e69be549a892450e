"""Relax the buffer of an embedded cluster with any ASE calculator (the surrogate), the core held fixed.

The core keeps the geometry the ACE potential was uncertain about, which is what labelling must see;
the buffer (and its H caps or counter-ions) relaxes away the strain of the cut, so the core's DFT forces
are not polluted by unphysical surface forces.
"""

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms
from ase.optimize import FIRE

from aiida_autopipe.core.embedding.embed import REGION_ARRAY


@dataclass
class BufferRelaxation:
    atoms: Atoms
    converged: bool
    max_displacement: float  # Angstrom, over buffer and caps
    energy_change: float  # eV


def relax_buffer(embedded: Atoms, calculator, fmax: float = 0.05, steps: int = 200) -> BufferRelaxation:
    """A copy of `embedded` with every non-core atom relaxed (FIRE) and the core fixed by FixAtoms."""
    relaxed = embedded.copy()
    relaxed.set_constraint(FixAtoms(mask=relaxed.arrays[REGION_ARRAY] == "core"))
    relaxed.calc = calculator
    start_energy = relaxed.get_potential_energy()
    converged = FIRE(relaxed, logfile=None).run(fmax=fmax, steps=steps)
    moved = np.linalg.norm(relaxed.positions - embedded.positions, axis=1)
    return BufferRelaxation(
        relaxed, bool(converged), float(moved.max()), float(relaxed.get_potential_energy() - start_energy)
    )
