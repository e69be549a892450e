"""Record the per-generation metrics of the active-learning loop as one Dict in the provenance graph."""

from aiida import orm
from aiida.engine import calcfunction


@calcfunction
def record_metrics(metrics: orm.Dict) -> orm.Dict:
    """The metrics as a node created by a process, so the graph says where the numbers came from."""
    return orm.Dict(metrics.get_dict())
