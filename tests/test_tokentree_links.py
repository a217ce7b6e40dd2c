"""rlref.tokentree.tree_links against a brute-force walk over the enumerated prefixes (and its iq_learn re-export)."""

from __future__ import annotations

import numpy as np
import pytest

from rlref.algorithms import iq_learn
from rlref.tokentree import TokenTree, tree_links


@pytest.mark.parametrize(("V", "L"), [(2, 1), (2, 3), (3, 3), (4, 2)])
def test_tree_links_match_brute_force(V, L):
    tree = TokenTree(vocab_size=V, max_len=L)
    child, parent, ptok = tree_links(tree)
    index = {x: i for i, x in enumerate(tree.prefixes)}
    for i, x in enumerate(tree.prefixes):
        assert (parent[i], ptok[i]) == ((index[x[:-1]], x[-1]) if x else (-1, -1))
        for v in range(V):
            ext = (*x, v)
            assert child[i, v] == index.get(ext, -1)  # open prefixes are exactly the enumerated ones
    assert np.all(child[child >= 0] > 0)  # the root is nobody's child
    assert iq_learn.tree_links is tree_links


def test_tree_links_rejects_non_tree():
    with pytest.raises(ValueError, match="tree"):
        tree_links("not a tree")
