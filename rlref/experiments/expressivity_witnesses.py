"""``expressivity-witnesses``: the witness tasks behind "each of Regularised RL, Outer Nonlinear
Markov Rewards, Reward Machines, LTL and Limit Average Rewards can express a task that the others
cannot" (Subramani et al., ICLR 2024, abstract), each with the ordering it induces and, for each
of the other four formalisms, the certificate that it cannot induce it (a Farkas certificate of
the realizability LP, a level count, or a constructive refuter run on random specifications).
The witnesses are our constructions (derived here); the paper's own could not be retrieved.

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


def _unit(name: str, samples: int, seed: int) -> dict:
    w = BUILDERS[name](samples, seed)
    vals = [float(w.spec.value(w.mdp, p)) for p in w.policies]
    return {
        "expresses": w.expresses,
        "environment": w.mdp.name,
        "policies": list(w.policy_names),
        "values": vals,
        "classes_best_first": [[w.policy_names[i] for i in c] for c in w.ordering.classes()],
        "certificates": {k: {"method": c.method, "holds": bool(c.holds), "detail": c.detail,
                             "farkas": c.data.get("farkas", [None])[0] if c.method == "lp-farkas" else None}
                         for k, c in w.certificates.items()},
    }


def _figure(units: dict):
    fig, axes = plt.subplots(1, 5, figsize=(20, 4.8))
    for ax, (name, u) in zip(axes, units.items(), strict=True):
        v = np.array(u["values"])
        ax.bar(range(len(v)), v, color="tab:blue")
        ax.set_xticks(range(len(v)))
        ax.set_xticklabels(u["policies"], rotation=70, fontsize=6)
        lines = [f"{k}: {c['method']} {'ok' if c['holds'] else 'FAIL'}" for k, c in u["certificates"].items()]
        ax.set_title(f"{name} witness ({u['environment']})\ncannot: " + "; ".join(lines[:2]) + "\n" + "; ".join(lines[2:]), fontsize=8)
        ax.set_ylabel("target value J(pi)", fontsize=8)
    fig.suptitle("Each of RRL, ONMR, RM, LTL, LAR expresses an ordering the other four cannot (certificates per formalism)", fontsize=10)
    fig.tight_layout()
    return fig


@register("expressivity-witnesses", paper=PAPER, description="five witness tasks with LP/Farkas, level-count and refuter certificates")
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
    return ctx.report(PAPER, figure=_figure(units), data={"witnesses": units, "refuter_samples": samples})
