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
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np


def average_linkage_groups(dist: np.ndarray, threshold: float) -> np.ndarray:
    """Group labels (0, 1, …) of the items of a square, symmetric distance matrix."""
    n = dist.shape[0]
    if dist.ndim != 2 or dist.shape[1] != n:
        raise ValueError(f"a square distance matrix is needed, got shape {dist.shape}")
    if n <= 1:
        return np.zeros(n, dtype=np.intp)
    # the upper triangle row by row (the same values, in the same order, as sklearn passes)
    condensed = np.asarray(dist, dtype=np.float64)[np.triu(np.ones((n, n), dtype=bool), k=1)]
    z = _average_linkage(condensed, n)
    children = z[:, :2].astype(np.intp)
    n_groups = int(np.count_nonzero(z[:, 2] >= threshold)) + 1
    return _cut(children, n, n_groups)


#: scipy's method code of average linkage (``scipy.cluster.hierarchy._LINKAGE_METHODS``)
_AVERAGE = 2


def _average_linkage(condensed: np.ndarray, n: int) -> np.ndarray:
    """``scipy.cluster.hierarchy.linkage(condensed, method="average")``: for average linkage
    that function checks its input and returns ``_hierarchy.nn_chain(y, n, 2)`` — called here
    directly, the compiled module loaded without its package (importing scipy.cluster costs
    0.2-0.6 s: it imports scipy.cluster.vq and scipy.spatial, whose docstrings it parses; a
    rerun regroups one block in a few ms)."""
    nn_chain = _nn_chain()
    if nn_chain is None:
        from scipy.cluster.hierarchy import linkage

        return np.asarray(linkage(condensed, method="average"))
    y = np.ascontiguousarray(condensed, dtype=np.float64)
    if not np.all(np.isfinite(y)):  # as linkage checks
        raise ValueError("The condensed distance matrix must contain only finite values.")
    return np.asarray(nn_chain(y, n, _AVERAGE))


@cache
def _nn_chain() -> Callable[[np.ndarray, int, int], np.ndarray] | None:
    """scipy's compiled ``nn_chain`` (``scipy/cluster/_hierarchy``), loaded as the module it is
    (kept in sys.modules under its name: a later ``import scipy.cluster`` takes that one); None
    when it cannot be found or loaded (then ``linkage`` itself is called)."""
    name = "scipy.cluster._hierarchy"
    mod = sys.modules.get(name)
    if mod is None:
        try:
            import scipy

            folder = Path(scipy.__path__[0]) / "cluster"
            path = next((folder / f"_hierarchy{sfx}" for sfx in importlib.machinery.EXTENSION_SUFFIXES
                         if (folder / f"_hierarchy{sfx}").is_file()), None)
            spec = importlib.util.spec_from_file_location(name, path) if path else None
            if spec is None or spec.loader is None:
                return None
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            sys.modules[name] = mod
        except Exception:  # noqa: BLE001 - any failure: the public function instead
            return None
    return getattr(mod, "nn_chain", None)


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
