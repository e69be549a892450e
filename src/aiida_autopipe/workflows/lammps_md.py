"""On-the-fly MD in LAMMPS: ``pair_style pace/extrapolation`` with ``fix halt``, through aiida-lammps.

The LAMMPS twin of ``OtfMdCalculation`` for long or large runs: the same inputs (structure, pacemaker B-basis
``.yaml``, ``.asi`` active set, optional LJ + ZBL reference) and the same outputs (``output_parameters``,
``gamma_trace``, ``final_structure``, ``halting_structure``, ``halting_gamma``), so ``SimulationWorkChain``
can run either. aiida-lammps's raw calculation runs the script written here; a calcfunction reads the
halting frame with its per-atom gamma from the files it retrieved. Clusters are cut afterwards by
``embed_halting_frame``, as for any halting frame.

Gamma is the same extrapolation grade pyace gives: LAMMPS's ML-PACE and pyace share the PACE evaluator.
LAMMPS checks it at step 0 and every ``gamma_every`` steps (``fix pair``), and ``fix halt`` stops the run
at the first check above the threshold; the frame LAMMPS stops on is written with its gamma.
"""

from __future__ import annotations

import io
import re

import numpy as np
from aiida import orm
from aiida.engine import ToContext, WorkChain, calcfunction
from aiida_lammps.calculations.raw import LammpsRawCalculation

from aiida_autopipe.core.baseline import ReferencePotential, ace_lammps_snippet
from aiida_autopipe.core.errors import InputError

SCRIPT_FILE = "input.in"
STRUCTURE_FILE = "structure.data"
POTENTIAL_FILE = "potential.yaml"
ACTIVE_SET_FILE = "potential.asi"
TRACE_FILE = "gamma_trace.txt"
FINAL_DUMP = "final.dump"
LOG_FILE = LammpsRawCalculation.FILENAME_OUTPUT
GAMMA_ARRAY = "gamma"
GAMMA_COLUMN = "f_pace_gamma"

#: Same keys, meanings and defaults as the ASE runner's (`runners/otf_md.py`) MD settings.
DEFAULTS = {
    "temperature": 300.0,
    "steps": 1000,
    "timestep": 1.0,
    "friction": 0.01,
    "threshold": 5.0,
    "gamma_every": 1,
    "seed": 0,
}


def validated_parameters(parameters: dict) -> dict:
    """MD settings with defaults filled in; `steps` must be a multiple of `gamma_every` (gamma is dumped)."""
    unknown = set(parameters) - set(DEFAULTS)
    if unknown:
        raise InputError(
            "lammps_md.parameters", f"unknown keys {sorted(unknown)}", f"use only {sorted(DEFAULTS)}"
        )
    settings = {**DEFAULTS, **parameters}
    for key in ("steps", "gamma_every", "seed"):
        settings[key] = int(settings[key])
    for key in ("temperature", "timestep", "friction", "threshold"):
        settings[key] = float(settings[key])
    if settings["steps"] < 1 or settings["gamma_every"] < 1:
        raise InputError("lammps_md.parameters", "steps and gamma_every must be >= 1", "give positive counts")
    if settings["steps"] % settings["gamma_every"]:
        raise InputError(
            "lammps_md.parameters.steps",
            f"{settings['steps']} is not a multiple of gamma_every {settings['gamma_every']}",
            "round steps to a multiple of gamma_every (the last frame's gamma must be computed)",
        )
    if settings["temperature"] <= 0 or settings["timestep"] <= 0 or settings["friction"] <= 0:
        raise InputError(
            "lammps_md.parameters", "temperature, timestep and friction must be > 0", "give positive values"
        )
    return settings


