"""``expressivity-witnesses``: the witness tasks behind "each of Regularised RL, Outer Nonlinear
Markov Rewards, Reward Machines, LTL and Limit Average Rewards can express a task that the others
cannot" (Subramani et al., ICLR 2024, abstract), each with the ordering it induces and, for each
of the other four formalisms, the certificate that it cannot induce it (a Farkas certificate of
the realizability LP, a level count, or a constructive refuter run on random specifications).
Beyond the headline: OMORL ⊏ GOMORL (the lexicographic order of two returns covering a square;
Debreu's argument, checked in its finite parts), TLO ⊏ PO, and the reconstructed TO (partial
orders; cannot express MR or LAR, by exhaustive enumeration). The witnesses are our constructions
(derived here); the paper's own could not be retrieved.

Units: one per witness (the refuters draw their random specifications from the seed).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from rlref.formalisms import witnesses as W
from rlref.reproduce import Context, Report, register

PAPER = "Subramani, Williams, Heitmann, Holm, Griffin, Skalse (ICLR 2024), On the expressivity of objective-specification formalisms in RL"
BUILDERS = {"RRL": W.witness_rrl, "ONMR": lambda samples, seed: W.witness_onmr(), "RM": W.witness_rm, "LTL": W.witness_ltl, "LAR": W.witness_lar}
EXTRA = {"GOMORL": W.witness_gomorl, "TO-partial": lambda samples, seed: W.witness_to_partial(),
         "MR-vs-TO": lambda samples, seed: W.witness_to_linear("MR"), "LAR-vs-TO": lambda samples, seed: W.witness_to_linear("LAR")}


def _unit(name: str, samples: int, seed: int) -> dict:
    w = {**BUILDERS, **EXTRA}[name](samples, seed)
    vals = [float(w.spec.value(w.mdp, p)) for p in w.policies] if w.spec.real_valued else \
        [float(len(w.ordering.classes()) - next(r for r, c in enumerate(w.ordering.classes()) if i in c)) for i in range(len(w.policies))]
    return {
        "expresses": w.expresses,
        "environment": w.mdp.name,
        "policies": list(w.policy_names),
        "values": vals,
        "classes_best_first": [[w.policy_names[i] for i in c] for c in w.ordering.classes()],
        "certificates": {k: {"method": c.method, "holds": bool(c.holds), "detail": c.detail,
                             "farkas": c.data.get("farkas", [None])[0] if c.method == "lp-farkas" else None,
                             "data": {k2: v for k2, v in c.data.items() if k2 in ("gap_lp", "square_error", "tried", "hits", "refuted")}}
                         for k, c in w.certificates.items()},
        "geq": w.ordering.geq.astype(int).tolist(),
    }


def _figure(units: dict, extra: dict):
    fig, axes = plt.subplots(2, 5, figsize=(20, 9.5))
    for ax, (name, u) in zip(axes[0], units.items(), strict=True):
        v = np.array(u["values"])
        ax.bar(range(len(v)), v, color="tab:blue")
        ax.set_xticks(range(len(v)))
        ax.set_xticklabels(u["policies"], rotation=70, fontsize=6)
        lines = [f"{k}: {c['method']} {'ok' if c['holds'] else 'FAIL'}" for k, c in u["certificates"].items()]
        ax.set_title(f"{name} witness ({u['environment']})\ncannot: " + "; ".join(lines[:2]) + "\n" + "; ".join(lines[2:]), fontsize=8)
        ax.set_ylabel("target value J(pi)", fontsize=8)
    g = extra["GOMORL"]
    ax = axes[1, 0]
    ax.bar(range(len(g["values"])), g["values"], color="tab:green")
    ax.set_xticks(range(len(g["values"])))
    ax.set_xticklabels(g["policies"], rotation=70, fontsize=6)
    c = g["certificates"]["OMORL"]
    ax.set_title(f"GOMORL: lexicographic (J1, J2), rank shown\nOMORL: {c['method']} {'ok' if c['holds'] else 'FAIL'} "
                 f"(refuted {c['data']['refuted']}/{c['data']['tried']})", fontsize=8)
    ax = axes[1, 1]
    Ns = np.array([int(k) for k in c["data"]["gap_lp"]])
    ax.loglog(Ns, [c["data"]["gap_lp"][str(n)] for n in Ns], "o-", label="LP: max uniform gap")
    ax.loglog(Ns, 1.0 / Ns, "k--", label="1/N")
    ax.set_xticks(Ns, [str(n) for n in Ns])
    ax.minorticks_off()
    ax.set_xlabel("columns N", fontsize=8)
    ax.set_title("Debreu's finite step: a real score on N lexicographic\ncolumns has some vertical gap <= 1/N", fontsize=8)
    ax.legend(fontsize=7)
    for ax, name in zip(axes[1, 2:], ("TO-partial", "MR-vs-TO", "LAR-vs-TO"), strict=True):
        u = extra[name]
        ax.imshow(np.array(u["geq"]), cmap="Greys", vmin=0, vmax=1)
        ax.set_xticks(range(len(u["policies"])))
        ax.set_yticks(range(len(u["policies"])))
        ax.set_xticklabels(u["policies"], fontsize=7)
        ax.set_yticklabels(u["policies"], fontsize=7)
        k, cc = next(iter(u["certificates"].items()))
        ax.set_title(f"{name}: geq[i, j] of the {u['expresses']} ordering (black = i >= j)\n{k} cannot: {cc['method']} "
                     f"{'ok' if cc['holds'] else 'FAIL'}", fontsize=8)
    fig.suptitle("Witnesses: each of RRL, ONMR, RM, LTL, LAR expresses an ordering the other four cannot (top); "
                 "OMORL < GOMORL and the reconstructed TO (bottom)", fontsize=10)
    fig.tight_layout()
    return fig


@register("expressivity-witnesses", paper=PAPER,
          description="witnesses (headline five, OMORL < GOMORL, TO) with LP/Farkas, level, refuter, Debreu, exhaustive certificates")
def run(ctx: Context) -> Report:
    samples = ctx.scale(40, 400)
    units = {name: ctx.unit(f"witness-{name}", lambda name=name: _unit(name, samples, ctx.seed)) for name in BUILDERS}
    for name, u in units.items():
        for other, c in u["certificates"].items():
            ctx.claim(f"{other} cannot express the {name} witness ordering ({c['method']}: {c['detail']})",
                      expected=True, measured=c["holds"], holds=bool(c["holds"]))
    tlo = W.witness_tlo_po().certificates["TLO"]
    ctx.claim(f"TLO (hence OMO, GOMORL and everything below) cannot express a policy ordering: {tlo.detail}",
              expected=True, measured=tlo.holds, holds=bool(tlo.holds))
    extra = {name: ctx.unit(f"witness-{name}", lambda name=name: _unit(name, samples, ctx.seed)) for name in EXTRA}
    c = extra["GOMORL"]["certificates"]["OMORL"]
    ctx.claim(f"OMORL (hence FOMR, FTLR) cannot express the lexicographic GOMORL order ({c['method']}: {c['detail']})",
              expected=True, measured=c["holds"], holds=bool(c["holds"]))
    gaps = c["data"]["gap_lp"]
    ctx.claim("Debreu's finite step: the LP's largest uniform vertical gap of a [0, 1]-valued score on N lexicographic columns is 1/N "
              "(max |gap - 1/N| over N)", expected=0.0, measured=max(abs(v - 1 / int(k)) for k, v in gaps.items()), tolerance=1e-9)
    for name, against in (("TO-partial", "PO"), ("MR-vs-TO", "TO"), ("LAR-vs-TO", "TO")):
        cc = extra[name]["certificates"][against]
        who = "PO, hence every total-preorder formalism (all but TO)," if against == "PO" else "TO"
        ctx.claim(f"{who} cannot express the {extra[name]['expresses']} witness ordering ({cc['method']}: {cc['detail']})",
                  expected=True, measured=cc["holds"], holds=bool(cc["holds"]))
    return ctx.report(PAPER, figure=_figure(units, extra), data={"witnesses": {**units, **extra}, "refuter_samples": samples})
