"""Tests for the strictness results of rlref.formalisms beyond the headline five (Subramani et al.,
ICLR 2024, arXiv 2310.11840): OMORL ⊏ GOMORL (lexicographic order, Debreu's argument in its finite
parts), the reconstructed TO (partial orders; cannot express MR/LAR; LTL ⊑ TO), the pair table, and
the LTL product construction against direct trajectory enumeration. Golden values come from closed
forms (1/N, (γ/2)(x, y), ordered Bell numbers) or independent semantics (lasso words)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref import TabularMDP
from rlref.formalisms import (
    FORMALISMS,
    NON_EDGES,
    GeneralisedOuterMultiObjectiveRL,
    OuterMultiObjectiveRL,
    expressivity_graph,
    lasso_satisfies,
    ltl_probability,
    non_expressivity,
    pair_table,
    parse_ltl,
    trajectory_lottery,
)
from rlref.formalisms import witnesses as W


@pytest.fixture(scope="module")
def gomorl():
    return W.witness_gomorl(samples=12, seed=3)


# ----------------------------------------------------------------------------- OMORL ⊏ GOMORL
@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 40])
def test_lexicographic_gap_lp_equals_telescoping_bound(n):
    """N·t ≤ u(x_N, 1) − u(x_1, 0) ≤ 1, attained by equal steps: the optimum is exactly 1/N."""
    assert W.lexicographic_gap_lp(n) == pytest.approx(1.0 / n, abs=1e-9)


def test_lexicographic_gap_lp_rejects_bad_size():
    with pytest.raises(ValueError, match="n_columns"):
        W.lexicographic_gap_lp(0)


@settings(max_examples=15, deadline=None)
@given(st.floats(0, 1), st.floats(0, 1))
def test_gomorl_witness_returns_are_the_square_closed_form(gomorl, x, y):
    """s1, s2 are entered once, at t = 1, with probability ½ each: J = (γ/2)(π(1|s1), π(1|s2))."""
    pol = np.array([[1, 0], [1 - x, x], [1 - y, y], [1, 0], [1, 0]], dtype=float)
    J = OuterMultiObjectiveRL(gomorl.spec.Rs, gomorl.spec.gamma, f=lambda v: 0.0).returns(gomorl.mdp, pol)
    np.testing.assert_allclose(J, gomorl.spec.gamma / 2 * np.array([x, y]), atol=1e-12)


def test_gomorl_witness_is_lexicographic_and_its_certificate_holds(gomorl):
    names = gomorl.policy_names
    best_first = [names[c[0]] for c in gomorl.ordering.classes()]
    expected = [f"x={x:g},y={y:g}" for x in (1.0, 0.5, 0.0) for y in (1.0, 0.5, 0.0)]
    assert best_first == expected
    cert = gomorl.certificates["OMORL"]
    assert cert.holds and cert.method == "debreu" and cert.data["refuted"] == cert.data["tried"] == 12


@settings(max_examples=20, deadline=None)
@given(st.floats(1.0, 1e7), st.floats(-2, 2), st.sampled_from(["linear", "tanh", "cubic"]))
def test_refute_lexicographic_is_sound_on_continuous_scores(M, c, kind):
    """Whatever it returns is a genuine disagreement: p ≻_lex q but score(p) ≤ score(q)."""
    score = {"linear": lambda x, y: M * x + c * y, "tanh": lambda x, y: np.tanh(M * x) + c * np.arctan(y),
             "cubic": lambda x, y: M * x**3 + c * y}[kind]
    pair = W.refute_lexicographic(score)
    assert pair is not None  # every score here is continuous in x (modulus M·δ < gap at δ = 2^-40)
    p, q = pair
    assert p > q  # tuples compare lexicographically
    assert score(*p) <= score(*q)


def test_refute_lexicographic_is_not_complete_below_its_resolution():
    """A vertical gap of 2^-45 (exact in float64 at 0.25) would need δ < 2^-45, below the 2^-40 the
    refuter tries: it gives up rather than guess (Debreu's argument covers such scores)."""
    assert W.refute_lexicographic(lambda x, y: x / 2 + 2.0**-45 * y) is None


def test_omorl_refuter_pairs_really_disagree_with_gomorl(gomorl):
    rng = np.random.default_rng(5)
    sampler = W._omorl_sampler(gomorl.mdp, *gomorl.spec.Rs, gomorl.spec.gamma)
    for _ in range(6):
        spec = sampler(rng)
        p, q = gomorl.refuters["OMORL"](spec)

        def pol(x, y):
            return np.array([[1, 0], [1 - x, x], [1 - y, y], [1, 0], [1, 0]], dtype=float)

        assert GeneralisedOuterMultiObjectiveRL(gomorl.spec.Rs, gomorl.spec.gamma).compare(gomorl.mdp, pol(*p), pol(*q)) == 1
        assert spec.value(gomorl.mdp, pol(*p)) <= spec.value(gomorl.mdp, pol(*q))


def test_no_finite_policy_set_witnesses_omorl_below_gomorl(gomorl):
    """On finitely many policies the rank of the occupancy measure is a real function: OMORL induces
    the lexicographic order there (so the strictness is necessarily an infinite argument)."""
    rng = np.random.default_rng(0)
    pols = list(gomorl.policies) + [np.array([[1, 0], [1 - x, x], [1 - y, y], [1, 0], [1, 0]]) for x, y in rng.random((6, 2))]
    rep = W.finite_rank_representation(gomorl.spec, gomorl.mdp, pols)
    assert isinstance(rep, OuterMultiObjectiveRL)
    assert rep.ordering(gomorl.mdp, pols).same_as(gomorl.spec.ordering(gomorl.mdp, pols))
    assert len(gomorl.spec.ordering(gomorl.mdp, pols).classes()) == len(pols)


# ----------------------------------------------------------------------------- TO
@pytest.mark.parametrize(("n", "bell"), [(1, 1), (2, 3), (3, 13), (4, 75)])
def test_all_weak_orders_count_is_the_ordered_bell_number(n, bell):
    assert len(W._all_weak_orders(n)) == bell


def test_to_orderings_can_be_partial_so_no_total_formalism_expresses_them():
    w = W.witness_to_partial()
    i, j = w.policy_names.index("mix02"), w.policy_names.index("arm1")
    assert not w.ordering.geq[i, j] and not w.ordering.geq[j, i]
    assert w.ordering.geq[w.policy_names.index("arm2"), w.policy_names.index("arm0")]
    assert w.certificates["PO"].holds


@pytest.mark.parametrize("which", ["MR", "LAR"])
def test_to_cannot_express_the_linear_arm_ordering(which):
    w = W.witness_to_linear(which)
    # closed form: J = π(1|s0) + 2π(2|s0) (MR: first-step reward; LAR: the absorbing arm's reward)
    assert [sorted(w.policy_names[i] for i in c) for c in w.ordering.classes()] == [["arm2"], ["arm1", "mix02"], ["arm0"]]
    cert = w.certificates["TO"]
    assert cert.holds and cert.data == {"tried": 13, "hits": 0}


def test_ltl_is_expressed_by_to_with_the_indicator_rank():
    ok, n = W.witness_ltl_to()
    assert ok and n == 8


def test_to_witness_names_are_registered():
    ws = W.all_witnesses(samples=2, seed=0)
    for ne in NON_EDGES:
        assert ne.against in ws[ne.witness].certificates, ne
    for name in ("gomorl", "to-partial", "to-mr", "to-lar"):
        assert all(c.holds for c in ws[name].certificates.values()), name


# ----------------------------------------------------------------------------- the pair table
def test_pair_table_decides_every_ordered_pair_consistently():
    g = expressivity_graph()
    table = pair_table(g)
    n = len(FORMALISMS)
    assert len(table) == n * (n - 1)
    assert not [r for r in table if r["status"] == "open"]
    ne = non_expressivity(g)
    for r in table:
        a, b = r["A"], r["B"]
        assert (r["status"] == "B expresses A") == g.has_edge(b, a)
        assert (r["status"] == "A cannot express B") == ((a, b) in ne and not g.has_edge(b, a))
    # the OMORL class sits strictly below the GOMORL class; TO is expressed only by LTL
    assert g.has_edge("OMORL", "GOMORL") and ("OMORL", "GOMORL") in ne and not g.has_edge("GOMORL", "OMORL")
    assert sorted(x for x in g.nodes if g.has_edge(x, "TO")) == ["LTL"]
    assert sum(r["paper"].startswith("summary") for r in table) == 3 * 3 * 2


# ----------------------------------------------------------------------------- LTL product vs enumeration
_NEXT = st.deferred(lambda: st.one_of(
    st.sampled_from(["p", "q", "X p", "X q", "X X p", "X X q", "!X p"]),
    st.builds(lambda a, b: f"({a} & {b})", _NEXT, _NEXT),
    st.builds(lambda a, b: f"({a} | {b})", _NEXT, _NEXT),
))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), _NEXT)
def test_ltl_product_probability_equals_trajectory_enumeration(seed, phi):
    """For formulas decided by the first three letters, Pr(φ) from the product chain equals the sum of
    trajectory probabilities (exact H = 3 lottery) of the prefixes whose lasso word satisfies φ."""
    rng = np.random.default_rng(seed)
    S, A = 3, 2
    mdp = TabularMDP(P=rng.dirichlet(np.ones(S), size=(S, A)), R=np.zeros((S, A)), gamma=0.9, mu0=rng.dirichlet(np.ones(S)))
    labels = {"p": rng.random(S) < 0.5, "q": rng.random(S) < 0.5}
    pi = rng.dirichlet(np.ones(A), size=S)
    f = parse_ltl(phi)
    enum = 0.0
    for tr, pr in trajectory_lottery(mdp, pi, 3).items():
        states = [t[0] for t in tr] + [tr[-1][2]]
        word = [frozenset(k for k, v in labels.items() if v[s]) for s in states]
        enum += pr * lasso_satisfies(f, word[:-1], word[-1:])
    assert ltl_probability(mdp, pi, phi, labels) == pytest.approx(enum, abs=1e-10)


def test_ltl_to_check_is_not_vacuous():
    """The instances of witness_ltl_to order policies into more than one class."""
    from rlref.formalisms import LinearTemporalLogic

    rng = np.random.default_rng(11)
    S, A = 3, 2
    P = rng.dirichlet(np.ones(S), size=(S, A))
    mdp = TabularMDP(P=P, R=np.zeros((S, A)), gamma=0.9, mu0=rng.dirichlet(np.ones(S)))
    labels = {"in1": np.array([0, 1, 0], bool), "in2": np.array([0, 0, 1], bool)}
    ltl = LinearTemporalLogic("X X in2 | (X in1 & !X X in1)", labels)
    pols = [rng.dirichlet(np.ones(A), size=S) for _ in range(4)]
    assert len(ltl.ordering(mdp, pols).classes()) > 1
    assert len({round(ltl.value(mdp, p), 9) for p in pols}) > 1
