"""Seed-structure generators, one module per method; each returns `GeneratedStructure` records."""

from aiida_autopipe.core.structures.base import GeneratedStructure, apply_strain, strain_variants

__all__ = ["GeneratedStructure", "apply_strain", "strain_variants"]
