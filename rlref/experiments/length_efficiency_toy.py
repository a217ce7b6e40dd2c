"""``length-efficiency-toy``: accuracy vs mean response length of a tiny LM after RL with each length method.

A tiny Llama (``rlref.llm.train``'s from-config model over the character tokenizer, CPU) is first
SFT-warm-started on VERBOSE worked solutions of the modular-sum task (``ModSumTask``, 3 digits mod 10),
then RL'd from that shared start by the library's loop with each length method of the seed papers:

* GRPO on 0/1 correctness (no length term: the baseline);
* DLER: reward 1[correct]·1[L ≤ B] (truncation), batch-normalized advantages, clip-higher;
* TLDR at several budgets B: 1[correct] − max(0, L − B)/B;
* Kimi k1.5: correctness + the group-normalized length reward λᵢ;
* HAPO: correctness + the history-aware cosine length reward;
* GRPO-λ: the Kimi-shaped reward only for the batch's top-λ groups by correctness (λ = 0.5);
* DRPO: the decoupled policy loss (positives weighted by exp((1 − L/L_max)/λ), the release's λ = 0.1);
* Train-Long-Think-Short: budget_reward under an exponentially decaying curriculum budget 40 → 16.

Each method runs the same number of steps from a copy of the same SFT model; the final model is
evaluated on fresh problems by SAMPLING at the training temperature 1 (4 samples per problem), giving
accuracy and mean response length (tokens, EOS included) with standard errors over problems.

Designed here (not from a paper): the toy task's verbose scratchpad. A worked pass writes the running
sums as equations, ``"3+5=8;8+2=0"``; the SFT target repeats that pass k ∈ {1, 2, 3} times (uniformly at
random per example: a caricature of redundant self-verification) before ``#answer``, so the warm-started
model is verbose in a way the answer does not need, and there is length to cut. The prompt space
(10³ prompts) is covered by training, so accuracy is in-distribution, not generalization.

Every reward, advantage, loss and schedule is the library's (``rlref.llm.length`` through the loop's
config keys); this module only chooses the configs and measures.

References: Liu et al. (2025), "DLER: Doing Length pEnalty Right", Sec. 3; "Towards Efficient Reasoning
for Small Models: Temperature Scaling and TLDR" (2025), Sec. 4; Kimi Team (2025), "Kimi k1.5", Sec. 2.3.3;
Huang, Zhang, Cardie (2025), "HAPO" (arXiv 2505.11225), Sec. 3; Dai, Liu, Si (2025), GRPO-λ
(arXiv 2505.18086), Sec. 3; Li, Chen, Lin, Yang (2025), DRPO (arXiv 2510.04474), Sec. 4; Hammoud et al.
(2025), "Train Long, Think Short", Sec. 3; Shao et al. (2024), DeepSeekMath (GRPO).
"""

from __future__ import annotations

import copy
import random
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from rlref.reproduce import Context, Report, register

PAPER = ("Length-efficient RL for reasoning (DLER, TLDR, Kimi k1.5, HAPO, GRPO-λ, DRPO, Train Long Think Short) vs GRPO, "
         "on a tiny LM SFT-warm-started on a verbose scratchpad (modular sums)")

REPEATS = (1, 2, 3)  # worked passes in a verbose SFT target (designed here)
TERMS, MODULUS = 3, 10
MAX_NEW_TOKENS = 40  # > the longest verbose response (3 passes: 38 tokens with EOS)
_HERE = __name__
ZERO_REWARD = f"{_HERE}:zero_reward"
_TARGET_RNG = random.Random(0)

MODEL = {"arch": "llama", "hidden": 64, "layers": 2, "heads": 4}
SFT_CONFIG = {"family": "sft", "sft_target": f"{_HERE}:verbose_target", "prompts_per_step": 64, "micro_batch_size": 64, "lr": 3e-3}
SFT_CHUNK, SFT_LOSS = 50, 0.08  # SFT runs in chunks of 50 steps until a chunk's mean loss is below 0.08 (the sums are learned)
RL_CONFIG = {"family": "grpo", "prompts_per_step": 8, "group_size": 8, "micro_batch_size": 64, "max_new_tokens": MAX_NEW_TOKENS,
             "lr": 3e-4, "kl_beta": 0.0, "temperature": 1.0}
