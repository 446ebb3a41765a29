"""SASRec (Kang & McAuley, 2018) in plain PyTorch, on the same split, masking and metrics as LSRec.

The faithful model: item embeddings scaled by sqrt(d) plus learned positions, LayerNorm, single-head
causal self-attention whose residual adds the *normalized* queries (as the original code does), a
point-wise ReLU feed-forward d -> d -> d, and scores as dot products with the shared item embeddings.
Losses: binary cross-entropy with one sampled negative per position (the original) or full-softmax
cross-entropy over all items (the strong variant of later reproductions).

Every difference to LSRec's Llama decoder is a switch (`positions`, `norm`, `mlp`, `kv_heads`, `block`,
`loss`), so the ablations swap one component at a time inside one training loop.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lsrec.tokenizer.checkpoint import CHECKPOINTS
from lsrec.tokenizer.errors import LSRecError, require_at_least_one

CHOICES = {
    "loss": ("bce", "ce"),
    "positions": ("learned", "rope"),
    "norm": ("layer", "rms"),
    "mlp": ("relu", "gated_silu"),
    "block": ("sasrec", "prenorm"),
}


@dataclass
class SASRecConfig:
    data: str = field(default="data/ml-100k", metadata={"help": "prepared dataset folder (lsrec data prepare)"})
    loss: str = field(default="ce", metadata={"help": "ce: full-softmax cross-entropy; bce: one sampled negative (original)"})
    name: str | None = field(default=None, metadata={"help": "checkpoint name; default sasrec-<loss>"})
    output_dir: str = field(default=CHECKPOINTS, metadata={"help": "best checkpoint goes to <output_dir>/<name>"})
    hidden: int = field(default=64, metadata={"help": "embedding and model width"})
    blocks: int = field(default=2, metadata={"help": "self-attention blocks (original: 2)"})
    heads: int = field(default=1, metadata={"help": "attention heads (original: 1)"})
    kv_heads: int = field(default=0, metadata={"help": "key/value heads; 0: as many as heads (1 with 2 heads: Llama's GQA)"})
    ffn: int = field(default=0, metadata={"help": "feed-forward inner width; 0: hidden (original)"})
    positions: str = field(default="learned", metadata={"help": "learned (original) or rope (Llama)"})
    norm: str = field(default="layer", metadata={"help": "layer (original) or rms (Llama)"})
    mlp: str = field(default="relu", metadata={"help": "relu (original) or gated_silu (Llama)"})
    block: str = field(default="sasrec", metadata={"help": "sasrec: residual from the normalized queries (original); "
                                                   "prenorm: x + f(norm(x)) (Llama)"})
    dropout: float = field(default=0.2, metadata={"help": "dropout on embeddings, attention and feed-forward (original: 0.2)"})
    max_len: int = field(default=200, metadata={"help": "most recent items the model sees (original: 200)"})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate (original: 0.001)"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (original: 0)"})
    batch_size: int = field(default=128, metadata={"help": "users per step (original: 128)"})
    max_epochs: int = field(default=400, metadata={"help": "upper bound on epochs"})
    patience: int = field(default=20, metadata={"help": "stop after this many epochs without a better validation NDCG@10"})
    seed: int = field(default=42, metadata={"help": "seed for weights, batches, negatives and dropout"})

    def __post_init__(self):
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise LSRecError(f"{name}: unknown {getattr(self, name)!r}; choose one of {', '.join(allowed)}")
        require_at_least_one(self, "hidden", "blocks", "heads", "max_len", "batch_size", "max_epochs", "patience")
        if self.hidden % self.heads:
            raise LSRecError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if self.kv_heads < 0 or (self.kv_heads and self.heads % self.kv_heads):
            raise LSRecError(f"kv_heads must be 0 or divide heads ({self.heads}) (got {self.kv_heads})")
        if self.positions == "rope" and (self.hidden // self.heads) % 2:
            raise LSRecError("positions rope needs an even head width (hidden / heads)")
        if not 0 <= self.dropout < 1:
            raise LSRecError(f"dropout must be in [0, 1) (got {self.dropout})")
        if not 0 < self.learning_rate < 1:
            raise LSRecError(f"learning_rate must be in (0, 1) (got {self.learning_rate})")
        if self.name is None:
            self.name = f"sasrec-{self.loss}"

    def to_dict(self) -> dict:
        return asdict(self)


def build_model(cfg: SASRecConfig, n_items: int):
    """Built lazily so importing the config stays light (the CLI's --help)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    d, n_heads = cfg.hidden, cfg.heads
    n_kv = cfg.kv_heads or n_heads
    head = d // n_heads
    inner = cfg.ffn or d

    def norm():
        return nn.LayerNorm(d, eps=1e-8) if cfg.norm == "layer" else nn.RMSNorm(d, eps=1e-6)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = nn.Linear(d, n_heads * head)
            self.k = nn.Linear(d, n_kv * head)
            self.v = nn.Linear(d, n_kv * head)
            self.out = nn.Linear(n_heads * head, d)

        def forward(self, queries, keys, mask, rope):
            b, length, _ = queries.shape
            q = self.q(queries).view(b, length, n_heads, head).transpose(1, 2)
            k = self.k(keys).view(b, length, n_kv, head).transpose(1, 2)
            v = self.v(keys).view(b, length, n_kv, head).transpose(1, 2)
            if rope is not None:
                q, k = apply_rope(q, *rope), apply_rope(k, *rope)
            if n_kv != n_heads:
                k, v = (t.repeat_interleave(n_heads // n_kv, dim=1) for t in (k, v))
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                               dropout_p=cfg.dropout if self.training else 0.0)
            return self.out(y.transpose(1, 2).reshape(b, length, n_heads * head))

    class FeedForward(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = nn.Linear(d, inner)
            self.gate = nn.Linear(d, inner) if cfg.mlp == "gated_silu" else None
            self.down = nn.Linear(inner, d)
            self.drop = nn.Dropout(cfg.dropout)

        def forward(self, x):
            h = F.silu(self.gate(x)) * self.up(x) if self.gate is not None else F.relu(self.up(x))
            return self.drop(self.down(self.drop(h)))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn_norm, self.ffn_norm = norm(), norm()
            self.attn, self.ffn = Attention(), FeedForward()
            self.drop = nn.Dropout(cfg.dropout)

        def forward(self, x, mask, rope):
            if cfg.block == "sasrec":
                q = self.attn_norm(x)
                x = q + self.drop(self.attn(q, x, mask, rope))
                x = self.ffn_norm(x)
                return x + self.ffn(x)
            h = self.attn_norm(x)
            x = x + self.drop(self.attn(h, h, mask, rope))
            return x + self.ffn(self.ffn_norm(x))

    class SASRec(nn.Module):
        """Item index 0 is padding; items are 1..n_items. Sequences are left-padded."""

        def __init__(self):
            super().__init__()
            self.items = nn.Embedding(n_items + 1, d, padding_idx=0)
            self.positions = nn.Embedding(cfg.max_len, d) if cfg.positions == "learned" else None
            self.drop = nn.Dropout(cfg.dropout)
            self.blocks = nn.ModuleList(Block() for _ in range(cfg.blocks))
            self.final_norm = norm()
            if cfg.positions == "rope":
                inv = 1.0 / (10000 ** (torch.arange(0, head, 2).float() / head))
                angles = torch.outer(torch.arange(cfg.max_len).float(), inv)
                self.register_buffer("rope_cos", torch.cat([angles.cos()] * 2, -1), persistent=False)
                self.register_buffer("rope_sin", torch.cat([angles.sin()] * 2, -1), persistent=False)

        def forward(self, seqs):
            """Hidden states [batch, length, d] for left-padded item indices [batch, length]."""
            length = seqs.shape[1]
            real = seqs != 0
            x = self.items(seqs) * math.sqrt(d)
            if self.positions is not None:  # the most recent item always has the last position
                x = x + self.positions(torch.arange(cfg.max_len - length, cfg.max_len, device=seqs.device))
            x = self.drop(x) * real[..., None]
            causal = torch.ones(length, length, dtype=torch.bool, device=seqs.device).tril()
            # Real keys only; a padded query may see itself so its softmax is defined (its output is zeroed).
            mask = (causal & real[:, None, :]) | torch.eye(length, dtype=torch.bool, device=seqs.device)
            mask = mask[:, None]
            rope = (self.rope_cos[:length], self.rope_sin[:length]) if self.positions is None else None
            for block in self.blocks:
                x = block(x, mask, rope) * real[..., None]
            return self.final_norm(x)

        def scores(self, hidden):
            """Dot product with every item embedding: [..., n_items] (column j is item j+1)."""
            return hidden @ self.items.weight[1:].T

    model = SASRec()
    # The original code's initialisation: Xavier-normal for every matrix (embeddings included), so the
    # first logits are small; PyTorch's N(0, 1) embeddings give logits of std ~sqrt(d) and a slow start.
    for param in model.parameters():
        if param.dim() > 1:
            nn.init.xavier_normal_(param)
    return model


def apply_rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = __import__("torch").cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


WEIGHTS = "model.safetensors"




def load_sasrec(folder: str | Path):
    """(model in eval mode, its CheckpointMeta) from a checkpoint folder written by `lsrec baseline sasrec`."""
    from safetensors.torch import load_file

    from lsrec.tokenizer.checkpoint import load_metadata

    meta = load_metadata(folder)
    cfg = SASRecConfig(**meta.raw["train_config"])
    model = build_model(cfg, len(meta.vocab.items))
    model.load_state_dict(load_file(str(Path(folder) / WEIGHTS)))
    return model.eval(), meta
