"""rlref.llm.train.sparsity: update sparsity at fp32/bf16 resolution, update rank, subnetwork overlap
(Mukherjee et al. 2025, arXiv 2505.11711). Golden values are hand-constructed state dicts, numpy's
matrix_rank and brute-force set counts, never the code under test."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rlref.llm.train.sparsity import (  # noqa: E402
    changed_mask,
    changed_masks,
    subnetwork_overlap,
    update_rank,
    update_sparsity,
)


def _sd():
    before = {"w": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "b": torch.tensor([0.5, -0.5, 0.25]), "steps": torch.tensor(3)}
    after = {"w": before["w"].clone(), "b": before["b"].clone(), "steps": torch.tensor(7)}
    after["w"][0, 0] += 1e-3  # below half a bf16 ulp at 1.0 (2^-8): visible in fp32 only
    after["w"][1, 1] += 0.5  # visible at both resolutions
    after["b"][2] += 2**-6  # 0.25 -> 0.265625: exactly representable in bf16 (ulp at 0.25 is 2^-9)
    return before, after


def test_changed_fraction_fp32_vs_bf16_on_a_hand_built_update():
    """The paper's point: an update below half a bf16 ulp changes the fp32 weight but not the bf16 one."""
    before, after = _sd()
    res = update_sparsity(before, after)
    # fp32: w has 2 of 4 changed, b 1 of 3 -> 3 of 7 entries; bf16: w 1 of 4, b 1 of 3 -> 2 of 7 (int 'steps' ignored)
    assert res.changed_fp32 == pytest.approx(3 / 7)
    assert res.changed_bf16 == pytest.approx(2 / 7)
    assert res.sparsity_fp32 == pytest.approx(4 / 7) and res.sparsity_bf16 == pytest.approx(5 / 7)
    w, b = res.per_matrix
    assert (w.name, w.changed_fp32, w.changed_bf16, w.rank, w.max_rank) == ("w", 0.5, 0.25, 2, 2)
    assert (b.name, b.rank, b.max_rank) == ("b", None, None) and b.changed_bf16 == pytest.approx(1 / 3)
    assert res.mean_rank_ratio == 1.0
    m = changed_masks(before, after, resolution="bf16")
    assert m["w"].tolist() == [[False, False], [False, True]]


def test_bf16_rounding_is_to_nearest_even():
    """1 + 2^-8 is the midpoint between bf16 neighbours 1 and 1 + 2^-7: it rounds to 1 (even), 1 + 3·2^-8 to 1 + 2^-6."""
    x = torch.tensor([1.0, 1.0])
    y = torch.tensor([1.0 + 2**-8, 1.0 + 3 * 2**-8])
    assert changed_mask(x, y, resolution="bf16").tolist() == [False, True]
    assert changed_mask(x, y, resolution="fp32").tolist() == [True, True]


def test_tolerance_counts_small_updates_as_unchanged():
    x = torch.zeros(4)
    y = torch.tensor([0.0, 5e-6, 2e-5, -3e-5])
    assert changed_mask(x, y, atol=1e-5).tolist() == [False, False, True, True]
    assert changed_mask(x, y).tolist() == [False, True, True, True]


@pytest.mark.parametrize("seed", range(4))
def test_update_rank_matches_numpy_on_built_low_rank_updates(seed):
    """Δ = U Vᵀ with U[m, r], V[k, r] Gaussian has rank r; numpy's matrix_rank (SVD, tol = σ_max·max(m,k)·ε) agrees."""
    g = torch.Generator().manual_seed(seed)
    m, k = 12, 9
    for r in (0, 1, 3, 9):
        d = (torch.randn(m, r, generator=g) @ torch.randn(r, k, generator=g)).float()
        assert update_rank(d) == r
        assert update_rank(d) == np.linalg.matrix_rank(d.double().numpy(), tol=float(np.linalg.svd(d.double().numpy(), compute_uv=False).max(
            initial=0.0)) * max(m, k) * float(np.finfo(np.float32).eps))


def test_update_rank_of_a_sparse_diagonal_update_is_full():
    """'Sparse but full rank': a diagonal update touches n of n² entries yet has rank n."""
    before = {"w": torch.zeros(6, 6)}
    after = {"w": torch.diag(torch.arange(1.0, 7.0))}
    res = update_sparsity(before, after)
    assert res.changed_fp32 == pytest.approx(6 / 36)
    assert res.per_matrix[0].rank == 6 and res.mean_rank_ratio == 1.0


def test_overlap_against_brute_force_set_counts():
    rng = np.random.default_rng(0)
    a = rng.random(200) < 0.3
    b = rng.random(200) < 0.5
    ov = subnetwork_overlap({"x": torch.tensor(a[:50].reshape(5, 10)), "y": torch.tensor(a[50:])},
                            {"x": torch.tensor(b[:50].reshape(5, 10)), "y": torch.tensor(b[50:])})
    i1, i2 = set(np.flatnonzero(a)), set(np.flatnonzero(b))
    inter = len(i1 & i2)
    assert ov.intersection == inter and ov.size1 == len(i1) and ov.size2 == len(i2) and ov.n == 200
    assert ov.o1 == pytest.approx(inter / len(i1)) and ov.o2 == pytest.approx(inter / len(i2))
    assert ov.jaccard == pytest.approx(inter / len(i1 | i2))
    assert ov.intersection_over_min == pytest.approx(max(ov.o1, ov.o2))
    assert ov.random_o1 == pytest.approx(len(i2) / 200) and ov.random_o2 == pytest.approx(len(i1) / 200)


