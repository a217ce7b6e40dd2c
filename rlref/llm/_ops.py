"""Masked reductions shared by the ``rlref.llm`` modules (private to the package).

Numerics (issue #11, items 6-7): statistics are accumulated in fp32 for half-precision inputs
(fp64 for fp64), and every mean / standard deviation is computed on values scaled by their
largest magnitude, so that squaring never overflows (fp16 rewards of 600, fp64 rewards of ±1e200)
and never underflows to a spurious 0. The square root is taken only where the variance is
positive, so a flat group (variance exactly 0) has a finite (zero) gradient, not the NaN of
``sqrt'(0) = inf`` times 0.
"""

from __future__ import annotations

import torch

__all__ = ["acc_dtype", "zero_masked", "masked_mean", "masked_std", "flat_group", "safe_div", "safe_sqrt"]


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp64 stays fp64; every other floating dtype (fp32, bf16, fp16) is accumulated in fp32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def zero_masked(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """x where m, else 0 (masked entries may hold NaN: ``where`` never propagates them)."""
    return torch.where(m, x, torch.zeros_like(x))


def _scale(x: torch.Tensor, m: torch.Tensor, dim: int | None) -> torch.Tensor:
    """Largest |x| over the valid entries (detached; 1 where that is 0), keepdim along ``dim``."""
    a = zero_masked(x.detach().abs(), m)
    s = a.amax() if dim is None else a.amax(dim=dim, keepdim=True)
    return torch.where(s > 0, s, torch.ones_like(s))


def masked_mean(x: torch.Tensor, m: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of x over the valid entries (all of them, or along ``dim`` with keepdim), overflow-safe."""
    s = _scale(x, m, dim)
    xm = zero_masked(x / s, m)
    if dim is None:
        return s * (xm.sum() / m.sum())
    return s * (xm.sum(dim=dim, keepdim=True) / m.sum(dim=dim, keepdim=True))


def safe_sqrt(v: torch.Tensor) -> torch.Tensor:
    """sqrt(v) for v >= 0 with a zero (not NaN) gradient at v = 0."""
    pos = v > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, v, torch.ones_like(v))), torch.zeros_like(v))


def masked_std(x: torch.Tensor, m: torch.Tensor, dim: int | None, unbiased: bool) -> torch.Tensor:
    """Standard deviation of x over the valid entries (Bessel-corrected when ``unbiased``), overflow-safe."""
    c = zero_masked(x - masked_mean(x, m, dim), m)
    s = _scale(c, m, dim)
    sq = (c / s) ** 2
    n = m.sum() if dim is None else m.sum(dim=dim, keepdim=True)
    denom = ((n - 1).clamp(min=1) if unbiased else n).to(x.dtype)
    tot = sq.sum() if dim is None else sq.sum(dim=dim, keepdim=True)
    return s * safe_sqrt(tot / denom)


def flat_group(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """True for groups (rows) whose valid entries are all equal (max == min): their advantage is 0."""
    big = torch.finfo(x.dtype).max
    hi = torch.where(m, x, torch.full_like(x, -big)).amax(dim=1, keepdim=True)
    lo = torch.where(m, x, torch.full_like(x, big)).amin(dim=1, keepdim=True)
    return hi == lo


def safe_div(num: torch.Tensor, den: torch.Tensor, eps: float) -> torch.Tensor:
    """num / (den + eps) where that denominator is > 0, else 0 (finite gradients on both branches)."""
    den = den + eps
    pos = den > 0
    return torch.where(pos, num / torch.where(pos, den, torch.ones_like(den)), torch.zeros_like(num))
