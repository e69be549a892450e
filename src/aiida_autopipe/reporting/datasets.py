"""Reusing labelled frames across systems: which frames fit a new system, which compositions they cover.

Data labelled for A and for B can start an AB potential: frames whose elements are a subset of the new
system's are valid training data for it, provided they were labelled with the same DFT settings (the same
pseudopotentials, cutoffs and smearing give the same total-energy reference; otherwise the energies are not on
one scale). Only compositions the reused frames do not already cover need new pw.x labels. AiiDA-free.
"""

from __future__ import annotations

from collections import Counter
from math import gcd

#: DFT settings (keys of the config's `dft_compute`) that must agree for labels to share one energy scale.
LABEL_SETTINGS_KEYS = ("pseudo_family", "ecutwfc", "ecutrho", "smearing", "degauss", "soc_enabled")


def composition_key(symbols) -> str:
    """Reduced formula with elements in alphabetical order: Fe2Pt2 -> 'FePt', Fe3Pt -> 'Fe3Pt'."""
    counts = Counter(str(symbol) for symbol in symbols)
    if not counts:
        return ""
    divisor = 0
    for count in counts.values():
        divisor = gcd(divisor, count)
    return "".join(
        f"{element}{count // divisor if count // divisor > 1 else ''}"
        for element, count in sorted(counts.items())
    )


def is_within(frame_elements, elements) -> bool:
    """True when every element of the frame belongs to the system."""
    return set(frame_elements) <= set(elements)


def frames_within(frames, elements) -> list:
    """The frames made only of the system's elements, in their order."""
    return [atoms for atoms in frames if is_within(atoms.get_chemical_symbols(), elements)]


def covered_compositions(frames) -> set[str]:
    """Reduced formulas of the frames (what labels already exist for)."""
    return {composition_key(atoms.get_chemical_symbols()) for atoms in frames}


def uncovered(compositions: dict[str, str], covered: set[str]) -> list[str]:
    """Keys of `compositions` (key -> reduced formula) whose formula no reused frame has."""
    return [key for key, formula in compositions.items() if formula not in covered]


def label_settings(dft_compute: dict) -> dict:
    """The part of a `dft_compute` section that fixes the labels' energy scale."""
    return {key: dft_compute.get(key) for key in LABEL_SETTINGS_KEYS}


def settings_mismatch(wanted: dict, found: dict | None) -> list[str]:
    """`key: found != wanted` for each differing setting; unknown settings (no record) are a mismatch too."""
    if not found:
        return ["no DFT settings recorded with the dataset"]
    return [
        f"{key}: {found.get(key)!r} != {wanted.get(key)!r}"
        for key in LABEL_SETTINGS_KEYS
        if key in wanted and found.get(key) != wanted.get(key)
    ]
