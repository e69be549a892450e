"""The child a crashed worker launched before the checkpoint is found by its call link label."""

from aiida import orm
from aiida.common.links import LinkType

from aiida_autopipe.workflows.adoption import launched_before_restart


def _child(parent, label):
    child = orm.CalcJobNode(process_type="aiida.calculations:quantumespresso.pw")
    child.base.links.add_incoming(parent, link_type=LinkType.CALL_CALC, link_label=label)
    child.store()
    return child


def test_the_unrecorded_child_is_adopted_and_recorded_ones_are_not(aiida_profile_clean):
    parent = orm.WorkflowNode().store()
    first = _child(parent, "iteration_01")
    assert launched_before_restart(parent, "iteration_02") is None
    assert launched_before_restart(parent, "iteration_01").pk == first.pk  # launched, never recorded
    assert launched_before_restart(parent, "iteration_01", known=first) is None  # already in context
    second = _child(parent, "iteration_01")
    assert launched_before_restart(parent, "iteration_01", known=first).pk == second.pk
    assert launched_before_restart(parent, "iteration_01", known=second) is None  # never an older one
