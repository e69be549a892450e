"""ACE basis hyperparameters: the search grid, the Pareto front of error against cost, and its knee.

Mapping of the three knobs to pacemaker's ``functions`` section (one ``ALL`` block for every element):

- ``body_order`` B: functions of rank 1 .. B-1 (B = 2 is a pair potential, B = 4 the usual three-rank ACE).
- ``polynomial_degree`` D: ``lmax_by_orders = [0, D, D-1, ...]`` and ``nradmax_by_orders[rank >= 2] =
  [D+1, D, ...]`` (floored at 0 and 1): one number for the angular and radial resolution of many-body terms.
- ``radial_basis_size`` R: ``nradmax_by_orders[0]``, the number of radial functions of the pair (rank 1) term.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def basis_functions(body_order: int, polynomial_degree: int, radial_basis_size: int) -> dict:
    """pacemaker's ``nradmax_by_orders`` and ``lmax_by_orders`` for the three knobs (see the module doc)."""
    ranks = body_order - 1
    if ranks < 1 or polynomial_degree < 0 or radial_basis_size < 1:
        raise ValueError(f"invalid ACE basis: B={body_order}, D={polynomial_degree}, R={radial_basis_size}")
    higher = range(ranks - 1)
    return {
        "nradmax_by_orders": [int(radial_basis_size)] + [max(1, polynomial_degree + 1 - k) for k in higher],
        "lmax_by_orders": [0] + [max(0, polynomial_degree - k) for k in higher],
    }


def search_grid(mlip_training: dict, candidates: dict) -> list[dict]:
    """Grid points: every ``'auto'`` knob takes each of its candidate values, a fixed integer stays fixed."""
    axes = []
    for knob in ("body_order", "polynomial_degree", "radial_basis_size"):
        value = mlip_training.get(knob, "auto")
        axes.append([int(v) for v in candidates[knob]] if value == "auto" else [int(value)])
    return [
        {"body_order": b, "polynomial_degree": d, "radial_basis_size": r}
        for b, d, r in itertools.product(*axes)
    ]


def functions_per_element(n_functions: int, n_elements: int) -> int:
    """Basis functions centred on each element: the basis has one ``ALL`` block, so all carry the same."""
    return math.ceil(n_functions / n_elements)


def underdetermined_elements(n_functions: int, environments: dict[str, int]) -> dict[str, int]:
    """Elements with fewer atomic environments in the dataset than basis functions each, with their counts.

    The active set of an element (MaxVol over its atoms' basis projections, from which extrapolation grades
    come) needs at least as many environments of it as the element has functions; with fewer, pace_activeset
    stops with "under-determined". A dilute alloy's minority element meets this first (10 labels of 32-atom
    Al7Mg cells: 33 Mg environments).
    """
    per_element = functions_per_element(n_functions, len(environments))
    return {element: count for element, count in environments.items() if count < per_element}


def fold_indices(n_frames: int, n_folds: int, seed: int = 0) -> list[list[int]]:
    """Shuffled, near-equal folds of frame indices for k-fold cross-validation."""
    if n_folds < 2 or n_folds > n_frames:
        raise ValueError(f"cannot make {n_folds} folds out of {n_frames} frames")
    order = np.random.default_rng(seed).permutation(n_frames)
    return [sorted(int(i) for i in fold) for fold in np.array_split(order, n_folds)]


def pareto_front(points: list[dict], error_key: str = "error", cost_key: str = "cost") -> list[dict]:
    """Points no other point beats on both error and cost, sorted by increasing cost."""
    ordered = sorted(points, key=lambda p: (p[cost_key], p[error_key]))
    front, best_error = [], np.inf
    for point in ordered:
        if point[error_key] < best_error:
            front.append(point)
            best_error = point[error_key]
    return front


def knee(front: list[dict], error_key: str = "error", cost_key: str = "cost") -> dict:
    """The front's point farthest from the chord joining its cheapest and its most accurate ends.

    Both axes are scaled to [0, 1] on the front (cost on a log scale, since costs span decades), so the
    knee is where paying more stops buying accuracy. Two points or fewer: the more accurate one.
    """
    if not front:
        raise ValueError("empty Pareto front")
    if len(front) <= 2:
        return min(front, key=lambda p: p[error_key])
    cost = np.log([p[cost_key] for p in front])
    error = np.array([p[error_key] for p in front], dtype=float)
    x = (cost - cost.min()) / (np.ptp(cost) or 1.0)
    y = (error - error.min()) / (np.ptp(error) or 1.0)
    # Chord from (0, 1) (cheapest, least accurate) to (1, 0); distance is proportional to 1 - x - y.
    return front[int(np.argmax(1.0 - x - y))]
