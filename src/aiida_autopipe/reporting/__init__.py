"""Reports, dataset registry and archive sharing of finished active-learning runs.

AiiDA-free parts (plots, arrays, summary, datasets) take plain arrays and ASE frames; the AiiDA parts
(collect, registry, archive, report) read the provenance graph and hand plain data to them.
"""
