"""Expand a user's input.yaml into the full config, recording every decision.

`expand_config` is pure: the user's mapping plus the facts about the machine (`Environment`) in, a validated
`FullConfig` out. Nothing is written anywhere, so bad input fails before a profile is touched.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from aiida_autopipe.core.classify import classify_bonding
from aiida_autopipe.core.config import heuristics
from aiida_autopipe.core.config.protocols import protocol_values
from aiida_autopipe.core.config.schema import Decision, FullConfig, UserConfig
from aiida_autopipe.core.errors import InputError
from aiida_autopipe.core.structures.settings import generation_settings
from aiida_autopipe.core.surrogate import check_surrogate_request
from aiida_autopipe.core.threshold import parse_threshold_setting

#: Characters a shell would interpret; a launch command containing them is refused, never quoted around.
_SHELL_METACHARACTERS = re.compile(r"[;&|`$<>(){}\\\n'\"*?!#~]")


@dataclass(frozen=True)
class PseudoFamilyFacts:
    """The pseudopotential family chosen for this machine, and why."""

    label: str
    source: str
    reason: str
    cutoffs_ry: dict[str, tuple[float, float]]

    def cutoffs_for(self, elements: list[str]) -> tuple[float, float]:
        """(ecutwfc, ecutrho) in Ry: the maximum over the elements, so every element is converged."""
        missing = [symbol for symbol in elements if symbol not in self.cutoffs_ry]
        if missing:
            raise InputError(
                "dft_compute.pseudo_family",
                f"family '{self.label}' has no pseudopotential for {', '.join(missing)}",
                "install a family covering every element (e.g. `aiida-pseudo install sssp`) and name it here",
            )
        return (
            max(self.cutoffs_ry[symbol][0] for symbol in elements),
            max(self.cutoffs_ry[symbol][1] for symbol in elements),
        )


@dataclass(frozen=True)
class SurrogateFacts:
    """The universal potential that exploration really uses, and why."""

    requested: str
    resolved: str
    reason: str


@dataclass(frozen=True)
class Environment:
    """What the heuristics need to know about the machine; gathered by `engines.environment`."""

    physical_cores: int
    is_root: bool
    pw_executable: str | None
    pseudo_family: PseudoFamilyFacts | None
    surrogate: SurrogateFacts | None = None
    profile_name: str = "autopipe"
    storage: str = "sqlite"
    notes: dict[str, str] = field(default_factory=dict)
    cuda_devices: int = 0
    lammps_executable: str | None = None
    lammps_reason: str = "not looked for"


def environment_to_dict(environment: Environment) -> dict[str, Any]:
    """A JSON-able copy, so the facts can be an input node of the expansion calcfunction."""
    return asdict(environment)


def environment_from_dict(data: dict[str, Any]) -> Environment:
    data = dict(data)
    if data.get("pseudo_family") is not None:
        family = dict(data["pseudo_family"])
        family["cutoffs_ry"] = {symbol: tuple(pair) for symbol, pair in family["cutoffs_ry"].items()}
        data["pseudo_family"] = PseudoFamilyFacts(**family)
    if data.get("surrogate") is not None:
        data["surrogate"] = SurrogateFacts(**data["surrogate"])
    return Environment(**data)


def load_user_config(path: str | os.PathLike) -> tuple[dict[str, Any], Path]:
    """Read input.yaml into a mapping; structure-file paths are later resolved relative to its folder."""
    path = Path(path)
    if not path.is_file():
        raise InputError("input", f"file '{path}' does not exist", "give the path of your input.yaml")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InputError("input", f"'{path}' is not valid YAML{where}", "fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise InputError("input", f"'{path}' does not hold a mapping of sections", "start with 'system:'")
    return data, path.parent.resolve()


class Expansion:
    """Fills the full config section by section, remembering where each value came from."""

    def __init__(
        self,
        user: UserConfig,
        environment: Environment,
        base_dir: Path,
        atoms=None,
        protocol: str | None = None,
    ):
        self.user = user
        self.protocol = protocol
        self.protocol_values = protocol_values(protocol)
        self.environment = environment
        self.base_dir = base_dir
        self.atoms = atoms
        self.decisions: list[Decision] = []

    def choose(self, key: str, given: Any, default: Any, reason: str, source: str = "heuristic") -> Any:
        """The user's value if given, else the protocol's, else `default`; the choice is recorded."""
        if given is None and key in self.protocol_values:
            reason = f"set by the '{self.protocol}' protocol (otherwise {default!r}: {reason})"
            default, source = self.protocol_values[key], "protocol"
        if given is not None:
            value = given.model_dump() if isinstance(given, BaseModel) else given
            self.decisions.append(Decision(key=key, value=value, source="user", reason="given in input.yaml"))
            return given
        value = default.model_dump() if isinstance(default, BaseModel) else default
        self.decisions.append(Decision(key=key, value=value, source=source, reason=reason))
        return default

    def system(self) -> dict[str, Any]:
        given = self.user.system
        structure_file = None
        atoms = None
        if given.structure_file is not None:
            if self.atoms is None:
                structure_file = resolve_structure_file(given.structure_file, self.base_dir)
                atoms = read_structure(structure_file)
            else:
                structure_file, atoms = Path(given.structure_file), self.atoms
            composition = heuristics.parse_composition(
                {s: float(n) for s, n in zip(*_unique_counts(atoms.get_chemical_symbols()), strict=True)}
            )
            if given.composition is not None:
                raise InputError(
                    "system.composition",
                    "both a composition and a structure_file are given",
                    "remove one: the structure file fixes the composition",
                )
            self.choose("system.composition", None, composition, f"atomic fractions of {structure_file.name}")
        elif given.composition is not None:
            composition = self.choose(
                "system.composition", heuristics.parse_composition(given.composition), None, ""
            )
        elif given.elements:
            composition = {symbol: 1.0 / len(given.elements) for symbol in given.elements}
            self.choose(
                "system.composition", None, composition, "no composition given: equiatomic in the elements"
            )
        else:
            raise InputError(
                "system.elements", "no elements, composition or structure_file given", "list the elements"
            )
        elements = self._elements(given.elements, composition)
        classification = classify_bonding(atoms if atoms is not None else composition)
        structure_type = self.choose(
            "system.structure_type",
            given.structure_type,
            classification.structure_type,
            classification.reason,
        )
        melting = self.choose(
            "system.melting_point_guess",
            given.melting_point_guess,
            round(heuristics.melting_point_guess(composition, structure_type), 1),
            heuristics.melting_point_guess.__doc__.splitlines()[0],
        )
        generation = self.choose(
            "system.generation",
            None,
            {  # lists, not tuples: the config is stored and dumped as JSON and YAML
                key: list(value) if isinstance(value, tuple) else value
                for key, value in generation_settings(given.generation).items()
            },
            "your keys over the generator's defaults" if given.generation else "the generator's defaults",
            source="user" if given.generation else "heuristic",
        )
        return {
            "elements": elements,
            "composition": composition,
            "structure_file": str(structure_file) if structure_file else None,
            "structure_type": structure_type,
            "melting_point_guess": melting,
            "generation": generation,
        }

    def _elements(self, given: list[str] | None, composition: dict[str, float]) -> list[str]:
        if given is None:
            return self.choose(
                "system.elements", None, sorted(composition), "the elements of the composition"
            )
        if not given:
            raise InputError(
                "system.elements", "the element list is empty", "list at least one element, e.g. [Si]"
            )
        for symbol in given:
            heuristics.check_element(symbol)
        if len(set(given)) != len(given):
            raise InputError("system.elements", f"{given} lists an element twice", "list each element once")
        if set(given) != set(composition):
            raise InputError(
                "system.elements",
                f"{sorted(given)} do not match the composition's elements {sorted(composition)}",
                "make the element list and the composition name the same elements",
            )
        return self.choose("system.elements", list(given), None, "")

    def simulation(self, system: dict[str, Any]) -> dict[str, Any]:
        given = self.user.simulation or _empty("simulation")
        temperature = given.temperature
        if temperature is None:
            top = round(0.8 * system["melting_point_guess"], -1)
            temperature = self.choose(
                "simulation.temperature",
                None,
                [300.0, max(300.0, top)],
                "300 K to 80% of the melting point guess",
            )
        else:
            if len(temperature) not in (1, 2) or temperature != sorted(temperature):
                raise InputError(
                    "simulation.temperature",
                    f"{temperature} is not [T_min, T_max] in increasing order",
                    "write [T_min, T_max] in K with T_min <= T_max, e.g. [300, 1000]",
                )
            self.choose("simulation.temperature", temperature, None, "")
        steps = self.choose(
            "simulation.temperature_steps",
            given.temperature_steps,
            heuristics.temperature_steps(temperature),
            heuristics.temperature_steps.__doc__.splitlines()[0],
        )
        pressure = self.choose("simulation.pressure", given.pressure, [0.0], "ambient pressure only, in GPa")
        timestep = self.choose(
            "simulation.timestep_fs",
            given.timestep_fs,
            heuristics.timestep_fs(system["elements"]),
            heuristics.timestep_fs.__doc__.splitlines()[0],
        )
        active = given.active_learning or _empty("simulation.active_learning")
        if active.surrogate_model is not None:
            check_surrogate_request(active.surrogate_model, "simulation.active_learning.surrogate_model")
        if active.uncertainty_threshold is not None:
            _check_threshold_setting(active.uncertainty_threshold)
        surrogate = self.environment.surrogate
        requested = active.surrogate_model or "mace_mp"
        if surrogate is not None and surrogate.requested == requested:
            surrogate_model = self.choose(
                "simulation.active_learning.surrogate_model",
                None,
                surrogate.resolved,
                surrogate.reason,
                source="fallback" if surrogate.resolved != requested else "environment",
            )
        else:
            surrogate_model = self.choose(
                "simulation.active_learning.surrogate_model",
                active.surrogate_model,
                "mace_mp",
                "MACE-MP-0 is the default universal surrogate; resolved when exploration starts",
            )
        return {
            "temperature": temperature,
            "temperature_steps": steps,
            "pressure": pressure,
            "timestep_fs": timestep,
            "md_engine": self.choose(
                "simulation.md_engine",
                given.md_engine,
                "lammps" if self.environment.lammps_executable else "ase",
                f"{self.environment.lammps_reason}: "
                + (
                    "LAMMPS runs the MD (halting frames are then cut out without the surrogate buffer "
                    "relaxation)"
                    if self.environment.lammps_executable
                    else "ASE with pyace runs the MD"
                ),
                source="environment",
            ),
            "active_learning": {
                "strategy": self.choose(
                    "simulation.active_learning.strategy", active.strategy, "on_the_fly_md", "on-the-fly MD"
                ),
                "surrogate_model": surrogate_model,
                "max_generations": self.choose(
                    "simulation.active_learning.max_generations", active.max_generations, 10, "default budget"
                ),
                "converged_generations": self.choose(
                    "simulation.active_learning.converged_generations",
                    active.converged_generations,
                    2,
                    "two quiet generations in a row rule out a lucky one",
                ),
                "uncertainty_threshold": self.choose(
                    "simulation.active_learning.uncertainty_threshold",
                    active.uncertainty_threshold,
                    "dynamic_95percentile",
                    "lenient while the training set is small, stricter as it matures",
                ),
                "md_steps_per_generation": self.choose(
                    "simulation.active_learning.md_steps_per_generation",
                    active.md_steps_per_generation,
                    2000,
                    "2 ps at 1 fs per temperature step and generation",
                ),
            },
        }

    def exploration(self, system: dict[str, Any], simulation: dict[str, Any]) -> dict[str, Any]:
        given = self.user.exploration or _empty("exploration")
        return {
            "surrogate_md_steps": self.choose(
                "exploration.surrogate_md_steps",
                given.surrogate_md_steps,
                heuristics.surrogate_md_steps(system["structure_type"]),
                heuristics.surrogate_md_steps.__doc__.splitlines()[0],
            ),
            "max_seed_structures": self.choose(
                "exploration.max_seed_structures",
                given.max_seed_structures,
                heuristics.max_seed_structures(system["structure_type"]),
                heuristics.max_seed_structures.__doc__.splitlines()[0],
            ),
            "liquid_seeds": self._liquid_seeds(given.liquid_seeds, system, simulation),
            "initial_label_budget": self.choose(
                "exploration.initial_label_budget",
                given.initial_label_budget,
                heuristics.initial_label_budget(len(system["elements"])),
                heuristics.initial_label_budget.__doc__.splitlines()[0],
            ),
            "descriptor": self.choose(
                "exploration.descriptor", given.descriptor, "soap", "averaged SOAP: robust for any chemistry"
            ),
            "reuse_datasets": self.choose(
                "exploration.reuse_datasets",
                given.reuse_datasets,
                True,
                "labels already in the profile (made here or imported) for these elements or a subset, with "
                "the same DFT settings, are reused: only the compositions they lack get new pw.x labels",
            ),
        }

    def _liquid_seeds(self, given: bool | None, system: dict[str, Any], simulation: dict[str, Any]) -> bool:
        hottest, melting = max(simulation["temperature"]), system["melting_point_guess"]
        liquid = heuristics.liquid_seeds(simulation["temperature"], melting)
        relation = f"{'reaches' if liquid else 'stays below'} {heuristics.LIQUID_SEED_FRACTION:.0%}"
        return self.choose(
            "exploration.liquid_seeds",
            given,
            liquid,
            f"the hottest simulated temperature ({hottest} K) {relation} of the melting point guess "
            f"({melting} K): liquid snapshots are {'' if liquid else 'not '}explored",
        )

    def dft_compute(self, system: dict[str, Any]) -> dict[str, Any]:
        given = self.user.dft_compute or _empty("dft_compute")
        env = self.environment
        code = given.code or env.pw_executable
        if code is None:
            raise InputError(
                "dft_compute.code",
                "pw.x was not found on PATH",
                "run `mlip-pipe setup` (it installs Quantum ESPRESSO) or give the path of pw.x",
            )
        self.choose("dft_compute.code", given.code, code, "pw.x found on PATH", source="environment")
        ranks = self.choose(
            "dft_compute.mpi_ranks",
            given.mpi_ranks,
            heuristics.mpi_ranks(env.physical_cores),
            f"{env.physical_cores} physical cores detected; one rank each",
            source="environment",
        )
        if given.command is not None:
            command = validate_command(given.command)
            self.choose("dft_compute.command", command, None, "")
        else:
            command = self.choose(
                "dft_compute.command",
                None,
                heuristics.launch_command(code, ranks, env.is_root),
                "mpirun with one rank per core"
                + (", --allow-run-as-root since running as root" if env.is_root else ""),
            )
        family = env.pseudo_family
        if given.pseudo_family is not None and (family is None or family.label != given.pseudo_family):
            raise InputError(
                "dft_compute.pseudo_family",
                f"family '{given.pseudo_family}' is not installed in the AiiDA profile",
                "install it with aiida-pseudo, or leave the key out to use the set-up family",
            )
        if family is None:
            raise InputError(
                "dft_compute.pseudo_family",
                "no pseudopotential family is installed",
                "run `mlip-pipe setup` first (it installs SSSP or an offline family)",
            )
        self.choose(
            "dft_compute.pseudo_family", given.pseudo_family, family.label, family.reason, "environment"
        )
        pseudo_dir = None
        if given.pseudo_dir is not None:
            pseudo_dir = str(resolve_directory(given.pseudo_dir, self.base_dir, "dft_compute.pseudo_dir"))
            self.choose("dft_compute.pseudo_dir", pseudo_dir, None, "")
        ecutwfc, ecutrho = family.cutoffs_for(system["elements"])
        ecutwfc = self.choose(
            "dft_compute.ecutwfc",
            given.ecutwfc,
            ecutwfc,
            f"maximum over {system['elements']} in {family.label}",
        )
        ecutrho = self.choose(
            "dft_compute.ecutrho",
            given.ecutrho,
            ecutrho,
            f"maximum over {system['elements']} in {family.label}",
        )
        if ecutrho < 4 * ecutwfc:
            raise InputError(
                "dft_compute.ecutrho", f"{ecutrho} Ry is below 4 x ecutwfc", "set ecutrho >= 4 * ecutwfc"
            )
        smearing, degauss = heuristics.smearing(system["structure_type"])
        reason_smearing = heuristics.smearing.__doc__.splitlines()[0]
        return {
            "code": code,
            "command": command,
            "mpi_ranks": ranks,
            "pseudo_family": family.label,
            "pseudo_dir": pseudo_dir,
            "pseudo_family_source": family.source,
            "ecutwfc": ecutwfc,
            "ecutrho": ecutrho,
            "kpoints_density": self.choose(
                "dft_compute.kpoints_density",
                given.kpoints_density,
                0.15,
                "0.15 1/A: converged forces for metals",
            ),
            "smearing": self.choose("dft_compute.smearing", given.smearing, smearing, reason_smearing),
            "degauss": self.choose("dft_compute.degauss", given.degauss, degauss, reason_smearing),
            "magnetism": self.choose(
                "dft_compute.magnetism",
                given.magnetism,
                heuristics.magnetism(system["elements"]),
                heuristics.magnetism.__doc__.splitlines()[0],
            ),
            "soc_enabled": self.choose(
                "dft_compute.soc_enabled", given.soc_enabled, False, "scalar-relativistic labels by default"
            ),
            "recovery_strategy": self.choose(
                "dft_compute.recovery_strategy",
                given.recovery_strategy,
                "aggressive",
                "no expert to rescue SCF",
            ),
            "conv_thr_per_atom": self.choose(
                "dft_compute.conv_thr_per_atom",
                given.conv_thr_per_atom,
                1e-10,
                "tight SCF: forces are labels",
            ),
            "max_concurrent": self.choose(
                "dft_compute.max_concurrent",
                given.max_concurrent,
                heuristics.max_concurrent_labels(env.physical_cores, ranks),
                heuristics.max_concurrent_labels.__doc__.splitlines()[0],
            ),
            "max_walltime_seconds": self.choose(
                "dft_compute.max_walltime_seconds",
                given.max_walltime_seconds,
                3600,
                "one hour per single point",
            ),
            "electron_maxstep": self.choose(
                "dft_compute.electron_maxstep",
                given.electron_maxstep,
                100,
                "pw.x's default; recovery handles more",
            ),
            "max_iterations": self.choose(
                "dft_compute.max_iterations",
                given.max_iterations,
                8,
                "room for every step of the recovery chain, from the first run to the cg restart",
            ),
        }

    def mlip_training(self, system: dict[str, Any]) -> dict[str, Any]:
        given = self.user.mlip_training or _empty("mlip_training")
        weights = given.loss_weights
        loss_weights = {
            "energy": 1.0 if weights is None or weights.energy is None else weights.energy,
            "force": 100.0 if weights is None or weights.force is None else weights.force,
            "stress": 10.0 if weights is None or weights.stress is None else weights.stress,
        }
        self.choose(
            "mlip_training.loss_weights",
            None,
            loss_weights,
            "E:F:S = 1:100:10 unless given",
            source="user" if weights is not None else "heuristic",
        )
        return {
            "model": self.choose("mlip_training.model", given.model, "ace", "ACE with pacemaker"),
            "r_cut": self.choose(
                "mlip_training.r_cut",
                given.r_cut,
                heuristics.r_cut(system["elements"]),
                heuristics.r_cut.__doc__.splitlines()[0],
            ),
            "delta_learning": self.choose(
                "mlip_training.delta_learning", given.delta_learning, True, "physical short-range repulsion"
            ),
            "base_potential": self.choose(
                "mlip_training.base_potential", given.base_potential, "lj_auto", "LJ + ZBL from atomic data"
            ),
            "loss_weights": loss_weights,
            "body_order": self.choose(
                "mlip_training.body_order", given.body_order, "auto", "chosen by the hyperparameter search"
            ),
            "polynomial_degree": self.choose(
                "mlip_training.polynomial_degree", given.polynomial_degree, "auto", "chosen by the search"
            ),
            "radial_basis_size": self.choose(
                "mlip_training.radial_basis_size", given.radial_basis_size, "auto", "chosen by the search"
            ),
            "max_iterations": self.choose(
                "mlip_training.max_iterations", given.max_iterations, 500, "BFGS iterations per fit"
            ),
            "test_fraction": self.choose(
                "mlip_training.test_fraction", given.test_fraction, 0.1, "10% held out for test errors"
            ),
        }

    def resources(self, dft_compute: dict[str, Any]) -> dict[str, Any]:
        given = self.user.resources or _empty("resources")
        cores = self.environment.physical_cores
        gpus = heuristics.runner_gpus(self.environment.cuda_devices)
        seen = self.environment.cuda_devices
        gpu_reason = f"{heuristics.runner_gpus.__doc__.splitlines()[0]} ({seen} seen)"
        threads_reason = heuristics.runner_threads.__doc__.splitlines()[0]
        walltime_reason = heuristics.job_walltime_seconds.__doc__.splitlines()[0]
        defaults = {
            "pw": {
                "mpi_ranks": (dft_compute["mpi_ranks"], "dft_compute.mpi_ranks"),
                "omp_threads": (1, "pure MPI: pw.x parallelises plane waves and k-points over ranks"),
                "gpus": (0, "Debian's pw.x has no GPU build"),
            },
            "surrogate": {"gpus": (gpus, gpu_reason)},
            "pacemaker": {"gpus": (0, "pacemaker's pyace evaluator runs on CPUs only")},
            "otf_md": {"gpus": (gpus, gpu_reason)},
        }
        result: dict[str, Any] = {
            "computer": self.choose(
                "resources.computer",
                given.computer,
                "localhost",
                "the Computer `mlip-pipe setup` registers; `mlip-pipe setup --slurm` adds slurm-localhost",
            ),
            "queue": self.choose("resources.queue", given.queue, None, "the scheduler's default queue"),
            "account": self.choose("resources.account", given.account, None, "the user's default account"),
        }
        for role, role_defaults in defaults.items():
            job = getattr(given, role) or _empty(f"resources.{role}")
            base = {
                "mpi_ranks": (1, "one process: the runner is not MPI-parallel"),
                "omp_threads": (heuristics.runner_threads(cores), f"{threads_reason} ({cores} cores)"),
                "walltime_seconds": (
                    heuristics.job_walltime_seconds(role, dft_compute["max_walltime_seconds"]),
                    walltime_reason,
                ),
                **role_defaults,
            }
            result[role] = {
                key: self.choose(f"resources.{role}.{key}", getattr(job, key), value, reason)
                for key, (value, reason) in base.items()
            }
        return result

    def aiida(self) -> dict[str, Any]:
        given = self.user.aiida or _empty("aiida")
        return {
            "profile": self.choose(
                "aiida.profile", given.profile, self.environment.profile_name, "the set-up profile"
            ),
            "storage": self.choose(
                "aiida.storage", given.storage, self.environment.storage, "the set-up profile"
            ),
        }


def expand_config(
    user_data: dict[str, Any],
    environment: Environment,
    base_dir: Path | None = None,
    atoms=None,
    protocol: str | None = None,
) -> FullConfig:
    """The full config for `user_data` (a parsed input.yaml) on a machine described by `environment`.

    `atoms`, when given, is the already-read structure of `system.structure_file` (a stored node's copy);
    `protocol`'s values replace the heuristics' where the user gave none.
    """
    user = validate_user_config(user_data)
    expansion = Expansion(user, environment, base_dir or Path.cwd(), atoms, protocol)
    system = expansion.system()
    dft_compute = expansion.dft_compute(system)
    simulation = expansion.simulation(system)
    sections = {
        "system": system,
        "simulation": simulation,
        "exploration": expansion.exploration(system, simulation),
        "dft_compute": dft_compute,
        "mlip_training": expansion.mlip_training(system),
        "resources": expansion.resources(dft_compute),
        "aiida": expansion.aiida(),
    }
    for key, note in environment.notes.items():
        expansion.decisions.append(Decision(key=key, value=None, source="environment", reason=note))
    return FullConfig.model_validate({**sections, "decisions": expansion.decisions})


def check_user_config(user_data: dict[str, Any], base_dir: Path | None = None) -> None:
    """Every check that needs no machine facts: run before set-up so bad input never touches a profile."""
    user = validate_user_config(user_data)
    offline = Environment(physical_cores=1, is_root=False, pw_executable=None, pseudo_family=None)
    expansion = Expansion(user, offline, base_dir or Path.cwd())
    system = expansion.system()
    expansion.exploration(system, expansion.simulation(system))
    expansion.mlip_training(system)
    if user.dft_compute is not None and user.dft_compute.command is not None:
        validate_command(user.dft_compute.command)
    if user.dft_compute is not None and user.dft_compute.pseudo_dir is not None:
        resolve_directory(user.dft_compute.pseudo_dir, base_dir or Path.cwd(), "dft_compute.pseudo_dir")


def validate_user_config(user_data: dict[str, Any]) -> UserConfig:
    """The user's mapping validated against the user tier; the first problem becomes a one-line InputError."""
    try:
        return UserConfig.model_validate(user_data)
    except ValidationError as error:
        raise _as_input_error(error) from None


def _as_input_error(error: ValidationError) -> InputError:
    first = error.errors()[0]
    location = [str(part) for part in first["loc"] if not _is_type_tag(part)]
    field_name = ".".join(location) or "input"
    if first["type"] == "extra_forbidden":
        known = _known_keys(location[:-1])
        guess = difflib.get_close_matches(location[-1], known, n=1)
        fix = f"did you mean '{guess[0]}'?" if guess else f"known keys here: {', '.join(sorted(known))}"
        return InputError(field_name, "unknown key", fix)
    if first["type"] == "missing":
        return InputError(field_name, "is required", "add it to input.yaml")
    return InputError(
        field_name, f"{first['msg'].lower()} (got {first.get('input')!r})", "see docs: configuration"
    )


def _is_type_tag(part: Any) -> bool:
    return isinstance(part, str) and (
        "[" in part or part.startswith("constrained-") or part in {"str", "float"}
    )


def _known_keys(location: list[str]) -> list[str]:
    model: Any = UserConfig
    for part in location:
        if part.isdigit():
            continue
        annotation = model.model_fields[part].annotation
        model = next(
            arg for arg in getattr(annotation, "__args__", (annotation,)) if hasattr(arg, "model_fields")
        )
    return list(model.model_fields)


def _empty(section: str) -> Any:
    """A user section with nothing given, so every key falls to its heuristic."""
    model: Any = UserConfig
    for part in section.split("."):
        annotation = model.model_fields[part].annotation
        model = next(arg for arg in annotation.__args__ if hasattr(arg, "model_fields"))
    return model()


def _check_threshold_setting(setting: Any) -> None:
    """The threshold module's own parser, its errors named after the config key."""
    try:
        parse_threshold_setting(setting)
    except InputError as error:
        field = "simulation.active_learning.uncertainty_threshold"
        raise InputError(field, error.problem, error.fix) from None


def validate_command(command: str | list[str]) -> list[str]:
    """The launch command as an argument list; anything a shell would interpret is refused."""
    parts = shlex.split(command) if isinstance(command, str) else list(command)
    for part in parts:
        if not isinstance(part, str) or _SHELL_METACHARACTERS.search(part):
            raise InputError(
                "dft_compute.command",
                f"argument {part!r} contains shell metacharacters",
                "give plain arguments only, e.g. ['mpirun', '-np', '4', 'pw.x']",
            )
    if not parts:
        raise InputError("dft_compute.command", "is empty", "give the launch command, e.g. ['pw.x']")
    return parts


def resolve_structure_file(name: str, base_dir: Path) -> Path:
    """The structure file's absolute path, relative names taken from input.yaml's folder."""
    path = Path(name)
    path = path if path.is_absolute() else base_dir / path
    if not path.is_file():
        raise InputError(
            "system.structure_file", f"file '{path}' does not exist", "give a CIF, POSCAR or extxyz path"
        )
    return path


def resolve_directory(name: str, base_dir: Path, field_name: str) -> Path:
    """A folder's absolute path, relative names taken from input.yaml's folder."""
    path = Path(name)
    path = path if path.is_absolute() else base_dir / path
    if not path.is_dir():
        raise InputError(
            field_name, f"folder '{path}' does not exist", "give the folder that holds the files"
        )
    return path


def read_structure(path: Path):
    """The structure in `path` as ASE Atoms (CIF, POSCAR/CONTCAR, extxyz)."""
    from ase.io import read

    try:
        atoms = read(path, index=0)
    except Exception as error:  # ASE raises many unrelated types for unreadable files
        raise InputError(
            "system.structure_file",
            f"cannot read '{path.name}' ({type(error).__name__})",
            "give a CIF, POSCAR or extxyz",
        ) from None
    if len(atoms) == 0:
        raise InputError(
            "system.structure_file", f"'{path.name}' holds no atoms", "give a structure with atoms"
        )
    return atoms


def _unique_counts(symbols: list[str]) -> tuple[list[str], list[int]]:
    unique = sorted(set(symbols))
    return unique, [symbols.count(symbol) for symbol in unique]


def dump_full_config(config: FullConfig, path: str | os.PathLike) -> Path:
    """Write the full config as YAML, the single record of every decision the heuristics made."""
    path = Path(path)
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, width=110))
    return path
