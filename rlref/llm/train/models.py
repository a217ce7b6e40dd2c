"""Tokenizers and causal LMs for :mod:`rlref.llm.train` (Hugging Face ``transformers``, the ``hf`` extra).

Nothing is downloaded: ``model.path`` loads a local ``save_pretrained`` directory; otherwise a tiny
model is built with ``AutoModelForCausalLM.from_config`` over a character-level tokenizer made
locally with the ``tokenizers`` library.
"""

from __future__ import annotations

import string

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
CHARS = string.digits + "+-*=#>,; "

__all__ = ["char_tokenizer", "build_model", "load_tokenizer", "PAD", "BOS", "EOS", "CHARS"]


def char_tokenizer(chars: str = CHARS, *, pad: bool = True):
    """A character-level ``PreTrainedTokenizerFast``: one token per character of ``chars`` plus <bos>/<eos>
    (and <pad> when ``pad``). Unknown characters raise in :func:`rlref.llm.train.task` checks, not here."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ([PAD] if pad else []) + [BOS, EOS]
    vocab = {tok: i for i, tok in enumerate(specials + list(dict.fromkeys(chars)))}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token=EOS))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    kw = {"pad_token": PAD} if pad else {}
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token=BOS, eos_token=EOS, padding_side="left", **kw)


def load_tokenizer(path: str | None, *, pad: bool = True):
    """``AutoTokenizer.from_pretrained(path)`` (local only) or the character tokenizer when ``path`` is None."""
    if path is None:
        return char_tokenizer(pad=pad)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    tok.padding_side = "left"
    return tok


def build_model(tokenizer, *, path: str | None = None, arch: str = "llama", hidden: int = 64, layers: int = 2, heads: int = 4,
                seed: int = 0):
    """A causal LM: ``AutoModelForCausalLM.from_pretrained(path)`` (local) or a tiny ``arch`` ("llama"/"qwen2")
    built from a config with ``hidden`` width, ``layers`` layers and ``heads`` heads, initialized under ``seed``."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    if path is not None:
        return AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    cls = {"llama": LlamaConfig, "qwen2": Qwen2Config}
    if arch not in cls:
        raise ValueError(f"model.arch must be one of {sorted(cls)}; got {arch!r}")
    cfg = cls[arch](vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                    num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=256,
                    pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                    tie_word_embeddings=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AutoModelForCausalLM.from_config(cfg, dtype=torch.float32, attn_implementation="eager")