def extrapolating_potential(
    elements: list[str], reference: ReferencePotential | None, potential_file: str, active_set_file: str
) -> str:
    """Module D's LAMMPS lines for the model, ``pace`` turned into ``pace/extrapolation`` with the ``.asi``.

    The reference's ``hybrid/overlay`` snippet (LJ + ZBL + ACE) is kept as written by `core.baseline`, so
    the LAMMPS model is the one the Python calculator evaluates.
    """
    if reference is None:
        snippet = ace_lammps_snippet(potential_file, elements)
        replacements = {
            "pair_style pace\n": "pair_style pace/extrapolation\n",
            f"pair_coeff * * {potential_file} ": f"pair_coeff * * {potential_file} {active_set_file} ",
        }
    else:
        snippet = reference.lammps_snippet(potential_file, elements)
        replacements = {
            "pair_style hybrid/overlay pace ": "pair_style hybrid/overlay pace/extrapolation ",
            f"pair_coeff * * pace {potential_file} ": (
                f"pair_coeff * * pace/extrapolation {potential_file} {active_set_file} "
            ),
        }
    for old, new in replacements.items():
        if snippet.count(old) != 1:
            raise ValueError(f"core.baseline's LAMMPS snippet changed: no unique {old.strip()!r}")
        snippet = snippet.replace(old, new)
    return snippet


def otf_script(
    elements: list[str], masses: list[float], settings: dict, reference: ReferencePotential | None
) -> str:
    """The LAMMPS input: Langevin NVT (as the ASE runner), gamma every `gamma_every` steps, halt above it.

    Step 0 is checked before any MD (`run 0`), as in the ASE runner; `fix print` writes the trace of max
    gamma from step 0 on, and the last frame is dumped with per-atom gamma, halted or not.
    """
    every, threshold = settings["gamma_every"], settings["threshold"]
    temperature, seed = settings["temperature"], settings["seed"] + 1  # LAMMPS seeds must be positive
    damping_ps = 1.0 / settings["friction"] / 1000.0
    lines = [
        "# On-the-fly MD with pace/extrapolation, written by aiida-autopipe; units metal (eV, Angstrom, ps).",
        "units metal",
        "atom_style atomic",
        "atom_modify map array",
        "boundary p p p",
        f"read_data {STRUCTURE_FILE}",
        *(f"mass {index} {mass:.6f}" for index, mass in enumerate(masses, start=1)),
        extrapolating_potential(elements, reference, POTENTIAL_FILE, ACTIVE_SET_FILE).rstrip("\n"),
        f"fix pace_gamma all pair {every} pace/extrapolation gamma 1",
        "compute max_pace_gamma all reduce max f_pace_gamma",
        "variable max_gamma equal c_max_pace_gamma",
        f"timestep {settings['timestep'] / 1000.0:.10g}",
        f"velocity all create {temperature:.10g} {seed} dist gaussian mom yes rot no",
        "fix integrate all nve",
        f"fix thermostat all langevin {temperature:.10g} {temperature:.10g} {damping_ps:.10g} {seed} "
        "zero yes",
        "thermo_style custom step temp pe etotal v_max_gamma",
        f"thermo {every}",
        "run 0",
        f"variable md_steps equal {settings['steps']}",
        f'if "${{max_gamma}} > {threshold:.10g}" then "variable md_steps equal 0"',
        f'fix gamma_trace all print {every} "$(step) ${{max_gamma}}" file {TRACE_FILE} screen no '
        'title "# step max_gamma"',
        f"fix halt all halt {every} v_max_gamma > {threshold:.10g} error soft",
        "run ${md_steps}",
        f"write_dump all custom {FINAL_DUMP} id element x y z {GAMMA_COLUMN} "
        f"modify element {' '.join(elements)} sort id",
    ]
    return "\n".join(lines) + "\n"


def structure_elements(atoms) -> list[str]:
    """Atom types in order of first appearance: the order of `mass`, `pair_coeff` and the data file."""
    return list(dict.fromkeys(atoms.get_chemical_symbols()))


def lammps_data(atoms, elements: list[str]) -> str:
    """The structure as a LAMMPS data file (ASE rotates a general cell into LAMMPS's triclinic form)."""
    from ase.io import write

    handle = io.StringIO()
    write(handle, atoms, format="lammps-data", specorder=elements, atom_style="atomic", units="metal")
    return handle.getvalue()


