"""WorkChains: one per module, nested by ActiveLearningWorkChain."""
