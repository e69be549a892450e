"""The structure generator's knobs and their defaults, importable without the generators' libraries (icet):
the config expansion records them in `system.generation`."""

from collections.abc import Mapping

from aiida_autopipe.core.errors import InputError

#: The `generation` settings and their defaults (strains dimensionless, amplitudes in Angstrom).
GENERATION_DEFAULTS = {
    "seed": 0,
    "sqs_min_atoms": 32,
    "sqs_max_atoms": 96,
    "sqs_steps": None,  # None: 30 annealing steps per atom
    "off_stoichiometry": 0.03,  # atomic fraction moved between each pair of elements; 0 disables
    "volume_strains": (-0.06, -0.03, 0.03, 0.06),  # dV/V
    "shear_strains": (0.02,),  # tensor component on yz, xz, xy
    "n_random": 8,
    "random_max_atoms": 24,
    "rattle_amplitudes": (0.1, 0.2),  # covalent crystals
    "n_rattle": 4,  # per amplitude
    "molecule_rattle_amplitude": 0.05,
    "min_crystal_atoms": 32,
    # Surrogate steps, run by the `autopipe-surrogate` runner (StructureGeneratorWorkChain with a surrogate):
    "melt_temperature": None,  # K; None: melt_quench.melt_temperature (1.5 x the melting point)
    "quench_temperature": 300.0,
    "melt_steps": 1000,
    "quench_steps": 1000,  # quench rate (T_melt - T_quench) / (quench_steps x md_timestep)
    "md_timestep": 2.0,  # fs
    "n_melt_quench": 2,  # independent quenches per covalent parent
    "n_melt_snapshots": 1,  # liquid snapshots kept per quench
    "melt_relax_steps": 100,  # FIRE steps on each quenched structure; 0: keep it as quenched
    "normal_mode_temperatures": (100.0, 300.0, 600.0),
    "n_normal_mode": 4,  # samples per temperature
    "normal_mode_cutoff": None,  # Angstrom; None: dense Hessian, else compressed (thousands of atoms)
}


def generation_settings(generation: Mapping | None) -> dict:
    settings = dict(GENERATION_DEFAULTS)
    unknown = set(generation or {}) - set(settings)
    if unknown:
        raise InputError(
            "system.generation", f"unknown keys {sorted(unknown)}", f"use keys among {sorted(settings)}"
        )
    settings.update(generation or {})
    return settings
