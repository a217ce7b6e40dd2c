"""Tests for rlref.llm.advantages: hand-computed formulas, invariances, padding, bad inputs."""

import math

import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rlref.llm import advantages as adv  # noqa: E402

GROUP_FNS = [adv.grpo, adv.dr_grpo, adv.rloo, adv.group_mean_batch_std, adv.dler_batch_normalized]
SCALE_INVARIANT = [adv.grpo, adv.group_mean_batch_std, adv.dler_batch_normalized]


def _t(x):
    return torch.tensor(x, dtype=torch.float64)


def test_grpo_hand_case():
    # r = (1, 0, 0, 1): mean 1/2, unbiased std sqrt(1/3) -> A = ±(1/2)·sqrt(3)
    a = adv.grpo(_t([[1.0, 0.0, 0.0, 1.0]]), eps=0.0)
    s = 0.5 * math.sqrt(3.0)
    torch.testing.assert_close(a, _t([[s, -s, -s, s]]))
    # population std 1/2 -> A = ±1
    torch.testing.assert_close(adv.grpo(_t([[1.0, 0.0, 0.0, 1.0]]), eps=0.0, unbiased=False), _t([[1.0, -1.0, -1.0, 1.0]]))


def test_dr_grpo_and_rloo_hand_cases():
    r = _t([[1.0, 2.0, 3.0]])
    torch.testing.assert_close(adv.dr_grpo(r), _t([[-1.0, 0.0, 1.0]]))
    # leave-one-out baselines: (2+3)/2, (1+3)/2, (1+2)/2
    torch.testing.assert_close(adv.rloo(r), _t([[1 - 2.5, 2 - 2.0, 3 - 1.5]]))


def test_reinforce_pp_and_batch_std_hand_cases():
    r = _t([[0.0, 2.0], [4.0, 6.0]])  # batch mean 3, population std sqrt(5)
    s5 = math.sqrt(5.0)
    torch.testing.assert_close(adv.reinforce_pp(r, eps=0.0), (r - 3.0) / s5)
    # group means 1 and 5, batch std sqrt(5)
    torch.testing.assert_close(adv.group_mean_batch_std(r, eps=0.0), _t([[-1 / s5, 1 / s5], [-1 / s5, 1 / s5]]))
    # DLER: centered (-1, 1, -1, 1): batch mean 0, std 1
    torch.testing.assert_close(adv.dler_batch_normalized(r, eps=0.0), _t([[-1.0, 1.0], [-1.0, 1.0]]))


@pytest.mark.parametrize("fn", GROUP_FNS + [adv.reinforce_pp])
def test_flat_groups_give_zero_not_nan(fn):
    r = _t([[0.1, 0.1, 0.1], [1.0, 1.0, 1.0]]) if fn is not adv.reinforce_pp else _t([[0.1, 0.1, 0.1], [0.1, 0.1, 0.1]])
    out = fn(r) if fn is not adv.grpo else fn(r, eps=0.0)
    assert torch.equal(out, torch.zeros_like(r))
    # a flat group next to a non-flat one still gets exactly zero
    r2 = _t([[0.1, 0.1, 0.1], [0.0, 1.0, 2.0]])
    out2 = fn(r2)
    assert torch.isfinite(out2).all()
    if fn is not adv.reinforce_pp:
        assert torch.equal(out2[0], torch.zeros(3, dtype=torch.float64))


# rewards on a 1/4 grid (verifier-style scores): spreads are either 0 or >= 1/4, so float
# cancellation in r + c cannot turn a flat group into a non-flat one.
rewards_st = st.lists(st.lists(st.integers(-20, 20).map(lambda k: k / 4), min_size=3, max_size=3), min_size=2, max_size=3)


