"""Converters between rlref's TabularMDP and other libraries' MDP types (optional dependencies).

``rlref.interop.quantecon``: QuantEcon's ``DiscreteDP`` in both of its input formats.
"""

__all__ = ["quantecon"]

# gymnasium, pymdptoolbox and OpenSpiel converters (their packages are imported only when a converter needs them)
from rlref.interop.gymnasium import from_gymnasium, to_gymnasium  # noqa: E402
from rlref.interop.mdptoolbox import MdptoolboxArrays, from_mdptoolbox, to_mdptoolbox  # noqa: E402
from rlref.interop.openspiel import MatrixGame, from_matrix_game  # noqa: E402
from rlref.interop.quantecon import from_quantecon, to_quantecon  # noqa: E402

__all__ += ["gymnasium", "mdptoolbox", "openspiel", "from_gymnasium", "to_gymnasium", "MdptoolboxArrays", "from_mdptoolbox", "to_mdptoolbox",
            "MatrixGame", "from_matrix_game", "from_quantecon", "to_quantecon"]
