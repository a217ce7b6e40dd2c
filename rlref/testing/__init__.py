"""Public hypothesis strategies for property-testing your own RL algorithms.

``tabular_mdps`` (random :class:`rlref.TabularMDP`, discounted or finite-horizon, dense or
sparse), ``policies`` (policies of a given MDP), ``distributions`` (probability vectors),
``rewards`` (reward arrays), ``linear_mdps`` (random linear MDPs) and ``preference_matrices``
(transitive Bradley–Terry or intransitive preference matrices). Sizes shrink towards their
minima; arrays come from a seeded ``numpy.random.Generator``. Needs ``hypothesis`` (install
the ``testing`` extra), not pytest. See ``docs/testing.md`` for a worked example.

Example::

    from hypothesis import given, settings
    from rlref.testing import tabular_mdps

    @settings(max_examples=25, deadline=None)
    @given(tabular_mdps(max_states=5, discounted=True))
    def test_my_planner(mdp):
        ...
"""

from rlref.testing.strategies import (
    distributions,
    linear_mdps,
    policies,
    preference_matrices,
    rewards,
    tabular_mdps,
)

__all__ = [
    "tabular_mdps",
    "policies",
    "distributions",
    "rewards",
    "linear_mdps",
    "preference_matrices",
]