def read_gamma_trace(text: str) -> tuple[np.ndarray, np.ndarray]:
    """`fix print`'s ``step max_gamma`` lines; a step printed twice (setup of a run) is kept once."""
    trace: dict[int, float] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and not line.startswith("#"):
            trace[int(float(fields[0]))] = float(fields[1])
    steps = np.array(sorted(trace), dtype=int)
    return steps, np.array([trace[step] for step in steps], dtype=float)


def read_gamma_frame(text: str):
    """The dumped frame (ASE Atoms, sorted by id) with per-atom gamma in ``arrays['gamma']``, and its step."""
    from ase.io import read

    frame = read(io.StringIO(text), format="lammps-dump-text", index=-1)
    gamma = np.asarray(frame.arrays.pop(GAMMA_COLUMN), dtype=float)
    frame.calc = None
    frame.set_array(GAMMA_ARRAY, gamma)
    step = int(re.search(r"ITEM: TIMESTEP\s+(\d+)", text).group(1))
    return frame, step


def md_loop_time(log: str) -> tuple[float, int] | None:
    """Seconds and steps of the MD run (the last ``Loop time`` line of the LAMMPS log)."""
    found = re.findall(r"Loop time of ([\d.eE+-]+) on \d+ procs for (\d+) steps", log)
    return (float(found[-1][0]), int(found[-1][1])) if found else None


def otf_results(trace_text: str, dump_text: str, log: str, settings: dict) -> tuple[dict, object]:
    """The ASE runner's results record from LAMMPS's files, and the last frame with its gamma."""
    steps, max_gamma = read_gamma_trace(trace_text)
    frame, step = read_gamma_frame(dump_text)
    if not len(steps) or steps[-1] != step:
        raise ValueError(f"the gamma trace ends at {steps[-1:]} but the dumped frame is step {step}")
    halted = bool(max_gamma[-1] > settings["threshold"])
    results = {
        "engine": "lammps",
        "status": "halted" if halted else "completed",
        "message": "",
        "n_atoms": len(frame),
        "temperature": settings["temperature"],
        "steps": settings["steps"],
        "threshold": settings["threshold"],
        "gamma_every": settings["gamma_every"],
        "halted": halted,
        "steps_done": step,
        "halt_step": step if halted else None,
        "max_gamma": float(max_gamma.max()),
        "final_max_gamma": float(max_gamma[-1]),
    }
    loop = md_loop_time(log)
    if loop is not None and loop[1] > 0:
        results["md_wall_time_s"] = loop[0]
        results["md_us_per_atom_step"] = 1e6 * loop[0] / loop[1] / len(frame)
    return {**results, "gamma_trace_steps": steps.tolist(), "gamma_trace_max": max_gamma.tolist()}, frame


@calcfunction
def parse_lammps_otf(retrieved: orm.FolderData, parameters: orm.Dict) -> dict:
    """OtfMdCalculation's outputs from a LAMMPS OTF run's retrieved files (trace, last frame, log)."""
    settings = validated_parameters(parameters.get_dict())
    results, frame = otf_results(
        retrieved.get_object_content(TRACE_FILE),
        retrieved.get_object_content(FINAL_DUMP),
        retrieved.get_object_content(LOG_FILE),
        settings,
    )
    trace = orm.ArrayData()
    trace.set_array("steps", np.array(results.pop("gamma_trace_steps"), dtype=int))
    trace.set_array("max_gamma", np.array(results.pop("gamma_trace_max"), dtype=float))
    structure = frame.copy()
    structure.arrays.pop(GAMMA_ARRAY)
    outputs = {
        "output_parameters": orm.Dict(results),
        "gamma_trace": trace,
        "final_structure": orm.StructureData(ase=structure),
    }
    if results["halted"]:
        gamma = orm.ArrayData()
        gamma.set_array(GAMMA_ARRAY, frame.arrays[GAMMA_ARRAY])
        outputs.update(halting_structure=orm.StructureData(ase=structure), halting_gamma=gamma)
    return outputs


