"""Launch the pipeline for silicon with `verdi run examples/verdi_run_si.py` (after `mlip-pipe setup`)."""

from pathlib import Path

from aiida_autopipe.workflows.launch import launch_active_learning

node = launch_active_learning(Path(__file__).parent / "si" / "input.yaml")
print(f"ActiveLearningWorkChain<{node.pk}>: exit status {node.exit_status}")
