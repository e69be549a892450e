"""DIRECT sampling (Qi et al., npj Comput. Mater. 2024): pick the frames worth labelling from millions.

Standardise the descriptors, keep the principal components that explain `variance_threshold` of the
variance (each weighted by its explained-variance ratio, so the dominant directions dominate distances),
cluster with BIRCH into as many clusters as the labelling budget allows, and take k frames per cluster:
the one closest to the centroid first, then farthest-point picks inside the cluster.

Scale: every pass over the rows runs in chunks (a memory-mapped array of 10,000,000 rows works). The PCA
comes from the exact covariance accumulated chunk by chunk; BIRCH is fitted on a subsample with its
threshold chosen automatically from the data (the radius that splits the subsample into a few subclusters
per wanted cluster), then every row is assigned to the nearest final centroid. A hand-set BIRCH threshold
is what makes the reference implementation either run out of memory or merge everything.

Near-identical frames (distance below `duplicate_tolerance` times the RMS radius of the reduced data) are
never picked twice.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from aiida_autopipe.core.errors import InputError

DEFAULT_CHUNK_ROWS = 262_144


@dataclasses.dataclass
class DirectSelection:
    """Selected row indices (in selection order) and how the selection was made."""

    indices: np.ndarray
    cluster_of_selected: np.ndarray
    n_clusters: int
    n_nonempty_clusters: int
    n_components: int
    retained_variance: float
    birch_threshold: float
    n_subclusters: int
    duplicates_skipped: int

    def summary(self) -> dict:
        """JSON-serialisable record of the selection, without the per-row arrays."""
        return {
            "n_selected": len(self.indices),
            "n_clusters": self.n_clusters,
            "n_nonempty_clusters": self.n_nonempty_clusters,
            "n_covered_clusters": len(np.unique(self.cluster_of_selected)),
            "n_components": self.n_components,
            "retained_variance": self.retained_variance,
            "birch_threshold": self.birch_threshold,
            "n_subclusters": self.n_subclusters,
            "duplicates_skipped": self.duplicates_skipped,
        }


@dataclasses.dataclass
class ReducedSpace:
    """Affine map from descriptors to weighted principal components: z = (x - mean) @ projection."""

    mean: np.ndarray
    projection: np.ndarray
    retained_variance: float
    rms_radius: float

    def transform(self, features, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> np.ndarray:
        """Reduced rows in float32 (enough for distances between frames, half the memory)."""
        reduced = np.empty((len(features), self.projection.shape[1]), dtype=np.float32)
        projection = self.projection.astype(np.float32)
        offset = (self.mean @ self.projection).astype(np.float32)
        for start in range(0, len(features), chunk_rows):
            block = np.asarray(features[start : start + chunk_rows], dtype=np.float32)
            np.matmul(block, projection, out=reduced[start : start + len(block)])
            reduced[start : start + len(block)] -= offset
        return reduced


def fit_reduced_space(features, variance_threshold: float = 0.9, chunk_rows: int = DEFAULT_CHUNK_ROWS):
    """Standardise and PCA from the exact covariance, accumulated in chunks (memory independent of N)."""
    if not 0.0 < variance_threshold <= 1.0:
        raise InputError(
            "explorer.variance_threshold", f"{variance_threshold} is not in (0, 1]", "use e.g. 0.9"
        )
    n_rows, n_columns = features.shape
    total = np.zeros(n_columns)
    second = np.zeros((n_columns, n_columns))
    for start in range(0, n_rows, chunk_rows):
        block = np.asarray(features[start : start + chunk_rows], dtype=np.float64)
        total += block.sum(axis=0)
        second += block.T @ block
    mean = total / n_rows
    covariance = second / n_rows - np.outer(mean, mean)
    std = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    std[std < 1e-12 * max(std.max(), 1e-300)] = np.inf  # constant columns carry no information
    correlation = covariance / np.outer(std, std)
    eigenvalues, eigenvectors = np.linalg.eigh(correlation)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues = np.clip(eigenvalues[order], 0.0, None)
    eigenvectors = eigenvectors[:, order]
    if eigenvalues.sum() <= 0:
        raise InputError(
            "explorer.descriptors", "all descriptor columns are constant", "explore longer or hotter"
        )
    ratio = eigenvalues / eigenvalues.sum()
    n_components = int(np.searchsorted(np.cumsum(ratio), variance_threshold - 1e-12) + 1)
    n_components = min(n_components, len(ratio))
    weights = ratio[:n_components]
    projection = eigenvectors[:, :n_components] / std[:, None] * weights
    rms_radius = float(np.sqrt(np.sum(weights**2 * eigenvalues[:n_components])))
    return ReducedSpace(mean, projection, float(np.sum(weights)), rms_radius)


def direct_select(
    features,
    budget: int,
    k_per_cluster: int = 1,
    variance_threshold: float = 0.9,
    seed: int = 0,
    duplicate_tolerance: float = 1e-3,
    birch_sample_rows: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    n_jobs: int | None = None,
) -> DirectSelection:
    """Pick at most `budget` rows of `features` (N, D; an ndarray or a memmap) by DIRECT sampling.

    The number of BIRCH clusters is budget // k_per_cluster; rows left over (empty clusters, clusters made
    of duplicates) are filled round-robin with further farthest-point picks from the largest clusters.
    `n_jobs` threads (default: the CPUs this process may use) assign rows to clusters.
    """
    if budget < 1:
        raise InputError(
            "explorer.budget", f"budget {budget} is below 1", "give the number of frames to label"
        )
    if k_per_cluster < 1:
        raise InputError("explorer.k_per_cluster", f"{k_per_cluster} is below 1", "use 1 (DIRECT default)")
    n_rows = len(features)
    if n_rows == 0:
        raise InputError("explorer.trajectory", "no frames to select from", "check the surrogate MD ran")
    rng = np.random.default_rng(seed)
    space = fit_reduced_space(features, variance_threshold, chunk_rows)
    reduced = space.transform(features, chunk_rows)
    tolerance = duplicate_tolerance * space.rms_radius

    n_clusters = max(1, min(budget // k_per_cluster, n_rows))
    # BIRCH and the picker do many small matrix products, where BLAS threads only add contention
    with threadpool_limits(limits=1, user_api="blas"):
        centroids, threshold, n_subclusters = _birch_centroids(reduced, n_clusters, rng, birch_sample_rows)
    labels, distance2 = _assign(reduced, centroids, chunk_rows, n_jobs or len(os.sched_getaffinity(0)))
    with threadpool_limits(limits=1, user_api="blas"):
        picker = _Picker(reduced, labels, distance2, budget, tolerance)
        picker.run(k_per_cluster)
    indices = np.asarray(picker.picked, dtype=np.int64)
    return DirectSelection(
        indices=indices,
        cluster_of_selected=labels[indices],
        n_clusters=len(centroids),
        n_nonempty_clusters=len(picker.clusters),
        n_components=space.projection.shape[1],
        retained_variance=space.retained_variance,
        birch_threshold=threshold,
        n_subclusters=n_subclusters,
        duplicates_skipped=picker.duplicates_skipped,
    )


def _birch_centroids(reduced, n_clusters, rng, sample_rows=None, max_tries=8):
    """Fit BIRCH on a subsample with an automatic threshold; centroids of its n_clusters global clusters.

    The threshold starts at the median distance from a uniform sample to `target` random sample points
    (about the radius of the cells that split the sample into `target` pieces) and is rescaled until the CF
    tree has between n_clusters and a few times n_clusters leaves: enough subclusters for the global step
    to form n_clusters, few enough that the global (agglomerative) step stays small in time and memory.
    """
    from sklearn.cluster import Birch

    n_rows = len(reduced)
    sample_rows = sample_rows or min(100_000, max(10_000, 10 * n_clusters))
    pool = rng.choice(n_rows, size=min(n_rows, 10 * sample_rows), replace=False)
    uniform = np.asarray(reduced[np.sort(pool[:sample_rows])], dtype=np.float32)
    distinct = len(np.unique(uniform, axis=0))
    n_clusters = min(n_clusters, distinct)
    target = min(distinct, max(int(1.5 * n_clusters), min(int(2.5 * n_clusters), 5_000)))
    anchors = uniform[rng.choice(len(uniform), size=target, replace=False)]
    _, nearest2 = _assign(uniform, anchors, DEFAULT_CHUNK_ROWS)
    threshold = float(np.sqrt(np.median(nearest2)))
    # rare regions: a uniform sample of 10,000 rows misses a component holding 1 row in 100,000, so the
    # rows of a ten times larger pool that lie farthest from the anchors join the sample
    extra = np.empty(0, dtype=np.int64)
    if len(pool) > sample_rows:
        rest = np.sort(pool[sample_rows:])
        _, pool_gap = _assign(np.asarray(reduced[rest], dtype=np.float32), anchors, DEFAULT_CHUNK_ROWS)
        extra = rest[np.argsort(pool_gap)[-(sample_rows // 5) :]]
    sample_index = np.union1d(pool[:sample_rows], extra)
    sample = np.asarray(reduced[sample_index], dtype=np.float64)
    if threshold <= 0.0:
        threshold = float(np.sqrt(np.mean(nearest2[nearest2 > 0]))) if np.any(nearest2 > 0) else 1e-12
    for _attempt in range(max_tries):
        birch = Birch(threshold=threshold, n_clusters=None, branching_factor=50).fit(sample)
        n_subclusters = len(birch.subcluster_centers_)
        if n_subclusters < 1.2 * n_clusters and n_subclusters < distinct:
            threshold *= 0.7
        elif n_subclusters > 1.5 * target:
            threshold *= 1.3
        else:
            break
    n_clusters = min(n_clusters, n_subclusters)
    birch.set_params(n_clusters=n_clusters)
    birch.partial_fit()  # global clustering step only, on the subcluster centres
    sample_labels = birch.predict(sample)
    counts = np.bincount(sample_labels, minlength=n_clusters)
    centroids = np.zeros((n_clusters, sample.shape[1]))
    np.add.at(centroids, sample_labels, sample)
    centroids = centroids[counts > 0] / counts[counts > 0, None]
    return centroids.astype(np.float32), threshold, n_subclusters


def _nearest(rows: np.ndarray, centres: np.ndarray):
    """Squared distance to, and index of, the nearest centre for each row (one GEMM, updated in place)."""
    distance2 = rows @ (-2.0 * centres).T
    distance2 += (centres * centres).sum(axis=1)[None, :]
    index = np.argmin(distance2, axis=1)
    nearest = distance2[np.arange(len(rows)), index] + (rows * rows).sum(axis=1)
    return np.maximum(nearest, 0.0), index


def _assign(reduced, centroids, chunk_rows, n_jobs=1):
    """Nearest centroid of every row, in cache-sized chunks spread over `n_jobs` threads.

    Each thread runs single-threaded BLAS on its own chunks: on a shared machine, BLAS's own threads
    spin-wait against other processes and were measured several times slower than this.
    """
    n_rows = len(reduced)
    labels = np.empty(n_rows, dtype=np.int32)
    distance2 = np.empty(n_rows, dtype=np.float32)
    step = max(256, min(chunk_rows, 2_000_000 // max(len(centroids), 1)))

    def assign_chunk(start):
        d2, index = _nearest(reduced[start : start + step], centroids)
        labels[start : start + len(index)] = index
        distance2[start : start + len(index)] = d2

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=n_jobs) as pool:
        list(pool.map(assign_chunk, range(0, n_rows, step)))
    return labels, distance2


class _Picker:
    """Stratified picks: closest to the centroid per cluster, then farthest-point rounds; no duplicates."""

    def __init__(self, reduced, labels, distance2, budget, tolerance):
        self.reduced = reduced
        self.budget = budget
        self.tolerance2 = tolerance * tolerance
        order = np.lexsort((distance2, labels))
        counts = np.bincount(labels)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        self.clusters = [order[bounds[c] : bounds[c + 1]] for c in np.flatnonzero(counts)]
        self.picked: list[int] = []
        self.picked_vectors = np.empty((budget, reduced.shape[1]), dtype=np.float32)
        self.duplicates_skipped = 0
        self.cluster_picks: dict[int, list[int]] = {}
        self.gaps: dict[int, np.ndarray] = {}  # cluster -> distance2 of each member to the cluster's picks

    def run(self, k_per_cluster):
        for cluster in range(len(self.clusters)):
            self._pick_closest(cluster)
        for _ in range(k_per_cluster - 1):
            for cluster in range(len(self.clusters)):
                self._pick_farthest(cluster)
        by_size = sorted(range(len(self.clusters)), key=lambda c: -len(self.clusters[c]))
        progress = True
        while progress and len(self.picked) < self.budget:
            progress = any([self._pick_farthest(cluster) for cluster in by_size])

    def _full(self):
        return len(self.picked) >= self.budget

    def _is_duplicate(self, vector):
        if not self.picked:
            return False
        gaps = ((self.picked_vectors[: len(self.picked)] - vector) ** 2).sum(axis=1)
        return bool(gaps.min() <= self.tolerance2)

    def _accept(self, cluster, row):
        self.picked_vectors[len(self.picked)] = self.reduced[row]
        self.picked.append(int(row))
        self.cluster_picks.setdefault(cluster, []).append(int(row))
        if cluster in self.gaps:
            gap = ((self.reduced[self.clusters[cluster]] - self.reduced[row]) ** 2).sum(axis=1)
            np.minimum(self.gaps[cluster], gap, out=self.gaps[cluster])

    def _pick_closest(self, cluster):
        """The member closest to the centroid that duplicates no earlier pick (screened in batches)."""
        if self._full():
            return
        members = self.clusters[cluster]
        picked = self.picked_vectors[: len(self.picked)]
        start, size = 0, 16
        while start < len(members):
            batch = members[start : start + size]
            vectors = self.reduced[batch]
            fresh = np.arange(len(batch))
            if len(picked):
                gaps = vectors @ (-2.0 * picked).T
                gaps += (picked * picked).sum(1)
                gaps += (vectors * vectors).sum(1)[:, None]
                fresh = np.flatnonzero(gaps.min(axis=1) > self.tolerance2)
            for position in fresh:
                if not self._is_duplicate(vectors[position]):
                    self.duplicates_skipped += start + int(position)
                    self._accept(cluster, batch[position])
                    return
            start, size = start + len(batch), 4096
        self.duplicates_skipped += len(members)

    def _pick_farthest(self, cluster) -> bool:
        """Next farthest-point pick in the cluster; False when the cluster has nothing new to give."""
        if self._full():
            return False
        if cluster not in self.cluster_picks:
            self._pick_closest(cluster)
            return cluster in self.cluster_picks
        members = self.clusters[cluster]
        if cluster not in self.gaps:
            vectors = self.reduced[members]
            picks = self.reduced[self.cluster_picks[cluster]]
            self.gaps[cluster] = np.min([((vectors - pick) ** 2).sum(axis=1) for pick in picks], axis=0)
        gaps = self.gaps[cluster]
        while True:
            best = int(np.argmax(gaps))
            if gaps[best] <= self.tolerance2:
                return False
            row = members[best]
            if self._is_duplicate(self.reduced[row]):
                gaps[best] = 0.0
                self.duplicates_skipped += 1
                continue
            self._accept(cluster, row)
            return True
