"""Input validation for the torch objectives in ``rlref.llm``.

The torch counterpart of ``rlref._checks``: every check raises ``ValueError`` naming the argument,
the offending index and the value, so a shape mismatch or a NaN reward never turns into a silent
wrong loss or a bare broadcasting traceback deep inside a training step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "check_float_tensor",
    "check_finite_tensor",
    "check_index_tensor",
    "check_mask",
    "check_positive_scalar",
    "check_nonnegative_scalar",
    "check_probability",
    "check_same_shape",
    "check_choice",
    "masked_or_ones",
]


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
    """Raise ValueError naming the first NaN or ±inf entry of ``x``."""
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        idx = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(f"{name} must be finite; {name}[{', '.join(map(str, idx))}] = {float(x[idx])!r}")


def check_index_tensor(name: str, x: object, upper: int) -> torch.Tensor:
    """Check an integer tensor of token ids with every entry in ``[0, upper)``."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise ValueError(f"{name} must be an integer tensor of token ids, got dtype {x.dtype}")
    bad = (x < 0) | (x >= upper)
    if bool(bad.any()):
        idx = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(f"{name} must lie in [0, {upper}); {name}[{', '.join(map(str, idx))}] = {int(x[idx])}")
    return x


def check_same_shape(names: Sequence[str], tensors: Sequence[torch.Tensor]) -> None:
    """Raise ValueError if the tensors do not all have the shape of the first one."""
    ref = tuple(tensors[0].shape)
    for n, t in zip(names[1:], tensors[1:], strict=True):
        if tuple(t.shape) != ref:
            raise ValueError(f"{n} must have the shape of {names[0]} {ref}, got {tuple(t.shape)}")


def check_mask(name: str, mask: object, shape: Sequence[int]) -> torch.Tensor:
    """Validate a 0/1 mask of a given shape and return it as a bool tensor.

    Accepted dtypes: ``torch.bool``, or an integer dtype whose entries are all 0 or 1 (an
    ``attention_mask``). A floating-point mask is rejected: a soft weight is not a mask, and a
    float mask silently broadcast against a loss is a classic source of wrong normalizers.
    """
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        if torch.is_floating_point(mask) or torch.is_complex(mask):
            raise ValueError(f"{name} must be a bool (or 0/1 integer) tensor, got dtype {mask.dtype}")
        bad = (mask != 0) & (mask != 1)
        if bool(bad.any()):
            idx = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise ValueError(f"{name} must contain only 0 and 1; {name}[{', '.join(map(str, idx))}] = {int(mask[idx])}")
        mask = mask.bool()
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(mask.shape)}")
    return mask


def masked_or_ones(name: str, mask: object | None, shape: Sequence[int], device: torch.device) -> torch.Tensor:
    """``check_mask`` when a mask is given, else an all-True mask of ``shape``."""
    if mask is None:
        return torch.ones(tuple(shape), dtype=torch.bool, device=device)
    return check_mask(name, mask, shape)


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


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """Validate a string option."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return str(value)