def test_overlap_chance_level_is_what_random_subsets_give():
    """E[o1] = |I2|/n for a fixed I1 and I2 drawn uniformly among subsets of its size (Monte Carlo, 4 sigma)."""
    n, s1, s2 = 400, 60, 100
    rng = np.random.default_rng(1)
    a = np.zeros(n, bool)
    a[rng.choice(n, s1, replace=False)] = True
    o1 = []
    for _ in range(400):
        b = np.zeros(n, bool)
        b[rng.choice(n, s2, replace=False)] = True
        o1.append(subnetwork_overlap(torch.tensor(a), torch.tensor(b)).o1)
    ref = subnetwork_overlap(torch.tensor(a), torch.tensor(b)).random_o1
    assert ref == s2 / n
    assert abs(np.mean(o1) - ref) < 4 * np.std(o1) / math.sqrt(len(o1))


def test_identical_runs_and_empty_sets():
    m = torch.tensor([True, False, True])
    ov = subnetwork_overlap(m, m)
    assert ov.o1 == ov.o2 == ov.jaccard == 1.0
    empty = subnetwork_overlap(torch.zeros(3, dtype=torch.bool), m)
    assert math.isnan(empty.o1) and empty.o2 == 0.0


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"before": {"w": torch.zeros(2)}, "after": {"v": torch.zeros(2)}}, "same keys"),
    ({"before": {"w": torch.zeros(2)}, "after": {"w": torch.zeros(3)}}, "shapes differ"),
    ({"before": {"w": torch.zeros(2)}, "after": {"w": torch.tensor([0.0, float("nan")])}}, "NaN"),
    ({"before": {"w": torch.zeros(2)}, "after": {"w": torch.zeros(2)}, "atol": -1.0}, "atol"),
])
def test_bad_inputs_raise_naming_the_problem(kwargs, match):
    with pytest.raises(ValueError, match=match):
        update_sparsity(**kwargs)


def test_bad_resolution_and_rank_inputs():
    with pytest.raises(ValueError, match="resolution"):
        changed_mask(torch.zeros(2), torch.zeros(2), resolution="fp8")
    with pytest.raises(ValueError, match="2-D"):
        update_rank(torch.zeros(3))
    with pytest.raises(ValueError, match="both be mappings"):
        subnetwork_overlap({"w": torch.zeros(2, dtype=torch.bool)}, torch.zeros(2, dtype=torch.bool))


def test_stratified_chance_by_hand_and_one_stratum_is_uniform_chance():
    from rlref.llm.train.sparsity import stratified_chance_o1

    a = torch.tensor([True, False, False, False])
    b = torch.tensor([True, False, False, False])
    # stratum {0, 1}: |I1 ∩ S| = 1, |I2 ∩ S| = 1, |S| = 2 -> E|I1 ∩ I2| = 1/2, so E[o1] = 1/2 (uniform chance: 1/4)
    assert stratified_chance_o1(a, b, torch.tensor([0, 0, 1, 1])) == 0.5
    assert stratified_chance_o1(a, b, torch.zeros(4, dtype=torch.long)) == subnetwork_overlap(a, b).random_o1 == 0.25
    assert math.isnan(stratified_chance_o1(torch.zeros(4, dtype=torch.bool), b, torch.zeros(4, dtype=torch.long)))
    with pytest.raises(ValueError, match="integer labels"):
        stratified_chance_o1(a, b, torch.zeros(4))


def test_stratified_chance_matches_redrawing_within_strata():
    """Monte Carlo: permute I2 within each stratum (sizes per stratum kept); the mean o1 is the formula (4 sigma)."""
    from rlref.llm.train.sparsity import stratified_chance_o1

    rng = np.random.default_rng(3)
    n = 300
    strata = rng.integers(0, 4, n)
    a = rng.random(n) < np.array([0.8, 0.5, 0.2, 0.1])[strata]
    b = rng.random(n) < np.array([0.7, 0.4, 0.3, 0.1])[strata]
    o1 = []
    for _ in range(600):
        bb = b.copy()
        for s in range(4):
            idx = np.flatnonzero(strata == s)
            bb[idx] = rng.permutation(b[idx])
        o1.append((a & bb).sum() / a.sum())
    ref = stratified_chance_o1(torch.tensor(a), torch.tensor(b), torch.tensor(strata))
    assert abs(np.mean(o1) - ref) < 4 * np.std(o1) / math.sqrt(len(o1))


def test_magnitude_strata_are_equal_count_and_monotone_in_abs_w():
    from rlref.llm.train.sparsity import magnitude_strata

    w = {"x": torch.tensor([[-4.0, 1.0], [0.5, -3.0]]), "y": torch.tensor([2.0, -0.1, 0.2, 5.0, -6.0, 0.0])}
    s = magnitude_strata(w, bins=5)
    flat = torch.cat([w["x"].reshape(-1), w["y"]]).abs()
    assert torch.bincount(s).tolist() == [2, 2, 2, 2, 2]
    order = torch.argsort(flat)
    assert torch.all(s[order][1:] >= s[order][:-1])
    with pytest.raises(ValueError, match="bins"):
        magnitude_strata(w, bins=0)
