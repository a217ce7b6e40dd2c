"""Input validation for the torch objectives in ``rlref.llm`` (the one validation module of the torch side).

The torch counterpart of ``rlref._checks``: every check raises ``ValueError`` naming the argument,
the offending index and the value, so a shape mismatch or a NaN reward never turns into a silent
wrong loss or a bare broadcasting traceback deep inside a training step.

Meta tensors (``device="meta"``, used to trace shapes without data): the shape and dtype checks run
as usual; the *value* checks (finiteness, 0/1 masks, ranges, token ids) cannot run without data and
are skipped on meta tensors (:func:`is_meta`). A function whose control flow depends on values
(a quantile, a data-dependent selection) raises a ValueError saying it needs real data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "is_meta",
    "require_values",
    "check_float_tensor",
    "check_finite_tensor",
    "check_logits",
    "check_index_tensor",
    "check_integer_tensor",
    "check_mask",
    "check_bool_tensor",
    "check_lengths",
    "check_positive_tensor",
    "check_unit_interval_tensor",
    "check_positive_scalar",
    "check_nonnegative_scalar",
    "check_probability",
    "check_count",
    "check_same_shape",
    "check_choice",
    "masked_or_ones",
    "first_index",
    "check_group_rewards",
    "check_logp_pair",
    "check_any",
]

_INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def is_meta(*tensors: object) -> bool:
    """True if any argument is a meta tensor (shape only, no data): value checks are skipped for it."""
    return any(isinstance(t, torch.Tensor) and t.is_meta for t in tensors)


def require_values(what: str, *tensors: object) -> None:
    """Raise ValueError if a computation that depends on tensor values gets a meta tensor."""
    if is_meta(*tensors):
        raise ValueError(f"{what} depends on the tensor values (a data-dependent selection); it cannot run on meta tensors")


def first_index(bad: torch.Tensor) -> tuple[int, ...]:
    """Index of the first True entry of a bool tensor (for error messages)."""
    return tuple(int(i) for i in torch.nonzero(bad)[0])


def _fmt(name: str, idx: tuple[int, ...]) -> str:
    return f"{name}[{', '.join(map(str, idx))}]"


def check_float_tensor(name: str, x: object, ndim: int | Sequence[int] | None = None) -> torch.Tensor:
    """Check that ``x`` is a floating-point tensor with an allowed number of dimensions."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, got shape {tuple(x.shape)}")
    return x


def check_finite_tensor(name: str, x: torch.Tensor) -> None:
    """Raise ValueError naming the first NaN or ±inf entry of ``x`` (skipped on meta tensors)."""
    if x.is_meta:
        return
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        idx = first_index(bad)
        raise ValueError(f"{name} must be finite; {_fmt(name, idx)} = {float(x[idx])!r}")


def check_logits(name: str, x: object, ndim: int | Sequence[int] | None = None) -> torch.Tensor:
    """Validate logits ``[..., V]``: floating, a non-empty vocabulary axis, no NaN, no +inf, and at
    least one finite entry per row. −inf is allowed (a vocabulary mask / logits processor).
    """
    z = check_float_tensor(name, x, ndim)
    if z.ndim < 1 or z.shape[-1] == 0:
        raise ValueError(f"{name} must have a non-empty last (vocabulary) axis, got shape {tuple(z.shape)}")
    if z.is_meta:
        return z
    bad = torch.isnan(z) | (z == float("inf"))
    if bool(bad.any()):
        idx = first_index(bad)
        raise ValueError(f"{name} must not hold NaN or +inf; {_fmt(name, idx)} = {float(z[idx])!r}")
    dead = (z == -float("inf")).all(dim=-1)
    if bool(dead.any()):
        idx = first_index(dead)
        raise ValueError(f"{name} has a row with every logit -inf (no token possible) at {_fmt(name, idx)}")
    return z


