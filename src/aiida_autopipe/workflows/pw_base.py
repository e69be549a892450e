"""PwBaseWorkChain with an aggressive, recorded SCF recovery chain for unattended labeling."""

import functools

from aiida import orm
from aiida.engine import ExitCode, ProcessHandlerReport, ToContext, append_, process_handler
from aiida.plugins import CalculationFactory
from aiida_quantumespresso.common.types import RestartType
from aiida_quantumespresso.parsers.parse_xml import parse as qe_xml_parse
from aiida_quantumespresso.workflows.pw.base import PwBaseWorkChain

from aiida_autopipe.core import dft_parameters
from aiida_autopipe.workflows.adoption import launched_before_restart

PwCalculation = CalculationFactory("quantumespresso.pw")

RECOVERY_STRATEGIES = ("aggressive", "default")

#: Extra on the work chain node: one entry per recovery action, in the order they were taken.
RECOVERY_EXTRA = "autopipe_recovery"

#: Handlers that make up the aggressive chain; ``recovery_strategy: default`` disables them.
AGGRESSIVE_HANDLERS = (
    "handle_scf_lower_mixing_beta",
    "handle_scf_local_tf_mixing",
    "handle_scf_raise_degauss",
    "handle_scf_cg_diagonalization",
    "handle_scf_recovery_exhausted",
    "handle_recompute_at_requested_degauss",
    "handle_crashed_run",
    "handle_out_of_memory",
    "handle_walltime_interrupted",
)

CRASH_EXIT_CODES = [
    PwCalculation.exit_codes.ERROR_OUTPUT_STDOUT_MISSING,
    PwCalculation.exit_codes.ERROR_OUTPUT_STDOUT_INCOMPLETE,
    PwCalculation.exit_codes.ERROR_OUTPUT_XML_MISSING,
    PwCalculation.exit_codes.ERROR_OUTPUT_FILES,
    PwCalculation.exit_codes.ERROR_SCHEDULER_NODE_FAILURE,
]

#: Memory-saving settings that leave the physics unchanged: a smaller Davidson workspace and mixing history.
LOW_MEMORY_ELECTRONS = {"diago_david_ndim": 2, "mixing_ndim": 4}

#: What a failed allocation leaves in the job's stderr (gfortran's runtime, glibc, C++): the direct scheduler
#: reports no out-of-memory state, so a crash with one of these is treated as out of memory. A plain SIGKILL
#: (the kernel's OOM killer or a user) cannot be told apart here and counts as a crash.
OUT_OF_MEMORY_MARKERS = ("Cannot allocate memory", "Out of memory", "out of memory", "std::bad_alloc")


def reuse_xml_schemas():
    """Make aiida-quantumespresso's XML parser build each QE schema once per process instead of once per run.

    Building the schema was 40 % of the PwParser's 0.75 s of CPU per Si8 run, paid by the daemon worker on
    every label; a built XMLSchema is only read afterwards, so one instance per schema file serves every run.
    """
    if not hasattr(qe_xml_parse.XMLSchema, "cache_info"):
        qe_xml_parse.XMLSchema = functools.cache(qe_xml_parse.XMLSchema)


# The daemon worker imports this module to run the work chain, before it parses the work chain's runs.
reuse_xml_schemas()


def ran_out_of_memory(calculation) -> bool:
    """Whether the job's stderr shows a failed memory allocation."""
    stderr = calculation.get_scheduler_stderr() or ""
    return any(marker in stderr for marker in OUT_OF_MEMORY_MARKERS)


def validate_recovery_strategy(value, _):
    """Only the two documented strategies exist."""
    if value is not None and value.value not in RECOVERY_STRATEGIES:
        return f"`recovery_strategy` is `{value.value}`; must be one of {', '.join(RECOVERY_STRATEGIES)}"
    return None


