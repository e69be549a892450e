"""Structures the OTF tests share (a module of its own: `conftest` names clash across test folders)."""


def si_diamond(a: float = 5.431, repeat: int = 2):
    from ase.build import bulk

    return bulk("Si", "diamond", a=a, cubic=True).repeat(repeat)
