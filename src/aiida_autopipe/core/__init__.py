"""AiiDA-free numerics: every physics decision of the pipeline, testable without a profile."""
