"""AiiDA overhead per label: LabelingWorkChain against raw pw.x on the same inputs (8-atom displaced Si).

Runs N displaced Si8 cells through LabelingWorkChain one at a time (max_concurrent 1) in a throw-away SQLite
profile, then reruns pw.x by hand on each generated aiida.in in a fresh folder, and prints both times.

    uv run python bench/labeling_overhead.py [--structures 3] [--ecutwfc 30] [--kpoints-density 0.25]
"""

import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("AIIDA_PATH", tempfile.mkdtemp(prefix="autopipe-bench-aiida-"))
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")

import numpy as np

PSEUDO = pathlib.Path("/usr/share/espresso/pseudo/Si.pbe-rrkj.UPF")
PW = shutil.which("pw.x") or "/usr/bin/pw.x"


def make_profile(workdir):
    """A fresh SQLite profile without a broker, a localhost computer, a pw.x code and a one-element family."""
    from aiida import load_profile, orm
    from aiida.plugins import DataFactory, GroupFactory

    subprocess.run(
        [
            str(pathlib.Path(sys.executable).parent / "verdi"),
            "presto",
            "--profile-name",
            "bench",
            "--no-broker",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    load_profile("bench", allow_switch=True)
    computer = orm.load_computer("localhost")
    computer.set_minimum_job_poll_interval(0)
    code = orm.InstalledCode(
        label="pw", computer=computer, filepath_executable=PW, default_calc_job_plugin="quantumespresso.pw"
    )
    code.store()
    folder = workdir / "pseudo"
    folder.mkdir()
    shutil.copy(PSEUDO, folder / PSEUDO.name)
    family = GroupFactory("pseudo.family.cutoffs").create_from_folder(
        folder, "bench-si", pseudo_type=DataFactory("pseudo.upf")
    )
    return code, family


def displaced_si8(seed):
    """The cubic diamond cell with every atom displaced by up to 0.1 Angstrom."""
    from aiida import orm
    from ase.build import bulk

    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.positions += np.random.default_rng(seed).uniform(-0.1, 0.1, size=(8, 3))
    return orm.StructureData(ase=atoms)


def raw_pw_time(calculation, workdir):
    """Wall time of pw.x run by hand on the input AiiDA wrote for ``calculation``."""
    folder = workdir / f"raw-{calculation.pk}"
    (folder / "pseudo").mkdir(parents=True)
    shutil.copy(PSEUDO, folder / "pseudo" / PSEUDO.name)
    text = calculation.base.repository.get_object_content("aiida.in")
    (folder / "aiida.in").write_text(text)
    start = time.perf_counter()
    with (folder / "aiida.in").open() as stdin, (folder / "aiida.out").open("w") as stdout:
        subprocess.run([PW, "-in", "aiida.in"], cwd=folder, stdin=stdin, stdout=stdout, check=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structures", type=int, default=3)
    parser.add_argument("--ecutwfc", type=float, default=30.0)
    parser.add_argument("--kpoints-density", type=float, default=0.25)
    args = parser.parse_args()

    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_autopipe.workflows.labeling import LabelingWorkChain

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="autopipe-bench-"))
    code, family = make_profile(workdir)
    family.set_cutoffs(
        {"Si": {"cutoff_wfc": args.ecutwfc, "cutoff_rho": 4 * args.ecutwfc}}, "normal", unit="Ry"
    )
    structures = {f"si8_{index}": displaced_si8(index) for index in range(args.structures)}
    builder = LabelingWorkChain.get_builder_from_protocol(
        code,
        structures,
        family.label,
        overrides={"dft_compute": {"kpoints_density": args.kpoints_density, "max_concurrent": 1}},
    )

    start = time.perf_counter()
    _, node = run_get_node(builder)
    total = time.perf_counter() - start
    assert node.is_finished_ok, node.exit_status

    calculations = [
        orm.load_node(node.outputs.labels[key].base.attributes.get("pw_calculation"))
        for key in sorted(structures)
    ]
    pw_inside = [calculation.outputs.output_parameters["wall_time_seconds"] for calculation in calculations]
    raw = [raw_pw_time(calculation, workdir) for calculation in calculations]

    per_label = total / len(structures)
    raw_mean = statistics.mean(raw)
    print(f"Si8 displaced, ecutwfc {args.ecutwfc} Ry, kpoints_density {args.kpoints_density} 1/A, 1 rank")
    print(f"labels: {len(structures)}, one at a time (max_concurrent 1)")
    print(f"LabelingWorkChain wall time, total:           {total:8.2f} s")
    print(f"  per label:                                   {per_label:8.2f} s")
    pw_mean = statistics.mean(pw_inside)
    print(f"  pw.x's own wall time per label (its output): {pw_mean:8.2f} s")
    runs = ", ".join(f"{seconds:.2f}" for seconds in raw)
    print(f"raw pw.x on the same aiida.in, per label:      {raw_mean:8.2f} s  (runs: {runs})")
    bookkeeping = per_label - pw_mean
    print(f"AiiDA bookkeeping per label (minus pw.x's own): {bookkeeping:8.2f} s")
    print(f"  relative to pw.x's own wall time:            {100 * bookkeeping / pw_mean:8.1f} %")
    print(f"AiiDA overhead per label against raw pw.x:     {per_label - raw_mean:8.2f} s")
    print(f"  relative to raw pw.x:                        {100 * (per_label - raw_mean) / raw_mean:8.1f} %")
    print("on a loaded machine the raw and AiiDA pw.x runs see different loads: trust the bookkeeping line")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
