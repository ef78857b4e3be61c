"""Average-linkage grouping cut at a distance threshold, without scikit-learn.

``average_linkage_groups(dist, threshold)`` returns what
``AgglomerativeClustering(n_clusters=None, distance_threshold=threshold, metric="precomputed",
linkage="average").fit_predict(dist)`` returns — the same label *numbers*, not only the same
partition, because problems.parquet numbers its groups from them. Importing sklearn.cluster costs
~1 s (it pulls in scipy.stats and more); scipy.cluster.hierarchy ~0.3 s, and a rerun that regroups
one block has a budget of 3 s in total.

How sklearn gets the labels (read from sklearn/cluster/_agglomerative.py, 1.x): the merge tree is
``scipy.cluster.hierarchy.linkage`` of the upper triangle of ``dist`` (row by row); the number of
groups is one more than the number of merges at a distance ≥ threshold; the tree is cut by undoing
merges from the root down (always the newest remaining merge, kept in a heap of negated node ids),
and the groups are numbered in the order the nodes then sit in that heap's array.
"""

from __future__ import annotations

import heapq

import numpy as np


def average_linkage_groups(dist: np.ndarray, threshold: float) -> np.ndarray:
    """Group labels (0, 1, …) of the items of a square, symmetric distance matrix."""
    n = dist.shape[0]
    if dist.ndim != 2 or dist.shape[1] != n:
        raise ValueError(f"a square distance matrix is needed, got shape {dist.shape}")
    if n <= 1:
        return np.zeros(n, dtype=np.intp)
    from scipy.cluster.hierarchy import linkage

    # the upper triangle row by row (the same values, in the same order, as sklearn passes)
    condensed = np.asarray(dist, dtype=np.float64)[np.triu(np.ones((n, n), dtype=bool), k=1)]
    z = linkage(condensed, method="average")
    children = z[:, :2].astype(np.intp)
    n_groups = int(np.count_nonzero(z[:, 2] >= threshold)) + 1
    return _cut(children, n, n_groups)


def _cut(children: np.ndarray, n: int, n_groups: int) -> np.ndarray:
    """Labels after undoing the last ``n_groups - 1`` merges of the tree ``children`` (merge k
    makes node ``n + k``), numbered as sklearn's ``_hc_cut`` numbers them."""
    # A child's id is always below its parent's, so undoing "the largest node id left" n_groups-1
    # times undoes exactly the merges n-n_groups … n-2; the groups are the nodes left. Their order
    # is that of the heap's array, which depends on each push: replay the pushes (cheap: one heap
    # operation per group) rather than guess it.
    heap = [-(2 * n - 2)]  # the root
    for node in range(2 * n - 2, 2 * n - 1 - n_groups, -1):
        a, b = children[node - n]
        heapq.heappush(heap, -int(a))
        heapq.heapreplace(heap, -int(b))  # pops ``node`` (the smallest entry, being the largest id)
    heads = -np.asarray(heap, dtype=np.intp)
    # each leaf's group: follow parent links through the kept merges only (pointer jumping, in
    # numpy); a head is its own parent
    kept = n - n_groups  # merges 0 … kept-1 stay
    parent = np.arange(2 * n - 1, dtype=np.intp)
    parent[children[:kept].ravel()] = np.repeat(np.arange(n, n + kept, dtype=np.intp), 2)
    while True:
        up = parent[parent]
        if np.array_equal(up, parent):
            break
        parent = up
    label_of = np.full(2 * n - 1, -1, dtype=np.intp)
    label_of[heads] = np.arange(len(heads), dtype=np.intp)
    return label_of[parent[:n]]
