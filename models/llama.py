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


INITS = ("normal", "xavier")


def build_model(preset: str, vocab_size: int, seed: int, init: str = "normal", **kwargs):
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(llama_config(preset, vocab_size, **kwargs))
    if init == "xavier":
        # SASRec's initialisation: Xavier-normal for every matrix, the (tied) item embeddings included.
        # transformers' N(0, 0.02) is smaller than Xavier for these narrow layers (std 0.02 against ~0.09).
        for param in model.parameters():
            if param.dim() > 1:
                torch.nn.init.xavier_normal_(param)
    elif init != "normal":
        raise LSRecError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    return model


def count_parameters(preset: str, vocab_size: int) -> int:
    """Unique parameters (tied embeddings counted once), as the paper counts them."""
    import torch

    with torch.device("meta"):
        model = build_model(preset, vocab_size, seed=0)
    return sum(p.numel() for p in model.parameters())
