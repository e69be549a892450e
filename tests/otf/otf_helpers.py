"""Structures and settings the OTF tests share (own module: `conftest` names clash across folders)."""


def si_diamond(a: float = 5.431, repeat: int = 2):
    from ase.build import bulk

    return bulk("Si", "diamond", a=a, cubic=True).repeat(repeat)


def rattled_si_frames(count: int, seed: int) -> list:
    """Strained (+-6 % lattice) and rattled (0.02-0.25 Angstrom) 8-atom Si cells: a varied dataset."""
    import numpy as np
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        atoms = bulk("Si", "diamond", a=5.431 * rng.uniform(0.94, 1.06), cubic=True)
        atoms.rattle(rng.uniform(0.02, 0.25), seed=int(rng.integers(1_000_000)))
        frames.append(atoms)
    return frames
