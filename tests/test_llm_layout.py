"""rlref.llm's layout (issue #9): a small core, one module per family of papers, old names kept."""

import importlib

import pytest

pytest.importorskip("torch")

import rlref.llm as llm  # noqa: E402

FAMILIES = {
    "entropy": ["entropy_bonus", "siren_loss", "siren_selective_entropy", "epo_smoothing_penalty", "epo_phase_weight",
                "aepo_temperature", "aepo_loss", "lp_reg_proxy", "lp_reg_loss", "t1_loss"],
    "length": ["gui_g1_difficulty_weights", "apo_dads_kl_weights", "apo_stcr_penalty", "drpo_weights", "dler_batch_normalized",
               "kimi_length_reward", "grpo_lambda_reward", "HistoryAwareReward"],
    "reference": ["demonstration_regularization", "chi2_occupancy_penalty", "Chi2Penalty"],
    "agents": ["igpo_turn_rewards", "igpo_advantages", "empg_modulate", "duration_aware_weights"],
    "surrogates": ["sequence_log_ratio", "gspo_clip", "cispo_loss", "sapo_loss", "vespo_weights", "vespo_loss"],
}


def test_dir_lists_the_lazily_loaded_submodules():
    names = dir(llm)
    for sub in ("logprobs", "divergences", "losses", "advantages", "entropy", "length", "rewards", "preference", "reference",
                "agents", "composite", "critic", "diffusion", "tokentree"):
        assert sub in names
        assert importlib.import_module(f"rlref.llm.{sub}") is getattr(llm, sub)


def test_old_import_paths_resolve_to_the_one_definition_in_the_family_module():
    """Every moved name is importable from where it was first published, and is the same object."""
    from rlref.llm import advantages, losses, rewards

    for fam, names in FAMILIES.items():
        mod = importlib.import_module(f"rlref.llm.{fam}")
        for n in names:
            obj = getattr(mod, n)
            assert obj.__module__ == f"rlref.llm.{fam}", (n, obj.__module__)
            for old in (losses, advantages, rewards):
                if n in getattr(old, "__all__", []):
                    assert getattr(old, n) is obj
    assert losses.siren_loss is llm.entropy.siren_loss
    assert advantages.drpo_weights is llm.length.drpo_weights
    assert rewards.kimi_length_reward is llm.length.kimi_length_reward
    assert "siren_loss" in dir(losses) and "empg_modulate" in dir(advantages)
    with pytest.raises(AttributeError):
        _ = losses.not_a_name


def test_losses_holds_only_the_core_and_family_modules_list_their_papers():
    from rlref.llm import losses

    own = {n for n, v in vars(losses).items() if callable(v) and getattr(v, "__module__", "") == "rlref.llm.losses" and not n.startswith("_")}
    assert own <= {"aggregate", "ppo_clip", "ppo_token_losses", "kl_loss", "kl_reward", "PolicyLoss", "PPOTokenLosses"}, own
    for fam in ("entropy", "length", "reference", "agents", "composite", "critic", "diffusion", "surrogates"):
        doc = importlib.import_module(f"rlref.llm.{fam}").__doc__
        assert "Papers" in doc or "papers" in doc, fam
