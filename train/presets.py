"""LSRec model presets (paper Table 1) as Hugging Face LlamaConfig: RMSNorm, RoPE, grouped-query
attention, SiLU-gated MLP, tied input/output embeddings."""

from __future__ import annotations

from lsrec.tokenizer.errors import LSRecError
from lsrec.tokenizer.prompts import CONTEXT_LENGTH

#            hidden, intermediate, layers, heads, kv heads
PRESETS = {
    "small": (64, 128, 2, 1, 1),
    "medium": (128, 384, 4, 2, 1),
    "large": (384, 512, 4, 2, 1),
}


def llama_config(preset: str, vocab_size: int, pad_id: int = 0, bos_id: int = 1, eos_id: int = 2,
                 attention_dropout: float = 0.2):
    from transformers import LlamaConfig

    if preset not in PRESETS:
        raise LSRecError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    hidden, intermediate, layers, heads, kv_heads = PRESETS[preset]
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=hidden // heads,
        hidden_act="silu",
        max_position_embeddings=CONTEXT_LENGTH,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,  # item embeddings double as the output layer, as in the paper
        attention_dropout=attention_dropout,  # paper Table 1
        pad_token_id=pad_id,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        use_cache=False,
    )


def build_model(preset: str, vocab_size: int, seed: int, **kwargs):
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(llama_config(preset, vocab_size, **kwargs))


def count_parameters(preset: str, vocab_size: int) -> int:
    """Unique parameters (tied embeddings counted once), as the paper counts them."""
    import torch

    with torch.device("meta"):
        model = build_model(preset, vocab_size, seed=0)
    return sum(p.numel() for p in model.parameters())
