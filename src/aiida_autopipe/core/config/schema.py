"""The two tiers of the configuration: what a user may write, and the full config every module reads.

The full config (`FullConfig`) has every key filled; the user tier (`UserConfig`) is the same tree with every
key optional, generated from it so the two can never drift apart. Unknown keys are errors in both tiers: a
typo must never be silently ignored.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]

StructureType = Literal["alloy", "molecule", "ionic", "covalent"]
Magnetism = Literal["none", "ferromagnetic", "antiferromagnetic"]
AutoInt = Literal["auto"] | PositiveInt


class Section(BaseModel):
    """A config section: unknown keys are rejected, values are validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SystemConfig(Section):
    """What is being modelled."""

    elements: list[str] = Field(description="Chemical symbols, sorted as given by the user.")
    composition: dict[str, NonNegativeFloat] = Field(
        description="Atomic fractions per element, normalised to sum to 1."
    )
    structure_file: str | None = Field(
        description="CIF, POSCAR or extxyz file that replaces the composition; absolute path once expanded."
    )
    structure_type: StructureType = Field(description="Bonding class that selects the seed generators.")
    melting_point_guess: PositiveFloat = Field(description="Estimated melting point in K.")
    generation: dict[str, Any] = Field(
        description="Structure generator knobs: SQS and crystal cell sizes, strains, rattles, random cells."
    )


class ActiveLearningConfig(Section):
    """How the on-the-fly learning loop runs and when it stops."""

    strategy: Literal["on_the_fly_md", "on_the_fly_md_kmc"]
    surrogate_model: str = Field(
        description="Universal potential for exploration: 'mace_mp', 'chgnet' or a path."
    )
    max_generations: PositiveInt
    converged_generations: PositiveInt = Field(
        description="Generations in a row without an uncertain event before the loop stops."
    )
    uncertainty_threshold: str | PositiveFloat = Field(
        description="'dynamic_<P>percentile' (P in 95..99) of gamma over held-out labelled frames, "
        "or a fixed gamma."
    )
    md_steps_per_generation: PositiveInt


class SimulationConfig(Section):
    """Thermodynamic conditions explored and simulated."""

    temperature: list[PositiveFloat] = Field(description="[T_min, T_max] in K.")
    temperature_steps: list[PositiveFloat] = Field(description="Temperatures in K at which MD runs.")
    pressure: list[float] = Field(description="Pressures in GPa at which NPT exploration runs.")
    timestep_fs: PositiveFloat = Field(description="MD time step in fs.")
    md_engine: Literal["ase", "lammps"] = Field(
        description="On-the-fly MD engine: ASE with pyace, or LAMMPS with pair_style pace/extrapolation."
    )
    active_learning: ActiveLearningConfig


class ExplorationConfig(Section):
    """Surrogate exploration and DIRECT selection (Module B)."""

    surrogate_md_steps: PositiveInt = Field(
        description="Surrogate MD steps per seed structure and temperature."
    )
    max_seed_structures: PositiveInt = Field(
        description="Seeds explored by surrogate MD, drawn across methods."
    )
    liquid_seeds: bool = Field(
        description="Also explore from liquid snapshots (melt-quench's melt), for ranges near melting."
    )
    initial_label_budget: PositiveInt = Field(description="Frames picked by DIRECT for the first DFT labels.")
    descriptor: Literal["soap", "ace"]
    reuse_datasets: bool = Field(
        description="Start from registered datasets of these elements or a subset (same DFT settings)."
    )


class DftComputeConfig(Section):
    """pw.x settings for the labels (Module C). Cutoffs and degauss are in Ry, as pw.x reads them."""

    code: str = Field(description="pw.x executable: a name found on PATH or an absolute path.")
    command: list[str] = Field(
        description="Full launch command, one argument per item; never run by a shell."
    )
    mpi_ranks: PositiveInt
    pseudo_family: str = Field(description="aiida-pseudo family label.")
    pseudo_dir: str | None = Field(description="A folder of your own UPF files, installed as a family.")
    pseudo_family_source: str = Field(description="Where the family came from.")
    ecutwfc: PositiveFloat = Field(description="Wave-function cutoff in Ry.")
    ecutrho: PositiveFloat = Field(description="Charge-density cutoff in Ry.")
    kpoints_density: PositiveFloat = Field(description="Maximum k-point spacing in 1/Angstrom.")
    smearing: Literal["mv", "cold", "mp", "gaussian", "fd"]
    degauss: PositiveFloat = Field(description="Smearing width in Ry.")
    magnetism: Magnetism
    soc_enabled: bool
    recovery_strategy: Literal["aggressive", "default"]
    conv_thr_per_atom: PositiveFloat = Field(description="SCF threshold per atom in Ry.")
    max_concurrent: PositiveInt = Field(description="Most pw.x runs in flight at once.")
    max_walltime_seconds: PositiveInt
    electron_maxstep: PositiveInt = Field(description="SCF iterations per pw.x run.")
    max_iterations: PositiveInt = Field(description="pw.x runs per structure, recovery restarts included.")


