"""rlref.llm under hostile numerics (issue #11): extreme dtypes, NaN gradients, −inf/NaN logits,
meta tensors, overflowing PPO ratios, the messages, and the masks/lengths users pass.

Each test names the issue item it pins; every golden is a closed form written here."""

import math

import pytest

torch = pytest.importorskip("torch")

from rlref.llm import advantages as adv  # noqa: E402

SQ = 1.0 / math.sqrt(2.0)


# ----------------------------------------------------------------------------- item 6
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_item6_half_precision_group_normalizers_do_not_overflow(dtype):
    """Two rewards (0, 600): unbiased std 300·√2 gives GRPO ±1/√2; population std 300 gives ±1.
    In fp16, 300² = 9e4 overflows (max 65504), which used to make every advantage exactly 0."""
    r = torch.tensor([[0.0, 600.0]], dtype=dtype)
    tol = dict(atol=4e-3, rtol=0)
    torch.testing.assert_close(adv.grpo(r).float(), torch.tensor([[-SQ, SQ]]), **tol)
    torch.testing.assert_close(adv.reinforce_pp(r).float(), torch.tensor([[-1.0, 1.0]]), **tol)
    torch.testing.assert_close(adv.group_mean_batch_std(r).float(), torch.tensor([[-1.0, 1.0]]), **tol)
    assert adv.grpo(r).dtype == dtype


def test_item6_float64_rewards_of_1e200():
    """(−1e200, 1e200): squaring overflows fp64 (1e400); scaled statistics give ±1/√2 and ±1."""
    r = torch.tensor([[-1e200, 1e200]], dtype=torch.float64)
    torch.testing.assert_close(adv.grpo(r), torch.tensor([[-SQ, SQ]], dtype=torch.float64))
    torch.testing.assert_close(adv.reinforce_pp(r), torch.tensor([[-1.0, 1.0]], dtype=torch.float64))
    torch.testing.assert_close(adv.group_mean_batch_std(r), torch.tensor([[-1.0, 1.0]], dtype=torch.float64))
    # a batch of two groups: DLER's batch z-score of the group-centered rewards (±1e200 each) is ±1
    r2 = torch.tensor([[-1e200, 1e200], [1e200, -1e200]], dtype=torch.float64)
    torch.testing.assert_close(adv.dler_batch_normalized(r2), torch.tensor([[-1.0, 1.0], [1.0, -1.0]], dtype=torch.float64))
    # the mean of near-max values must not overflow either: rloo of (1e308, 1e308, 0)
    r3 = torch.tensor([[1e308, 1e308, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(adv.rloo(r3), torch.tensor([[0.5e308, 0.5e308, -1e308]], dtype=torch.float64))