def check_index_tensor(name: str, x: object, upper: int) -> torch.Tensor:
    """Check an integer tensor of token ids with every entry in ``[0, upper)``."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _INT_DTYPES:
        raise ValueError(f"{name} must be an integer tensor of token ids, got dtype {x.dtype}")
    if x.is_meta:
        return x
    bad = (x < 0) | (x >= upper)
    if bool(bad.any()):
        idx = first_index(bad)
        raise ValueError(f"{name} must lie in [0, {upper}); {_fmt(name, idx)} = {int(x[idx])}")
    return x


def check_integer_tensor(name: str, x: object, shape: Sequence[int], *, minimum: int | None = None) -> torch.Tensor:
    """Check an integer tensor of a given shape, optionally with every entry >= ``minimum``."""
    if not isinstance(x, torch.Tensor) or x.dtype not in _INT_DTYPES or tuple(x.shape) != tuple(shape):
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be an integer tensor of shape {list(shape)}, got {got}")
    if minimum is not None and not x.is_meta:
        bad = x < minimum
        if bool(bad.any()):
            idx = first_index(bad)
            raise ValueError(f"{name} must be >= {minimum}; {_fmt(name, idx)} = {int(x[idx])}")
    return x


def check_same_shape(names: Sequence[str], tensors: Sequence[torch.Tensor]) -> None:
    """Raise ValueError if the tensors do not all have the shape of the first one."""
    ref = tuple(tensors[0].shape)
    for n, t in zip(names[1:], tensors[1:], strict=True):
        if tuple(t.shape) != ref:
            raise ValueError(f"{n} must have the shape of {names[0]} {ref}, got {tuple(t.shape)}")


def check_mask(name: str, mask: object, shape: Sequence[int]) -> torch.Tensor:
    """Validate a 0/1 mask of a given shape and return it as a bool tensor.

    Accepted: ``torch.bool``; an integer dtype holding only 0 and 1 (the int64 ``attention_mask`` /
    ``response_mask`` that TRL and verl pass); a floating dtype holding only 0.0 and 1.0 (a float
    ``response_mask``). Any other value — a soft weight such as 0.5, a NaN — is an error: a soft
    weight is not a mask, and silently broadcasting one against a loss changes its normalizer.
    """
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if torch.is_complex(mask):
        raise ValueError(f"{name} must be a bool (or 0/1 integer or float) tensor, got dtype {mask.dtype}")
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(mask.shape)}")
    if mask.dtype == torch.bool:
        return mask
    if not mask.is_meta:
        bad = (mask != 0) & (mask != 1)
        if bool(bad.any()):
            idx = first_index(bad)
            raise ValueError(f"{name} must be a bool (or 0/1) tensor holding only 0 and 1; {_fmt(name, idx)} = {mask[idx].item()!r}")
    return mask != 0


def masked_or_ones(name: str, mask: object | None, shape: Sequence[int], device: torch.device) -> torch.Tensor:
    """``check_mask`` when a mask is given, else an all-True mask of ``shape``."""
    if mask is None:
        return torch.ones(tuple(shape), dtype=torch.bool, device=device)
    return check_mask(name, mask, shape)


def check_bool_tensor(name: str, x: object, shape: Sequence[int]) -> torch.Tensor:
    """Check a bool tensor of a given shape (a per-response flag such as ``correct`` or ``truncated``)."""
    if not isinstance(x, torch.Tensor) or x.dtype != torch.bool or tuple(x.shape) != tuple(shape):
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a bool tensor of shape {tuple(shape)}, got {got}")
    return x


def check_lengths(name: str, x: object, ndim: int | Sequence[int] | None = None, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Validate response lengths: a float or integer tensor (int64 token counts are what users pass),
    finite, every entry > 0. Integer lengths are converted to ``dtype`` (default: torch's default dtype).
    """
    if isinstance(x, torch.Tensor) and x.dtype in _INT_DTYPES:
        x = x.to(dtype or torch.get_default_dtype())
    ln = check_float_tensor(name, x, ndim)
    check_positive_tensor(name, ln)
    return ln


