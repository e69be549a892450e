"""CalcJobs, one per executable."""
