"""Input checks on MDPs shared by the method modules (one message, one place)."""

from __future__ import annotations

from rlref.mdp import TabularMDP


def check_finite_horizon(mdp: object, why: str = "", name: str = "mdp") -> int:
    """The horizon H of ``mdp``, after checking that it is a finite-horizon :class:`rlref.TabularMDP`.

    Raises ValueError naming ``name`` if mdp is not a TabularMDP, or if it is discounted (horizon None);
    ``why`` (the method's reason, e.g. "the effective horizon is defined for episodic MDPs") ends the message.
    """
    if not isinstance(mdp, TabularMDP):
        raise ValueError(f"{name} must be a TabularMDP, got {type(mdp).__name__}")
    if mdp.horizon is None:
        reason = f": {why}" if why else ""
        raise ValueError(f"{name} must be a finite-horizon TabularMDP (horizon=H){reason}; got a discounted one")
    return int(mdp.horizon)