class AutopipePwBaseWorkChain(PwBaseWorkChain):
    """PwBaseWorkChain whose SCF failures go through an ordered recovery chain, each action recorded.

    On ``ERROR_ELECTRONIC_CONVERGENCE_NOT_REACHED`` the handlers try, highest priority first and one per
    restart: lower ``mixing_beta`` (0.7 -> 0.5 -> 0.3), ``mixing_mode = 'local-TF'``, a temporarily raised
    ``degauss`` (the converged result is then recomputed at the requested ``degauss`` from its density),
    ``diagonalization = 'cg'``. Each restart reads the last charge density. Every action is reported and
    appended to the ``autopipe_recovery`` extra. A run that pw.x stopped itself at ``max_seconds`` restarts
    from its saved state (recorded too). Crashed, out-of-memory (a failed allocation in stderr counts) and
    walltime-killed runs are retried once with a sensible change. ``recovery_strategy = 'default'`` restores
    aiida-quantumespresso's own handlers only.
    """

    @classmethod
    def define(cls, spec):
        """Define the process specification."""
        super().define(spec)
        spec.input(
            "recovery_strategy",
            valid_type=orm.Str,
            default=lambda: orm.Str("aggressive"),
            validator=validate_recovery_strategy,
            help="`aggressive`: this class's recorded recovery chain; `default`: aiida-quantumespresso's.",
        )
        spec.exit_code(
            480,
            "ERROR_SCF_RECOVERY_EXHAUSTED",
            message="The SCF did not converge after every step of the recovery chain was tried.",
        )
        spec.exit_code(
            481,
            "ERROR_REPEATED_CRASH",
            message="pw.x crashed twice in a row without writing complete output.",
        )
        spec.exit_code(
            482,
            "ERROR_OUT_OF_MEMORY",
            message="pw.x ran out of memory again with low-memory settings: give it more memory or ranks.",
        )
        spec.exit_code(
            483,
            "ERROR_REPEATED_WALLTIME_INTERRUPTION",
            message="The job was killed by the scheduler before pw.x could stop cleanly, twice in a row.",
        )

    @classmethod
    def get_builder_from_protocol(cls, code, structure, protocol=None, overrides=None, **kwargs):
        """Return a builder from aiida-quantumespresso's pw protocol, with ``recovery_strategy`` set.

        ``recovery_strategy`` ('aggressive' or 'default') may be given in ``overrides``; the other arguments
        are those of ``PwBaseWorkChain.get_builder_from_protocol``.
        """
        overrides = dict(overrides or {})
        strategy = overrides.pop("recovery_strategy", "aggressive")
        builder = super().get_builder_from_protocol(
            code, structure, protocol=protocol, overrides=overrides, **kwargs
        )
        builder.recovery_strategy = orm.Str(strategy)
        return builder

    def setup(self):
        """Enable the aggressive chain or aiida-quantumespresso's mixing handler; explicit overrides win."""
        super().setup()
        if self.inputs.recovery_strategy.value == "aggressive":
            self.ctx.handler_overrides.setdefault(
                "handle_electronic_convergence_not_reached", {"enabled": False}
            )
        else:
            for name in AGGRESSIVE_HANDLERS:
                self.ctx.handler_overrides.setdefault(name, {"enabled": False})
        self.ctx.requested_degauss = None
        self.ctx.retried = []

    def run_process(self):
        """Launch the next pw.x run, or adopt the one a crashed daemon worker launched before this work
        chain's checkpoint recorded it (the restarted step would otherwise run the same pw.x twice)."""
        known = self.ctx.children[-1] if self.ctx.get("children") else None
        orphan = launched_before_restart(self.node, f"iteration_{self.ctx.iteration + 1:02d}", known)
        if orphan is None:
            return super().run_process()
        self.ctx.iteration += 1
        considered = self.node.base.extras.get(self._considered_handlers_extra, [])
        if len(considered) < self.ctx.iteration:
            self.node.base.extras.set(self._considered_handlers_extra, [*considered, []])
        self.report(
            f"adopting {self.ctx.process_name}<{orphan.pk}> iteration #{self.ctx.iteration}, launched "
            "before a daemon restart"
        )
        return ToContext(children=append_(orphan))

    def record_recovery(self, calculation, handler, changes, restart, action=None):
        """Report the action (unless already reported) and append it to the ``autopipe_recovery`` extra, in
        order."""
        if action is not None:
            self.report_error_handled(calculation, action)
        entries = self.node.base.extras.get(RECOVERY_EXTRA, [])
        entries.append(
            {
                "iteration": self.ctx.iteration,
                "calculation": calculation.uuid,
                "exit_status": calculation.exit_status,
                "handler": handler,
                "changes": {key: list(values) for key, values in changes.items()},
                "restart": restart,
            }
        )
        self.node.base.extras.set(RECOVERY_EXTRA, entries)

    def restart_from_density(self, calculation):
        """Restart from the failed run's charge density when its folder holds one, else from scratch."""
        if "remote_folder" in calculation.outputs:
            self.set_restart_type(RestartType.FROM_CHARGE_DENSITY, calculation.outputs.remote_folder)
            return "charge_density"
        self.set_restart_type(RestartType.FROM_SCRATCH)
        return "scratch"

    def change_electrons(self, calculation, handler, key, new, default):
        """Set ``ELECTRONS.key`` to ``new``, restart from the density and record it."""
        electrons = self.ctx.inputs.parameters["ELECTRONS"]
        old = electrons.get(key, default)
        electrons[key] = new
        restart = self.restart_from_density(calculation)
        action = f"SCF not converged: {key} {old} -> {new}, restarting from the {restart.replace('_', ' ')}"
        self.record_recovery(calculation, handler, {f"ELECTRONS.{key}": (old, new)}, restart, action)
        return ProcessHandlerReport(do_break=True)

    @process_handler(
        priority=470, exit_codes=[PwCalculation.exit_codes.ERROR_ELECTRONIC_CONVERGENCE_NOT_REACHED]
    )
    def handle_scf_lower_mixing_beta(self, calculation):
        """Step 1: lower ``mixing_beta`` one rung of the 0.7 -> 0.3 ladder."""
        current = self.ctx.inputs.parameters["ELECTRONS"].get("mixing_beta", dft_parameters.MIXING_BETA_START)
        new = dft_parameters.next_mixing_beta(current)
        if new is None:
            return None
        return self.change_electrons(
            calculation, "handle_scf_lower_mixing_beta", "mixing_beta", new, dft_parameters.MIXING_BETA_START
        )

    @process_handler(
        priority=460, exit_codes=[PwCalculation.exit_codes.ERROR_ELECTRONIC_CONVERGENCE_NOT_REACHED]
    )
    def handle_scf_local_tf_mixing(self, calculation):
        """Step 2: ``local-TF`` mixing, which damps long-wavelength charge sloshing in inhomogeneous cells."""
        if self.ctx.inputs.parameters["ELECTRONS"].get("mixing_mode", "plain") == "local-TF":
            return None
        return self.change_electrons(
            calculation, "handle_scf_local_tf_mixing", "mixing_mode", "local-TF", "plain"
        )

    @process_handler(
        priority=450, exit_codes=[PwCalculation.exit_codes.ERROR_ELECTRONIC_CONVERGENCE_NOT_REACHED]
    )
    def handle_scf_raise_degauss(self, calculation):
        """Step 3: raise ``degauss`` once; the requested value is restored after convergence."""
        system = self.ctx.inputs.parameters["SYSTEM"]
        if self.ctx.requested_degauss is not None or system.get("occupations") != "smearing":
            return None
        old = system.get("degauss", self.defaults.qe.degauss)
        new = dft_parameters.raised_degauss(old)
        self.ctx.requested_degauss = old
        system["degauss"] = new
        restart = self.restart_from_density(calculation)
        action = (
            f"SCF not converged: degauss {old} -> {new} Ry for now, restarting from the "
            f"{restart.replace('_', ' ')}; the result will be recomputed at degauss {old}"
        )
        self.record_recovery(
            calculation, "handle_scf_raise_degauss", {"SYSTEM.degauss": (old, new)}, restart, action
        )
        return ProcessHandlerReport(do_break=True)

    @process_handler(
        priority=440, exit_codes=[PwCalculation.exit_codes.ERROR_ELECTRONIC_CONVERGENCE_NOT_REACHED]
    )
    def handle_scf_cg_diagonalization(self, calculation):
        """Step 4: conjugate-gradient diagonalisation, slower than Davidson but robust."""
        if self.ctx.inputs.parameters["ELECTRONS"].get("diagonalization", "david") == "cg":
            return None
        return self.change_electrons(
            calculation, "handle_scf_cg_diagonalization", "diagonalization", "cg", "david"
        )

    @process_handler(
        priority=430, exit_codes=[PwCalculation.exit_codes.ERROR_ELECTRONIC_CONVERGENCE_NOT_REACHED]
    )
    def handle_scf_recovery_exhausted(self, calculation):
        """Every step was tried: give up, so no unconverged result is ever returned."""
        self.report_error_handled(calculation, "every SCF recovery step was tried, aborting")
        return ProcessHandlerReport(True, self.exit_codes.ERROR_SCF_RECOVERY_EXHAUSTED)

    @process_handler(priority=600, exit_codes=ExitCode(0))
    def handle_recompute_at_requested_degauss(self, calculation):
        """After convergence at a raised ``degauss``, recompute at the requested one from that density."""
        if self.ctx.requested_degauss is None:
            return None
        system = self.ctx.inputs.parameters["SYSTEM"]
        if system["degauss"] == self.ctx.requested_degauss:
            return None
        old, new = system["degauss"], self.ctx.requested_degauss
        system["degauss"] = new
        self.set_restart_type(RestartType.FROM_CHARGE_DENSITY, calculation.outputs.remote_folder)
        action = (
            f"converged at degauss {old} Ry: recomputing at the requested degauss {new} Ry from its density"
        )
        self.record_recovery(
            calculation,
            "handle_recompute_at_requested_degauss",
            {"SYSTEM.degauss": (old, new)},
            "charge_density",
            action,
        )
        return ProcessHandlerReport(do_break=True)

    def retry_once(self, reason):
        """Whether ``reason`` has not yet been retried for this work chain (each failure kind is retried
        once)."""
        if reason in self.ctx.retried:
            return False
        self.ctx.retried.append(reason)
        return True

    @process_handler(priority=595, exit_codes=CRASH_EXIT_CODES)
    def handle_crashed_run(self, calculation):
        """pw.x died without complete output (node failure, MPI abort, killed): retry once from scratch.

        A failed allocation in the job's stderr goes to the out-of-memory handling instead.
        """
        if ran_out_of_memory(calculation):
            return self.retry_with_low_memory(calculation)
        if not self.retry_once("crash"):
            self.report_error_handled(calculation, "pw.x crashed again, aborting")
            return ProcessHandlerReport(True, self.exit_codes.ERROR_REPEATED_CRASH)
        self.set_restart_type(RestartType.FROM_SCRATCH)
        self.record_recovery(
            calculation, "handle_crashed_run", {}, "scratch", "pw.x crashed: retrying once from scratch"
        )
        return ProcessHandlerReport(do_break=True)

    @process_handler(priority=596, exit_codes=[PwCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_MEMORY])
    def handle_out_of_memory(self, calculation):
        """The scheduler reports out of memory."""
        return self.retry_with_low_memory(calculation)

    def retry_with_low_memory(self, calculation):
        """Out of memory: retry once from scratch with a smaller Davidson workspace and mixing history."""
        if not self.retry_once("memory"):
            self.report_error_handled(
                calculation, "out of memory again with the low-memory settings, aborting"
            )
            return ProcessHandlerReport(True, self.exit_codes.ERROR_OUT_OF_MEMORY)
        electrons = self.ctx.inputs.parameters["ELECTRONS"]
        changes = {
            f"ELECTRONS.{key}": (electrons.get(key), value) for key, value in LOW_MEMORY_ELECTRONS.items()
        }
        electrons.update(LOW_MEMORY_ELECTRONS)
        self.set_restart_type(RestartType.FROM_SCRATCH)
        self.record_recovery(
            calculation,
            "handle_out_of_memory",
            changes,
            "scratch",
            "out of memory: retrying from scratch with diago_david_ndim=2, mixing_ndim=4",
        )
        return ProcessHandlerReport(do_break=True)

    @process_handler(priority=580, exit_codes=[PwCalculation.exit_codes.ERROR_OUT_OF_WALLTIME])
    def handle_out_of_walltime(self, calculation):
        """pw.x stopped itself at ``max_seconds`` and wrote its restart files: aiida-quantumespresso's full
        restart (``restart_mode = 'restart'``), recorded like the other recovery actions."""
        report = super().handle_out_of_walltime(calculation)
        self.record_recovery(
            calculation, "handle_out_of_walltime", {"CONTROL.restart_mode": (None, "restart")}, "full"
        )
        return report

    @process_handler(
        priority=581,
        exit_codes=[
            PwCalculation.exit_codes.ERROR_OUT_OF_WALLTIME_INTERRUPTED,
            PwCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME,
        ],
    )
    def handle_walltime_interrupted(self, calculation):
        """Killed by the scheduler before a clean stop: files may be corrupt, so retry once from scratch with
        pw.x's own stop (``max_seconds``) at 80% of the walltime, leaving time to write the restart files."""
        if not self.retry_once("walltime"):
            self.report_error_handled(calculation, "killed at the walltime again, aborting")
            return ProcessHandlerReport(True, self.exit_codes.ERROR_REPEATED_WALLTIME_INTERRUPTION)
        control = self.ctx.inputs.parameters["CONTROL"]
        walltime = self.ctx.inputs.metadata.options.get("max_wallclock_seconds")
        old = control.get("max_seconds")
        changes = {}
        if walltime:
            control["max_seconds"] = 0.8 * walltime
            changes["CONTROL.max_seconds"] = (old, control["max_seconds"])
        self.set_restart_type(RestartType.FROM_SCRATCH)
        self.record_recovery(
            calculation,
            "handle_walltime_interrupted",
            changes,
            "scratch",
            "killed at the walltime before a clean stop: retrying from scratch with an earlier max_seconds",
        )
        return ProcessHandlerReport(do_break=True)
