"""Data efficiency: how many DFT labels this pipeline needs against learning from ab initio MD (Si; Al-Mg).

Every label of every strategy, and of the test set, comes from pw.x with one cheap setting per system (the
machine has 2 cores; a converged setting would not fit):

* `--system si`: PseudoDojo 0.4 PBE Si (the offline family `mlip-pipe setup` installs), ecutwfc 24 / ecutrho
  96 Ry (the family's hint is 36 Ry), Marzari-Vanderbilt smearing 0.02 Ry, k-point spacing 0.6 1/A (a 2x2x2
  mesh on the 8-atom cubic cell), conv_thr 4e-10 Ry per atom; MD at 300, 650 and 1000 K.
* `--system almg`: the alloy, fcc Al7Mg (Al-12.5 at.% Mg, inside the solid solution at these temperatures)
  in a 32-atom cell, the pipeline's smallest SQS size. Debian's LDA norm-conserving Al.pz-vbc and
  Mg.pz-n-vbc (the only low-cutoff Al and Mg pair here: the offline family's Mg needs 98 Ry) at ecutwfc 16 /
  ecutrho 64 Ry, Marzari-Vanderbilt 0.04 Ry, k-point spacing 0.8 1/A, which is the Gamma point alone on the
  32-atom cell: far from converged for a metal (the total energy moves 0.44 eV/atom to a 2x2x2 mesh), but one
  well-defined potential energy surface that every strategy and the test set share, at 7 s per label
  instead of 27 s. MD at 300, 500 and 700 K (the alloy melts near 900 K); the AIMD training trajectories
  are 50 steps instead of Si's 80 (a label has 32 atoms, not 8), so AIMD budgets go up to 120 labels. The
  common fit is smaller too: basis (3, 1, 4), 56 functions, the one the pipeline's own search chose, and 20
  BFGS iterations, the fast protocol's number (Si: (3, 2, 6) and 150). pyace's fit takes its gradient by
  finite differences (one loss evaluation per parameter and iteration: 120 here), and with 32-atom frames and
  a 6.6 A cutoff (about 80 neighbours per atom) 150 iterations would take hours per fit on 2 cores.

* Test set: fresh ab initio MD of the system's cell at its three temperatures (Berendsen thermostat, 1.94 fs
  steps), every 4th frame after the first 10 steps, from trajectories that no strategy trains on.
* Strategy 1, AIMD: a second set of ab initio MD trajectories at the same temperatures; a budget of N labels
  takes N/3 evenly spaced frames from each (the kindest way to subsample AIMD: frames as far apart as the
  trajectory allows). Every MD step is an SCF, so these fits all cost the whole trajectories; the cheaper
  AIMD runs are their first L steps after equilibration with every frame used ("AIMD, first L steps").
* Strategy 2, this pipeline: `mlip-pipe` with the `fast` protocol and the DFT setting above, counting every
  pw.x label it made (first labels and every generation's). Si runs examples/si/input.yaml; the alloy the
  same exploration and loop sizes on `composition: Al7Mg` with one 32-atom SQS.
* Strategy 3, DIRECT one-shot: surrogate MD (the pipeline's offline surrogate, CHGNet) of the same cell at the
  same temperatures, N frames chosen by DIRECT on the pipeline's descriptors, labelled by pw.x, no loop.

The training sets of all three are fitted the same way (delta learning on the automatic LJ + ZBL reference,
one fixed ACE basis, one number of BFGS iterations, the pipeline's 1:100 energy:force weights), so that the
strategies differ only in which frames were labelled. The pipeline's own final potential is scored too.
Printed: a table of energy and force RMSE on the test set against the number of labels and against the DFT
calculations (SCFs) each strategy ran to get them, the ratios of both that each strategy needs to reach the
AIMD baseline's best force error, and pw.x's wall time per MD step and per single-point label (an MD step
starts from the previous step's wavefunctions, so it is the cheaper SCF); a PNG of the curves.

Every pw.x run and fit is kept in --workdir, so a second run reuses them and goes straight to the table.

    uv run python bench/data_efficiency.py [--system si] [--workdir data_efficiency_work]
        [--budgets 25 50 100 200] [--aimd-lengths 5 10 20 40] [--direct-budgets 10 25 50]
"""

import argparse
import itertools
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import yaml
from ase import units
from ase.build import bulk
from ase.io import read, write

