"""Adopt a child that a crashed daemon worker launched but never recorded, instead of launching its twin.

A worker killed between submitting a child process and saving the parent's checkpoint leaves the child
running, while the parent, reloaded from its last checkpoint, runs the launching step again. Looking the child
up by its call link label (unique per launch in the work chains here) finds it, so no pw.x run is repeated.
"""

from __future__ import annotations

from aiida import orm
from aiida.common.links import LinkType


def launched_before_restart(
    parent: orm.WorkflowNode, link_label: str, known: orm.ProcessNode | None = None
) -> orm.ProcessNode | None:
    """The latest child `parent` called under `link_label` after `known` (the one already in its context)."""
    children = [
        triple.node
        for triple in parent.base.links.get_outgoing(link_type=(LinkType.CALL_CALC, LinkType.CALL_WORK)).all()
        if triple.link_label == link_label and (known is None or triple.node.pk > known.pk)
    ]
    return max(children, key=lambda node: node.pk) if children else None
