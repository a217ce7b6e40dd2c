"""The expressivity preorder of Subramani et al. (ICLR 2024, arXiv 2310.11840, Fig. 1) as a
networkx DiGraph, its equivalence classes, its Hasse diagram and a matplotlib drawing.

An edge A → B means B can express every policy ordering A can (A ⊑ B). Each edge carries its
``evidence``: ``"translation"`` (a constructive map in :data:`rlref.formalisms.translations.TRANSLATIONS`,
tested), ``"derived"`` (an argument written in ``argument``, derived here) or ``"transitivity"``.
:data:`NON_EDGES` lists the proved "A cannot express B" facts with the witness that checks them
(:mod:`rlref.formalisms.witnesses`); :func:`non_expressivity` propagates them along ⊑
(if B's task defeats A, it defeats everything below A, and everything above B has it).

Sources. Only the paper's abstract, a third-party summary and its reference list could be read (the
full text was not retrievable, see docs/expressivity.md). Each edge therefore carries ``paper``: the
summary's equivalence it belongs to (INMR = IMORL = FTR, OMORL = FOMR = FTLR, GOMORL = OMO = TLO), or
``"derived here"``; each :class:`NonEdge` carries ``source``: ``"abstract"`` for the headline
incomparabilities, else ``"derived here"``. :func:`pair_table` decides every ordered pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from rlref.formalisms.objectives import FORMALISMS
from rlref.formalisms.translations import TRANSLATIONS

__all__ = ["DERIVED_EDGES", "NON_EDGES", "PAPER_EQUIVALENCES", "PAPER_HEADLINE", "expressivity_graph", "equivalence_classes",
           "hasse_diagram", "non_expressivity", "pair_table", "draw_hasse", "NonEdge"]

DERIVED_EDGES: dict[tuple[str, str], str] = {
    ("MR", "IMORL"): "k = 1, f = identity",
    ("MR", "OMORL"): "k = 1, f = identity",
    ("FTR", "INMR"): "choose R, γ with G_R injective on trajectories (each transition a digit in base > |S||A||S|), then f = f_FTR ∘ G_R⁻¹",
    ("FTLR", "FOMR"): "a stationary policy's lottery is fixed by π on the states it reaches, which m^π determines (π = m(s,a)/Σ_b m(s,b))",
    ("GOMORL", "OMO"): "J_Ri = ⟨R_i, m^π⟩, so a preorder on (J_R1..J_Rk) is a preorder on m^π",
    ("OMO", "GOMORL"): "indicator rewards R_(s,a,s') give J = m^π itself",
    ("OMO", "TLO"): "m^π is a function of L_π",
    ("TLO", "OMO"): "L_π is a function of m^π (as FTLR ⊑ FOMR)",
    ("FTLR", "TLO"): "order lotteries by f",
    ("RM", "FTR"): "f(ξ) = the machine's discounted return along ξ",
    ("LTL", "FTR"): "f(ξ) = 1[ξ ⊨ φ]",
    ("LAR", "FTR"): "f(ξ) = lim (1/N) Σ R along ξ (exists a.s. in a finite chain; bounded, so E commutes with the limit)",
    ("FOMR", "FTLR"): "m^π is a function of L_π",
    ("LTL", "TO"): "rank(ξ) = 1[ξ ⊨ φ]: stochastic dominance on a two-level rank compares Pr(φ), a total order equal to LTL's "
                   "(for TO over infinite trajectories; the implemented TO reads H-step prefixes, so witnesses.witness_ltl_to "
                   "checks it on random instances with a formula decided within H steps)",
}

PAPER_EQUIVALENCES: tuple[frozenset[str], ...] = (frozenset({"INMR", "IMORL", "FTR"}), frozenset({"OMORL", "FOMR", "FTLR"}),
                                                  frozenset({"GOMORL", "OMO", "TLO"}))
PAPER_HEADLINE: tuple[str, ...] = ("RRL", "ONMR", "RM", "LTL", "LAR")


@dataclass(frozen=True)
class NonEdge:
    """``cannot`` cannot express a task that ``task_of`` can; checked by witness ``witness``
    (a name in :mod:`rlref.formalisms.witnesses`) with the certificate kept under ``against``."""

    cannot: str
    task_of: str
    witness: str
    against: str = ""
    source: str = "derived here"


NON_EDGES: tuple[NonEdge, ...] = tuple(
    NonEdge(cannot=o, task_of=h, witness=h.lower(), against=o, source="abstract") for h in PAPER_HEADLINE for o in PAPER_HEADLINE if o != h
) + (
    NonEdge(cannot="FTR", task_of="RRL", witness="rrl", against="RM"),
    NonEdge(cannot="FTR", task_of="ONMR", witness="onmr", against="RM"),
    NonEdge(cannot="TLO", task_of="PO", witness="tlo-po", against="TLO"),
    NonEdge(cannot="LAR", task_of="MR", witness="mr", against="LAR"),
    NonEdge(cannot="LTL", task_of="MR", witness="mr", against="LTL"),
    NonEdge(cannot="OMORL", task_of="GOMORL", witness="gomorl", against="OMORL"),
    NonEdge(cannot="PO", task_of="TO", witness="to-partial", against="PO"),
    NonEdge(cannot="TO", task_of="MR", witness="to-mr", against="TO"),
    NonEdge(cannot="TO", task_of="LAR", witness="to-lar", against="TO"),
)


def expressivity_graph(include_unconfirmed: bool = False) -> nx.DiGraph:
    """The "can express" preorder: edge A → B iff B can express every policy ordering A can.

    Nodes are the short names of :data:`FORMALISMS`. TO, our reconstruction of the seventeenth, has
    the single edge LTL → TO: its stochastic-dominance orderings are partial, so no total-preorder
    formalism expresses it (``include_unconfirmed`` adds TO → PO, reading PO as any preorder). Edges
    carry ``evidence``, ``argument`` and ``paper``; the transitive closure is included
    (``evidence="transitivity"``); reflexivity is implicit.
    """
    g = nx.DiGraph()
    for k, cls in FORMALISMS.items():
        g.add_node(k, title=cls.title)
    for (a, b), fn in TRANSLATIONS.items():
        g.add_edge(a, b, evidence="translation", argument=(fn.__doc__ or "").strip().splitlines()[0])
    for (a, b), why in DERIVED_EDGES.items():
        if not g.has_edge(a, b):
            g.add_edge(a, b, evidence="derived", argument=why)
    if include_unconfirmed:
        g.add_edge("TO", "PO", evidence="derived", argument="PO read as any preorder on policies (partial allowed)")
    closure = nx.transitive_closure_dag(g) if nx.is_directed_acyclic_graph(g) else nx.transitive_closure(g, reflexive=False)
    for a, b in closure.edges:
        if a != b and not g.has_edge(a, b):
            g.add_edge(a, b, evidence="transitivity", argument="")
    for a, b, d in g.edges(data=True):
        cls = next((c for c in PAPER_EQUIVALENCES if a in c and b in c), None)
        d["paper"] = "summary: " + " = ".join(sorted(cls)) if cls else "derived here"
    return g


def pair_table(g: nx.DiGraph | None = None) -> list[dict]:
    """Every ordered pair (A, B), A ≠ B, decided: ``"B expresses A"`` (an edge A → B, with its evidence)
    or ``"A cannot express B"`` (implied by a :class:`NonEdge` and ⊑, naming the non-edge it comes
    from), or ``"open"`` if neither is established (none are, for the current graph and witnesses)."""
    g = expressivity_graph() if g is None else g
    out = []
    for a in g.nodes:
        for b in g.nodes:
            if a == b:
                continue
            row = {"A": a, "B": b}
            if g.has_edge(b, a):
                d = g.edges[b, a]
                row.update(status="B expresses A", evidence=d["evidence"], argument=d["argument"], paper=d["paper"])
            else:
                src = next((ne for ne in NON_EDGES
                            if a in ({ne.cannot} | set(g.predecessors(ne.cannot))) and b in ({ne.task_of} | set(g.successors(ne.task_of)))), None)
                if src is None:
                    row.update(status="open", evidence="", argument="", paper="")
                else:
                    row.update(status="A cannot express B", evidence=f"witness {src.witness} ({src.against} certificate)",
                               argument=f"{src.cannot} cannot express a {src.task_of} task", paper=src.source)
            out.append(row)
    return out


def equivalence_classes(g: nx.DiGraph | None = None) -> list[frozenset[str]]:
    """Classes of mutually expressible formalisms (strongly connected components), largest first."""
    g = expressivity_graph() if g is None else g
    return sorted((frozenset(c) for c in nx.strongly_connected_components(g)), key=lambda c: (-len(c), sorted(c)))


def hasse_diagram(g: nx.DiGraph | None = None) -> nx.DiGraph:
    """Transitive reduction of the condensation: nodes are equivalence classes (label "A = B = C")."""
    g = expressivity_graph() if g is None else g
    cond = nx.condensation(g)
    red = nx.transitive_reduction(cond)
    h = nx.DiGraph()
    label = {c: " = ".join(sorted(cond.nodes[c]["members"], key=_rank)) for c in cond.nodes}
    for c in cond.nodes:
        h.add_node(label[c], members=frozenset(cond.nodes[c]["members"]))
    for a, b in red.edges:
        h.add_edge(label[a], label[b])
    return h


def non_expressivity(g: nx.DiGraph | None = None) -> set[tuple[str, str]]:
    """All (A, B) with "A cannot express some task of B" implied by :data:`NON_EDGES` and ⊑."""
    g = expressivity_graph() if g is None else g
    out = set()
    for ne in NON_EDGES:
        below = {ne.cannot} | set(g.predecessors(ne.cannot))
        above = {ne.task_of} | set(g.successors(ne.task_of))
        out |= {(a, b) for a in below for b in above}
    return out


_ORDER = ["MR", "LAR", "LTL", "RM", "INMR", "ONMR", "FTR", "RRL", "IMORL", "OMORL", "GOMORL", "FOMR", "FTLR", "OMO", "TLO", "PO", "TO"]


def _rank(name: str) -> int:
    return _ORDER.index(name) if name in _ORDER else len(_ORDER)


def draw_hasse(ax, h: nx.DiGraph | None = None) -> None:
    """Draw the Hasse diagram bottom (least expressive) to top on a matplotlib axis."""
    h = hasse_diagram() if h is None else h
    depth = {}
    for n in nx.topological_sort(h):
        preds = list(h.predecessors(n))
        depth[n] = 0 if not preds else 1 + max(depth[p] for p in preds)
    layers: dict[int, list[str]] = {}
    for n, d in depth.items():
        layers.setdefault(d, []).append(n)
    pos = {}
    for d, nodes in layers.items():
        nodes.sort(key=lambda n: min(_rank(m) for m in h.nodes[n]["members"]))
        for i, n in enumerate(nodes):
            pos[n] = ((i + 1) / (len(nodes) + 1), d)
    nx.draw_networkx_edges(h, pos, ax=ax, arrows=False, edge_color="0.5")
    for n, (x, y) in pos.items():
        ax.text(x, y, n.replace(" = ", "\n= "), ha="center", va="center", fontsize=7,
                bbox={"boxstyle": "round", "fc": "lightyellow" if any(m in PAPER_HEADLINE for m in h.nodes[n]["members"]) else "white", "ec": "0.3"})
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, max(layers) + 0.6)
    ax.axis("off")