TLDR_BUDGETS = (8, 16, 28)
BUDGETED = ("DLER", *(f"TLDR B={b}" for b in TLDR_BUDGETS), "Kimi", "GRPO-λ", "TLTS curriculum")  # claim groups (see run)
TIGHT = ("DLER", "TLDR B=8", "TLDR B=16", "Kimi", "GRPO-λ", "TLTS curriculum")
SLOW = ("HAPO", "DRPO")
# each method: config keys over RL_CONFIG (rewards replaced by ZERO_REWARD where the method's reward already holds correctness)
METHODS: dict[str, dict] = {
    "GRPO": {},
    "DLER": {"reward_fn": ZERO_REWARD, "length_reward": "dler_truncation_reward", "length_reward_kwargs": {"budget": 16},
             "advantage": "dler_batch_normalized", "eps_high": 0.28},
    **{f"TLDR B={b}": {"reward_fn": ZERO_REWARD, "length_reward": "tldr_budget_reward", "length_reward_kwargs": {"budget": b}}
       for b in TLDR_BUDGETS},
    "Kimi": {"length_reward": "kimi_length_reward"},
    "HAPO": {"length_reward": "hapo"},
    "GRPO-λ": {"length_reward": "kimi_length_reward", "reward_switch": "grpo_lambda", "reward_switch_kwargs": {"top_fraction": 0.5}},
    "DRPO": {"policy_loss": "drpo"},
    "TLTS curriculum": {"reward_fn": ZERO_REWARD, "length_reward": "budget_reward", "budget_schedule": "curriculum",
                        "budget_schedule_kwargs": {"initial_budget": 40.0, "final_budget": 16.0}},
}


# ----------------------------------------------------------------------------- the verbose scratchpad (designed here)
def worked_pass(problem) -> str:
    """One worked pass over the running sums mod 10 as equations: digits (3, 5, 2) -> ``"3+5=8;8+2=0"``."""
    acc, steps = problem.digits[0], []
    for x in problem.digits[1:]:
        new = (acc + x) % MODULUS
        steps.append(f"{acc}+{x}={new}")
        acc = new
    return ";".join(steps)


def verbose_solution(problem, repeats: int) -> str:
    """The worked pass written ``repeats`` times, then ``#answer`` (repeats = 1 is the concise worked solution)."""
    if not (isinstance(repeats, int) and repeats >= 1):
        raise ValueError(f"repeats must be an integer >= 1; got {repeats!r}")
    return ";".join([worked_pass(problem)] * repeats) + f"#{problem.answer}"


def verbose_target(problem) -> str:
    """SFT target: :func:`verbose_solution` with repeats drawn uniformly from REPEATS (module generator, seeded per run)."""
    return verbose_solution(problem, _TARGET_RNG.choice(REPEATS))


def concise_target(problem) -> str:
    """The concise worked solution (one pass)."""
    return verbose_solution(problem, 1)


def zero_reward(problems, responses) -> list[float]:
    """Base reward 0 for every response (``reward_fn``), for methods whose length reward already holds correctness."""
    return [0.0] * len(responses)


def concise_length() -> int:
    """Tokens (EOS included) of the concise worked solution: 6·(terms − 1) − 1 characters, '#', the digit, EOS."""
    return 6 * (TERMS - 1) - 1 + 3


# ----------------------------------------------------------------------------- training and evaluation
def train_config(d: dict, seed: int, steps: int):
    """The :class:`rlref.llm.train.TrainConfig` of MODEL and the task with the keys ``d`` (no progress bar, no checkpoints)."""
    from rlref.llm.train import load_config

    return load_config({**MODEL, "terms": TERMS, "modulus": MODULUS, "seed": seed, "steps": steps, "progress": False,
                        "checkpoint_every": 10**9, **d})


