"""The `mlip-pipe` command line."""
