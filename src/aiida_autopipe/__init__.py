"""aiida-autopipe: an autonomous active-learning pipeline for ACE interatomic potentials on AiiDA."""

__version__ = "0.1.0"
