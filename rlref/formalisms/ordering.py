"""Policy orderings: the object every objective-specification formalism induces.

Subramani et al. (ICLR 2024, §2) compare formalisms by the *policy orderings* they can express: an
objective specification in environment E induces a total preorder ≽ on the stationary policies of
E, and formalism B can express formalism A (A ⊑ B) iff for every environment and every A-objective
there is a B-objective inducing the same ordering. On a finite list of policies an ordering is a
boolean matrix ``geq[i, j]`` = "policy i is at least as good as policy j".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PolicyOrdering", "check_preorder", "ordering_from_values", "ordering_from_compare"]


def check_preorder(geq: np.ndarray, total: bool = True, name: str = "ordering") -> np.ndarray:
    """Validate a relation as a (total) preorder; return it as a read-only bool array.

    Raises ValueError naming the first violation: a missing reflexive pair i ≽ i, a pair that is
    incomparable (when ``total``), or a transitivity failure i ≽ j, j ≽ k but not i ≽ k.
    """
    g = np.asarray(geq)
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise ValueError(f"{name} must be a square matrix geq[i, j], got shape {g.shape}")
    if g.dtype != bool:
        if not np.all(np.isin(g, (0, 1))):
            raise ValueError(f"{name} must be boolean (geq[i, j] in {{0, 1}})")
        g = g.astype(bool)
    n = g.shape[0]
    diag = np.flatnonzero(~np.diag(g))
    if diag.size:
        i = int(diag[0])
        raise ValueError(f"{name} is not a preorder: not reflexive at policy {i} (geq[{i}, {i}] is False)")
    if total:
        inc = np.argwhere(~g & ~g.T)
        if inc.size:
            i, j = (int(x) for x in inc[0])
            raise ValueError(f"{name} is not total: policies {i} and {j} are incomparable")
    comp = (g.astype(np.int64) @ g.astype(np.int64)) > 0
    bad = np.argwhere(comp & ~g)
    if bad.size:
        i, k = (int(x) for x in bad[0])
        j = int(np.flatnonzero(g[i] & g[:, k])[0])
        raise ValueError(f"{name} is not transitive: {i} >= {j} and {j} >= {k} but not {i} >= {k}")
    g = g.copy()
    g.setflags(write=False)
    del n
    return g


@dataclass(frozen=True, eq=False)
class PolicyOrdering:
    """A preorder on a finite list of policies: ``geq[i, j]`` iff policy i ≽ policy j.

    ``values`` holds the scores it came from when the formalism is real-valued (else None).
    """

    geq: np.ndarray
    values: np.ndarray | None = None
    total: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "geq", check_preorder(self.geq, total=self.total))

    @property
    def n(self) -> int:
        return int(self.geq.shape[0])

    def strict(self) -> np.ndarray:
        return self.geq & ~self.geq.T

    def ties(self) -> np.ndarray:
        return self.geq & self.geq.T

    def classes(self) -> list[list[int]]:
        """Indifference classes, best first (for a total preorder)."""
        left = list(range(self.n))
        out = []
        while left:
            top = [i for i in left if all(self.geq[i, j] for j in left)]
            if not top:  # partial preorder: fall back to maximal elements
                top = [i for i in left if not any(self.geq[j, i] and not self.geq[i, j] for j in left)]
            top_set = set(top)
            cls = [i for i in left if i in top_set]
            out.append(cls)
            left = [i for i in left if i not in top_set]
        return out

    def same_as(self, other: PolicyOrdering) -> bool:
        return self.geq.shape == other.geq.shape and bool(np.array_equal(self.geq, other.geq))

    def relations(self) -> list[tuple[int, int, str]]:
        """A sufficient list of constraints (i, j, '>' or '='): ties inside classes and one strict
        link between consecutive classes (total preorders), else every comparable pair."""
        if self.total:
            cls = self.classes()
            rel = [(c[0], k, "=") for c in cls for k in c[1:]]
            rel += [(a[0], b[0], ">") for a, b in zip(cls[:-1], cls[1:], strict=True)]
            return rel
        s, t = self.strict(), self.ties()
        return [(i, j, ">") for i, j in np.argwhere(s)] + [(i, j, "=") for i, j in np.argwhere(np.triu(t, 1))]


def ordering_from_values(values: Sequence[float], tol: float = 1e-9) -> PolicyOrdering:
    """geq[i, j] iff values[i] ≥ values[j] − tol·max(1, |values|) (ties within a relative tolerance).

    Raises ValueError on NaN values or a negative tolerance. Ties are grouped into classes of
    values within tol of the class's first member, so the relation is transitive by construction.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {v.shape}")
    if np.any(np.isnan(v)):
        raise ValueError(f"values must not be NaN (index {int(np.flatnonzero(np.isnan(v))[0])})")
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    scale = max(1.0, float(np.max(np.abs(v[np.isfinite(v)]), initial=0.0)))
    order = np.argsort(-v, kind="stable")
    level = np.empty(v.size, dtype=int)
    cur, anchor = -1, None
    for i in order:
        if anchor is None or not (v[i] >= anchor - tol * scale or (np.isinf(anchor) and v[i] == anchor)):
            cur += 1
            anchor = v[i]
        level[i] = cur
    geq = level[:, None] <= level[None, :]
    return PolicyOrdering(geq=geq, values=v)


def ordering_from_compare(items: Sequence, compare, total: bool = True) -> PolicyOrdering:
    """geq[i, j] iff compare(items[i], items[j]) >= 0 (compare returns -1, 0 or 1)."""
    n = len(items)
    geq = np.zeros((n, n), dtype=bool)
    for i in range(n):
        for j in range(n):
            geq[i, j] = True if i == j else compare(items[i], items[j]) >= 0
    return PolicyOrdering(geq=geq, total=total)