def warm_start(seed: int, max_steps: int) -> tuple[object, object, list[float]]:
    """(model, tokenizer, per-step losses): the tiny model SFT-trained on verbose targets (repeat counts drawn from a
    generator seeded by ``seed``), resumed chunk by chunk (SFT_CHUNK steps) until a chunk's mean teacher-forced loss
    is below SFT_LOSS or ``max_steps`` steps are done. (The modular sums are learned in a sharp transition whose
    step varies with the seed, between ~150 and ~350 steps here.)"""
    from rlref.llm.train import char_tokenizer, train

    tok = char_tokenizer()
    _TARGET_RNG.seed(seed)
    losses: list[float] = []
    cfg = train_config({**SFT_CONFIG, "checkpoint_every": SFT_CHUNK}, seed, max_steps)
    with tempfile.TemporaryDirectory() as d:
        while True:
            tr = train(cfg, d, tokenizer=tok, max_steps=SFT_CHUNK, on_step=lambda k, r: losses.append(r.loss))
            if len(losses) >= max_steps or float(np.mean(losses[-SFT_CHUNK:])) < SFT_LOSS:
                return tr.model, tok, losses


def run_method(model, tok, overrides: dict, *, seed: int, steps: int) -> tuple[object, list[dict], dict]:
    """(trained model, per-step metrics, info) of ``steps`` RL steps of RL_CONFIG + ``overrides`` from a copy of ``model``;
    info["distinct_prompts"] = distinct prompts among the run's steps x prompts_per_step draws (HAPO's history needs repeats)."""
    from rlref.llm.train import train

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as d:
        tr = train(train_config({**RL_CONFIG, **overrides}, seed, steps), d, tokenizer=tok, model=copy.deepcopy(model),
                   on_step=lambda k, r: rows.append({"step": k, "length": r.response_length_mean, "accuracy": r.accuracy,
                                                     "truncated": r.truncated_fraction, "tokens": r.tokens}))
    prompts = {p.prompt for k in range(1, steps + 1) for p in tr.problems(k)}
    return tr.model, rows, {"distinct_prompts": len(prompts), "draws": steps * tr.cfg.prompts_per_step}


def evaluate(model, tok, *, seed: int, problems: int, samples: int) -> dict:
    """Sampled evaluation at temperature 1 on ``problems`` fresh problems x ``samples`` samples: per-problem accuracy
    and mean length (tokens, EOS included), and the fraction truncated at MAX_NEW_TOKENS without EOS."""
    import torch

    from rlref.llm.train import ModSumTask, sample

    task = ModSumTask(TERMS, MODULUS)
    probs = task.batch(problems, seed=10**9 + seed)
    prompts = [p.prompt for p in probs for _ in range(samples)]
    gens = [torch.Generator().manual_seed((seed * 1_000_003 + 7 + i) % 2**63) for i in range(len(prompts))]
    b = sample(model, tok, prompts, max_new_tokens=MAX_NEW_TOKENS, temperature=1.0, generators=gens)
    ids = b.response_ids()
    eos = tok.eos_token_id
    texts = ["".join(tok.convert_ids_to_tokens([t for t in r if t != eos])) for r in ids]
    correct = np.array([task.check(p, t) for p, t in zip([p for p in probs for _ in range(samples)], texts, strict=True)], float)
    lengths = np.array([len(r) for r in ids], float)
    trunc = np.array([eos not in r for r in ids], float)
    return {"accuracy": correct.reshape(problems, samples).mean(1).tolist(), "length": lengths.reshape(problems, samples).mean(1).tolist(),
            "truncated": float(trunc.mean()), "examples": texts[: 3 * samples : samples]}


def summarize(ev: dict) -> dict:
    """Mean and standard error over problems of accuracy and length."""
    a, n = np.asarray(ev["accuracy"]), np.asarray(ev["length"])
    k = len(a)
    return {"accuracy": float(a.mean()), "accuracy_se": float(a.std(ddof=1) / np.sqrt(k)), "length": float(n.mean()),
            "length_se": float(n.std(ddof=1) / np.sqrt(k)), "truncated": ev["truncated"]}


class WarmStart:
    """The shared SFT model, trained on first use only (every method's unit may be a cache hit)."""

    def __init__(self, seed: int, steps: int):
        self.seed, self.steps, self._m = seed, steps, None

    def get(self):
        if self._m is None:
            import torch

            torch.manual_seed(self.seed)
            self._m = warm_start(self.seed, self.steps)
        return self._m[:2]

    @property
    def losses(self) -> list[float]:
        self.get()
        return self._m[2]


