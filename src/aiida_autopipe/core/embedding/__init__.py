"""Periodic embedding of uncertain regions: cut-out, buffer, H caps, charge neutrality, buffer relaxation."""

from aiida_autopipe.core.embedding.embed import EmbeddedCluster, embed_uncertain_regions
from aiida_autopipe.core.embedding.relax import BufferRelaxation, relax_buffer

__all__ = ["BufferRelaxation", "EmbeddedCluster", "embed_uncertain_regions", "relax_buffer"]