from aiida_autopipe.core.baseline import ReferencePlusACECalculator, ReferencePotential, fit_reference
from aiida_autopipe.core.config.heuristics import r_cut
from aiida_autopipe.core.pacemaker_input import (
    atomic_energy_shifts,
    pacemaker_dataframe,
    pacemaker_input,
    read_labelled_frames,
    write_pacemaker_dataframe,
)

os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

CONV_THR_PER_ATOM = 4e-10
#: pw.x's MD time step in Rydberg atomic units (4.8378e-17 s): 1.94 fs, fine for Si's 16 THz optical modes
#: and Al's 10 THz.
MD_TIME_STEP = 40
#: Test trajectory length (steps) and the frames kept: training frames after EQUILIBRATION (the training
#: trajectories' length is the system's), test frames every TEST_STRIDE.
TEST_STEPS = 50
EQUILIBRATION = 10
TEST_STRIDE = 4
#: Surrogate MD pool for DIRECT: frames per temperature and MD steps (2 fs) between them.
SURROGATE_FRAMES_PER_TEMPERATURE = 200
SURROGATE_SAVE_EVERY = 5
#: The common fit: the pipeline's E:F:S weights (stress is not fitted by the pyace evaluator), the
#: pipeline's cutoff heuristic for the elements, and the system's basis and number of BFGS iterations.
LOSS_WEIGHTS = {"energy": 1.0, "force": 100.0, "stress": 10.0}
EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
#: The family the bench installs for a setting with its own UPF files (in the bench's own profile).
BENCH_PSEUDO_FAMILY = "bench/pseudos"
#: Debian's quantum-espresso-data pseudopotentials.
DEBIAN_PSEUDO_DIR = pathlib.Path("/usr/share/espresso/pseudo")


def offline_family_pseudos() -> dict[str, pathlib.Path]:
    """Si.upf of the offline family `mlip-pipe setup` provisions (provisioned here if missing)."""
    from aiida_autopipe.core.pseudopotentials import PSEUDODOJO_PBE_SR, provision_offline_family

    return {"Si": provision_offline_family(PSEUDODOJO_PBE_SR).upf_dir / "Si.upf"}


def debian_almg_pseudos() -> dict[str, pathlib.Path]:
    """Debian's LDA norm-conserving Al and Mg (quantum-espresso-data)."""
    pseudos = {"Al": DEBIAN_PSEUDO_DIR / "Al.pz-vbc.UPF", "Mg": DEBIAN_PSEUDO_DIR / "Mg.pz-n-vbc.UPF"}
    missing = [str(path) for path in pseudos.values() if not path.exists()]
    if missing:
        raise SystemExit(f"missing {missing}: apt-get install quantum-espresso-data")
    return pseudos


def diamond_si_cell(seed: int):
    """The 8-atom cubic diamond cell, each atom displaced by up to 0.1 A (a distinct start per trajectory)."""
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.positions += np.random.default_rng(seed).uniform(-0.1, 0.1, size=atoms.positions.shape)
    return atoms