class LossWeights(Section):
    """Relative weights of energy, force and stress errors in the fit."""

    energy: NonNegativeFloat
    force: NonNegativeFloat
    stress: NonNegativeFloat


class MlipTrainingConfig(Section):
    """ACE fitting with pacemaker (Module D)."""

    model: Literal["ace"]
    r_cut: PositiveFloat = Field(description="Radial cutoff in Angstrom.")
    delta_learning: bool
    base_potential: Literal["lj_auto"]
    loss_weights: LossWeights
    body_order: AutoInt
    polynomial_degree: AutoInt
    radial_basis_size: AutoInt
    max_iterations: PositiveInt
    test_fraction: Annotated[float, Field(ge=0, lt=1)]


class JobResources(Section):
    """What one Code's jobs ask the scheduler for (AiiDA's `metadata.options`)."""

    mpi_ranks: PositiveInt = Field(description="MPI processes per job.")
    omp_threads: PositiveInt = Field(description="OpenMP / torch threads per MPI process.")
    walltime_seconds: PositiveInt = Field(description="Wall-time limit per job in s.")
    gpus: NonNegativeInt = Field(
        description="GPUs per job (Slurm --gres=gpu:N); > 0 lets the runner use CUDA when torch sees one."
    )


class ResourcesConfig(Section):
    """Where the jobs run and what each Code asks the scheduler for."""

    computer: str = Field(
        description="AiiDA Computer holding the Codes: 'localhost', 'slurm-localhost' or your cluster's."
    )
    queue: str | None = Field(description="Scheduler queue / Slurm partition; none: the default one.")
    account: str | None = Field(description="Scheduler account to charge; none: the user's default.")
    pw: JobResources
    surrogate: JobResources
    pacemaker: JobResources
    otf_md: JobResources


class AiidaConfig(Section):
    """Which AiiDA profile records the run."""

    profile: str
    storage: Literal["sqlite", "postgres"]


class Decision(Section):
    """One filled value and why: the audit trail of the heuristics, fallbacks included."""

    key: str
    value: Any
    source: Literal["user", "protocol", "heuristic", "fallback", "environment"]
    reason: str


class FullConfig(Section):
    """Every key the pipeline reads; written out as exec_config_dump.yaml."""

    system: SystemConfig
    simulation: SimulationConfig
    exploration: ExplorationConfig
    dft_compute: DftComputeConfig
    mlip_training: MlipTrainingConfig
    resources: ResourcesConfig
    aiida: AiidaConfig
    decisions: list[Decision]


def _optional(annotation: Any, metadata: list[Any]) -> Any:
    """The user-tier type of a full-tier field: sections become partial sections, constraints are kept."""
    if isinstance(annotation, type) and issubclass(annotation, Section):
        return partial_model(annotation) | None
    if metadata:
        annotation = Annotated[(annotation, *metadata)]
    return annotation | None


@cache
def partial_model(model: type[Section]) -> type[Section]:
    """`model` with every field optional and defaulting to None, recursively, keeping all constraints."""
    fields = {
        name: (_optional(field.annotation, field.metadata), Field(None, description=field.description))
        for name, field in model.model_fields.items()
    }
    return create_model(f"User{model.__name__}", __base__=Section, __doc__=model.__doc__, **fields)


class UserSystem(partial_model(SystemConfig)):
    """The user may give the composition as a formula string or a mapping of amounts."""

    composition: str | dict[str, float] | None = None  # amounts are checked by parse_composition


class UserDftCompute(partial_model(DftComputeConfig)):
    """The user may give the launch command as one string; it is split and checked, never run by a shell."""

    command: str | list[str] | None = None


class UserConfig(partial_model(FullConfig)):
    """What a user may write in input.yaml: the full tree, every key optional but `system`."""

    system: UserSystem
    dft_compute: UserDftCompute | None = None
    decisions: None = Field(None, exclude=True)
