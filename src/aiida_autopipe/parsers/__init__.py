"""Parsers of the project's CalcJobs."""