def random_almg_cell(seed: int):
    """32-atom fcc Al7Mg (a = 4.05 A, Vegard's law between Al 4.05 and Mg's fcc 4.52 at 12.5 %: 4.11; the
    LDA pseudopotentials bind tighter), 4 Mg on random sites, atoms displaced by up to 0.1 A."""
    rng = np.random.default_rng(seed)
    atoms = bulk("Al", "fcc", a=4.05, cubic=True).repeat(2)
    symbols = atoms.get_chemical_symbols()
    for index in rng.choice(len(atoms), len(atoms) // 8, replace=False):
        symbols[index] = "Mg"
    atoms.set_chemical_symbols(symbols)
    atoms.positions += rng.uniform(-0.1, 0.1, size=atoms.positions.shape)
    return atoms


@dataclass(frozen=True)
class BenchSystem:
    """One system of the benchmark: its DFT setting, MD temperatures, test cell and pipeline input."""

    name: str
    elements: tuple[str, ...]
    pseudopotentials: Callable[[], dict[str, pathlib.Path]]
    ecutwfc: float
    ecutrho: float
    kpoints_density: float
    degauss: float
    temperatures: tuple[int, ...]
    #: steps of each AIMD training trajectory
    train_steps: int
    #: the common fit's ACE basis (body order, polynomial degree, radial basis size) and BFGS iterations
    fit_basis: tuple[int, int, int]
    fit_iterations: int
    starting_cell: Callable[[int], object]
    #: the user input of the pipeline run, without its `dft_compute` section
    pipeline_input: Callable[[], dict]

    @property
    def r_cut(self) -> float:
        return r_cut(list(self.elements))

    @property
    def own_pseudopotentials(self) -> bool:
        """Whether the pipeline needs this setting's UPF files installed (else it uses its default family)."""
        return self.pseudopotentials is not offline_family_pseudos

    def dft_compute(self) -> dict:
        """The pipeline's `dft_compute` section for this setting."""
        section = {
            "ecutwfc": self.ecutwfc,
            "ecutrho": self.ecutrho,
            "kpoints_density": self.kpoints_density,
            "degauss": self.degauss,
            "conv_thr_per_atom": CONV_THR_PER_ATOM,
        }
        return {**section, "pseudo_family": BENCH_PSEUDO_FAMILY} if self.own_pseudopotentials else section


def si_example_input() -> dict:
    return yaml.safe_load((EXAMPLES / "si" / "input.yaml").read_text())


def almg_input() -> dict:
    """The Si example's exploration and loop sizes on the alloy: one 32-atom SQS (the test cell's size)."""
    si = si_example_input()
    return {
        "system": {
            "elements": ["Al", "Mg"],
            "composition": "Al7Mg",
            "generation": {"sqs_min_atoms": 32, "sqs_max_atoms": 32},
        },
        "simulation": {"temperature": [300, 700], "active_learning": si["simulation"]["active_learning"]},
        "exploration": si["exploration"],
    }


SYSTEMS = {
    "si": BenchSystem(
        name="Si",
        elements=("Si",),
        pseudopotentials=offline_family_pseudos,
        ecutwfc=24.0,
        ecutrho=96.0,
        kpoints_density=0.6,
        degauss=0.02,
        temperatures=(300, 650, 1000),
        train_steps=80,
        fit_basis=(3, 2, 6),  # the smallest basis of the balanced protocol's search
        fit_iterations=150,
        starting_cell=diamond_si_cell,
        pipeline_input=si_example_input,
    ),
    "almg": BenchSystem(
        name="Al7Mg",
        elements=("Al", "Mg"),
        pseudopotentials=debian_almg_pseudos,
        ecutwfc=16.0,
        ecutrho=64.0,
        kpoints_density=0.8,
        degauss=0.04,
        temperatures=(300, 500, 700),
        train_steps=50,
        fit_basis=(3, 1, 4),  # what the pipeline's own search chose for this alloy
        fit_iterations=20,  # the fast protocol's: see the module docstring
        starting_cell=random_almg_cell,
        pipeline_input=almg_input,
    ),
}


def kpoint_mesh(atoms, density: float) -> tuple[int, int, int]:
    """The mesh aiida-quantumespresso's create_kpoints_from_distance gives (AiiDA's KpointsData rule, no
    profile needed): ceil(|b_i| / density), the ratio rounded to 5 digits first."""
    reciprocal = 2 * math.pi * np.linalg.inv(atoms.cell.array).T
    return tuple(max(1, math.ceil(round(np.linalg.norm(b) / density, 5))) for b in reciprocal)


def run_pw(
    system: BenchSystem, folder: pathlib.Path, atoms, control: dict, ions: dict | None = None
) -> pathlib.Path:
    """Run pw.x (2 ranks; 2 k-point pools where there are k-points to share) in `folder` unless a finished
    output is already there."""
    output = folder / "pw.out"
    if output.exists() and "JOB DONE" in output.read_text():
        return output
    folder.mkdir(parents=True, exist_ok=True)
    mesh = kpoint_mesh(atoms, system.kpoints_density)
    pseudopotentials = {}
    for element, path in system.pseudopotentials().items():
        shutil.copy(path, folder / path.name)
        pseudopotentials[element] = path.name
    input_data = {
        "control": {"pseudo_dir": ".", "outdir": "out", "tprnfor": True, **control},
        "system": {
            "ecutwfc": system.ecutwfc,
            "ecutrho": system.ecutrho,
            "occupations": "smearing",
            "smearing": "mv",
            "degauss": system.degauss,
        },
        "electrons": {"conv_thr": CONV_THR_PER_ATOM * len(atoms)},
    }
    if ions:
        input_data["ions"] = ions
    write(
        folder / "pw.in",
        atoms,
        format="espresso-in",
        input_data=input_data,
        pseudopotentials=pseudopotentials,
        kpts=mesh,
    )
    pools = ["-npool", "2"] if math.prod(mesh) > 1 else []
    command = ["mpirun", "-np", "2", shutil.which("pw.x") or "pw.x", *pools, "-in", "pw.in"]
    with output.open("w") as handle:
        subprocess.run(command, cwd=folder, stdout=handle, stderr=subprocess.STDOUT, check=True)
    shutil.rmtree(folder / "out", ignore_errors=True)
    return output


def pw_wall_seconds(output: pathlib.Path) -> float:
    """pw.x's own wall time for a run, from the PWSCF line of its output (h, m and s parts)."""
    line = next(line for line in output.read_text().splitlines() if line.strip().startswith("PWSCF"))
    wall = line.split("CPU", 1)[1].replace("WALL", "").strip()
    seconds = 0.0
    for value, unit in re.findall(r"([\d.]+)([hms])", wall):
        seconds += float(value) * {"h": 3600, "m": 60, "s": 1}[unit]
    return seconds


def labelled(atoms):
    """A frame carrying its DFT energy and forces the way the pipeline's datasets do."""
    frame = atoms.copy()
    frame.info["energy"] = atoms.get_potential_energy()
    frame.arrays["forces"] = atoms.get_forces()
    return frame


def aimd(system: BenchSystem, workdir: pathlib.Path, role: str, temperature: int) -> list:
    """Frames of one ab initio MD trajectory (its steps are the labels)."""
    steps = system.train_steps if role == "train" else TEST_STEPS
    seed = system.temperatures.index(temperature) + (0 if role == "train" else 100)
    output = run_pw(
        system,
        workdir / "aimd" / f"{role}_{temperature}K",
        system.starting_cell(seed),
        {"calculation": "md", "dt": MD_TIME_STEP, "nstep": steps},
        {"ion_temperature": "berendsen", "tempw": temperature, "nraise": 10},
    )
    frames = [labelled(atoms) for atoms in read(output, index=":", format="espresso-out")][:steps]
    if len(frames) != steps:
        raise RuntimeError(f"{output}: {len(frames)} frames parsed, {steps} expected")
    kept = frames[EQUILIBRATION:]
    return kept if role == "train" else kept[::TEST_STRIDE]


def scf_label(system: BenchSystem, workdir: pathlib.Path, name: str, atoms):
    """One single-point label (the pipeline's kind of label) of a frame."""
    output = run_pw(system, workdir / "scf" / name, atoms, {"calculation": "scf"})
    return labelled(read(output, format="espresso-out"))


def surrogate_pool(system: BenchSystem, workdir: pathlib.Path) -> list:
    """Frames of surrogate MD (the pipeline's offline surrogate) at the test temperatures, same cell."""
    path = workdir / "surrogate_pool.extxyz"
    if path.exists():
        return read(path, index=":")
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    from aiida_autopipe.core.surrogate import make_calculator, resolve_surrogate

    choice = resolve_surrogate("mace_mp")
    print(f"surrogate: {choice.name} {choice.model} ({choice.reason})", flush=True)
    calculator = make_calculator(choice)
    pool = []
    for index, temperature in enumerate(system.temperatures):
        atoms = system.starting_cell(200 + index)
        atoms.calc = calculator
        rng = np.random.default_rng(index)
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
        dynamics = Langevin(atoms, 2 * units.fs, temperature_K=temperature, friction=0.02, rng=rng)
        for _ in range(SURROGATE_FRAMES_PER_TEMPERATURE):
            dynamics.run(SURROGATE_SAVE_EVERY)
            frame = atoms.copy()
            frame.info["temperature"] = temperature
            pool.append(frame)
    write(path, pool)
    return pool


def direct_training_set(system: BenchSystem, workdir: pathlib.Path, budget: int) -> list:
    """DIRECT one-shot: `budget` frames of the surrogate pool chosen on SOAP features, labelled by pw.x."""
    from aiida_autopipe.core.descriptors import compute_descriptors, flat_arrays
    from aiida_autopipe.core.direct import direct_select

    pool = surrogate_pool(system, workdir)
    features = compute_descriptors(*flat_arrays(pool), kind="soap", r_cut=system.r_cut)
    chosen = direct_select(features, budget).indices
    return [scf_label(system, workdir, f"pool_{index:04d}", pool[index]) for index in sorted(chosen)]


def aimd_first_steps(train_frames: dict, length: int) -> list:
    """Every frame of the first `length` steps after equilibration at each temperature: the AIMD run that
    costs 3 (EQUILIBRATION + length) SCFs instead of the whole trajectories."""
    return [frame for frames in train_frames.values() for frame in frames[:length]]


def aimd_training_set(train_frames: dict, budget: int) -> list:
    """budget / 3 evenly spaced frames of each temperature's training trajectory."""
    chosen = []
    per_temperature = budget // len(train_frames)
    for temperature, frames in train_frames.items():
        if per_temperature > len(frames):
            raise SystemExit(f"budget {budget}: only {len(frames)} AIMD frames at {temperature} K")
        chosen += [frames[i] for i in np.linspace(0, len(frames) - 1, per_temperature).round().astype(int)]
    return chosen


def pipeline_run(system: BenchSystem, workdir: pathlib.Path) -> pathlib.Path:
    """Run `mlip-pipe` (fast protocol, the bench's DFT setting) in its own profile; its outputs are kept."""
    folder = workdir / "pipeline"
    if (folder / "outputs.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    user_input = system.pipeline_input()
    user_input["dft_compute"] = {**user_input.get("dft_compute", {}), **system.dft_compute()}
    (folder / "input.yaml").write_text(yaml.safe_dump(user_input, sort_keys=False))
    environment = {**os.environ, "AIIDA_PATH": str(folder / "aiida")}
    bin_dir = pathlib.Path(sys.executable).parent
    commands = [[bin_dir / "mlip-pipe", "setup", "--profile", "bench"]]
    if system.own_pseudopotentials:
        # UPF files without cutoff hints: installed as a named family with the bench's cutoffs (the alloy runs
        # so far were measured this way; dft_compute.pseudo_dir with ecutwfc/ecutrho now does the same)
        pseudo_dir = folder / "pseudos"
        pseudo_dir.mkdir(exist_ok=True)
        for path in system.pseudopotentials().values():
            shutil.copy(path, pseudo_dir / path.name)
        cutoffs = {
            element: {"cutoff_wfc": system.ecutwfc, "cutoff_rho": system.ecutrho}
            for element in system.elements
        }
        (folder / "cutoffs.json").write_text(json.dumps(cutoffs))
        aiida_pseudo = [bin_dir / "aiida-pseudo", "--profile", "bench"]
        commands += [
            [
                *aiida_pseudo,
                "install",
                "family",
                pseudo_dir,
                BENCH_PSEUDO_FAMILY,
                "-F",
                "pseudo.family.cutoffs",
                "-P",
                "pseudo.upf",
            ],
            [
                *aiida_pseudo,
                "family",
                "cutoffs",
                "set",
                BENCH_PSEUDO_FAMILY,
                folder / "cutoffs.json",
                "-s",
                "normal",
                "-u",
                "Ry",
            ],
        ]
    commands.append([bin_dir / "mlip-pipe", "run", "input.yaml", "--protocol", "fast", "--profile", "bench"])
    for command in commands:
        with (folder / "mlip-pipe.log").open("a") as log:
            subprocess.run(command, cwd=folder, env=environment, stdout=log, stderr=log, check=True)
    subprocess.run([sys.executable, __file__, "--collect-pipeline", str(folder)], env=environment, check=True)
    return folder


def collect_pipeline(folder: pathlib.Path) -> None:
    """Write the last ActiveLearningWorkChain's dataset, potential and pw.x run count next to its profile."""
    from aiida import load_profile, orm

    load_profile("bench")
    node = (
        orm.QueryBuilder()
        .append(orm.WorkflowNode, filters={"attributes.process_label": "ActiveLearningWorkChain"})
        .order_by({orm.WorkflowNode: {"ctime": "desc"}})
        .first(flat=True)
    )
    if not node.is_finished_ok:
        raise SystemExit(f"ActiveLearningWorkChain<{node.pk}> did not finish ok: {node.exit_status}")
    for link, filename in (("dataset", "dataset.extxyz"), ("potential_yaml", "potential.yaml")):
        (folder / filename).write_bytes(node.outputs[link].get_content(mode="rb"))
    # every pw.x calculation of this run, recovery restarts included (one restored from AiiDA's cache stands
    # for a pw.x run that a fresh run would make)
    pw_runs = sum(
        1
        for called in node.called_descendants
        if called.process_type == "aiida.calculations:quantumespresso.pw"
    )
    outputs = {"pk": node.pk, "pw_runs": pw_runs, "reference": node.outputs.reference.get_dict()}
    (folder / "outputs.json").write_text(json.dumps(outputs, indent=1))


def fit(system: BenchSystem, frames: list, folder: pathlib.Path) -> ReferencePlusACECalculator:
    """The common fit: automatic LJ + ZBL reference, then ACE on the residual (the pipeline's recipe)."""
    reference = fit_reference(frames, r_cut=system.r_cut)
    if not (folder / "output_potential.yaml").exists():
        folder.mkdir(parents=True, exist_ok=True)
        write_pacemaker_dataframe(pacemaker_dataframe(frames, reference), folder / "dataset.pckl.gzip")
        config = pacemaker_input(
            list(system.elements),
            system.r_cut,
            *system.fit_basis,
            max_iterations=system.fit_iterations,
            loss_weights=LOSS_WEIGHTS,
        )
        (folder / "input.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        pacemaker = pathlib.Path(sys.executable).parent / "pacemaker"
        with (folder / "pacemaker.log").open("w") as log:
            subprocess.run([pacemaker, "input.yaml"], cwd=folder, stdout=log, stderr=log, check=True)
    predictions = pd.read_pickle(folder / "train_pred.pckl.gzip", compression="gzip")
    shifts = atomic_energy_shifts(predictions, frames)
    reference.atomic_energies = {
        element: energy + shifts.get(element, 0.0) for element, energy in reference.atomic_energies.items()
    }
    return ReferencePlusACECalculator(str(folder / "output_potential.yaml"), reference)


def test_errors(model, test_frames: list) -> tuple[float, float]:
    """Energy RMSE (meV/atom) and force RMSE per component (meV/A) on the test set."""
    energy_errors, force_errors = [], []
    for frame in test_frames:
        atoms = frame.copy()
        atoms.calc = model
        energy_errors.append((atoms.get_potential_energy() - frame.info["energy"]) / len(atoms))
        force_errors.append((atoms.get_forces() - frame.arrays["forces"]).ravel())
    return rmse_mev(energy_errors), rmse_mev(np.concatenate(force_errors))


def seconds_per_scf(system: BenchSystem, workdir: pathlib.Path) -> tuple[float, float]:
    """pw.x wall seconds per AIMD step (training trajectories) and per single-point label (DIRECT's)."""
    md = [workdir / "aimd" / f"train_{temperature}K" / "pw.out" for temperature in system.temperatures]
    single_points = sorted((workdir / "scf").glob("*/pw.out"))
    per_step = sum(map(pw_wall_seconds, md)) / (len(md) * system.train_steps)
    per_label = sum(map(pw_wall_seconds, single_points)) / max(1, len(single_points))
    return per_step, per_label


def rmse_mev(errors) -> float:
    """Root mean square of errors in eV, in meV."""
    return 1e3 * float(np.sqrt(np.mean(np.square(errors))))


def labels_to_reach(curve: list[tuple[int, float]], target: float) -> float | None:
    """Labels a strategy needs for a force error of `target`, interpolated log-log between two of its budgets;
    None when `target` is outside the range its curve spans."""
    for (n_low, e_low), (n_high, e_high) in itertools.pairwise(curve):
        if e_high <= target <= e_low and e_low > e_high:
            fraction = math.log(e_low / target) / math.log(e_low / e_high)
            return math.exp(math.log(n_low) + fraction * math.log(n_high / n_low))
    return None


def compare_with_aimd(strategy: str, curve: list, aimd: list, unit: str = "labels") -> str:
    """One line: how many `unit` `strategy` needs for AIMD's best force error, or what AIMD needs for its.
    Both curves are (cost in `unit`, force error) sorted by cost."""
    best_cost, best_error = min(aimd, key=lambda point: point[1])
    if curve[0][1] <= best_error:
        return (
            f"{strategy}: beats AIMD's best ({best_error:.1f} meV/A, {best_cost} {unit}) already with "
            f"{curve[0][0]} {unit}: at least {best_cost / curve[0][0]:.1f}x fewer"
        )
    needed = labels_to_reach(curve, best_error)
    if needed is not None:
        return f"{strategy}: reaches AIMD's best with {needed:.0f} {unit}, {best_cost / needed:.1f}x fewer"
    cost, error = min(curve, key=lambda point: point[1])
    if error >= aimd[0][1]:
        return (
            f"{strategy}: its best, {error:.1f} meV/A with {cost} {unit}, is no better than AIMD at its "
            f"cheapest ({aimd[0][1]:.1f} meV/A with {aimd[0][0]} {unit})"
        )
    aimd_needed = labels_to_reach(aimd, error)
    if aimd_needed is None:
        return f"{strategy}: does not reach AIMD's best; its best, {error:.1f} meV/A with {cost} {unit}"
    return (
        f"{strategy}: does not reach AIMD's best; for its own best, {error:.1f} meV/A with {cost} {unit}, "
        f"AIMD needs {aimd_needed:.0f} {unit} ({aimd_needed / cost:.1f}x)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=sorted(SYSTEMS), default="si")
    parser.add_argument("--workdir", type=pathlib.Path, help="default: data_efficiency_work/<system>")
    parser.add_argument("--budgets", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument(
        "--aimd-lengths",
        type=int,
        nargs="*",
        default=[5, 10, 20, 40],
        help="steps of the cheaper AIMD runs (none: skip them)",
    )
    parser.add_argument(
        "--direct-budgets", type=int, nargs="*", default=[10, 25, 50], help="none: skip DIRECT one-shot"
    )
    parser.add_argument("--stage", choices=["aimd", "direct", "pipeline", "all"], default="all")
    parser.add_argument("--plot", type=pathlib.Path, help="PNG to write (default: in --workdir)")
    parser.add_argument("--collect-pipeline", type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.collect_pipeline:
        return collect_pipeline(args.collect_pipeline)
    system = SYSTEMS[args.system]
    workdir = (args.workdir or pathlib.Path("data_efficiency_work") / args.system).resolve()

    if args.stage == "pipeline":
        return pipeline_run(system, workdir)
    if args.stage == "direct":
        return [direct_training_set(system, workdir, n) for n in args.direct_budgets]
    temperatures = system.temperatures
    test_frames = [frame for t in temperatures for frame in aimd(system, workdir, "test", t)]
    train_frames = {t: aimd(system, workdir, "train", t) for t in temperatures}
    aimd_steps = len(temperatures) * system.train_steps
    print(f"test set: {len(test_frames)} AIMD frames; AIMD training pool: {aimd_steps} MD steps", flush=True)
    if args.stage == "aimd":
        return None
    direct_sets = {n: direct_training_set(system, workdir, n) for n in args.direct_budgets}
    pipeline = pipeline_run(system, workdir)

    def scored(strategy, frames, scfs, name):
        model = fit(system, frames, workdir / "fits" / name)
        return (strategy, len(frames), scfs, *test_errors(model, test_frames))

    rows = [
        scored("AIMD", aimd_training_set(train_frames, budget), aimd_steps, f"aimd_{budget}")
        for budget in args.budgets
    ]
    rows += [
        scored(
            "AIMD, first L steps",
            aimd_first_steps(train_frames, length),
            len(temperatures) * (EQUILIBRATION + length),
            f"aimd_first_{length}",
        )
        for length in args.aimd_lengths
    ]
    rows += [
        scored("DIRECT one-shot", frames, len(frames), f"direct_{n}") for n, frames in direct_sets.items()
    ]
    outputs = json.loads((pipeline / "outputs.json").read_text())
    rows.append(
        scored("pipeline", read_labelled_frames(pipeline / "dataset.extxyz"), outputs["pw_runs"], "pipeline")
    )
    own = ReferencePlusACECalculator(
        str(pipeline / "potential.yaml"), ReferencePotential.from_dict(outputs["reference"])
    )
    report(
        system,
        rows,
        test_errors(own, test_frames),
        seconds_per_scf(system, workdir),
        args.plot or workdir / "data_efficiency.png",
    )


def report(system: BenchSystem, rows, own_errors, scf_seconds, plot_path):
    """Print the table and the label and SCF ratios; draw force and energy RMSE against labels and SCFs."""
    print(f"\n{'strategy':<20} {'labels':>6} {'SCFs':>5} {'E RMSE meV/atom':>16} {'F RMSE meV/A':>13}")
    for strategy, labels, scfs, energy, force in rows:
        print(f"{strategy:<20} {labels:>6} {scfs:>5} {energy:>16.1f} {force:>13.1f}")
    pipeline = rows[-1]
    labels, scfs = pipeline[1:3]
    print(f"{'pipeline (own)':<20} {labels:>6} {scfs:>5} {own_errors[0]:>16.1f} {own_errors[1]:>13.1f}")
    print(
        "SCFs: the DFT calculations a strategy ran, every MD step of the AIMD runs it drew from and every "
        "pw.x run of the pipeline (recovery restarts included); 'own' is the pipeline's final potential as "
        "shipped, the row above it refits its labels the common way."
    )
    per_step, per_label = scf_seconds
    print(
        f"pw.x wall time (2 ranks): {per_step:.2f} s per AIMD step, {per_label:.2f} s per single-point label "
        f"({per_label / per_step:.1f} MD steps per label)"
    )

    def curve(strategy, column):
        return sorted((row[column], row[4]) for row in rows if row[0] == strategy)

    aimd = curve("AIMD", 1)
    best_labels, best_error = min(aimd, key=lambda point: point[1])
    print(f"\nAIMD's best force error: {best_error:.1f} meV/A with {best_labels} labels")
    print("by labels in the training set:")
    compared = [strategy for strategy in ("DIRECT one-shot", "pipeline") if curve(strategy, 1)]
    for strategy in compared:
        print("  " + compare_with_aimd(strategy, curve(strategy, 1), aimd))
    # By DFT calculations: the cheaper AIMD runs, then the whole trajectories at their best subsampling.
    aimd_scfs = [*curve("AIMD, first L steps", 2), min(curve("AIMD", 2), key=lambda point: point[1])]
    print("by DFT calculations (SCFs) run:")
    for strategy in compared:
        print("  " + compare_with_aimd(strategy, curve(strategy, 2), sorted(aimd_scfs), "SCFs"))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    panels = ((1, 4, "force RMSE (meV/A)"), (1, 3, "energy RMSE (meV/atom)"), (2, 4, "force RMSE (meV/A)"))
    styles = (("AIMD", "o-"), ("AIMD, first L steps", "d--"), ("DIRECT one-shot", "s-"), ("pipeline", "*"))
    for axis, (x_column, y_column, quantity) in zip(axes, panels, strict=True):
        for strategy, marker in styles:
            points = sorted((row[x_column], row[y_column]) for row in rows if row[0] == strategy)
            if not points:  # a strategy skipped on the command line
                continue
            axis.plot(
                *zip(*points, strict=True), marker, label=strategy, markersize=12 if marker == "*" else 6
            )
        own = own_errors[1] if y_column == 4 else own_errors[0]
        axis.plot(pipeline[x_column], own, "x", color="green", markersize=10, label="pipeline, own potential")
        ticks = []
        for tick in sorted({row[x_column] for row in rows}):
            if not ticks or tick >= 1.3 * ticks[-1]:  # labels that would overlap on the log axis are left out
                ticks.append(tick)
        axis.set_xscale("log")
        axis.set_xticks(ticks, [str(tick) for tick in ticks], fontsize=7)
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel("DFT labels in the training set" if x_column == 1 else "DFT calculations (SCFs) run")
        axis.set_ylabel(quantity)
        if y_column == 3:  # energies span two decades
            axis.set_yscale("log")
            axis.yaxis.set_major_formatter(ScalarFormatter())
        axis.grid(True, which="both", alpha=0.3)
    axes[2].legend(fontsize=8)
    kelvin = "/".join(map(str, system.temperatures))
    figure.suptitle(
        f"{system.name} test set (AIMD at {kelvin} K), same DFT setting and ACE fit for every strategy"
    )
    figure.tight_layout()
    figure.savefig(plot_path, dpi=120)
    print(f"\nplot: {plot_path}")


if __name__ == "__main__":
    main()