def check_positive_tensor(name: str, x: torch.Tensor) -> torch.Tensor:
    """Every entry finite and > 0."""
    check_finite_tensor(name, x)
    if not x.is_meta:
        bad = x <= 0
        if bool(bad.any()):
            idx = first_index(bad)
            raise ValueError(f"{name} must be > 0; {_fmt(name, idx)} = {float(x[idx])!r}")
    return x


def check_unit_interval_tensor(name: str, x: object, ndim: int | Sequence[int] | None = None) -> torch.Tensor:
    """A float tensor with every entry in [0, 1] (accuracies, probabilities, scores)."""
    t = check_float_tensor(name, x, ndim)
    check_finite_tensor(name, t)
    if not t.is_meta:
        bad = (t < 0) | (t > 1)
        if bool(bad.any()):
            idx = first_index(bad)
            raise ValueError(f"{name} must lie in [0, 1]; {_fmt(name, idx)} = {float(t[idx])!r}")
    return t


def check_positive_scalar(name: str, value: object) -> float:
    """Validate a strictly positive finite number (beta, a temperature, a length budget)."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a positive number, got {value!r}") from exc
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be > 0 and finite, got {value!r}")
    return v


def check_nonnegative_scalar(name: str, value: object) -> float:
    """Validate a finite number >= 0 (a coefficient that may be switched off)."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}") from exc
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be >= 0 and finite, got {value!r}")
    return v


def check_probability(name: str, value: object, *, open_left: bool = False, open_right: bool = False) -> float:
    """Validate a number in [0, 1] (ends optionally excluded)."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from exc
    lo_ok = v > 0 if open_left else v >= 0
    hi_ok = v < 1 if open_right else v <= 1
    if not (math.isfinite(v) and lo_ok and hi_ok):
        interval = f"{'(' if open_left else '['}0, 1{')' if open_right else ']'}"
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    return v


def check_count(name: str, value: object, minimum: int = 1) -> int:
    """Validate an int (not a bool) >= ``minimum`` (a step count, a group size, a chunk size)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """Validate a string option."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return str(value)


def check_group_rewards(rewards: object, mask: object | None, *, min_valid: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate group rewards ``[B, G]`` and their response mask; every group needs ``min_valid`` valid responses.

    Returns (rewards, bool mask). Masked rewards may hold anything (NaN included).
    """
    r = check_float_tensor("rewards", rewards, ndim=2)
    if r.shape[1] == 0:
        raise ValueError(f"rewards must have at least one response per group (G >= 1), got shape {tuple(r.shape)}")
    m = masked_or_ones("mask", mask, r.shape, r.device)
    if not r.is_meta:
        counts = m.sum(dim=1)
        small = counts < min_valid
        if bool(small.any()):
            b = int(torch.nonzero(small)[0])
            raise ValueError(f"mask[{b}] selects {int(counts[b])} valid responses in group {b} of rewards; "
                             f"this estimator needs at least {min_valid} per group")
    check_finite_tensor("rewards", torch.where(m, r, torch.zeros_like(r)))
    return r, m


def check_logp_pair(logp: object, other: object, other_name: str, mask: object | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate token log-probs ``logp[B, T]`` and a second ``[B, T]`` tensor (reference, BC, anchor)
    with a mask; returns (logp zeroed off the mask, other detached and zeroed, bool mask)."""
    lp = check_float_tensor("logp", logp, ndim=2)
    ot = check_float_tensor(other_name, other, ndim=2)
    check_same_shape(("logp", other_name), (lp, ot))
    m = masked_or_ones("mask", mask, lp.shape, lp.device)
    zero = torch.zeros_like(lp)
    lp0, ot0 = torch.where(m, lp, zero), torch.where(m, ot.detach(), zero)
    check_finite_tensor("logp", lp0.detach())
    check_finite_tensor(other_name, ot0)
    return lp0, ot0, m


def check_any(name: str, m: torch.Tensor, what: str = "token") -> None:
    """Raise ValueError if the bool mask ``m`` selects nothing (skipped on meta tensors)."""
    if not m.is_meta and not bool(m.any()):
        raise ValueError(f"{name} selects no {what}: the result is undefined")
