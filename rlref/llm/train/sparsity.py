"""Update sparsity and rank of a fine-tuning run: which parameters did it change, and how many directions.

Mukherjee, Yuan, Hakkani-Tür, Peng (2025), "Reinforcement Learning Finetunes Small Subnetworks in
Large Language Models" (arXiv 2505.11711), measure RL's parameter update Δ = θ¹ − θ⁰ between the
model before (θ⁰, the SFT checkpoint) and after RL (θ¹):

* update sparsity (Sec. 2): sparsity(θ⁰, θ¹) = 1 − ‖θ¹ − θ⁰‖₀ / n, the fraction of the n parameters
  left unchanged. The authors' release (``check_sparsity.py``) loads both checkpoints in bf16 and
  counts Δᵢ ≠ 0 exactly, and also reports entries with |Δᵢ| ≤ ``atol`` = 1e-5 as unchanged
  (``torch.isclose(Δ, 0, atol=1e-5)``). Here :func:`changed_mask` does both, at two resolutions:
  ``"fp32"`` compares the float32 values, ``"bf16"`` rounds both to bfloat16 first (round to nearest
  even), so an update below half a bf16 ulp of the weight (≈ 2⁻⁹·|w|) is invisible: the paper's setting;
* rank (Sec. 4, "updates are sparse but full-rank"): the numerical rank of each 2-D update matrix
  relative to min(rows, cols). The release calls ``torch.linalg.matrix_rank`` on Δ in float32, i.e.
  counts singular values σᵢ > σ_max · max(rows, cols) · ε_fp32 (:func:`update_rank`), and skips
  1-D parameters (norms, biases);
* subnetwork overlap across runs (Sec. 5): with I₁, I₂ the index sets of the entries two runs changed,
  the one-sided overlaps o₁ = |I₁ ∩ I₂| / |I₁| and o₂ = |I₁ ∩ I₂| / |I₂| (our reading of the paper's
  o₁ = 1 − |I₁ \\ I₂|/|I₁|), against the chance level of independent random subsets of the same sizes,
  E[o₁] = |I₂|/n, E[o₂] = |I₁|/n. Also reported: Jaccard |I₁ ∩ I₂| / |I₁ ∪ I₂| and intersection over
  min = |I₁ ∩ I₂| / min(|I₁|, |I₂|) = max(o₁, o₂) (:func:`subnetwork_overlap`).

Inputs are two ``state_dict``-like mappings name -> tensor with the same keys and shapes; only floating
tensors are compared. Everything runs on the CPU in float64 where a difference is taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

__all__ = ["RESOLUTIONS", "changed_mask", "changed_masks", "update_rank", "MatrixUpdate", "UpdateSparsity", "update_sparsity",
           "Overlap", "subnetwork_overlap", "stratified_chance_o1", "magnitude_strata"]

RESOLUTIONS = ("fp32", "bf16")
_EPS32 = float(torch.finfo(torch.float32).eps)


def _at(x: torch.Tensor, resolution: str) -> torch.Tensor:
    if resolution == "fp32":
        return x.detach().to("cpu", torch.float32)
    if resolution == "bf16":
        return x.detach().to("cpu", torch.bfloat16)
    raise ValueError(f"resolution must be one of {list(RESOLUTIONS)}; got {resolution!r}")


def changed_mask(before: torch.Tensor, after: torch.Tensor, *, resolution: str = "fp32", atol: float = 0.0) -> torch.Tensor:
    """Entries a run changed: 1[|ρ(θ¹) − ρ(θ⁰)| > atol], with ρ = rounding to ``resolution``.

    ``resolution="fp32"``: ρ casts to float32; ``"bf16"``: ρ rounds to bfloat16 (nearest even), as when a
    checkpoint is loaded in bf16. ``atol = 0`` is exact inequality ρ(θ¹) ≠ ρ(θ⁰); ``atol > 0`` also
    counts |Δ| ≤ atol as unchanged (the release's ``--tolerances 1e-5``). The difference is taken in
    float64 of the rounded values. NaN entries raise.

    Shapes: before[...], after[...] (same shape) -> bool[...].

    References: Mukherjee et al. (2025), arXiv 2505.11711, Sec. 2 (update sparsity); release
    github.com/SagnikMukherjee/sparsity_in_rl, ``check_sparsity.py``.
    """
    if not (isinstance(before, torch.Tensor) and isinstance(after, torch.Tensor)):
        raise ValueError(f"before and after must be tensors; got {type(before).__name__}, {type(after).__name__}")
    if before.shape != after.shape:
        raise ValueError(f"before and after must have the same shape; got {tuple(before.shape)} and {tuple(after.shape)}")
    if not (before.is_floating_point() and after.is_floating_point()):
        raise ValueError(f"before and after must be floating tensors; got {before.dtype} and {after.dtype}")
    if not (isinstance(atol, (int, float)) and atol >= 0):
        raise ValueError(f"atol must be a number >= 0; got {atol!r}")
    a, b = _at(before, resolution), _at(after, resolution)
    if bool(torch.isnan(a).any() | torch.isnan(b).any()):
        raise ValueError("before/after contain NaN; an update of NaN weights has no sparsity")
    if atol == 0:
        return a != b
    return (b.double() - a.double()).abs() > float(atol)


def _pairs(before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor]) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    if set(before) != set(after):
        only_b, only_a = sorted(set(before) - set(after)), sorted(set(after) - set(before))
        raise ValueError(f"before and after must hold the same keys; only in before: {only_b[:5]}, only in after: {only_a[:5]}")
    out = []
    for name in before:
        x, y = before[name], after[name]
        if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
            raise ValueError(f"state dict entry {name!r} must be a tensor in both; got {type(x).__name__}, {type(y).__name__}")
        if x.shape != y.shape:
            raise ValueError(f"state dict entry {name!r}: shapes differ, {tuple(x.shape)} vs {tuple(y.shape)}")
        if x.is_floating_point() and y.is_floating_point():
            out.append((name, x, y))
    if not out:
        raise ValueError("before and after hold no floating tensors to compare")
    return out


def changed_masks(before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor], *, resolution: str = "fp32",
                  atol: float = 0.0) -> dict[str, torch.Tensor]:
    """:func:`changed_mask` of every floating entry of two state dicts (same keys and shapes), by name."""
    return {n: changed_mask(x, y, resolution=resolution, atol=atol) for n, x, y in _pairs(before, after)}


def update_rank(delta: torch.Tensor, *, rtol: float | None = None) -> int:
    """Numerical rank of an update matrix Δ[m, k]: #{i : σᵢ(Δ) > tol}.

    tol = σ_max · ``rtol``, with the default rtol = max(m, k) · ε_fp32 (ε_fp32 = 2⁻²³): the tolerance of
    ``torch.linalg.matrix_rank`` on a float32 matrix, which is what the release computes (Δ is known only
    to float32 precision, so singular values below this are rounding noise). Singular values are taken in
    float64. Δ = 0 has rank 0.

    References: Mukherjee et al. (2025), arXiv 2505.11711, Sec. 4 (update rank); release
    ``src/update_rank.py``; Golub & Van Loan, "Matrix Computations", Sec. 5.4.1 (numerical rank).
    """
    if not isinstance(delta, torch.Tensor) or delta.ndim != 2:
        raise ValueError(f"delta must be a 2-D tensor; got {getattr(delta, 'shape', type(delta).__name__)}")
    if not bool(torch.isfinite(delta).all()):
        raise ValueError("delta must be finite")
    if rtol is not None and not (isinstance(rtol, (int, float)) and rtol >= 0):
        raise ValueError(f"rtol must be a number >= 0 or None; got {rtol!r}")
    s = torch.linalg.svdvals(delta.detach().to("cpu", torch.float64))
    if s.numel() == 0 or float(s[0]) == 0.0:
        return 0
    r = max(delta.shape) * _EPS32 if rtol is None else float(rtol)
    return int((s > float(s[0]) * r).sum())


@dataclass(frozen=True)
class MatrixUpdate:
    """One parameter's update: ``changed_fp32`` / ``changed_bf16`` = fraction of its entries changed at that
    resolution (with the tolerance ``atol`` of :func:`update_sparsity`); for a 2-D parameter ``rank`` of the
    float32 update and ``max_rank`` = min(rows, cols) (None for 1-D parameters)."""

    name: str
    shape: tuple[int, ...]
    numel: int
    changed_fp32: float
    changed_bf16: float
    rank: int | None
    max_rank: int | None

    @property
    def rank_ratio(self) -> float | None:
        return None if self.rank is None or not self.max_rank else self.rank / self.max_rank


@dataclass(frozen=True)
class UpdateSparsity:
    """A run's update over all floating parameters: ``changed_fp32`` / ``changed_bf16`` = fraction of ALL entries
    changed (n-weighted), ``sparsity_*`` = 1 − that (the paper's update sparsity), ``mean_rank_ratio`` = mean over
    2-D parameters of rank / min(rows, cols) (the release's average), ``per_matrix`` the parameters in state-dict
    order, ``atol`` the tolerance used."""

    per_matrix: tuple[MatrixUpdate, ...]
    changed_fp32: float
    changed_bf16: float
    mean_rank_ratio: float | None
    atol: float

    @property
    def sparsity_fp32(self) -> float:
        return 1.0 - self.changed_fp32

    @property
    def sparsity_bf16(self) -> float:
        return 1.0 - self.changed_bf16


def update_sparsity(before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor], *, atol: float = 0.0,
                    rtol: float | None = None) -> UpdateSparsity:
    """Per parameter and overall: the fraction of entries changed at fp32 and at bf16 resolution
    (:func:`changed_mask`, tolerance ``atol``) and the numerical rank of each 2-D update Δ = θ¹ − θ⁰ in
    float32 (:func:`update_rank`, ``rtol``).

    sparsity(θ⁰, θ¹) = 1 − ‖θ¹ − θ⁰‖₀ / n over all n floating entries.

    References: Mukherjee et al. (2025), arXiv 2505.11711, Sec. 2 (sparsity), Sec. 4 (rank).
    """
    rows: list[MatrixUpdate] = []
    n = c32 = c16 = 0
    for name, x, y in _pairs(before, after):
        m32 = changed_mask(x, y, resolution="fp32", atol=atol)
        m16 = changed_mask(x, y, resolution="bf16", atol=atol)
        k = x.numel()
        rank = max_rank = None
        if x.ndim == 2:
            rank = update_rank(_at(y, "fp32") - _at(x, "fp32"), rtol=rtol)
            max_rank = min(x.shape)
        s32, s16 = int(m32.sum()), int(m16.sum())
        rows.append(MatrixUpdate(name=name, shape=tuple(x.shape), numel=k, changed_fp32=s32 / k if k else 0.0,
                                 changed_bf16=s16 / k if k else 0.0, rank=rank, max_rank=max_rank))
        n, c32, c16 = n + k, c32 + s32, c16 + s16
    ratios = [r.rank_ratio for r in rows if r.rank_ratio is not None]
    return UpdateSparsity(per_matrix=tuple(rows), changed_fp32=c32 / n if n else 0.0, changed_bf16=c16 / n if n else 0.0,
                          mean_rank_ratio=sum(ratios) / len(ratios) if ratios else None, atol=float(atol))


@dataclass(frozen=True)
class Overlap:
    """Overlap of two runs' changed-entry sets I₁, I₂ among n entries: ``o1`` = |I₁∩I₂|/|I₁|, ``o2`` = |I₁∩I₂|/|I₂|,
    ``jaccard`` = |I₁∩I₂|/|I₁∪I₂|, ``intersection_over_min`` = |I₁∩I₂|/min(|I₁|,|I₂|); the chance levels for
    independent uniformly random subsets of the same sizes: ``random_o1`` = |I₂|/n, ``random_o2`` = |I₁|/n,
    ``random_jaccard`` = d₁d₂/(d₁ + d₂ − d₁d₂) with dᵢ = |Iᵢ|/n (ratio of the expectations); counts
    ``n``, ``size1``, ``size2``, ``intersection``. A ratio over an empty set is NaN."""

    o1: float
    o2: float
    jaccard: float
    intersection_over_min: float
    random_o1: float
    random_o2: float
    random_jaccard: float
    n: int
    size1: int
    size2: int
    intersection: int


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


def _flat(masks: Mapping[str, torch.Tensor] | torch.Tensor, keys: list[str] | None) -> torch.Tensor:
    if isinstance(masks, torch.Tensor):
        return masks.reshape(-1).bool()
    return torch.cat([masks[k].reshape(-1).bool() for k in keys]) if keys else torch.zeros(0, dtype=torch.bool)


def subnetwork_overlap(mask1: Mapping[str, torch.Tensor] | torch.Tensor, mask2: Mapping[str, torch.Tensor] | torch.Tensor) -> Overlap:
    """Overlap of the entries changed by two runs (masks from :func:`changed_masks` or two bool tensors).

    o₁ = |I₁ ∩ I₂| / |I₁|,  o₂ = |I₁ ∩ I₂| / |I₂|  (chance: |I₂|/n and |I₁|/n),  Jaccard |I₁∩I₂|/|I₁∪I₂|,
    intersection over min = max(o₁, o₂).

    References: Mukherjee et al. (2025), arXiv 2505.11711, Sec. 5 (subnetwork consistency across seeds,
    data and algorithms; one-sided overlaps against a random baseline).
    """
    keys = None
    if isinstance(mask1, Mapping) != isinstance(mask2, Mapping):
        raise ValueError("mask1 and mask2 must both be mappings name -> bool tensor, or both tensors")
    if isinstance(mask1, Mapping):
        if set(mask1) != set(mask2):
            raise ValueError(f"mask1 and mask2 must hold the same keys; differ at {sorted(set(mask1) ^ set(mask2))[:5]}")
        keys = list(mask1)
        for k in keys:
            if mask1[k].shape != mask2[k].shape:
                raise ValueError(f"mask entry {k!r}: shapes differ, {tuple(mask1[k].shape)} vs {tuple(mask2[k].shape)}")
    a, b = _flat(mask1, keys), _flat(mask2, keys)
    if a.shape != b.shape:
        raise ValueError(f"mask1 and mask2 must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}")
    n, s1, s2 = a.numel(), int(a.sum()), int(b.sum())
    inter, union = int((a & b).sum()), int((a | b).sum())
    d1, d2 = _ratio(s1, n), _ratio(s2, n)
    rj = d1 * d2 / (d1 + d2 - d1 * d2) if n and (d1 + d2) > 0 else float("nan")
    return Overlap(o1=_ratio(inter, s1), o2=_ratio(inter, s2), jaccard=_ratio(inter, union), intersection_over_min=_ratio(inter, min(s1, s2)),
                   random_o1=d2, random_o2=d1, random_jaccard=rj, n=n, size1=s1, size2=s2, intersection=inter)


def stratified_chance_o1(mask1: torch.Tensor, mask2: torch.Tensor, strata: torch.Tensor) -> float:
    """Chance level of o₁ = |I₁ ∩ I₂| / |I₁| when I₂ is redrawn uniformly WITHIN each stratum, keeping its size there.

    E[o₁] = Σ_s |I₁ ∩ S| · |I₂ ∩ S| / |S|  /  |I₁|  (hypergeometric mean per stratum S). With one stratum it is the
    uniform chance |I₂|/n of :class:`Overlap`; strata by weight magnitude (:func:`magnitude_strata`) give the overlap
    expected if which entries change depended on |w| only (at bf16 resolution an update is visible iff it exceeds
    about half an ulp of w, so both runs change small weights more often). Derived here. NaN if I₁ is empty.

    Shapes: mask1[n], mask2[n] bool, strata[n] integer labels (flattened) -> float.
    """
    a, b, s = mask1.reshape(-1).bool(), mask2.reshape(-1).bool(), strata.reshape(-1)
    if not (a.shape == b.shape == s.shape):
        raise ValueError(f"mask1, mask2 and strata must have the same number of entries; got {a.numel()}, {b.numel()}, {s.numel()}")
    if s.is_floating_point() or s.dtype == torch.bool:
        raise ValueError(f"strata must hold integer labels; got dtype {s.dtype}")
    k = int(a.sum())
    if k == 0:
        return float("nan")
    _, inv = torch.unique(s, return_inverse=True)
    size = torch.bincount(inv).double()
    n1 = torch.bincount(inv, weights=a.double(), minlength=size.numel())
    n2 = torch.bincount(inv, weights=b.double(), minlength=size.numel())
    return float((n1 * n2 / size).sum() / k)


def magnitude_strata(weights: Mapping[str, torch.Tensor] | torch.Tensor, bins: int = 10) -> torch.Tensor:
    """Quantile bin (0 .. bins − 1) of |w| of every entry, flattened in the mapping's key order: equal-count strata
    by weight magnitude for :func:`stratified_chance_o1`."""
    if not (isinstance(bins, int) and bins >= 1):
        raise ValueError(f"bins must be an integer >= 1; got {bins!r}")
    w = weights.reshape(-1) if isinstance(weights, torch.Tensor) else torch.cat([weights[k].reshape(-1) for k in weights])
    a = w.detach().to("cpu", torch.float64).abs()
    order = torch.argsort(a, stable=True)
    out = torch.empty(a.numel(), dtype=torch.long)
    out[order] = torch.arange(a.numel()) * bins // max(a.numel(), 1)
    return out