def slug(name: str) -> str:
    """An ASCII file-name key for a method name ("GRPO-λ" -> "grpo-lambda", "TLDR B=8" -> "tldr-b8")."""
    return name.replace("λ", "lambda").replace("=", "").replace(" ", "-").lower()


def scales(ctx: Context) -> dict:
    return {"sft_steps": ctx.scale(600, 1000), "rl_steps": ctx.scale(20, 60), "problems": ctx.scale(64, 256), "samples": 4}


# ----------------------------------------------------------------------------- the reproduction
@register("length-efficiency-toy", paper=PAPER,
          description="Tiny LM, verbose SFT start, RL with GRPO/DLER/TLDR/Kimi/HAPO/GRPO-λ/DRPO/TLTS: accuracy vs mean length")
def run(ctx: Context) -> Report:
    import torch

    torch.set_num_threads(1)
    sc = scales(ctx)
    ws = WarmStart(ctx.seed, sc["sft_steps"])

    def unit_sft() -> dict:
        m, tok = ws.get()
        return {**evaluate(m, tok, seed=ctx.seed, problems=sc["problems"], samples=sc["samples"]), "sft_steps": len(ws.losses),
                "final_loss": float(np.mean(ws.losses[-SFT_CHUNK:]))}

    def unit_method(name: str) -> dict:
        m, tok = ws.get()
        trained, curve, info = run_method(m, tok, METHODS[name], seed=ctx.seed, steps=sc["rl_steps"])
        return {"eval": evaluate(trained, tok, seed=ctx.seed, problems=sc["problems"], samples=sc["samples"]), "curve": curve, **info}

    sft = ctx.unit(f"sft-{sc['sft_steps']}", unit_sft)
    res = {name: ctx.unit(f"rl-{slug(name)}-{sc['rl_steps']}", lambda name=name: unit_method(name))
           for name in ctx.progress(list(METHODS), desc="methods")}
    s_sft = summarize(sft)
    s = {name: summarize(r["eval"]) for name, r in res.items()}
    g = s["GRPO"]
    concise = concise_length()
    length_methods = [m for m in METHODS if m != "GRPO"]
    cuts = {m: 1.0 - s[m]["length"] / g["length"] for m in length_methods}
    drops = {m: g["accuracy"] - s[m]["accuracy"] for m in length_methods}

    h = max(1, sc["rl_steps"] // 2)
    first_half = {m: float(np.mean([r["length"] for r in res[m]["curve"][:h]])) for m in METHODS}
    speed = {m: first_half["GRPO"] / first_half[m] for m in length_methods}  # > 1: shorter than GRPO early in training

    ctx.claim(f"The SFT warm start is verbose: its mean sampled length is >= 1.5x the concise worked solution ({concise} tokens)",
              expected=f">= {1.5 * concise:.1f}", measured=round(s_sft["length"], 2), holds=s_sft["length"] >= 1.5 * concise)
    ctx.claim(f"GRPO on correctness alone shortens too (longer responses hold more copy errors), but more slowly: over the first {h} RL "
              f"steps its mean training-batch length is >= 1.1x that of each budget or group-penalty method ({', '.join(BUDGETED)})",
              expected=">= 1.1 each", measured={m: round(speed[m], 3) for m in BUDGETED}, holds=all(speed[m] >= 1.1 for m in BUDGETED))
    ctx.claim("Each budget or group-penalty method ends >= 30% shorter than the SFT start and no longer than GRPO (+0.5 token)",
              expected=">= 0.30 and <= GRPO + 0.5", measured={m: round(1.0 - s[m]["length"] / s_sft["length"], 3) for m in BUDGETED},
              holds=all(s[m]["length"] <= 0.7 * s_sft["length"] and s[m]["length"] <= g["length"] + 0.5 for m in BUDGETED))
    ctx.claim(f"Those with a budget <= 16 tokens or a group penalty ({', '.join(TIGHT)}) reach the concise worked solution: "
              f"mean length <= 1.15x {concise}", expected=f"<= {1.15 * concise:.1f} each", measured={m: round(s[m]["length"], 2) for m in TIGHT},
              holds=all(s[m]["length"] <= 1.15 * concise for m in TIGHT))
    rep = 1.0 - res["HAPO"]["distinct_prompts"] / res["HAPO"]["draws"]
    ctx.claim(f"HAPO and DRPO are the slowest length methods (HAPO's per-prompt history needs a prompt seen before: {rep:.0%} of its prompt "
              "draws were repeats; DRPO's length weights act only among a group's correct responses): their early speed-up over GRPO is "
              "below every budget or group-penalty method's, yet they end shorter than GRPO",
              expected="speed-up < min over the others; length < GRPO's",
              measured={"speed_up": {m: round(speed[m], 3) for m in SLOW}, "min_speed_up_others": round(min(speed[m] for m in BUDGETED), 3),
                        "length_cut_vs_grpo": {m: round(cuts[m], 3) for m in SLOW}},
              holds=max(speed[m] for m in SLOW) < min(speed[m] for m in BUDGETED) and all(cuts[m] > 0 for m in SLOW))
    ctx.claim("Every length method costs at most 10 points of accuracy vs GRPO (sampled accuracy on fresh problems)",
              expected="<= 0.10 each", measured={m: round(drops[m], 3) for m in length_methods},
              holds=all(drops[m] <= 0.10 for m in length_methods))
    b_low = f"TLDR B={min(TLDR_BUDGETS)}"
    ctx.claim(f"A budget below the concise solution ({b_low}) does not make the model drop the worked pass (that would cost correctness): "
              f"mean length >= {concise - 1}", expected=f">= {concise - 1}", measured=round(s[b_low]["length"], 2),
              holds=s[b_low]["length"] >= concise - 1)

    fig = _figure(s_sft, s, {m: res[m]["curve"] for m in METHODS}, concise)
    data = {"sft": {**s_sft, "steps": sft["sft_steps"], "final_loss": sft["final_loss"]}, "methods": s, "length_cut_vs_grpo": cuts,
            "accuracy_drop_vs_grpo": drops, "concise_length": concise, "repeated_prompt_draws": rep,
            "first_half_length": first_half, "speed_up_vs_grpo": speed,
            "scales": sc, "configs": {"model": MODEL, "sft": SFT_CONFIG, "rl": RL_CONFIG, "methods": METHODS},
            "examples": {"SFT": sft["examples"], **{m: res[m]["eval"]["examples"] for m in METHODS}}}
    return ctx.report(PAPER, figure=fig, data=data,
                      notes="Sampled evaluation (temperature 1, 4 samples per problem); error bars are standard errors over problems. "
                            "The verbose scratchpad (1-3 repeated worked passes) is designed here.")


def _figure(s_sft: dict, s: dict, curves: dict, concise: int):
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.6))
    cmap = plt.get_cmap("tab10")
    ax.errorbar(s_sft["length"], s_sft["accuracy"], xerr=s_sft["length_se"], yerr=s_sft["accuracy_se"], fmt="s", color="k",
                label="SFT start (verbose)", capsize=3)
    for i, (m, v) in enumerate(s.items()):
        ax.errorbar(v["length"], v["accuracy"], xerr=v["length_se"], yerr=v["accuracy_se"], fmt="o", color=cmap(i % 10), label=m, capsize=3)
    ax.axvline(concise, color="grey", ls=":", lw=1)
    ax.text(concise, ax.get_ylim()[0], " concise worked solution", color="grey", fontsize=8, va="bottom")
    ax.set_xlabel("mean response length (tokens)")
    ax.set_ylabel("accuracy (sampled, fresh problems)")
    ax.set_title("Accuracy vs length after RL from a verbose SFT start")
    ax.legend(fontsize=7, loc="best")
    for i, (m, rows) in enumerate(curves.items()):
        bx.plot([r["step"] for r in rows], [r["length"] for r in rows], color=cmap(i % 10), label=m)
    bx.axhline(concise, color="grey", ls=":", lw=1)
    bx.set_xlabel("RL step")
    bx.set_ylabel("mean sampled length in the training batch")
    bx.set_title("Training curves")
    fig.tight_layout()
    return fig
