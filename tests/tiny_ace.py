"""The tiny ACE basis the tests fit (own module: `conftest` cannot be imported by name across folders)."""

#: Same tiny basis as Module D's tests: enough to learn diamond Si, fast enough for CI.
TINY_FIT = {
    "body_order": 3,
    "polynomial_degree": 1,
    "radial_basis_size": 4,
    "max_iterations": 12,
    "densities": 1,
}
