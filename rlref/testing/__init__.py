"""Public hypothesis strategies for property-testing your own RL algorithms.

``tabular_mdps`` (random :class:`rlref.TabularMDP`, discounted or finite-horizon, dense or
sparse), ``policies`` (policies of a given MDP), ``distributions`` (probability vectors),
``rewards`` (reward arrays), ``linear_mdps`` (random linear MDPs) and ``preference_matrices``
(transitive Bradley–Terry or intransitive preference matrices); for fuzzing, ``hostile_scalars``
and ``hostile_arrays`` (NaN/inf, negatives, subnormals, 1e300, float32, complex, ints, bools,
wrong shapes, strings, None). Sizes shrink towards their
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
    ARRAY_MUTATIONS,
    HOSTILE_FLOATS,
    distributions,
    hostile_arrays,
    hostile_scalars,
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
    "hostile_scalars",
    "hostile_arrays",
    "HOSTILE_FLOATS",
    "ARRAY_MUTATIONS",
]
