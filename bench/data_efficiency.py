"""Data efficiency: how many DFT labels this pipeline needs against learning from ab initio MD (silicon).

Every label of every strategy, and of the test set, comes from pw.x with one cheap setting (the machine has 2
cores; a converged setting would not fit): PseudoDojo 0.4 PBE Si (the offline family `mlip-pipe setup`
installs), ecutwfc 24 / ecutrho 96 Ry (the family's hint is 36 Ry), Marzari-Vanderbilt smearing 0.02 Ry,
k-point spacing 0.6 1/A (a 2x2x2 mesh on the 8-atom cubic cell), conv_thr 4e-10 Ry per atom.

* Test set: fresh ab initio MD of the 8-atom cubic cell at 300, 650 and 1000 K (Berendsen thermostat, 1.94 fs
  steps), every 4th frame after the first 10 steps, from trajectories that no strategy trains on.
* Strategy 1, AIMD: a second set of ab initio MD trajectories at the same temperatures; a budget of N labels
  takes N/3 evenly spaced frames from each (the kindest way to subsample AIMD: frames as far apart as the
  trajectory allows). Every MD step is an SCF, so these fits all cost the whole trajectories; the cheaper
  AIMD runs are their first L steps after equilibration with every frame used ("AIMD, first L steps").
* Strategy 2, this pipeline: `mlip-pipe` on examples/si/input.yaml with the `fast` protocol and the DFT
  setting above, counting every pw.x label it made (first labels and every generation's).
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

    uv run python bench/data_efficiency.py [--workdir data_efficiency_work] [--budgets 25 50 100 200]
        [--aimd-lengths 5 10 20 40] [--direct-budgets 10 25 50]
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

TEMPERATURES = (300, 650, 1000)
ECUTWFC = 24.0
KPOINTS_DENSITY = 0.6
DEGAUSS = 0.02
CONV_THR_PER_ATOM = 4e-10
#: pw.x's MD time step in Rydberg atomic units (4.8378e-17 s): 1.94 fs, fine for Si's 16 THz optical modes.
MD_TIME_STEP = 40
#: Trajectory lengths (steps) and the frames kept: train frames after EQUILIBRATION, test every TEST_STRIDE.
TRAIN_STEPS = 80
TEST_STEPS = 50
EQUILIBRATION = 10
TEST_STRIDE = 4
#: Surrogate MD pool for DIRECT: frames per temperature and MD steps (2 fs) between them.
SURROGATE_FRAMES_PER_TEMPERATURE = 200
SURROGATE_SAVE_EVERY = 5
#: The common fit: the pipeline's cutoff heuristic, the smallest basis of the balanced protocol's search,
#: the pipeline's E:F:S weights (stress is not fitted by the pyace evaluator).
R_CUT = r_cut(["Si"])
FIT_BASIS = (3, 2, 6)
FIT_ITERATIONS = 150
LOSS_WEIGHTS = {"energy": 1.0, "force": 100.0, "stress": 10.0}
EXAMPLE_INPUT = pathlib.Path(__file__).resolve().parents[1] / "examples" / "si" / "input.yaml"


def pseudo_file() -> pathlib.Path:
    """Si.upf of the offline family `mlip-pipe setup` provisions (provisioned here if missing)."""
    from aiida_autopipe.core.pseudopotentials import PSEUDODOJO_PBE_SR, provision_offline_family

    return provision_offline_family(PSEUDODOJO_PBE_SR).upf_dir / "Si.upf"


def kpoint_mesh(atoms, density: float) -> tuple[int, int, int]:
    """The mesh aiida-quantumespresso's create_kpoints_from_distance gives (AiiDA's KpointsData rule, no
    profile needed): ceil(|b_i| / density), the ratio rounded to 5 digits first."""
    reciprocal = 2 * math.pi * np.linalg.inv(atoms.cell.array).T
    return tuple(max(1, math.ceil(round(np.linalg.norm(b) / density, 5))) for b in reciprocal)


def starting_cell(seed: int):
    """The 8-atom cubic diamond cell, each atom displaced by up to 0.1 A (a distinct start per trajectory)."""
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.positions += np.random.default_rng(seed).uniform(-0.1, 0.1, size=atoms.positions.shape)
    return atoms


def run_pw(folder: pathlib.Path, atoms, control: dict, ions: dict | None = None) -> pathlib.Path:
    """Run pw.x (2 ranks, 2 k-point pools) in `folder` unless a finished output is already there."""
    output = folder / "pw.out"
    if output.exists() and "JOB DONE" in output.read_text():
        return output
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(pseudo_file(), folder / "Si.upf")
    input_data = {
        "control": {"pseudo_dir": ".", "outdir": "out", "tprnfor": True, **control},
        "system": {
            "ecutwfc": ECUTWFC,
            "ecutrho": 4 * ECUTWFC,
            "occupations": "smearing",
            "smearing": "mv",
            "degauss": DEGAUSS,
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
        pseudopotentials={"Si": "Si.upf"},
        kpts=kpoint_mesh(atoms, KPOINTS_DENSITY),
    )
    command = ["mpirun", "-np", "2", shutil.which("pw.x") or "pw.x", "-npool", "2", "-in", "pw.in"]
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


def aimd(workdir: pathlib.Path, role: str, temperature: int) -> list:
    """Frames of one ab initio MD trajectory (its steps are the labels)."""
    steps = TRAIN_STEPS if role == "train" else TEST_STEPS
    seed = TEMPERATURES.index(temperature) + (0 if role == "train" else 100)
    output = run_pw(
        workdir / "aimd" / f"{role}_{temperature}K",
        starting_cell(seed),
        {"calculation": "md", "dt": MD_TIME_STEP, "nstep": steps},
        {"ion_temperature": "berendsen", "tempw": temperature, "nraise": 10},
    )
    frames = [labelled(atoms) for atoms in read(output, index=":", format="espresso-out")][:steps]
    if len(frames) != steps:
        raise RuntimeError(f"{output}: {len(frames)} frames parsed, {steps} expected")
    kept = frames[EQUILIBRATION:]
    return kept if role == "train" else kept[::TEST_STRIDE]


def scf_label(workdir: pathlib.Path, name: str, atoms):
    """One single-point label (the pipeline's kind of label) of a frame."""
    output = run_pw(workdir / "scf" / name, atoms, {"calculation": "scf"})
    return labelled(read(output, format="espresso-out"))


def surrogate_pool(workdir: pathlib.Path) -> list:
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
    for index, temperature in enumerate(TEMPERATURES):
        atoms = starting_cell(200 + index)
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


def direct_training_set(workdir: pathlib.Path, budget: int) -> list:
    """DIRECT one-shot: `budget` frames of the surrogate pool chosen on SOAP features, labelled by pw.x."""
    from aiida_autopipe.core.descriptors import compute_descriptors, flat_arrays
    from aiida_autopipe.core.direct import direct_select

    pool = surrogate_pool(workdir)
    features = compute_descriptors(*flat_arrays(pool), kind="soap", r_cut=R_CUT)
    chosen = direct_select(features, budget).indices
    return [scf_label(workdir, f"pool_{index:04d}", pool[index]) for index in sorted(chosen)]


def aimd_first_steps(train_frames: dict, length: int) -> list:
    """Every frame of the first `length` steps after equilibration at each temperature: the AIMD run that
    costs 3 (EQUILIBRATION + length) SCFs instead of the whole trajectories."""
    return [frame for temperature in TEMPERATURES for frame in train_frames[temperature][:length]]


def aimd_training_set(train_frames: dict, budget: int) -> list:
    """budget / 3 evenly spaced frames of each temperature's training trajectory."""
    chosen = []
    per_temperature = budget // len(TEMPERATURES)
    for temperature in TEMPERATURES:
        frames = train_frames[temperature]
        if per_temperature > len(frames):
            raise SystemExit(f"budget {budget}: only {len(frames)} AIMD frames at {temperature} K")
        chosen += [frames[i] for i in np.linspace(0, len(frames) - 1, per_temperature).round().astype(int)]
    return chosen


def pipeline_run(workdir: pathlib.Path) -> pathlib.Path:
    """Run `mlip-pipe` (fast protocol, the bench's DFT setting) in its own profile; its outputs are kept."""
    folder = workdir / "pipeline"
    if (folder / "outputs.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    user_input = yaml.safe_load(EXAMPLE_INPUT.read_text())
    user_input["dft_compute"] = {
        **user_input.get("dft_compute", {}),
        "ecutwfc": ECUTWFC,
        "ecutrho": 4 * ECUTWFC,
        "kpoints_density": KPOINTS_DENSITY,
        "degauss": DEGAUSS,
        "conv_thr_per_atom": CONV_THR_PER_ATOM,
    }
    (folder / "input.yaml").write_text(yaml.safe_dump(user_input, sort_keys=False))
    environment = {**os.environ, "AIIDA_PATH": str(folder / "aiida")}
    mlip_pipe = str(pathlib.Path(sys.executable).parent / "mlip-pipe")
    for command in (
        ["setup", "--profile", "bench"],
        ["run", "input.yaml", "--protocol", "fast", "--profile", "bench"],
    ):
        with (folder / "mlip-pipe.log").open("a") as log:
            subprocess.run(
                [mlip_pipe, *command], cwd=folder, env=environment, stdout=log, stderr=log, check=True
            )
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
    # the profile is the bench's own: every PwCalculation in it belongs to this run
    pw_runs = (
        orm.QueryBuilder()
        .append(orm.CalcJobNode, filters={"process_type": "aiida.calculations:quantumespresso.pw"})
        .count()
    )
    outputs = {"pk": node.pk, "pw_runs": pw_runs, "reference": node.outputs.reference.get_dict()}
    (folder / "outputs.json").write_text(json.dumps(outputs, indent=1))


def fit(frames: list, folder: pathlib.Path) -> ReferencePlusACECalculator:
    """The common fit: automatic LJ + ZBL reference, then ACE on the residual (the pipeline's recipe)."""
    reference = fit_reference(frames, r_cut=R_CUT)
    if not (folder / "output_potential.yaml").exists():
        folder.mkdir(parents=True, exist_ok=True)
        write_pacemaker_dataframe(pacemaker_dataframe(frames, reference), folder / "dataset.pckl.gzip")
        config = pacemaker_input(
            ["Si"], R_CUT, *FIT_BASIS, max_iterations=FIT_ITERATIONS, loss_weights=LOSS_WEIGHTS
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


def seconds_per_scf(workdir: pathlib.Path) -> tuple[float, float]:
    """pw.x wall seconds per AIMD step (training trajectories) and per single-point label (DIRECT's)."""
    md = [workdir / "aimd" / f"train_{temperature}K" / "pw.out" for temperature in TEMPERATURES]
    single_points = sorted((workdir / "scf").glob("*/pw.out"))
    per_step = sum(map(pw_wall_seconds, md)) / (len(md) * TRAIN_STEPS)
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
    parser.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path("data_efficiency_work"))
    parser.add_argument("--budgets", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument(
        "--aimd-lengths", type=int, nargs="+", default=[5, 10, 20, 40], help="steps of the cheaper AIMD runs"
    )
    parser.add_argument("--direct-budgets", type=int, nargs="+", default=[10, 25, 50])
    parser.add_argument("--stage", choices=["aimd", "direct", "pipeline", "all"], default="all")
    parser.add_argument("--plot", type=pathlib.Path, help="PNG to write (default: in --workdir)")
    parser.add_argument("--collect-pipeline", type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.collect_pipeline:
        return collect_pipeline(args.collect_pipeline)
    workdir = args.workdir.resolve()

    if args.stage == "pipeline":
        return pipeline_run(workdir)
    if args.stage == "direct":
        return [direct_training_set(workdir, n) for n in args.direct_budgets]
    test_frames = [frame for t in TEMPERATURES for frame in aimd(workdir, "test", t)]
    train_frames = {t: aimd(workdir, "train", t) for t in TEMPERATURES}
    aimd_steps = len(TEMPERATURES) * TRAIN_STEPS
    print(f"test set: {len(test_frames)} AIMD frames; AIMD training pool: {aimd_steps} MD steps", flush=True)
    if args.stage == "aimd":
        return None
    direct_sets = {n: direct_training_set(workdir, n) for n in args.direct_budgets}
    pipeline = pipeline_run(workdir)

    def scored(strategy, frames, scfs, name):
        return (strategy, len(frames), scfs, *test_errors(fit(frames, workdir / "fits" / name), test_frames))

    rows = [
        scored("AIMD", aimd_training_set(train_frames, budget), aimd_steps, f"aimd_{budget}")
        for budget in args.budgets
    ]
    rows += [
        scored(
            "AIMD, first L steps",
            aimd_first_steps(train_frames, length),
            len(TEMPERATURES) * (EQUILIBRATION + length),
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
        rows,
        test_errors(own, test_frames),
        seconds_per_scf(workdir),
        args.plot or workdir / "data_efficiency.png",
    )


def report(rows, own_errors, scf_seconds, plot_path):
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
    for strategy in ("DIRECT one-shot", "pipeline"):
        print("  " + compare_with_aimd(strategy, curve(strategy, 1), aimd))
    # By DFT calculations: the cheaper AIMD runs, then the whole trajectories at their best subsampling.
    aimd_scfs = [*curve("AIMD, first L steps", 2), min(curve("AIMD", 2), key=lambda point: point[1])]
    print("by DFT calculations (SCFs) run:")
    for strategy in ("DIRECT one-shot", "pipeline"):
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
    figure.suptitle("Si test set (AIMD at 300/650/1000 K), same DFT setting and ACE fit for every strategy")
    figure.tight_layout()
    figure.savefig(plot_path, dpi=120)
    print(f"\nplot: {plot_path}")


if __name__ == "__main__":
    main()