@settings(max_examples=20, deadline=None)
@given(rewards_st, st.integers(-40, 40).map(lambda k: k / 4), st.floats(0.1, 10), st.permutations(range(3)))
def test_group_invariances(rows, shift, scale, perm):
    """Adding c leaves group-normalized advantages unchanged; permuting a group permutes them;
    std-normalized ones are invariant to positive scaling."""
    r = _t(rows)
    p = torch.tensor(perm)
    for fn in GROUP_FNS:
        base = fn(r, eps=0.0) if fn in SCALE_INVARIANT else fn(r)
        shifted = fn(r + shift, eps=0.0) if fn in SCALE_INVARIANT else fn(r + shift)
        torch.testing.assert_close(shifted, base, atol=1e-7, rtol=1e-6)
        permuted = fn(r[:, p]) if fn not in SCALE_INVARIANT else fn(r[:, p], eps=0.0)
        torch.testing.assert_close(permuted, base[:, p], atol=1e-9, rtol=1e-9)
    for fn in SCALE_INVARIANT:
        torch.testing.assert_close(fn(scale * r, eps=0.0), fn(r, eps=0.0), atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("fn", GROUP_FNS)
def test_padding_never_changes_group_advantages(fn):
    g = torch.Generator().manual_seed(0)
    r = torch.randn(3, 4, generator=g, dtype=torch.float64)
    padded = torch.cat([r, torch.full((3, 2), float("nan"), dtype=torch.float64)], dim=1)
    mask = torch.cat([torch.ones(3, 4, dtype=torch.bool), torch.zeros(3, 2, dtype=torch.bool)], dim=1)
    out = fn(padded, mask)
    torch.testing.assert_close(out[:, :4], fn(r))
    assert torch.equal(out[:, 4:], torch.zeros(3, 2, dtype=torch.float64))


def test_unequal_groups_via_mask_match_separate_calls():
    r = _t([[1.0, 2.0, 4.0], [3.0, 5.0, 0.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    out = adv.grpo(r, mask, eps=0.0)
    torch.testing.assert_close(out[1, :2], adv.grpo(_t([[3.0, 5.0]]), eps=0.0)[0])
    torch.testing.assert_close(out[0], adv.grpo(r[:1], eps=0.0)[0])


def _gae_loop(r, v, gamma, lam, boot=0.0):
    n = len(r)
    out = [0.0] * n
    last = 0.0
    for t in reversed(range(n)):
        nv = v[t + 1] if t + 1 < n else boot
        delta = r[t] + gamma * nv - v[t]
        last = delta + gamma * lam * last
        out[t] = last
    return out


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 6), st.floats(0, 1), st.floats(0, 1), st.integers(0, 1000))
def test_gae_matches_python_loop(t_len, gamma, lam, seed):
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(2, t_len, generator=g, dtype=torch.float64)
    v = torch.randn(2, t_len, generator=g, dtype=torch.float64)
    boot = torch.randn(2, generator=g, dtype=torch.float64)
    out = adv.gae(r, v, gamma=gamma, lam=lam, bootstrap=boot)
    for b in range(2):
        ref = _gae_loop(r[b].tolist(), v[b].tolist(), gamma, lam, float(boot[b]))
        torch.testing.assert_close(out[b], _t(ref))


def test_gae_padding_anywhere_is_invisible():
    g = torch.Generator().manual_seed(1)
    r = torch.randn(1, 5, generator=g, dtype=torch.float64)
    v = torch.randn(1, 5, generator=g, dtype=torch.float64)
    ref = adv.gae(r, v, gamma=0.9, lam=0.8)
    # insert masked junk at positions 0, 3 and the end
    cols = [None, 0, 1, 2, None, 3, 4, None]
    rp = torch.stack([r[0, c] if c is not None else torch.tensor(float("nan"), dtype=torch.float64) for c in cols]).unsqueeze(0)
    vp = torch.stack([v[0, c] if c is not None else torch.tensor(123.0, dtype=torch.float64) for c in cols]).unsqueeze(0)
    m = torch.tensor([[c is not None for c in cols]])
    out = adv.gae(rp, vp, m, gamma=0.9, lam=0.8)
    torch.testing.assert_close(out[m].unsqueeze(0), ref)
    assert torch.equal(out[~m], torch.zeros(3, dtype=torch.float64))


def test_tppo_extended_gae_bootstraps_truncated_only():
    r = _t([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    v = _t([[0.5, 0.6, 0.7], [0.2, 0.3, 0.4]])
    m = torch.tensor([[True, True, True], [True, True, False]])
    trunc = torch.tensor([False, True])
    out = adv.tppo_extended_gae(r, v, m, trunc, gamma=1.0, lam=1.0)
    # terminated row: lambda = gamma = 1 -> A_t = sum of future rewards - V(s_t)
    torch.testing.assert_close(out[0], _t([1 - 0.5, 1 - 0.6, 1 - 0.7]))
    # truncated row (valid tokens 0, 1): bootstrap V(s_2) := V(s_1) = 0.3 -> A_t = 0.3 - V(s_t)
    torch.testing.assert_close(out[1], _t([0.3 - 0.2, 0.0, 0.0]))


def test_drpo_weights_closed_form():
    lr = _t([[0.0, math.log(3.0), 5.0, 7.0]])
    correct = torch.tensor([[True, True, False, False]])
    w = adv.drpo_weights(lr, correct, lam=1.0)
    # positives: exp(0), exp(log 3) normalized -> 1/4, 3/4; negatives -1/2 each
    torch.testing.assert_close(w, _t([[0.25, 0.75, -0.5, -0.5]]))
    # correct responses are never pushed down, whatever their length reward
    w2 = adv.drpo_weights(_t([[-100.0, 0.0, 1.0]]), torch.tensor([[True, True, False]]), lam=0.5)
    assert bool((w2[0, :2] > 0).all())
    # no correct response: only the negative side
    w3 = adv.drpo_weights(_t([[1.0, 2.0]]), torch.tensor([[False, False]]))
    torch.testing.assert_close(w3, _t([[-0.5, -0.5]]))


def test_igpo_turn_rewards_and_advantages():
    # p_0 = 0.1, p_1 = 0.4, p_2 = 0.3; 3 turns, outcome 1.0 on the last
    lp = _t([[math.log(0.1), math.log(0.4), math.log(0.3), math.log(0.9)]])
    rew = adv.igpo_turn_rewards(lp, _t([1.0]))
    torch.testing.assert_close(rew, _t([[0.3, -0.1, 1.0]]))
    # padded turns: only 2 valid -> gain on turn 1, outcome on turn 2
    rew2 = adv.igpo_turn_rewards(lp, _t([0.5]), torch.tensor([[True, True, False]]))
    torch.testing.assert_close(rew2, _t([[0.3, 0.5, 0.0]]))
    # advantages: z-normalize the group's turn rewards (population std), discounted sum
    tr = _t([[[1.0, 0.0], [0.0, 1.0]]])
    a = adv.igpo_advantages(tr, gamma=0.5, eps=0.0)
    z = _t([[[1.0, -1.0], [-1.0, 1.0]]])
    expect = _t([[[z[0, 0, 0] + 0.5 * z[0, 0, 1], z[0, 0, 1]], [z[0, 1, 0] + 0.5 * z[0, 1, 1], z[0, 1, 1]]]])
    torch.testing.assert_close(a, expect)


def test_empg_hand_case():
    h = _t([[0.0, 1.0]])
    a = adv.empg_modulate(_t([2.0]), h, k=1.0, k_f=1.0, zeta=0.1, eps=1e-12)
    raw = _t([1.0, math.exp(-1.0)])
    gs = raw / raw.mean()
    torch.testing.assert_close(a, _t([[gs[0] * 2 + 0.1 * math.exp(-1.0), gs[1] * 2]]), atol=1e-9, rtol=1e-9)


def test_duration_weights_hand_case():
    out = adv.duration_aware_weights(_t([1.0, -1.0, 2.0]), _t([1.0, 3.0, 2.0]))
    torch.testing.assert_close(out, _t([0.5, -1.5, 2.0]))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="rewards must be finite"):
        adv.grpo(_t([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="mask must have shape"):
        adv.grpo(_t([[1.0, 2.0]]), torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="valid responses"):
        adv.grpo(_t([[1.0, 2.0]]), torch.tensor([[False, False]]))
    with pytest.raises(ValueError, match="at least 2"):
        adv.rloo(_t([[1.0]]))
    with pytest.raises(ValueError, match="G >= 1"):
        adv.grpo(torch.zeros(2, 0, dtype=torch.float64))
    with pytest.raises(ValueError, match="2 dimensions"):
        adv.grpo(_t([1.0, 2.0]))
    with pytest.raises(ValueError, match="bool"):
        adv.grpo(_t([[1.0, 2.0]]), torch.full((1, 2), 0.5))
    with pytest.raises(ValueError, match="values must have the shape"):
        adv.gae(_t([[1.0, 2.0]]), _t([[1.0]]))
    with pytest.raises(ValueError, match="gamma"):
        adv.gae(_t([[1.0]]), _t([[1.0]]), gamma=1.5)
    with pytest.raises(ValueError, match="lam must be > 0"):
        adv.drpo_weights(_t([[1.0]]), torch.tensor([[True]]), lam=0.0)
    with pytest.raises(ValueError, match="durations must be > 0"):
        adv.duration_aware_weights(_t([1.0]), _t([0.0]))
    with pytest.raises(ValueError, match="prefix"):
        adv.igpo_turn_rewards(_t([[0.0, 0.0, 0.0]]), _t([1.0]), torch.tensor([[False, True]]))


_NAN_ROW = [[1.0, float("nan"), 0.0]]


@pytest.mark.parametrize("fn", GROUP_FNS + [adv.reinforce_pp])
def test_every_group_estimator_rejects_bad_inputs(fn):
    """NaN valid rewards, a float mask, a mask of the wrong shape and an empty group raise ValueError."""
    with pytest.raises(ValueError, match="rewards must be finite"):
        fn(_t(_NAN_ROW))
    with pytest.raises(ValueError, match="bool"):
        fn(_t([[1.0, 2.0, 3.0]]), torch.full((1, 3), 0.5))
    with pytest.raises(ValueError, match="mask must have shape"):
        fn(_t([[1.0, 2.0, 3.0]]), torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="valid responses|selects no entries"):
        fn(_t([[1.0, 2.0, 3.0]]), torch.zeros(1, 3, dtype=torch.bool))
    # a NaN reward in a masked (padding) slot is fine
    out = fn(_t(_NAN_ROW), torch.tensor([[True, False, True]]))
    assert torch.isfinite(out).all() and out[0, 1].item() == 0.0


def test_token_and_weighting_estimators_reject_bad_inputs():
    x = _t([[1.0, 2.0]])
    with pytest.raises(ValueError, match="bool"):
        adv.gae(x, x, torch.full((1, 2), 0.5))
    with pytest.raises(ValueError, match="rewards must be finite"):
        adv.gae(_t([[float("nan"), 0.0]]), x)
    with pytest.raises(ValueError, match="bootstrap must have shape"):
        adv.gae(x, x, bootstrap=_t([0.0, 1.0]))
    with pytest.raises(ValueError, match="lam"):
        adv.gae(x, x, lam=-0.1)
    with pytest.raises(ValueError, match="truncated must be a bool"):
        adv.tppo_extended_gae(x, x, None, torch.tensor([1]))
    with pytest.raises(ValueError, match="correct must be a bool"):
        adv.drpo_weights(x, torch.tensor([[1, 0]]))
    with pytest.raises(ValueError, match="rewards must be finite"):
        adv.drpo_weights(_t([[float("nan"), 0.0]]), torch.tensor([[True, False]]))
    with pytest.raises(ValueError, match="outcome must be finite"):
        adv.igpo_turn_rewards(_t([[0.0, 0.0]]), _t([float("nan")]))
    with pytest.raises(ValueError, match="turn_rewards must have 3 dimensions"):
        adv.igpo_advantages(x)
    with pytest.raises(ValueError, match="step_entropy must be finite"):
        adv.empg_modulate(_t([1.0]), _t([[float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="bool"):
        adv.empg_modulate(_t([1.0]), x, torch.full((1, 2), 0.5))
    with pytest.raises(ValueError, match="durations must have the shape"):
        adv.duration_aware_weights(_t([1.0, 2.0]), _t([1.0]))
    with pytest.raises(ValueError, match="durations must be finite"):
        adv.duration_aware_weights(_t([1.0]), _t([float("nan")]))


def test_weighting_estimators_ignore_padding():
    """Masked entries (NaN here) never change drpo / empg / duration results on the valid ones."""
    lr = _t([[0.0, 1.0, 2.0]])
    c = torch.tensor([[True, True, False]])
    base = adv.drpo_weights(lr, c, lam=0.5)
    padded = adv.drpo_weights(torch.cat([lr, _t([[float("nan")]])], 1), torch.cat([c, torch.tensor([[True]])], 1),
                              torch.tensor([[True, True, True, False]]), lam=0.5)
    torch.testing.assert_close(padded[:, :3], base)
    assert padded[0, 3].item() == 0.0
    h = _t([[0.2, 0.7, 0.4]])
    a = _t([1.5])
    e_base = adv.empg_modulate(a, h)
    e_pad = adv.empg_modulate(a, torch.cat([h, _t([[float("nan")]])], 1), torch.tensor([[True, True, True, False]]))
    torch.testing.assert_close(e_pad[:, :3], e_base)
    d_base = adv.duration_aware_weights(_t([1.0, -2.0]), _t([1.0, 3.0]))
    d_pad = adv.duration_aware_weights(_t([1.0, -2.0, 9.0]), _t([1.0, 3.0, -1.0]), torch.tensor([True, True, False]))
    torch.testing.assert_close(d_pad[:2], d_base)


# ------------------------------------------------------------------ ragged groups by index (issue #16)


def _ragged(seed=0, n=17, k=5):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(n, generator=g, dtype=torch.float64)
    ids = torch.randint(0, k, (n,), generator=g).tolist()
    for j in range(k):  # every group has at least two responses (rloo needs them)
        ids[2 * j] = ids[2 * j + 1] = j
    return scores, [f"uid-{i}" for i in ids]


def _by_hand(scores, ids, fn):
    """The per-group loop: each group's scores as a [1, g] tensor through the estimator, written back."""
    out = torch.empty_like(scores)
    for key in dict.fromkeys(ids):
        pos = [i for i, k in enumerate(ids) if k == key]
        out[pos] = fn(scores[pos].unsqueeze(0))[0]
    return out


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo"])
def test_grouped_advantages_equal_the_per_group_loop(name):
    scores, ids = _ragged(1)
    fn = getattr(adv, name)
    torch.testing.assert_close(adv.grouped_advantages(scores, ids, name), _by_hand(scores, ids, fn), atol=1e-14, rtol=0)


def test_grouped_batch_estimators_equal_their_formula_over_all_responses():
    scores, ids = _ragged(2)
    torch.testing.assert_close(adv.grouped_advantages(scores, ids, "reinforce_pp"),
                               (scores - scores.mean()) / (scores.std(unbiased=False) + 1e-6), atol=1e-13, rtol=0)
    centred = scores - _by_hand(scores, ids, lambda r: r.mean(dim=1, keepdim=True).expand_as(r))
    torch.testing.assert_close(adv.grouped_advantages(scores, ids, "group_mean_batch_std"),
                               centred / (scores.std(unbiased=False) + 1e-6), atol=1e-13, rtol=0)


def test_group_by_index_layout_and_round_trip():
    scores = _t([1.0, 2.0, 3.0, 0.5, 4.0, 5.0])
    g = adv.group_by_index(scores, ["a", "b", "a", "c", "b", "a"])
    assert g.keys == ("a", "b", "c") and g.sizes.tolist() == [3, 2, 1]
    assert g.mask.tolist() == [[True, True, True], [True, True, False], [True, False, False]]
    torch.testing.assert_close(g.rewards, _t([[1.0, 3.0, 5.0], [2.0, 4.0, 2.0], [0.5, 0.5, 0.5]]))  # padding repeats the first
    torch.testing.assert_close(g.ungroup(g.rewards), scores)
    # contiguous equal groups (TRL's and verl's usual layout) are a plain view
    s = torch.arange(6, dtype=torch.float64)
    torch.testing.assert_close(adv.group_by_index(s, torch.tensor([7, 7, 7, 9, 9, 9])).rewards, s.view(2, 3))


def test_single_response_groups_get_zero_and_rloo_refuses_them():
    scores = _t([1.0, 2.0, 3.0])
    a = adv.grouped_advantages(scores, [0, 0, 1], "grpo")
    assert a[2].item() == 0.0  # rlref: its own baseline (verl would give the raw score 3.0)
    with pytest.raises(ValueError, match="at least 2"):
        adv.grouped_advantages(scores, [0, 0, 1], "rloo")


def test_group_by_index_bad_inputs():
    with pytest.raises(ValueError, match="one group id per score"):
        adv.group_by_index(_t([1.0, 2.0]), ["a"])
    with pytest.raises(ValueError, match="finite"):
        adv.group_by_index(_t([1.0, float("nan")]), ["a", "a"])
    with pytest.raises(ValueError, match="hashable"):
        adv.group_by_index(_t([1.0, 2.0]), [["a"], ["a"]])
    with pytest.raises(ValueError, match="estimator must be one of"):
        adv.grouped_advantages(_t([1.0, 2.0]), [0, 0], "nope")


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_grouped_advantages_are_equivariant_to_shuffling_responses(data):
    """Permuting the responses (with their ids) permutes the advantages, whatever the group layout; and each
    equals the per-group loop."""
    from rlref.testing.strategies import rewards as reward_arrays

    n = data.draw(st.integers(2, 12))
    scores = torch.as_tensor(data.draw(reward_arrays((n,))), dtype=torch.float64)
    ids = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    perm = data.draw(st.permutations(list(range(n))))
    for name in ("grpo", "dr_grpo", "reinforce_pp"):
        a = adv.grouped_advantages(scores, ids, name)
        b = adv.grouped_advantages(scores[perm], [ids[i] for i in perm], name)
        torch.testing.assert_close(b, a[perm], atol=1e-12, rtol=0)
    torch.testing.assert_close(adv.grouped_advantages(scores, ids, "grpo"), _by_hand(scores, ids, adv.grpo), atol=1e-12, rtol=0)
