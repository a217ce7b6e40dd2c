"""rlref.interop.openspiel on OpenSpiel's own matrix games; golden values are published equilibria and values
(biased RPS (1/16, 10/16, 5/16), Kuhn poker's value −1/18) and nashpy's support enumeration."""

from __future__ import annotations

import numpy as np
import pytest

from rlref.games import matrix_nash, matrix_qre
from rlref.interop.openspiel import MatrixGame, from_matrix_game
from rlref.preferences import bradley_terry, minimax_winner, regularized_nash, validate_preference_matrix

pyspiel = pytest.importorskip("pyspiel")


def test_rock_paper_scissors_is_a_preference_game_with_scale_one_half():
    g = from_matrix_game(pyspiel.load_game("matrix_rps"))
    assert isinstance(g, MatrixGame) and g.symmetric and g.constant_sum == 0.0
    assert g.row_actions == ("Rock", "Paper", "Scissors")
    assert g.scale == 0.5  # max|A| = 1: P = 1/2 + A/2 ∈ {0, 1/2, 1}
    validate_preference_matrix(g.preference)
    np.testing.assert_array_equal(g.preference, [[0.5, 0.0, 1.0], [1.0, 0.5, 0.0], [0.0, 1.0, 0.5]])
    np.testing.assert_allclose(minimax_winner(g.preference), np.full(3, 1 / 3), atol=1e-9)


def test_biased_rps_equilibrium_is_the_published_one_in_both_conventions():
    """OpenSpiel's matrix_brps: Nash (1/16, 10/16, 5/16) (OpenSpiel's tests), by matrix_nash on A and minimax_winner on P."""
    g = from_matrix_game(pyspiel.load_game("matrix_brps"))
    expected = np.array([1, 10, 5]) / 16
    assert g.symmetric and g.scale == pytest.approx(1 / 100)  # max|A| = 50
    nash = matrix_nash(g.payoff)
    np.testing.assert_allclose(nash.x, expected, atol=1e-9)
    assert nash.value == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(minimax_winner(g.preference), expected, atol=1e-9)


@pytest.mark.parametrize("tau", [0.002, 0.05, 1.0])
def test_preference_temperature_tau_is_payoff_temperature_tau_over_scale(tau):
    """The KL-regularized preference game at τ (uniform reference) has the quantal-response equilibrium of A at τ/s."""
    g = from_matrix_game(pyspiel.load_game("matrix_brps"))
    pref = regularized_nash(g.preference, None, tau).pi
    t = g.payoff_temperature(tau)
    assert t == pytest.approx(tau * 100)
    x, y = matrix_qre(g.payoff, t, t)
    np.testing.assert_allclose(pref, x, atol=1e-8)
    np.testing.assert_allclose(pref, y, atol=1e-8)
    assert g.preference_temperature(t) == pytest.approx(tau)
    if tau == 0.05:  # not the uniform policy, not the Nash point: the temperature really matters
        assert np.abs(pref - 1 / 3).max() > 0.05 and np.abs(pref - np.array([1, 10, 5]) / 16).max() > 0.02


def test_kuhn_poker_as_a_matrix_game_has_value_minus_one_eighteenth():
    """extensive_to_matrix_game(kuhn_poker): a 64 x 64 zero-sum (not symmetric) game whose value is −1/18 (Kuhn 1950)."""
    g = from_matrix_game(pyspiel.extensive_to_matrix_game(pyspiel.load_game("kuhn_poker")))
    assert g.payoff.shape == (64, 64) and g.constant_sum == 0.0 and not g.symmetric and g.preference is None
    assert matrix_nash(g.payoff).value == pytest.approx(-1 / 18, abs=1e-9)


def test_matching_pennies_is_zero_sum_but_not_a_preference_game():
    g = from_matrix_game(pyspiel.load_game("matrix_mp"))
    assert g.constant_sum == 0.0 and not g.symmetric and g.preference is None and g.scale is None
    np.testing.assert_allclose(matrix_nash(g.payoff).x, [0.5, 0.5], atol=1e-9)
    with pytest.raises(ValueError, match="not a symmetric zero-sum game"):
        g.payoff_temperature(0.1)


def test_general_sum_games_have_no_zero_sum_payoff():
    g = from_matrix_game(pyspiel.load_game("matrix_pd"))
    assert g.constant_sum is None and g.payoff is None and not g.symmetric
    np.testing.assert_array_equal(g.col_utility, [[5.0, 10.0], [0.0, 1.0]])


def test_constant_sum_preference_pair_round_trips_to_its_preference_matrix():
    """(P, 1 − P) is constant-sum 1 with A = P − 1/2; at scale 1 the preference matrix is P again."""
    P = bradley_terry(np.array([0.3, -1.0, 0.8, 0.0]))
    g = from_matrix_game((P, 1.0 - P), scale=1.0)
    assert g.constant_sum == pytest.approx(1.0) and g.symmetric
    np.testing.assert_allclose(g.payoff, P - 0.5, atol=1e-15)
    np.testing.assert_allclose(g.preference, P, atol=1e-15)
    # the default scale stretches P to reach {0, 1}: same winner, temperatures rescaled by 1 / s
    d = from_matrix_game((P, 1.0 - P))
    assert np.max(np.abs(d.preference - 0.5)) == pytest.approx(0.5)
    np.testing.assert_allclose(minimax_winner(d.preference), minimax_winner(P), atol=1e-8)


def test_agrees_with_nashpy_and_the_other_input_forms():
    nashpy = pytest.importorskip("nashpy")
    sp_game = pyspiel.load_game("matrix_brps")
    U_row, U_col = np.asarray(sp_game.row_utilities()), np.asarray(sp_game.col_utilities())
    forms = [nashpy.Game(U_row, U_col), (U_row, U_col), np.stack([U_row, U_col]), U_row,
             pyspiel.create_matrix_game(U_row.tolist(), U_col.tolist())]
    ref = from_matrix_game(sp_game)
    for form in forms:
        g = from_matrix_game(form)
        np.testing.assert_array_equal(g.payoff, ref.payoff)
        np.testing.assert_array_equal(g.preference, ref.preference)
    (x, y), = list(nashpy.Game(U_row, U_col).support_enumeration())
    np.testing.assert_allclose(matrix_nash(ref.payoff).x, x, atol=1e-9)


def test_bad_inputs_are_refused_by_name():
    with pytest.raises(ValueError, match="extensive_to_matrix_game"):
        from_matrix_game(pyspiel.load_game("kuhn_poker"))
    rps = pyspiel.load_game("matrix_rps")
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        from_matrix_game(rps, scale=0.6)
    with pytest.raises(ValueError, match="scale must be"):
        from_matrix_game(rps, scale=-1.0)
    with pytest.raises(ValueError, match="not a symmetric zero-sum game"):
        from_matrix_game(pyspiel.load_game("matrix_mp"), scale=0.5)
    with pytest.raises(ValueError, match="one shape"):
        from_matrix_game((np.zeros((2, 2)), np.zeros((2, 3))))
    with pytest.raises(ValueError, match="row utilities must be finite"):
        from_matrix_game(np.array([[0.0, np.nan], [1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"\(2, m, n\)"):
        from_matrix_game(np.zeros((3, 2, 2)))
