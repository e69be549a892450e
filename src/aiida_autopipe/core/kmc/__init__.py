"""Adaptive kinetic Monte Carlo: BKL lattice-gas kernel, tiered rates, saddle searches with ASE."""