class LammpsOtfMdWorkChain(WorkChain):
    """One OTF MD trajectory in LAMMPS (ML-PACE), halting on max gamma above the threshold."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(
            LammpsRawCalculation, namespace="lammps", exclude=("script", "files", "filenames", "settings")
        )
        # Serial by default, as OtfMdCalculation: `setup lammps` builds a serial LAMMPS unless asked for MPI.
        options = spec.inputs["lammps"]["metadata"]["options"]
        options["resources"].default = {"num_machines": 1, "num_mpiprocs_per_machine": 1}
        options["withmpi"].default = False
        spec.input("structure", valid_type=orm.StructureData, help="Starting frame.")
        spec.input("potential", valid_type=orm.SinglefileData, help="pacemaker B-basis potential (.yaml).")
        spec.input("active_set", valid_type=orm.SinglefileData, help="Active set (.asi) for gamma.")
        spec.input(
            "reference",
            valid_type=orm.Dict,
            required=False,
            help="LJ + ZBL reference (ReferencePotential.to_dict()); the model is then reference + ACE.",
        )
        spec.input(
            "parameters",
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            help="temperature (K), steps, timestep (fs), friction (1/fs), threshold, gamma_every, seed.",
        )
        spec.outline(cls.setup, cls.run_lammps, cls.results)
        spec.output("output_parameters", valid_type=orm.Dict, help="Status, steps done, halted, max gamma.")
        spec.output("gamma_trace", valid_type=orm.ArrayData, help="`steps` and `max_gamma` of each check.")
        spec.output("final_structure", valid_type=orm.StructureData, help="Last frame of the MD.")
        spec.output(
            "halting_structure", valid_type=orm.StructureData, required=False, help="Frame that halted."
        )
        spec.output(
            "halting_gamma",
            valid_type=orm.ArrayData,
            required=False,
            help="Per-atom gamma (array `gamma`) of the halting frame.",
        )
        spec.default_output_node = "output_parameters"
        spec.exit_code(300, "ERROR_LAMMPS_FAILED", message="LAMMPS failed: {message}")
        spec.exit_code(301, "ERROR_READING_OUTPUT", message="LAMMPS's files cannot be read: {message}")
        spec.exit_code(310, "ERROR_INVALID_INPUT", message="{message}")

    def setup(self):
        try:
            self.ctx.settings = validated_parameters(self.inputs.parameters.get_dict())
        except InputError as error:
            return self.exit_codes.ERROR_INVALID_INPUT.format(message=str(error))
        return None

    def run_lammps(self):
        from ase.data import atomic_masses, atomic_numbers

        atoms = self.inputs.structure.get_ase()
        elements = structure_elements(atoms)
        reference = None
        if "reference" in self.inputs:
            reference = ReferencePotential.from_dict(self.inputs.reference.get_dict())
        masses = [float(atomic_masses[atomic_numbers[element]]) for element in elements]
        script = otf_script(elements, masses, self.ctx.settings, reference)
        inputs = self.exposed_inputs(LammpsRawCalculation, namespace="lammps")
        inputs.update(
            script=orm.SinglefileData(io.BytesIO(script.encode()), filename=SCRIPT_FILE),
            files={
                "structure": orm.SinglefileData(
                    io.BytesIO(lammps_data(atoms, elements).encode()), filename=STRUCTURE_FILE
                ),
                "potential": self.inputs.potential,
                "active_set": self.inputs.active_set,
            },
            filenames={
                "structure": STRUCTURE_FILE,
                "potential": POTENTIAL_FILE,
                "active_set": ACTIVE_SET_FILE,
            },
            settings=orm.Dict({"additional_retrieve_list": [TRACE_FILE, FINAL_DUMP]}),
        )
        return ToContext(lammps=self.submit(LammpsRawCalculation, **inputs))

    def results(self):
        node = self.ctx.lammps
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_LAMMPS_FAILED.format(
                message=f"{node.process_label}<{node.pk}> exit {node.exit_status}: {node.exit_message}"
            )
        try:
            outputs = parse_lammps_otf(node.outputs.retrieved, self.inputs.parameters)
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            return self.exit_codes.ERROR_READING_OUTPUT.format(message=f"{type(exc).__name__}: {exc}")
        self.out_many(outputs)
        results = outputs["output_parameters"]
        self.report(
            f"{results['status']} after {results['steps_done']} steps, max gamma {results['max_gamma']:.3g}"
        )
        return None
