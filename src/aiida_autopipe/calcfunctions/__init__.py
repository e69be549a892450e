"""Thin calcfunctions that record light steps of core in the provenance graph."""
