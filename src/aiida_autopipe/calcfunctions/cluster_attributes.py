"""Names of the attributes an embedded cluster's StructureData carries, apart from the embedding code.

The embedding writes them (calcfunctions.embedding, which imports the cut-out's numerics); labeling reads
``autopipe_tot_charge`` in the daemon worker, which then need not import those numerics for a name.
"""

#: Per-atom force weight: 1 for core atoms, 0 for buffer atoms and caps.
FORCE_WEIGHTS_ATTRIBUTE = "autopipe_force_weights"
#: Per-atom region: 'core', 'buffer' or 'cap'.
REGIONS_ATTRIBUTE = "autopipe_regions"
#: pw.x ``tot_charge``: non-zero only where the ionic neutralisation fell back to a uniform background.
TOT_CHARGE_ATTRIBUTE = "autopipe_tot_charge"
#: How the cluster was made neutral.
CHARGE_METHOD_ATTRIBUTE = "autopipe_charge_method"
#: The embedding's other decisions, keyed without the ``autopipe_`` prefix.
EMBEDDING_ATTRIBUTE = "autopipe_embedding"
