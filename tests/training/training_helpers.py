"""Settings the training tests share (a module of its own: `conftest` names clash across test folders)."""

TINY = {
    "r_cut": 5.0,
    "body_order": 3,
    "polynomial_degree": 1,
    "radial_basis_size": 4,
    "densities": 1,
    "max_iterations": 12,
    "test_fraction": 0.2,
}
